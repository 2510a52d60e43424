/**
 * One renewal attempt, as a child workflow of the certificate's lifecycle:
 * CSR in the vault → issue at the CA (durable wait while pending) → verify → merge → sync bindings → notify.
 * Only references and public material (CSR, certificate chain, thumbprints) pass through here.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  getExternalWorkflowHandle,
  log,
  proxyActivities,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index';
import type { BindingOutcome, CertificateState } from '../activities/types';
import { type Phase, type RenewalOutcome, renewalProgressSignal } from './messages';
import { retryDelayMs } from './policy';

export interface RenewalInput {
  certificateId: string;
  issuer: string;
  attempt: number;
  trigger: string;
  /** The lifecycle's workflow id, told of each phase change. */
  parentWorkflowId?: string;
  /** Failed attempts before this one, to tell people when the next try comes if this one fails. */
  consecutiveFailures?: number;
}

const vaultOps = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '2 minutes', maximumAttempts: 8 },
});
const issuerOps = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '10 minutes', maximumAttempts: 6 },
});
const pureOps = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3 },
});
const bindingOps = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 5 },
});
const notifyOps = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: {
    initialInterval: '10s',
    backoffCoefficient: 2,
    maximumInterval: '10 minutes',
    maximumAttempts: 10,
  },
});

/** Failures that mean the CSR in the vault must not be used again. */
const STALE_CSR_FAILURES = new Set([
  'KeyMismatch',
  'NameMismatch',
  'AcmeBadCsr',
  'AcmeRejectedIdentifier',
  'AcmeUnauthorized',
  'Unparseable',
]);

/** How long to keep polling a CA that answers "pending" (approval, vetting) before giving the attempt up. */
const MAX_PENDING_MS = 14 * 86_400_000;

export async function renewalWorkflow(input: RenewalInput): Promise<RenewalOutcome> {
  const { certificateId: id } = input;
  const startedAt = new Date().toISOString();
  const phase = async (p: Phase, detail: string): Promise<void> => {
    if (!input.parentWorkflowId) return;
    try {
      await getExternalWorkflowHandle(input.parentWorkflowId).signal(renewalProgressSignal, {
        phase: p,
        detail,
      });
    } catch (err) {
      log.warn('could not report renewal progress to the lifecycle', { error: String(err) });
    }
  };
  let before: CertificateState | null = null;
  let merged: CertificateState | null = null;
  let bindings: BindingOutcome[] = [];
  const outcome = (status: RenewalOutcome['status'], error?: RenewalOutcome['error']): RenewalOutcome => ({
    attempt: input.attempt,
    status,
    trigger: input.trigger,
    startedAt,
    finishedAt: new Date().toISOString(),
    oldThumbprint: before?.thumbprint ?? null,
    newThumbprint: merged?.thumbprint ?? null,
    newVersion: merged?.version ?? null,
    notAfter: merged?.notAfter ?? null,
    bindings,
    error,
    notified: false,
  });

  let result: RenewalOutcome;
  try {
    before = await vaultOps.observe(id);
    await phase('Renewing', 'creating a CSR in the vault');
    const csr = await vaultOps.beginRenewal(id);
    // the names the policy asks for; a subject-only policy means the names of the current certificate
    const dnsNames = before.policy?.dnsNames?.length ? before.policy.dnsNames : before.dnsNames;
    const request = { certificateId: id, issuer: input.issuer, csrPem: csr.csrPem, dnsNames };

    await phase('Issuing', `requesting issuance from ${input.issuer}`);
    let issued = await issuerOps.issue(request);
    const pendingSince = Date.now();
    while (issued.status === 'pending') {
      if (Date.now() - pendingSince > MAX_PENDING_MS) {
        throw ApplicationFailure.nonRetryable(
          `the CA kept the request pending for over 14 days`,
          'IssuancePendingTooLong',
        );
      }
      await phase('Issuing', `the CA answered pending; polling again in ${issued.retryAfterSeconds}s`);
      await sleep(Math.max(1, issued.retryAfterSeconds) * 1000);
      issued = await issuerOps.pollIssuance({ ...request, ref: issued.ref });
    }

    await phase('Merging', 'verifying the issued chain');
    const verified = await pureOps.verify({
      certificateId: id,
      issuer: input.issuer,
      csrPem: csr.csrPem,
      chainPem: issued.chainPem,
      dnsNames,
    });
    merged = await vaultOps.merge({
      certificateId: id,
      chainPem: issued.chainPem,
      expectedThumbprint: verified.thumbprint,
    });

    await phase('Syncing', `re-binding consumers to ${merged.thumbprint}`);
    bindings = await bindingOps.syncBindings({
      certificateId: id,
      version: merged.version ?? '',
      thumbprint: merged.thumbprint ?? verified.thumbprint,
    });
    result = outcome('renewed');
  } catch (err) {
    const error = describeFailure(err);
    log.warn('renewal attempt failed', { certificateId: id, attempt: input.attempt, errorType: error.type });
    result = outcome('failed', error);
    if (!merged && STALE_CSR_FAILURES.has(error.type)) {
      // the pending CSR itself is the problem: drop it so the next attempt gets a fresh key and CSR
      try {
        await vaultOps.cancelRenewal(id);
      } catch (cancelErr) {
        log.warn('could not cancel the pending CSR', {
          certificateId: id,
          error: describeFailure(cancelErr).message,
        });
      }
    }
  }

  await phase('Notifying', 'telling the people named on the certificate');
  try {
    const sent = await notifyOps.notify({
      kind: result.status === 'renewed' ? 'renewed' : 'renewal-failed',
      eventId: `${workflowInfo().workflowId}:${result.status}`,
      outcome: result,
      certificateId: id,
      recipientTag: before?.tags.Recipient,
      current: before ? { thumbprint: before.thumbprint, notAfter: before.notAfter } : undefined,
      nextAttemptAt:
        result.status === 'failed'
          ? new Date(
              Date.parse(result.finishedAt) + retryDelayMs((input.consecutiveFailures ?? 0) + 1),
            ).toISOString()
          : null,
    });
    result.notified = sent.sent;
  } catch (err) {
    // a mail outage delays mail; it never fails the certificate's renewal
    log.warn('notification failed', { certificateId: id, error: describeFailure(err).message });
  }
  return result;
}

/** The stable error class and message of a failure (activity failures carry the ApplicationFailure as cause). */
export function describeFailure(err: unknown): { type: string; message: string } {
  let e: unknown = err;
  while (e instanceof ActivityFailure && e.cause) e = e.cause;
  if (e instanceof ApplicationFailure) return { type: e.type ?? 'ApplicationFailure', message: e.message };
  if (e instanceof Error) return { type: e.name, message: e.message };
  return { type: 'Unknown', message: String(e) };
}
