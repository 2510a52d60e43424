/**
 * One certificate, forever: observe → decide → wait → renew (child workflow) → continue-as-new.
 * Workflow id `certificate:<vault>/<name>`. State that must survive continue-as-new travels in `carried`.
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  executeChild,
  log,
  proxyActivities,
  setHandler,
  setCurrentDetails,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index';
import type { CertificateState } from '../activities/types';
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
import { renewalWorkflow } from './renewal';

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
}

const { observe } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '5 minutes' },
});

export async function certificateLifecycle(input: LifecycleInput): Promise<never> {
  const id = input.certificateId;
  const s: Carried = input.carried ?? {
    cycle: 0,
    attempts: 0,
    consecutiveFailures: 0,
    previousThumbprint: null,
    lastAttempt: null,
    paused: null,
    pendingManual: null,
    observed: null,
  };
  let phase: Phase = s.paused ? 'Paused' : 'Waiting';
  let observed: CertificateState | null = s.observed;
  let nextAt: Date | null = null;
  let nextReason: string | null = null;
  let renewing = false;
  /** Count of attempts finished in this run; update handlers wait for it to move. */
  let finished = 0;

  const status = (): CertificateStatus => ({
    certificateId: id,
    phase,
    paused: s.paused,
    thumbprint: observed?.thumbprint ?? null,
    previousThumbprint: s.previousThumbprint,
    version: observed?.version ?? null,
    notBefore: observed?.notBefore ?? null,
    notAfter: observed?.notAfter ?? null,
    nextRenewalAt: nextAt?.toISOString() ?? null,
    nextRenewalReason: nextReason,
    attempts: s.attempts,
    lastAttempt: s.lastAttempt,
    lastError: s.lastAttempt?.error ?? null,
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
    setCurrentDetails(
      [
        `**${id}** — ${p}: ${detail}`,
        `- thumbprint: \`${st.thumbprint ?? 'none'}\``,
        `- expires: ${st.notAfter ?? 'n/a'}`,
        `- next renewal: ${st.nextRenewalAt ?? 'n/a'} (${st.nextRenewalReason ?? 'n/a'})`,
        s.lastAttempt
          ? `- last attempt #${s.lastAttempt.attempt}: ${s.lastAttempt.status}${s.lastAttempt.error ? ` (${s.lastAttempt.error.type}: ${s.lastAttempt.error.message})` : ''}`
          : '- last attempt: none',
        s.paused ? `- paused since ${s.paused.since}: ${s.paused.reason}` : '',
      ]
        .filter(Boolean)
        .join('\n'),
    );
  };

  setHandler(statusQuery, status);
  setHandler(renewNowSignal, (req) => {
    if (!renewing) s.pendingManual = req ?? {}; // joins a running renewal
  });
  setHandler(
    renewNowUpdate,
    async (req) => {
      // join a running renewal instead of starting a second one
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

  const restingPhase = (): Phase => (s.paused ? 'Paused' : s.consecutiveFailures > 0 ? 'Failing' : 'Waiting');

  for (;;) {
    show(restingPhase(), 'observing the vault');
    observed = await observe(id);

    // decide: the first trigger that fires, or wait for renewal time / a person
    let trigger: Trigger | undefined;
    for (;;) {
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
      nextAt = retryAt && (!renewAt || retryAt > renewAt) ? retryAt : renewAt;
      nextReason = retryAt
        ? `retry after failure #${s.consecutiveFailures}`
        : due
          ? due.reason
          : 'NearingRenewal';
      if (s.pendingManual && !s.paused) {
        trigger = { reason: 'Manual', message: s.pendingManual.reason ?? 'manual renew requested' };
        s.pendingManual = null;
        break;
      }
      if (!s.paused && due && (!retryAt || retryAt <= now)) {
        trigger = due;
        break;
      }
      show(
        restingPhase(),
        s.paused
          ? `paused: ${s.paused.reason}`
          : s.lastAttempt?.error
            ? `last attempt failed (${s.lastAttempt.error.type}); next try at ${nextAt?.toISOString()}`
            : 'waiting for renewal time',
      );
      const waitMs = nextAt ? Math.max(0, nextAt.getTime() - now.getTime()) : undefined;
      const pausedBefore = s.paused;
      await condition(
        () => (s.pendingManual !== null && !s.paused) || s.paused !== pausedBefore,
        waitMs ?? '365 days',
      );
    }

    // renew: one attempt, as a child workflow with a stable id per cycle and attempt
    renewing = true;
    s.attempts += 1;
    show('Renewing', `${trigger.reason}: ${trigger.message}`);
    const outcome = await executeChild(renewalWorkflow, {
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
    renewing = false;
    s.lastAttempt = outcome;
    finished += 1;

    if (outcome.status === 'renewed') {
      s.previousThumbprint = outcome.oldThumbprint;
      s.consecutiveFailures = 0;
      s.cycle += 1;
      observed = await observe(id);
      show('Waiting', `renewed to ${outcome.newThumbprint}`);
      log.info('certificate renewed', { certificateId: id, thumbprint: outcome.newThumbprint });
      // a completed cycle: start fresh history, carrying the state (handlers drained first)
      await condition(allHandlersFinished);
      return continueAsNew<typeof certificateLifecycle>({ ...input, carried: { ...s, observed } });
    }
    s.consecutiveFailures += 1;
    show('Failing', `attempt #${outcome.attempt} failed: ${outcome.error?.type}: ${outcome.error?.message}`);
    if (workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      return continueAsNew<typeof certificateLifecycle>({ ...input, carried: { ...s, observed } });
    }
  }
}
