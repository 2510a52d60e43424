/**
 * Re-binding outside an attempt: a person's sync, bindings that failed before (retried with backoff), and a new
 * version Certflow did not make (the vault renewed it itself in observe mode, or someone renewed it by hand): then
 * every consumer is brought to it, verified live, and the people are told, exactly as after Certflow's own renewal.
 */
import { log, workflowInfo } from '@temporalio/workflow';
import type { BindingOutcome } from '../../activities/types';
import type { NotifyInput } from '../../activities/notify/events';
import { describeFailure } from '../failures';
import type { RenewalOutcome } from '../messages';
import { retryDelayMs } from '../policy';
import { notify, syncBindings } from './activities';
import { needsSync } from './attempt';
import type { Ctx } from './context';
import type { SyncWhy } from './decide';
import { keepUnsent } from './mail';
import { knownOf, recordAttempt } from './state';

const WHY: Record<SyncWhy, string> = {
  SyncNow: 'a sync was requested',
  NewVersion: 'a new version appeared in the vault',
  PendingSync: 're-binding consumers still on an older certificate',
  BindingDrift: 'the drift watch found a binding serving another certificate (BindingDrift)',
};

/** Brings every consumer to `target` (drift fixed, bindings already on it left alone). True: a cycle completed. */
export async function reconcile(
  ctx: Ctx,
  why: SyncWhy,
  target: { version: string; thumbprint: string },
): Promise<boolean> {
  const { s, inbox, id } = ctx;
  if (why === 'SyncNow') inbox.syncRequested = false;
  // a person's sync binds every consumer now: a re-binding held by change control (window, approval, a stopped
  // rollout) is done with it
  const held = why === 'SyncNow' && s.rebind ? s.rebind : null;
  if (held) s.rebind = null;
  const old = s.known;
  const fresh = why === 'NewVersion';
  ctx.show('Syncing', `${WHY[why]}: binding consumers to ${target.thumbprint}`, fresh);
  let outcomes: BindingOutcome[];
  try {
    outcomes = await syncBindings.executeWithOptions(
      { summary: `re-bind every consumer of ${id} to ${target.thumbprint} (${WHY[why]})` },
      [
        {
          certificateId: id,
          version: target.version,
          thumbprint: target.thumbprint,
          previousThumbprint: fresh ? (old?.thumbprint ?? null) : s.previousThumbprint,
        },
      ],
    );
  } catch (err) {
    const e = describeFailure(err);
    log.warn('binding sync failed', { certificateId: id, error: e.message });
    outcomes = [
      {
        target: 'all',
        binding: 'all',
        before: null,
        after: null,
        status: 'failed',
        detail: `${e.type}: ${e.message}`,
      },
    ];
  }
  if (outcomes.length) s.bindings = outcomes;
  const failures = (why === 'PendingSync' ? (s.pendingSync?.failures ?? 0) : 0) + 1;
  s.pendingSync = needsSync(outcomes)
    ? {
        version: target.version,
        thumbprint: target.thumbprint,
        failures,
        nextAt: new Date(Date.now() + retryDelayMs(failures)).toISOString(),
        oldNotAfter: s.pendingSync?.oldNotAfter ?? (fresh ? (old?.notAfter ?? null) : null),
        escalated: s.pendingSync?.escalated ?? [],
      }
    : null;
  inbox.lastSync = outcomes;
  inbox.syncsDone += 1;
  if (held?.why === 'NewVersion') {
    await announceNewVersion(ctx, outcomes, held.previousThumbprint);
    return true;
  }
  if (!fresh) return false;
  await announceNewVersion(ctx, outcomes, old?.thumbprint ?? null);
  return true;
}

/** A version the vault made (or someone made by hand), now bound: recorded as a renewal and announced. */
export async function announceNewVersion(
  ctx: Ctx,
  bindings: BindingOutcome[],
  oldThumbprint: string | null,
): Promise<void> {
  const { s, id } = ctx;
  const o = s.observed;
  const now = new Date().toISOString();
  const outcome: RenewalOutcome = {
    attempt: s.attempts,
    status: 'renewed',
    trigger: ctx.mode() === 'observe' ? 'VaultRenewed' : 'NewVersion',
    startedAt: now,
    finishedAt: now,
    oldThumbprint,
    newThumbprint: o?.thumbprint ?? null,
    newVersion: o?.version ?? null,
    notAfter: o?.notAfter ?? null,
    bindings,
    notified: false,
  };
  const kind = needsSync(bindings) ? 'partially-synced' : 'renewed';
  const input: NotifyInput = {
    kind,
    eventId: `${workflowInfo().workflowId}:version:${o?.version}:${kind}`,
    outcome,
    certificateId: id,
    mode: ctx.mode(),
    recipientTag: o?.tags.Recipient,
    current: { thumbprint: oldThumbprint, notAfter: null },
    ...(kind === 'partially-synced' ? { syncTrigger: outcome.trigger, bindings } : {}),
  };
  try {
    const sent = await notify.executeWithOptions(
      { summary: `email the people of ${id}: ${kind} (new version)` },
      [input],
    );
    outcome.notified = sent.sent;
    outcome.notifyError = null;
  } catch (err) {
    outcome.notifyError = describeFailure(err);
    keepUnsent(ctx, { ...input, outcome: { ...outcome } });
  }
  recordAttempt(s, outcome);
  s.previousThumbprint = oldThumbprint;
  s.consecutiveFailures = 0;
  s.cycle += 1;
  s.lastRenewedAt = now;
  s.known = knownOf(o);
  s.vaultRenewal = null;
}
