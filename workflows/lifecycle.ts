/**
 * One certificate, forever: observe → decide → wait → renew (child workflow) → continue-as-new.
 * Workflow id `certificate:<vault>/<name>`. State that must survive continue-as-new travels in `carried`.
 *
 * Nothing that can fail outside the workflow ends it: an unreadable vault, a failed or terminated renewal,
 * bindings that could not be re-bound all become a `Failing` phase with backoff, shown in status and the UI.
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  executeChild,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index';
import type { BindingOutcome, CertificateState } from '../activities/types';
import {
  type CertificateStatus,
  type Phase,
  type RenewalOutcome,
  type RenewRequest,
  pauseSignal,
  renewalProgressSignal,
  renewNowSignal,
  renewNowUpdate,
  resumeSignal,
  SA,
  statusQuery,
} from './messages';
import { dueTrigger, renewalTime, retryDelayMs, type Trigger } from './policy';
import { describeFailure, renewalWorkflow } from './renewal';

export interface LifecycleInput {
  certificateId: string;
  issuer: string;
  /**
   * Keep the UI's search attributes current (default true). Only servers without custom search attributes
   * (the time-skipping test server) need false.
   */
  searchAttributes?: boolean;
  carried?: Carried;
}

interface Carried {
  cycle: number;
  attempts: number;
  consecutiveFailures: number;
  previousThumbprint: string | null;
  lastAttempt: RenewalOutcome | null;
  paused: { reason: string; since: string } | null;
  pendingManual: RenewRequest | null;
  /** The last observation, so status answers at once after continue-as-new. */
  observed: CertificateState | null;
  /** Bindings left on an old certificate after a renewal: re-synced with backoff until all are bound. */
  pendingSync: { version: string; thumbprint: string; failures: number; nextAt: string } | null;
}

const { observe } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 5 },
});
const { syncBindings } = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 3 },
});

const NEEDS_SYNC: ReadonlyArray<BindingOutcome['status']> = ['failed', 'rolled-back'];

export async function certificateLifecycle(input: LifecycleInput): Promise<never> {
  const id = input.certificateId;
  const s: Carried = {
    cycle: 0,
    attempts: 0,
    consecutiveFailures: 0,
    previousThumbprint: null,
    lastAttempt: null,
    paused: null,
    pendingManual: null,
    observed: null,
    pendingSync: null,
    ...input.carried,
  };
  let phase: Phase = s.paused ? 'Paused' : 'Waiting';
  let nextAt: Date | null = null;
  let nextReason: string | null = null;
  let observeError: { type: string; message: string } | null = null;
  let observeFailures = 0;
  let renewing = false;
  /** Count of attempts finished in this run; update handlers wait for it to move. */
  let finished = 0;

  const status = (): CertificateStatus => ({
    certificateId: id,
    phase,
    paused: s.paused,
    thumbprint: s.observed?.thumbprint ?? null,
    previousThumbprint: s.previousThumbprint,
    version: s.observed?.version ?? null,
    notBefore: s.observed?.notBefore ?? null,
    notAfter: s.observed?.notAfter ?? null,
    nextRenewalAt: nextAt?.toISOString() ?? null,
    nextRenewalReason: nextReason,
    attempts: s.attempts,
    lastAttempt: s.lastAttempt,
    lastError: observeError ?? s.lastAttempt?.error ?? null,
    cycle: s.cycle,
  });

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
    const last = s.lastAttempt;
    setCurrentDetails(
      [
        `**${id}** — ${p}: ${detail}`,
        `- thumbprint: \`${st.thumbprint ?? 'none'}\``,
        `- expires: ${st.notAfter ?? 'n/a'}`,
        `- next: ${st.nextRenewalAt ?? 'n/a'} (${st.nextRenewalReason ?? 'n/a'})`,
        last
          ? `- last attempt #${last.attempt}: ${last.status}${last.error ? ` (${last.error.type}: ${last.error.message})` : ''}`
          : '- last attempt: none',
        s.pendingSync
          ? `- bindings to re-sync to \`${s.pendingSync.thumbprint}\` (${s.pendingSync.failures} failed tries)`
          : '',
        s.paused ? `- paused since ${s.paused.since}: ${s.paused.reason}` : '',
      ]
        .filter(Boolean)
        .join('\n'),
    );
  };
  const restingPhase = (): Phase =>
    s.paused ? 'Paused' : s.consecutiveFailures > 0 || observeError || s.pendingSync ? 'Failing' : 'Waiting';
  const manualReady = (): boolean => s.pendingManual !== null && !s.paused;

  setHandler(statusQuery, status);
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
  setHandler(renewalProgressSignal, ({ phase: p, detail }) => {
    if (renewing) show(p, detail);
  });

  upsert([
    { key: SA.id, value: id },
    { key: SA.vault, value: id.split('/')[0] ?? id },
    { key: SA.issuer, value: input.issuer },
  ]);

  /** Waits until `at` (none: until a message), or until a person renews, pauses or resumes. */
  const waitUntil = async (at: Date | null): Promise<void> => {
    const pausedBefore = s.paused;
    const wake = () => manualReady() || s.paused !== pausedBefore;
    if (s.paused || !at) {
      await condition(wake);
    } else {
      // never a zero wait: a timer in the past would spin the workflow
      await condition(wake, Math.max(1_000, at.getTime() - Date.now()));
    }
  };

  const continueFresh = async (): Promise<never> => {
    await condition(allHandlersFinished);
    return continueAsNew<typeof certificateLifecycle>({ ...input, carried: s });
  };

  for (;;) {
    if (workflowInfo().continueAsNewSuggested && !manualReady()) {
      // many wake-ups (messages, failures) without a completed cycle: keep history bounded
      await condition(() => allHandlersFinished() || manualReady());
      if (!manualReady()) return continueFresh();
    }

    // observe: a vault that cannot be read is a Failing phase with backoff, never the end of the lifecycle
    try {
      s.observed = await observe(id);
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
    const observed = s.observed;

    // bindings left behind by the last renewal: try them again when their time comes
    if (s.pendingSync && !s.paused && Date.parse(s.pendingSync.nextAt) <= Date.now()) {
      await resync(s.pendingSync);
    }

    // decide: the first trigger that fires, or wait for renewal time / a person
    const now = new Date();
    const rules = {
      version: observed.version,
      notBefore: observed.notBefore,
      notAfter: observed.notAfter,
      lifetimePercentage: observed.policy?.lifetimePercentage,
      daysBeforeExpiry: observed.policy?.daysBeforeExpiry,
    };
    const due = dueTrigger(rules, now);
    const retryAt =
      s.consecutiveFailures > 0 && s.lastAttempt
        ? new Date(Date.parse(s.lastAttempt.finishedAt) + retryDelayMs(s.consecutiveFailures))
        : null;
    const renewAt = renewalTime(rules);
    // after a failed attempt the retry backoff decides (also for a manual renew that was not due);
    // otherwise the certificate's renewal time does
    const renewalNext = retryAt ?? renewAt;
    const syncAt = s.pendingSync ? new Date(s.pendingSync.nextAt) : null;
    nextAt = syncAt && (!renewalNext || syncAt < renewalNext) ? syncAt : renewalNext;
    nextReason =
      nextAt === syncAt && syncAt
        ? 'retry the bindings that failed'
        : retryAt
          ? `retry after failure #${s.consecutiveFailures}`
          : (due?.reason ?? 'NearingRenewal');

    let trigger: Trigger | undefined;
    if (manualReady()) {
      trigger = { reason: 'Manual', message: s.pendingManual?.reason ?? 'manual renew requested' };
      s.pendingManual = null;
    } else if (!s.paused && retryAt && retryAt <= now) {
      trigger = {
        reason: 'Retry',
        message: `retry #${s.consecutiveFailures} of ${s.lastAttempt?.trigger} after ${s.lastAttempt?.error?.type}`,
      };
    } else if (!s.paused && !retryAt && due) {
      trigger = due;
    }
    if (!trigger) {
      show(
        restingPhase(),
        s.paused
          ? `paused: ${s.paused.reason}`
          : s.lastAttempt?.error && s.consecutiveFailures > 0
            ? `last attempt failed (${s.lastAttempt.error.type}); next try at ${nextAt?.toISOString()}`
            : 'waiting for renewal time',
      );
      await waitUntil(nextAt);
      continue; // re-observe before deciding: the vault may have changed while we waited
    }

    // renew: one attempt, as a child workflow with a stable id per cycle and attempt
    renewing = true;
    s.attempts += 1;
    show('Renewing', `${trigger.reason}: ${trigger.message}`);
    const startedAt = new Date().toISOString();
    let outcome: RenewalOutcome;
    try {
      outcome = await executeChild(renewalWorkflow, {
        workflowId: `renewal:${id}:c${s.cycle}:a${s.attempts}`,
        args: [
          {
            certificateId: id,
            issuer: input.issuer,
            attempt: s.attempts,
            trigger: trigger.reason,
            parentWorkflowId: workflowInfo().workflowId,
            consecutiveFailures: s.consecutiveFailures,
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
        oldThumbprint: observed.thumbprint,
        newThumbprint: null,
        newVersion: null,
        notAfter: null,
        bindings: [],
        error: describeFailure(err),
        notified: false,
      };
    }
    renewing = false;
    s.lastAttempt = outcome;
    finished += 1;

    if (outcome.status === 'renewed') {
      s.previousThumbprint = outcome.oldThumbprint;
      s.consecutiveFailures = 0;
      s.cycle += 1;
      s.pendingSync = outcome.bindings.some((b) => NEEDS_SYNC.includes(b.status))
        ? {
            version: outcome.newVersion ?? '',
            thumbprint: outcome.newThumbprint ?? '',
            failures: 1,
            nextAt: new Date(Date.now() + retryDelayMs(1)).toISOString(),
          }
        : null;
      log.info('certificate renewed', { certificateId: id, thumbprint: outcome.newThumbprint });
      try {
        s.observed = await observe(id);
      } catch {
        // the next run observes again
      }
      show(restingPhase(), `renewed to ${outcome.newThumbprint}`);
      // a manual request that came in meanwhile is served in this run; otherwise start a fresh history
      await condition(() => allHandlersFinished() || manualReady());
      if (manualReady()) continue;
      return continueFresh();
    }
    s.consecutiveFailures += 1;
    show('Failing', `attempt #${outcome.attempt} failed: ${outcome.error?.type}: ${outcome.error?.message}`);
  }

  async function resync(p: NonNullable<Carried['pendingSync']>): Promise<void> {
    show('Syncing', `re-binding consumers still on an older certificate to ${p.thumbprint}`);
    let outcomes: BindingOutcome[] = [];
    let ok = false;
    try {
      outcomes = await syncBindings({ certificateId: id, version: p.version, thumbprint: p.thumbprint });
      ok = !outcomes.some((b) => NEEDS_SYNC.includes(b.status));
    } catch (err) {
      log.warn('binding re-sync failed', { certificateId: id, error: describeFailure(err).message });
    }
    if (s.lastAttempt)
      s.lastAttempt = { ...s.lastAttempt, bindings: outcomes.length ? outcomes : s.lastAttempt.bindings };
    s.pendingSync = ok
      ? null
      : {
          ...p,
          failures: p.failures + 1,
          nextAt: new Date(Date.now() + retryDelayMs(p.failures + 1)).toISOString(),
        };
  }
}
