/**
 * FROZEN (release 2): kept so running v2 lifecycles and their children replay; new lifecycles renew inline
 * (workflows/lifecycle/attempt.ts). Change only with patched().
 *
 * One renewal attempt, as a child workflow of the certificate's lifecycle:
 * CSR in the vault → issue at the CA (durable wait while pending) → verify → merge → sync bindings → notify.
 * Only references and public material (CSR, certificate chain, thumbprints) pass through here.
 */
import {
  ApplicationFailure,
  continueAsNew,
  getExternalWorkflowHandle,
  log,
  proxyActivities,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../../activities/index';
import type { BindingOutcome, CertificateState, IssueRequest, PendingIssue } from '../../activities/types';
import { type Phase, type RenewalOutcome, renewalProgressSignal } from '../messages';
import { pollDelaySeconds, retryDelayMs } from '../policy';
import { describeFailure } from '../failures';

export interface RenewalInput {
  certificateId: string;
  issuer: string;
  attempt: number;
  trigger: string;
  /** The lifecycle's workflow id, told of each phase change. */
  parentWorkflowId?: string;
  /** Failed attempts before this one, to tell people when the next try comes if this one fails. */
  consecutiveFailures?: number;
  /** The issuer's rate-limited task queue (issue and poll run there); default: this workflow's. */
  issuerTaskQueue?: string;
  /** Set when a long pending wait continued as new: where the attempt stands. */
  resume?: PendingState;
}

/** An issuance the CA answered "pending", carried across continue-as-new of a long wait. */
interface PendingState {
  startedAt: string;
  before: CertificateState;
  request: IssueRequest & { issuer: string };
  pending: PendingIssue;
  pendingSince: string;
  polls: number;
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
  const startedAt = input.resume?.startedAt ?? new Date().toISOString();
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
  const issuerQueue = input.issuerTaskQueue ? { taskQueue: input.issuerTaskQueue } : {};
  let before: CertificateState | null = input.resume?.before ?? null;
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
    let request: IssueRequest & { issuer: string };
    let issued: Awaited<ReturnType<Activities['issue']>>;
    let pendingSince: number;
    let polls = 0;
    if (input.resume) {
      ({ request } = input.resume);
      issued = input.resume.pending;
      pendingSince = Date.parse(input.resume.pendingSince);
      polls = input.resume.polls;
    } else {
      before = await vaultOps.observe.executeWithOptions({ summary: `read ${id} from its vault` }, [id]);
      await phase('Renewing', 'creating a CSR in the vault');
      const csr = await vaultOps.beginRenewal.executeWithOptions(
        { summary: `create (or reuse) a key and CSR for ${id} in the vault` },
        [id],
      );
      // the names the policy asks for; a subject-only policy means the names of the current certificate
      const dnsNames = before.policy?.dnsNames?.length ? before.policy.dnsNames : before.dnsNames;
      request = { certificateId: id, issuer: input.issuer, csrPem: csr.csrPem, dnsNames };
      await phase('Issuing', `requesting issuance from ${input.issuer}`);
      issued = await issuerOps.issue.executeWithOptions(
        { ...issuerQueue, summary: `submit the CSR of ${id} to ${input.issuer}` },
        [request],
      );
      pendingSince = Date.now();
    }
    while (issued.status === 'pending') {
      if (Date.now() - pendingSince > MAX_PENDING_MS) {
        throw ApplicationFailure.nonRetryable(
          `the CA kept the request pending for over 14 days`,
          'IssuancePendingTooLong',
        );
      }
      if (workflowInfo().continueAsNewSuggested) {
        // days of polling: keep this attempt's history bounded, same workflow id, same place in the wait
        const resume: PendingState = {
          startedAt,
          before: before as CertificateState,
          request,
          pending: issued,
          pendingSince: new Date(pendingSince).toISOString(),
          polls,
        };
        return continueAsNew<typeof renewalWorkflow>({ ...input, resume });
      }
      const waitS = pollDelaySeconds(issued.retryAfterSeconds, polls);
      await phase('Issuing', `the CA answered pending; polling again in ${waitS}s`);
      await sleep(waitS * 1000);
      polls += 1;
      issued = await issuerOps.pollIssuance.executeWithOptions(
        {
          ...issuerQueue,
          summary: `ask ${input.issuer} whether the certificate of ${id} is issued (poll ${polls})`,
        },
        [{ ...request, ref: issued.ref }],
      );
    }

    await phase('Merging', 'verifying the issued chain');
    const verified = await pureOps.verify.executeWithOptions(
      { summary: `verify the chain from ${input.issuer} against the CSR and policy of ${id}` },
      [
        {
          certificateId: id,
          issuer: input.issuer,
          csrPem: request.csrPem,
          chainPem: issued.chainPem,
          dnsNames: request.dnsNames,
        },
      ],
    );
    merged = await vaultOps.merge.executeWithOptions({ summary: `merge ${verified.thumbprint} into ${id}` }, [
      { certificateId: id, chainPem: issued.chainPem, expectedThumbprint: verified.thumbprint },
    ]);

    await phase('Syncing', `re-binding consumers to ${merged.thumbprint}`);
    bindings = await bindingOps.syncBindings.executeWithOptions(
      { summary: `re-bind every consumer of ${id} to ${merged.thumbprint}` },
      [
        {
          certificateId: id,
          version: merged.version ?? '',
          thumbprint: merged.thumbprint ?? verified.thumbprint,
          previousThumbprint: before?.thumbprint ?? null,
        },
      ],
    );
    result = outcome('renewed');
  } catch (err) {
    const error = describeFailure(err);
    log.warn('renewal attempt failed', { certificateId: id, attempt: input.attempt, errorType: error.type });
    result = outcome('failed', error);
    if (!merged && STALE_CSR_FAILURES.has(error.type)) {
      // the pending CSR itself is the problem: drop it so the next attempt gets a fresh key and CSR
      try {
        await vaultOps.cancelRenewal.executeWithOptions({ summary: `drop the pending CSR of ${id}` }, [id]);
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
    const partial = bindings.some((b) => b.status === 'failed' || b.status === 'rolled-back');
    const kind = result.status === 'failed' ? 'renewal-failed' : partial ? 'partially-synced' : 'renewed';
    const sent = await notifyOps.notify.executeWithOptions(
      { summary: `email the people of ${id}: ${kind}` },
      [
        {
          kind,
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
        },
      ],
    );
    result.notified = sent.sent;
    result.notifyError = null;
  } catch (err) {
    // a mail outage delays mail; it never fails the certificate's renewal, and shows in status
    result.notifyError = describeFailure(err);
    log.warn('notification failed', { certificateId: id, error: result.notifyError.message });
  }
  return result;
}
