/**
 * One renewal attempt, run inline in the lifecycle (one run of the lifecycle is one cycle, so its history is the
 * attempt's history, each step with a summary):
 *   prepare (the certificate now, a key and CSR in the vault) → issue at the CA (an order placed, then driven to a
 *   certificate; a CA that answers "pending" is a durable wait, carried across continue-as-new) → verify and merge
 *   → re-bind every consumer → tell the people named on the certificate.
 * Observe mode has its own, shorter act: ask the vault to renew (askVault).
 * Only references and public material (CSR, chain, thumbprints) pass through here.
 */
import { allHandlersFinished, ApplicationFailure, condition, log, workflowInfo } from '@temporalio/workflow';
import type { BindingOutcome, CertificateState, Issued, PendingIssue } from '../../activities/types';
import type { NotifyInput } from '../../activities/notify/events';
import { describeFailure } from '../failures';
import type { RenewalOutcome } from '../messages';
import { nextAttemptAt, pollDelaySeconds, retryDelayMs } from '../policy';
import {
  cancelRenewal,
  issuerSteps,
  notify,
  renewInVault,
  syncBindings,
  vaultSteps,
  verifyAndMerge,
} from './activities';
import { priorityOf } from '../priority';
import type { Ctx } from './context';
import { gated, hold } from './rebind';
import { keepUnsent } from './mail';
import { type InFlightAttempt, knownOf, recordAttempt } from './state';
import type { Trigger } from './triggers';

/** How long to keep polling a CA that answers "pending" (approval, vetting) before giving the attempt up. */
const MAX_PENDING_MS = 14 * 86_400_000;

const NEEDS_SYNC: ReadonlyArray<BindingOutcome['status']> = ['failed', 'rolled-back'];
export const needsSync = (bs: BindingOutcome[]) => bs.some((b) => NEEDS_SYNC.includes(b.status));

/** The attempt ended (`outcome`), or it waits at the CA and the lifecycle continues as new to keep history short. */
export type AttemptResult = { outcome: RenewalOutcome } | { continueAsNew: true };

/** Runs an attempt from the start, or resumes one carried across continue-as-new (`resume`). */
export async function runAttempt(
  ctx: Ctx,
  trigger: Trigger,
  resume?: InFlightAttempt,
): Promise<AttemptResult> {
  const { s, inbox, id, input } = ctx;
  inbox.renewing = true;
  if (!resume) s.attempts += 1;
  const attempt = resume?.attempt ?? s.attempts;
  const startedAt = resume?.startedAt ?? new Date().toISOString();
  // manual and emergency attempts go ahead of routine ones on the rate-limited vault and issuer queues
  const priority = priorityOf(trigger.reason);
  const issuer = issuerSteps(input.issuerTaskQueue, input.issuerQueueWait, priority);
  let before: CertificateState | null = resume?.before ?? s.observed;
  let merged: CertificateState | null = null;
  let bindings: BindingOutcome[] = [];
  const outcome = (status: RenewalOutcome['status'], error?: RenewalOutcome['error']): RenewalOutcome => ({
    attempt,
    status,
    trigger: trigger.reason,
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
    let {
      request,
      pending: issued,
      pendingSince,
      polls,
    } = resume ?? {
      request: undefined,
      pending: undefined as Issued | PendingIssue | undefined,
      pendingSince: '',
      polls: 0,
    };
    if (!request || !issued) {
      ctx.show('Renewing', `${trigger.reason}: ${trigger.message}`);
      const prep = await vaultSteps(input.vaultTaskQueue, priority).prepareRenewal.executeWithOptions(
        { summary: `${trigger.reason}: read ${id} and make a key and CSR in its vault` },
        [{ certificateId: id, issuer: input.issuer, takeOver: input.mode === 'issue' }],
      );
      before = prep.before;
      request = {
        certificateId: id,
        issuer: input.issuer,
        csrPem: prep.csrPem,
        dnsNames: prep.dnsNames,
        requestKey: `${workflowInfo().workflowId}:c${s.cycle}:a${attempt}`,
      };
      ctx.show('Issuing', `requesting issuance from ${input.issuer}`, false);
      issued = await issuer.issue.executeWithOptions(
        { summary: `order a certificate for ${id} from ${input.issuer}` },
        [request],
      );
      pendingSince = new Date().toISOString();
    }
    while (issued.status === 'pending') {
      if (Date.now() - Date.parse(pendingSince) > MAX_PENDING_MS)
        throw ApplicationFailure.nonRetryable(
          'the CA kept the request pending for over 14 days',
          'IssuancePendingTooLong',
        );
      if (issued.retryAfterSeconds > 0) {
        if (workflowInfo().continueAsNewSuggested && allHandlersFinished()) {
          // days of polling: keep history bounded; the next run resumes at the same place in the wait
          s.inFlight = {
            attempt,
            trigger: trigger.reason,
            startedAt,
            before: before!,
            request,
            pending: issued,
            pendingSince,
            polls,
            requestIds: [],
          };
          return { continueAsNew: true };
        }
        const waitS = pollDelaySeconds(issued.retryAfterSeconds, polls);
        ctx.show('Issuing', `the CA answered pending (order ${issued.ref}); asking again in ${waitS}s`);
        if (await condition(() => inbox.retired !== null, waitS * 1000))
          throw ApplicationFailure.nonRetryable(
            'the certificate was retired while the CA kept it pending',
            'Retired',
          );
        polls += 1;
      }
      issued = await issuer.pollIssuance.executeWithOptions(
        { summary: `ask ${input.issuer} for the certificate of ${id} (order ${issued.ref})` },
        [{ ...request, ref: issued.ref }],
      );
    }

    ctx.show('Merging', 'verifying the issued chain and merging it into the vault', false);
    const { verifiedThumbprint: _v, ...state } = await verifyAndMerge.executeWithOptions(
      { summary: `verify the chain from ${input.issuer} and merge it into ${id}` },
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
    merged = state;
    s.observed = state;
    s.observedAt = new Date().toISOString();

    if (gated(ctx)) {
      // change control: the new version is merged now; its consumers are re-bound in their window, after
      // approval, stage by stage (rebind.ts)
      hold(ctx, { version: merged.version ?? '', thumbprint: merged.thumbprint ?? '' }, 'Renewal', before);
      result = outcome('renewed');
    } else {
      ctx.show('Syncing', `re-binding consumers to ${merged.thumbprint}`, false);
      bindings = await syncBindings.executeWithOptions(
        { summary: `re-bind every consumer of ${id} to ${merged.thumbprint}` },
        [
          {
            certificateId: id,
            version: merged.version ?? '',
            thumbprint: merged.thumbprint ?? '',
            previousThumbprint: before?.thumbprint ?? null,
          },
        ],
      );
      result = outcome('renewed');
    }
  } catch (err) {
    const error = describeFailure(err);
    log.warn('renewal attempt failed', { certificateId: id, attempt, errorType: error.type });
    result = outcome('failed', error);
    if (!merged && error.discardCsr) {
      // the pending CSR itself is the problem: drop it so the next attempt gets a fresh key and CSR
      await cancelRenewal.executeWithOptions({ summary: `drop the pending CSR of ${id}` }, [id]).catch((e) =>
        log.warn('could not cancel the pending CSR', {
          certificateId: id,
          error: describeFailure(e).message,
        }),
      );
    }
  }
  s.inFlight = null;
  await tellAboutAttempt(ctx, result, before);
  finishAttempt(ctx, result, before);
  return { outcome: result };
}

/** The mail about an attempt: renewed, partially synced or failed (with when the next try comes). */
async function tellAboutAttempt(
  ctx: Ctx,
  result: RenewalOutcome,
  before: CertificateState | null,
): Promise<void> {
  const { s, id } = ctx;
  ctx.show('Notifying', 'telling the people named on the certificate', false);
  const kind =
    result.status === 'failed'
      ? 'renewal-failed'
      : needsSync(result.bindings)
        ? 'partially-synced'
        : 'renewed';
  const input: NotifyInput = {
    kind,
    eventId: `${workflowInfo().workflowId}:c${s.cycle}:a${result.attempt}:${result.status}`,
    outcome: result,
    certificateId: id,
    mode: ctx.mode(),
    recipientTag: before?.tags.Recipient,
    current: before ? { thumbprint: before.thumbprint, notAfter: before.notAfter } : undefined,
    nextAttemptAt:
      result.status === 'failed'
        ? nextAttemptAt(s.consecutiveFailures + 1, result.finishedAt, before?.notAfter).toISOString()
        : null,
  };
  try {
    const sent = await notify.executeWithOptions({ summary: `email the people of ${id}: ${kind}` }, [input]);
    result.notified = sent.sent;
    result.notifyError = null;
  } catch (err) {
    // a mail outage delays mail (sent again from the outbox); it never fails the certificate's renewal
    result.notifyError = describeFailure(err);
    log.warn('notification failed', { certificateId: id, error: result.notifyError.message });
    keepUnsent(ctx, { ...input, outcome: { ...result } });
  }
}

/** The state after an attempt: counters, the bindings to retry, the guard's clock; wakes joined requests. */
function finishAttempt(ctx: Ctx, o: RenewalOutcome, before: CertificateState | null): void {
  const { s, inbox } = ctx;
  recordAttempt(s, o);
  if (o.status === 'renewed') {
    s.previousThumbprint = o.oldThumbprint;
    s.consecutiveFailures = 0;
    s.cycle += 1;
    s.lastRenewedAt = o.finishedAt;
    s.known = knownOf(s.observed);
    if (s.issueApproval) s.issueApproval = null; // approval before issuance is asked again for the next renewal
    s.pendingSync = needsSync(o.bindings)
      ? {
          version: o.newVersion ?? '',
          thumbprint: o.newThumbprint ?? '',
          failures: 1,
          nextAt: new Date(Date.now() + retryDelayMs(1)).toISOString(),
          // bindings that failed before still serve an even older certificate: keep counting to its expiry
          oldNotAfter: s.pendingSync?.oldNotAfter ?? before?.notAfter ?? null,
          escalated: s.pendingSync?.escalated ?? [],
        }
      : null;
  } else {
    s.consecutiveFailures += 1;
  }
  // what status says until the loop decides again (after it looks at the vault)
  ctx.show(
    o.status === 'renewed' ? 'Waiting' : 'Failing',
    o.status === 'renewed'
      ? `renewed to ${o.newThumbprint}`
      : `attempt #${o.attempt} failed: ${o.error?.type}: ${o.error?.message}`,
    false,
  );
  inbox.renewing = false;
  inbox.stale = true;
  inbox.finished += 1;
}

/** Observe mode: asks the vault to renew now (`certflow renew`); the new version is bound when it appears. */
export async function askVault(ctx: Ctx, trigger: Trigger): Promise<RenewalOutcome> {
  const { s, inbox, id } = ctx;
  inbox.renewing = true;
  s.attempts += 1;
  ctx.show('Renewing', `${trigger.reason}: asking the vault to renew ${id}`);
  const startedAt = new Date().toISOString();
  const base = {
    attempt: s.attempts,
    trigger: trigger.reason,
    startedAt,
    oldThumbprint: s.observed?.thumbprint ?? null,
    newThumbprint: null,
    newVersion: null,
    notAfter: null,
    bindings: [],
    notified: false,
  };
  let o: RenewalOutcome;
  try {
    const r = await renewInVault.executeWithOptions(
      { summary: `ask the vault to renew ${id} with its own policy` },
      [id],
    );
    s.vaultRenewal = { requestedAt: startedAt, status: r.status };
    o = { ...base, status: 'requested', finishedAt: new Date().toISOString() };
  } catch (err) {
    o = { ...base, status: 'failed', finishedAt: new Date().toISOString(), error: describeFailure(err) };
  }
  recordAttempt(s, o);
  inbox.renewing = false;
  inbox.stale = true;
  inbox.finished += 1;
  return o;
}
