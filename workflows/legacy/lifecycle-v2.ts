/**
 * FROZEN (release 2): the lifecycle code that v2 runs started with. `certificateLifecycle` runs it only for a
 * history that began on it (no `lifecycle-v3` patch marker), so running lifecycles replay; at its next
 * continue-as-new such a lifecycle moves to the current code (workflows/lifecycle/). Change only with patched().
 *
 * One certificate, forever: observe → decide → wait → renew (child workflow) → continue-as-new.
 * Workflow id `certificate:<vault>/<name>`. State that must survive continue-as-new travels in `carried`.
 *
 * Nothing that can fail outside the workflow ends it: an unreadable vault, a failed or terminated renewal,
 * bindings that could not be re-bound all become a `Failing` phase with backoff, shown in status and the UI.
 * While the certificate is not renewed, people are told on a ladder before expiry (14, 7, 3, 1 days, expiry).
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  executeChild,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities, NotifyInput } from '../../activities/index';
import type { BindingOutcome } from '../../activities/types';
import {
  type Phase,
  type PolicyOverride,
  type RenewalOutcome,
  historyQuery,
  pauseSignal,
  renewalProgressSignal,
  renewNowSignal,
  renewNowUpdate,
  resumeSignal,
  retireSignal,
  SA,
  setPolicyUpdate,
  statusQuery,
  syncNowSignal,
  syncNowUpdate,
  upgradeSignal,
} from '../messages';
import {
  type ObservedCertificate,
  effectivePolicy,
  mergeOverride,
  renewalTime,
  retryDelayMs,
  validatePolicyOverride,
} from '../policy';
import { dueTrigger } from './due-trigger';
import { escalationDue, nextEscalationAt, PAUSED_TOO_LONG_MS } from '../lifecycle/notices';
import type { Trigger } from '../lifecycle/triggers';
import { describeFailure } from '../failures';
import { renewalWorkflow } from './renewal-v2';
import { type Carried, detailsMarkdown, initialCarried, RECENT_MAX, statusOf } from './lifecycle-v2-view';

export interface LifecycleInput {
  certificateId: string;
  issuer: string;
  /**
   * Keep the UI's search attributes current (default true). Only servers without custom search attributes
   * (the time-skipping test server) need false.
   */
  searchAttributes?: boolean;
  /** Task queue of the issuer's rate-limited workers (issue and poll run there); default: this workflow's. */
  issuerTaskQueue?: string;
  /** Fleet-wide jitter default in minutes, when the certificate has no override. */
  jitterMinutes?: number;
  /** A Certflow-level policy to start with (from the worker's configuration); `setPolicy` changes it later. */
  policy?: PolicyOverride;
  carried?: Carried;
}

const { observe } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 5 },
});
const { syncBindings } = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 3 },
});
// short: an SMTP outage must not hold up the lifecycle; an escalation not sent is tried again at the next wake
const { notify } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumAttempts: 3 },
});

// optional and cheap: a CA without ARI (or unreachable) must never hold up the lifecycle
const { renewalWindow } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '5s', maximumAttempts: 2 },
});
const HOUR_MS = 3_600_000;

const NEEDS_SYNC: ReadonlyArray<BindingOutcome['status']> = ['failed', 'rolled-back'];
const needsSync = (bs: BindingOutcome[]) => bs.some((b) => NEEDS_SYNC.includes(b.status));

/** Runs until the certificate is retired (gone from its vault); continues as new after each cycle. */
export async function lifecycleV2(input: LifecycleInput): Promise<{ retired: string }> {
  const id = input.certificateId;
  const s = initialCarried(input.carried);
  if (!input.carried && input.policy && !validatePolicyOverride(input.policy)) s.override = input.policy;
  let phase: Phase = s.paused ? 'Paused' : 'Waiting';
  let nextAt: Date | null = null;
  let nextReason: string | null = null;
  let observeError: { type: string; message: string } | null = null;
  let observeFailures = 0;
  let renewing = false;
  /** Attempts and syncs finished in this run; update handlers wait for these to move. */
  let finished = 0;
  let syncsDone = 0;
  let syncRequested = false;
  let lastSync: BindingOutcome[] = [];
  /** Bumped by setPolicy so a waiting loop decides again. */
  let policyVersion = 0;
  let retired: string | null = null;

  const policy = () =>
    effectivePolicy(s.observed?.policy, s.override, { jitterMinutes: input.jitterMinutes });
  const status = () =>
    statusOf(id, input.issuer, s, { phase, nextAt, nextReason, observeError, policy: policy() });

  const upsert: typeof upsertSearchAttributes =
    input.searchAttributes === false ? () => {} : upsertSearchAttributes;
  const show = (p: Phase, detail: string): void => {
    phase = p;
    const st = status();
    upsert([
      { key: SA.phase, value: p },
      ...(st.thumbprint ? [{ key: SA.thumbprint, value: st.thumbprint }] : []),
      ...(st.notAfter ? [{ key: SA.expiresAt, value: new Date(st.notAfter) }] : []),
      ...(nextAt ? [{ key: SA.renewAt, value: nextAt }] : []),
    ]);
    setCurrentDetails(detailsMarkdown(st, detail, s.pendingSync));
  };
  const restingPhase = (): Phase =>
    s.paused ? 'Paused' : s.consecutiveFailures > 0 || observeError || s.pendingSync ? 'Failing' : 'Waiting';
  const manualReady = (): boolean => s.pendingManual !== null && !s.paused;
  const record = (o: RenewalOutcome): void => {
    s.lastAttempt = o;
    s.recent = [o, ...s.recent].slice(0, RECENT_MAX);
    if (o.bindings.length) s.bindings = o.bindings;
    if (o.notifyError !== undefined) s.notifyError = o.notifyError;
  };

  setHandler(statusQuery, status);
  setHandler(historyQuery, () => s.recent);
  setHandler(renewNowSignal, (req) => {
    if (s.paused) {
      log.warn('renew request ignored: the certificate is paused', {
        certificateId: id,
        reason: s.paused.reason,
      });
      return;
    }
    if (!renewing) s.pendingManual = req ?? {}; // while renewing, the request joins the running renewal
  });
  setHandler(
    renewNowUpdate,
    async (req) => {
      if (!renewing) s.pendingManual = req ?? {};
      const target = finished + 1;
      await condition(() => finished >= target);
      return s.lastAttempt as RenewalOutcome;
    },
    {
      validator: (req) => {
        if (req?.reason !== undefined && (typeof req.reason !== 'string' || req.reason.length > 500)) {
          throw new Error('reason: expected a string of at most 500 characters');
        }
        if (s.paused) throw new Error(`certificate ${id} is paused (${s.paused.reason}); resume it first`);
      },
    },
  );
  setHandler(syncNowSignal, (_req) => {
    if (!s.paused) syncRequested = true;
  });
  setHandler(
    syncNowUpdate,
    async (_req) => {
      if (renewing) {
        // the running renewal syncs every binding when it merges: answer with its outcome
        const target = finished + 1;
        await condition(() => finished >= target);
        return s.lastAttempt?.bindings ?? [];
      }
      syncRequested = true;
      const target = syncsDone + 1;
      await condition(() => syncsDone >= target);
      return lastSync;
    },
    {
      validator: (_req) => {
        if (s.paused) throw new Error(`certificate ${id} is paused (${s.paused.reason}); resume it first`);
      },
    },
  );
  setHandler(
    setPolicyUpdate,
    (o) => {
      s.override = mergeOverride(s.override, o);
      policyVersion += 1;
      plan(new Date()); // answer with the next renewal time under the new policy
      return status();
    },
    {
      validator: (o) => {
        const problem = validatePolicyOverride(o);
        if (problem) throw new Error(problem);
      },
    },
  );
  setHandler(pauseSignal, ({ reason }) => {
    s.paused = {
      reason: String(reason ?? '').slice(0, 500) || 'no reason given',
      since: new Date().toISOString(),
    };
    s.pendingManual = null;
  });
  setHandler(resumeSignal, () => {
    s.paused = null;
  });
  setHandler(retireSignal, ({ reason }) => {
    retired = String(reason ?? '').slice(0, 500) || 'retired';
  });
  // release 3: `certflow upgrade` moves a waiting v2 lifecycle onto the current code at once (continue-as-new;
  // the next run migrates the carried state). Never set in a release-2 history, so those replay unchanged.
  let upgrade = false;
  setHandler(upgradeSignal, () => {
    upgrade = true;
  });
  setHandler(renewalProgressSignal, ({ phase: p, detail }) => {
    if (renewing) show(p, detail);
  });

  upsert([
    { key: SA.id, value: id },
    { key: SA.vault, value: id.split('/')[0] ?? id },
    { key: SA.issuer, value: input.issuer },
  ]);

  /** The rule inputs of the current observation under the policy in force. */
  const rulesInput = (): ObservedCertificate => {
    const o = s.observed;
    return {
      version: o?.version ?? null,
      notBefore: o?.notBefore ?? null,
      notAfter: o?.notAfter ?? null,
      dnsNames: o?.dnsNames,
      policyDnsNames: o?.policy?.dnsNames,
      key: o?.key ?? undefined,
      policyKey: o?.policy
        ? { type: o.policy.key.keyType, size: o.policy.key.keySize, curve: o.policy.key.curve }
        : undefined,
    };
  };

  /** Policy, jitter seed and the CA's window (when it is for the current certificate). */
  const decisionContext = () => ({
    policy: policy(),
    jitterKey: id,
    window: s.ari && s.ari.thumbprint === s.observed?.thumbprint ? s.ari.window : null,
  });

  /** Decides the next renewal time and reason; returns the trigger that fires now, if any. */
  function plan(now: Date): Trigger | undefined {
    const rules = rulesInput();
    const ctx = decisionContext();
    const due = dueTrigger(rules, now, ctx);
    const msLeft = rules.notAfter ? Date.parse(rules.notAfter) - now.getTime() : undefined;
    const retryAt =
      s.consecutiveFailures > 0 && s.lastAttempt
        ? new Date(Date.parse(s.lastAttempt.finishedAt) + retryDelayMs(s.consecutiveFailures, msLeft))
        : null;
    // after a failed attempt the retry backoff decides (also for a manual renew that was not due);
    // otherwise the certificate's renewal time does
    const renewalNext = retryAt ?? renewalTime(rules, ctx);
    const syncAt = s.pendingSync ? new Date(s.pendingSync.nextAt) : null;
    nextAt = syncAt && (!renewalNext || syncAt < renewalNext) ? syncAt : renewalNext;
    nextReason =
      nextAt === syncAt && syncAt
        ? 'retry the bindings that failed'
        : retryAt
          ? `retry after failure #${s.consecutiveFailures}`
          : (due?.reason ?? 'NearingRenewal');
    if (manualReady()) {
      const t = dueTrigger(rules, now, { ...ctx, manual: s.pendingManual ?? {} });
      return t?.reason === 'Missing' || t?.reason === 'Expired'
        ? t
        : { reason: 'Manual', message: s.pendingManual?.reason || 'manual renew requested' };
    }
    if (s.paused) return undefined;
    if (retryAt) {
      return retryAt <= now
        ? {
            reason: 'Retry',
            message: `retry #${s.consecutiveFailures} of ${s.lastAttempt?.trigger} after ${s.lastAttempt?.error?.type}`,
          }
        : undefined;
    }
    return due;
  }

  /** Waits until `at` (none: until a message), or until a person renews, syncs, pauses, resumes or sets policy. */
  const waitUntil = async (at: Date | null): Promise<void> => {
    const pausedBefore = s.paused;
    const policyBefore = policyVersion;
    const wake = () =>
      manualReady() ||
      s.paused !== pausedBefore ||
      syncRequested ||
      policyVersion !== policyBefore ||
      retired !== null ||
      upgrade;
    if (!at) await condition(wake);
    // never a zero wait: a timer in the past would spin the workflow
    else await condition(wake, Math.max(1_000, at.getTime() - Date.now()));
  };

  const continueFresh = async (): Promise<never> => {
    await condition(allHandlersFinished);
    return continueAsNew<typeof lifecycleV2>({ ...input, carried: s });
  };

  for (;;) {
    if (retired) {
      show(restingPhase(), `retired: ${retired}`);
      log.info('certificate lifecycle retired', { certificateId: id, reason: retired });
      await condition(allHandlersFinished);
      return { retired };
    }
    if ((workflowInfo().continueAsNewSuggested || upgrade) && !manualReady() && !syncRequested) {
      // many wake-ups (messages, failures) without a completed cycle: keep history bounded
      await condition(() => allHandlersFinished() || manualReady() || syncRequested);
      if (!manualReady() && !syncRequested) return continueFresh();
    }

    // observe: a vault that cannot be read is a Failing phase with backoff, never the end of the lifecycle
    try {
      s.observed = await observe.executeWithOptions({ summary: `read ${id} from its vault` }, [id]);
      observeError = null;
      observeFailures = 0;
    } catch (err) {
      observeFailures += 1;
      observeError = describeFailure(err);
      nextAt = new Date(Date.now() + retryDelayMs(observeFailures));
      nextReason = `read the vault again (failure #${observeFailures})`;
      show('Failing', `cannot read the vault: ${observeError.type}: ${observeError.message}`);
      await waitUntil(nextAt);
      continue;
    }

    plan(new Date()); // status answers with the next renewal time from the first observation on
    // the CA's own renewal window (ACME ARI), asked for again after its Retry-After (12 h to 24 h)
    if (patched('ari-renewal-window')) await refreshWindow();

    // bindings left behind by the last renewal, or a person's sync request: reconcile them now
    if (syncRequested) {
      syncRequested = false;
      await reconcile('a sync was requested');
    } else if (s.pendingSync && !s.paused && Date.parse(s.pendingSync.nextAt) <= Date.now()) {
      await reconcile('re-binding consumers still on an older certificate');
    }

    const trigger = plan(new Date());
    if (!trigger) {
      await tellPeople();
      // while paused the renewal time does not wake us (it may be past): only the ladder and the pause report do
      const wakeAt = earliest(s.paused ? null : nextAt, escalationWake(), pausedReportAt(), windowCheckAt());
      show(
        restingPhase(),
        s.paused
          ? `paused: ${s.paused.reason}`
          : s.lastAttempt?.error && s.consecutiveFailures > 0
            ? `last attempt failed (${s.lastAttempt.error.type}); next try at ${nextAt?.toISOString()}`
            : 'waiting for renewal time',
      );
      await waitUntil(wakeAt);
      continue; // re-observe before deciding: the vault may have changed while we waited
    }
    if (trigger.reason === 'Manual') s.pendingManual = null;
    const outcome = await renew(trigger);
    if (outcome.status === 'renewed') {
      log.info('certificate renewed', { certificateId: id, thumbprint: outcome.newThumbprint });
      try {
        s.observed = await observe.executeWithOptions({ summary: `read ${id} from its vault` }, [id]);
      } catch {
        // the next run observes again
      }
      plan(new Date());
      show(restingPhase(), `renewed to ${outcome.newThumbprint}`);
      // a manual request that came in meanwhile is served in this run; otherwise start a fresh history
      await condition(() => allHandlersFinished() || manualReady() || syncRequested);
      if (manualReady() || syncRequested) continue;
      return continueFresh();
    }
    show('Failing', `attempt #${outcome.attempt} failed: ${outcome.error?.type}: ${outcome.error?.message}`);
  }

  /** One attempt, as a child workflow with a stable id per cycle and attempt. */
  async function renew(trigger: Trigger): Promise<RenewalOutcome> {
    renewing = true;
    s.attempts += 1;
    show('Renewing', `${trigger.reason}: ${trigger.message}`);
    const startedAt = new Date().toISOString();
    const observed = s.observed;
    let outcome: RenewalOutcome;
    try {
      outcome = await executeChild(renewalWorkflow, {
        workflowId: `renewal:${id}:c${s.cycle}:a${s.attempts}`,
        staticSummary: `Renew ${id} (attempt ${s.attempts}, ${trigger.reason})`,
        args: [
          {
            certificateId: id,
            issuer: input.issuer,
            attempt: s.attempts,
            trigger: trigger.reason,
            parentWorkflowId: workflowInfo().workflowId,
            consecutiveFailures: s.consecutiveFailures,
            ...(input.issuerTaskQueue ? { issuerTaskQueue: input.issuerTaskQueue } : {}),
          },
        ],
      });
    } catch (err) {
      // the child itself failed (terminated, timed out): an attempt that failed, not the end of the lifecycle
      outcome = {
        attempt: s.attempts,
        status: 'failed',
        trigger: trigger.reason,
        startedAt,
        finishedAt: new Date().toISOString(),
        oldThumbprint: observed?.thumbprint ?? null,
        newThumbprint: null,
        newVersion: null,
        notAfter: null,
        bindings: [],
        error: describeFailure(err),
        notified: false,
      };
    }
    renewing = false;
    record(outcome);
    if (outcome.status === 'renewed') {
      s.previousThumbprint = outcome.oldThumbprint;
      s.consecutiveFailures = 0;
      s.cycle += 1;
      s.pendingSync = needsSync(outcome.bindings)
        ? {
            version: outcome.newVersion ?? '',
            thumbprint: outcome.newThumbprint ?? '',
            failures: 1,
            nextAt: new Date(Date.now() + retryDelayMs(1)).toISOString(),
            // bindings that failed before still serve an even older certificate: keep counting to its expiry
            oldNotAfter: s.pendingSync?.oldNotAfter ?? observed?.notAfter ?? null,
            escalated: s.pendingSync?.escalated ?? [],
          }
        : null;
    } else {
      s.consecutiveFailures += 1;
    }
    plan(new Date()); // status answers with the next step as soon as the attempt's answer goes out
    finished += 1;
    return outcome;
  }

  /** Brings every binding to the current version (drift fixed, bindings already on it left alone). */
  async function reconcile(why: string): Promise<void> {
    const o = s.observed;
    const target =
      s.pendingSync ??
      (o?.version && o.thumbprint
        ? { version: o.version, thumbprint: o.thumbprint, failures: 0, nextAt: '' }
        : null);
    let outcomes: BindingOutcome[] = [];
    if (target) {
      show('Syncing', `${why}: binding consumers to ${target.thumbprint}`);
      try {
        outcomes = await syncBindings.executeWithOptions(
          { summary: `re-bind every consumer of ${id} to ${target.thumbprint} (${why})` },
          [
            {
              certificateId: id,
              version: target.version,
              thumbprint: target.thumbprint,
              previousThumbprint: s.previousThumbprint,
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
      s.pendingSync = needsSync(outcomes)
        ? {
            ...target,
            failures: target.failures + 1,
            nextAt: new Date(Date.now() + retryDelayMs(target.failures + 1)).toISOString(),
          }
        : null;
    }
    lastSync = outcomes;
    syncsDone += 1;
  }

  /** Escalation ladder and long pauses: each message once, never blocking the lifecycle. */
  async function tellPeople(): Promise<void> {
    const o = s.observed;
    if (!o?.notAfter) return;
    if (s.escalation.thumbprint !== o.thumbprint) s.escalation = { thumbprint: o.thumbprint, sent: [] };
    const now = new Date();
    const at = renewalTime(rulesInput(), decisionContext());
    if (at && at <= now) {
      const due = escalationDue(o.notAfter, now, s.escalation.sent);
      if (due) {
        const sent = await send({
          kind: 'escalation',
          eventId: `${workflowInfo().workflowId}:${o.thumbprint}:escalation:${due.step}`,
          daysLeft: due.step,
        });
        if (sent) s.escalation = { ...s.escalation, sent: [...s.escalation.sent, ...due.fold] };
      }
    }
    // bindings left on the old certificate escalate on the same ladder, counted to the old certificate's expiry
    const ps = s.pendingSync;
    const stuck = ps?.oldNotAfter ? escalationDue(ps.oldNotAfter, now, ps.escalated ?? []) : undefined;
    if (ps && stuck) {
      const sent = await send({
        kind: 'partially-synced',
        eventId: `${workflowInfo().workflowId}:bindings:${ps.oldNotAfter}:${stuck.step}`,
        daysLeft: stuck.step,
        syncTrigger: `Escalation: bindings still serve the old certificate, which expires in ${stuck.step} days or less`,
        bindings: s.bindings,
      });
      if (sent && s.pendingSync === ps)
        s.pendingSync = { ...ps, escalated: [...(ps.escalated ?? []), ...stuck.fold] };
    }
    const reportAt = pausedReportAt();
    if (s.paused && reportAt && reportAt <= now) {
      const sent = await send({
        kind: 'paused-too-long',
        eventId: `${workflowInfo().workflowId}:paused:${s.paused.since}`,
      });
      if (sent && s.paused) s.paused = { ...s.paused, reported: true };
    }
  }

  async function send(
    ev: Pick<NotifyInput, 'kind' | 'eventId' | 'daysLeft' | 'syncTrigger' | 'bindings'>,
  ): Promise<boolean> {
    const o = s.observed;
    const failures = s.recent.slice(0, s.consecutiveFailures);
    try {
      await notify.executeWithOptions({ summary: `tell the people of ${id}: ${ev.kind}` }, [
        {
          ...ev,
          failingSince: failures.at(-1)?.startedAt ?? null,
          attempts: s.consecutiveFailures,
          renewalDueAt: renewalTime(rulesInput(), decisionContext())?.toISOString() ?? null,
          certificateId: id,
          outcome: s.lastAttempt ?? undefined,
          recipientTag: o?.tags.Recipient,
          current: { thumbprint: o?.thumbprint ?? null, notAfter: o?.notAfter ?? null },
          nextAttemptAt: nextAt?.toISOString() ?? null,
          paused: s.paused ? { reason: s.paused.reason, since: s.paused.since } : undefined,
        },
      ]);
      s.notifyError = null;
      return true;
    } catch (err) {
      s.notifyError = describeFailure(err);
      log.warn('notification not sent', { certificateId: id, kind: ev.kind, error: s.notifyError.message });
      return false;
    }
  }

  async function refreshWindow(): Promise<void> {
    const thumbprint = s.observed?.thumbprint;
    if (!thumbprint) return;
    const known = s.ari?.thumbprint === thumbprint ? s.ari : null;
    if (known && (!known.offered || Date.parse(known.checkAt) > Date.now())) return;
    try {
      const w = await renewalWindow.executeWithOptions(
        { summary: `ask ${input.issuer} for its renewal window for ${id} (ARI)` },
        [{ certificateId: id, issuer: input.issuer }],
      );
      const waitMs = Math.min(Math.max((w?.retryAfterSeconds ?? 0) * 1000, 12 * HOUR_MS), 24 * HOUR_MS);
      s.ari = {
        thumbprint,
        offered: w !== null,
        window: w ? { start: w.start, end: w.end } : null,
        checkAt: new Date(Date.now() + waitMs).toISOString(),
      };
    } catch (err) {
      log.warn('renewal window (ARI) not read', { certificateId: id, error: describeFailure(err).message });
      s.ari = {
        thumbprint,
        offered: true,
        window: known?.window ?? null,
        checkAt: new Date(Date.now() + HOUR_MS).toISOString(),
      };
    }
  }

  function windowCheckAt(): Date | null {
    return s.ari?.offered && s.ari.thumbprint === s.observed?.thumbprint ? new Date(s.ari.checkAt) : null;
  }

  function escalationWake(): Date | null {
    const o = s.observed;
    const ps = s.pendingSync;
    const sent = s.escalation.thumbprint === o?.thumbprint ? s.escalation.sent : [];
    return earliest(
      o?.notAfter ? nextEscalationAt(o.notAfter, new Date(), sent) : null,
      ps?.oldNotAfter ? nextEscalationAt(ps.oldNotAfter, new Date(), ps.escalated ?? []) : null,
    );
  }

  function pausedReportAt(): Date | null {
    return s.paused && !s.paused.reported ? new Date(Date.parse(s.paused.since) + PAUSED_TOO_LONG_MS) : null;
  }
}

function earliest(...ds: Array<Date | null>): Date | null {
  const xs = ds.filter((d): d is Date => d !== null);
  return xs.length ? new Date(Math.min(...xs.map((d) => d.getTime()))) : null;
}
