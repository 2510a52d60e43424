/**
 * Re-binding under change control, the workflow side (the decisions are change-control.ts, approval.ts and
 * windows.ts, all pure): hold a merged or newly seen version back (`hold`), then carry out one step at a time as
 * the loop decides (`advance`): list the targets, ask for approval, remind and escalate, tell people, bind one
 * rollout stage and verify it live; a failed stage of a staged rollout is rolled back to the previous certificate,
 * the rollout stops and people are told.
 */
import { log, workflowInfo } from '@temporalio/workflow';
import type { BindingOutcome } from '../../activities/types';
import type { NotifyInput } from '../../activities/notify/events';
import { describeFailure } from '../failures';
import { retryDelayMs } from '../policy';
import { bindingTargets, notify, syncBindings } from './activities';
import { needsSync } from './attempt';
import { type ApprovalState, decided } from './approval';
import { appliedTo, planStages, type RebindState, type RebindStep, type RebindTopic } from './change-control';
import type { Ctx } from './context';
import { keepUnsent } from './mail';
import { announceNewVersion } from './sync';
import type { LifecycleState } from './state';

/** Whether change control holds re-binding back for this certificate (windows, freezes, approval, rollout). */
export function gated(ctx: Ctx): boolean {
  return appliedTo(ctx.input.changeControl, ctx.id, ctx.s.observed?.tags ?? {}).gated;
}

/** Holds the re-binding of `target` back: the loop advances it step by step. */
export function hold(
  ctx: Ctx,
  target: { version: string; thumbprint: string },
  why: RebindState['why'],
  before: { version: string | null; thumbprint: string | null; notAfter: string | null } | null,
): void {
  const { s, inbox } = ctx;
  // a newer version replacing one still held: consumers are still on the one before that (its expiry sets the
  // deadline, it is what a failed stage goes back to)
  const on = s.rebind
    ? {
        version: s.rebind.previousVersion,
        thumbprint: s.rebind.previousThumbprint,
        notAfter: s.rebind.oldNotAfter,
      }
    : before;
  s.rebind = {
    version: target.version,
    thumbprint: target.thumbprint,
    previousVersion: on?.version ?? null,
    previousThumbprint: on?.thumbprint ?? null,
    oldNotAfter: on?.notAfter ?? null,
    why,
    since: new Date().toISOString(),
    stages: null,
    done: 0,
    approval: null,
    stopped: null,
    told: {},
    ...(inbox.ignoreWindows ? { ignoreWindows: true } : {}),
  };
}

const TOPIC_TEXT: Record<RebindTopic, (r: RebindState) => string> = {
  'waiting-for-window': (r) =>
    `renewed to ${r.thumbprint}; re-binding is waiting for window at ${r.told.waiting ?? 'unknown'}`,
  'deadline-override': (r) =>
    `the deadline before expiry of ${r.previousThumbprint ?? 'the certificate in use'} (${r.oldNotAfter ?? 'unknown'}) passed: re-binding to ${r.thumbprint} now, overriding change windows and freezes`,
  'rollout-failed': (r) =>
    `rollout of ${r.thumbprint} stopped at stage ${(r.stopped?.stage ?? 0) + 1}: ${r.stopped?.detail ?? ''}; that stage was rolled back to ${r.previousThumbprint ?? 'the previous certificate'}`,
  'approval-denied': (r) =>
    `re-binding to ${r.thumbprint} denied by ${r.approval?.by ?? 'unknown'}: ${r.approval?.reason ?? ''}; the new version stays merged but unbound`,
};

/** Carries out one step (never `wait`). */
export async function advance(ctx: Ctx, step: Exclude<RebindStep, { kind: 'wait' }>): Promise<void> {
  const r = ctx.s.rebind!;
  switch (step.kind) {
    case 'list': {
      const rule = appliedTo(ctx.input.changeControl, ctx.id, ctx.s.observed?.tags ?? {}).rollout;
      try {
        const targets = await bindingTargets.executeWithOptions(
          { summary: `list the binding targets of ${ctx.id} (rollout plan)` },
          [{ certificateId: ctx.id }],
        );
        r.stages = planStages(rule, targets);
      } catch (err) {
        // not knowing the targets must not hold a certificate unbound: one stage of every target
        log.warn('binding targets not listed; binding all in one stage', {
          certificateId: ctx.id,
          error: describeFailure(err).message,
        });
        r.stages = [['**']];
      }
      return;
    }
    case 'tell':
      if (step.topic === 'waiting-for-window') r.told.waiting = step.at;
      if (step.topic === 'deadline-override') r.told.deadline = true;
      if (step.topic === 'rollout-failed' || step.topic === 'approval-denied') r.told.stopped = true;
      ctx.show('Waiting', TOPIC_TEXT[step.topic](r), false);
      await tell(ctx, step.topic, TOPIC_TEXT[step.topic](r), `${step.topic}:${step.at ?? ''}`);
      return;
    case 'approval':
      await approvalStep(ctx, r, step.step);
      return;
    case 'stage':
      await bindStage(ctx, r, step.index, step.targets);
      return;
    case 'done':
      await finish(ctx, r);
      return;
  }
}

async function approvalStep(
  ctx: Ctx,
  r: RebindState,
  step: Extract<RebindStep, { kind: 'approval' }>['step'],
): Promise<void> {
  const now = new Date();
  switch (step.kind) {
    case 'request':
      r.approval = {
        subject: `bind version ${r.version} (${r.thumbprint})`,
        requestedAt: now.toISOString(),
        status: 'pending',
        reminders: 0,
        escalated: false,
      };
      await tell(ctx, 'approval-requested', `approval needed to ${r.approval.subject}`, 'approval');
      return;
    case 'remind':
      r.approval!.reminders = step.n;
      await tell(
        ctx,
        'approval-reminder',
        `still waiting for approval to ${r.approval!.subject}`,
        `remind:${step.n}`,
      );
      return;
    case 'escalate':
      r.approval!.escalated = true;
      await tell(ctx, 'approval-timeout', `nobody approved or denied: ${r.approval!.subject}`, 'timeout');
      return;
    case 'denied':
      r.stopped = {
        at: r.approval?.at ?? now.toISOString(),
        why: 'Denied',
        detail: r.approval?.reason ?? 'denied',
      };
      return;
  }
}

/** Binds one stage, verified live by the targets; a failure of a staged rollout rolls the stage back and stops. */
async function bindStage(ctx: Ctx, r: RebindState, index: number, targets: string[]): Promise<void> {
  const { s, id } = ctx;
  const total = r.stages?.length ?? 1;
  const label = total > 1 ? `stage ${index + 1} of ${total} (${targets.join(', ')})` : 'every consumer';
  ctx.show('Syncing', `binding ${label} to ${r.thumbprint}`);
  const outcomes = await sync(ctx, `re-bind ${label} of ${id} to ${r.thumbprint}`, {
    version: r.version,
    thumbprint: r.thumbprint,
    previousThumbprint: r.previousThumbprint,
    only: targets,
  });
  s.bindings = mergeOutcomes(s.bindings, outcomes);
  const staged = appliedTo(ctx.input.changeControl, id, s.observed?.tags ?? {}).rollout !== null;
  if (!needsSync(outcomes)) {
    r.done = index + 1;
    return;
  }
  if (!staged) {
    // no rollout: like any re-binding, the failed bindings are retried with backoff (pendingSync)
    r.done = index + 1;
    s.pendingSync = {
      version: r.version,
      thumbprint: r.thumbprint,
      failures: 1,
      nextAt: new Date(Date.now() + retryDelayMs(1)).toISOString(),
      oldNotAfter: r.oldNotAfter,
      escalated: [],
    };
    return;
  }
  const failed = outcomes.filter((o) => o.status === 'failed' || o.status === 'rolled-back');
  const bound = outcomes.filter((o) => o.status === 'bound');
  // the targets roll their own failed bindings back; the stage's bindings that did take the new certificate go
  // back too, so the whole stage serves what it served before
  if (bound.length && r.previousVersion && r.previousThumbprint) {
    const back = await sync(ctx, `roll ${label} of ${id} back to ${r.previousThumbprint}`, {
      version: r.previousVersion,
      thumbprint: r.previousThumbprint,
      previousThumbprint: r.thumbprint,
      only: [...new Set(bound.map((o) => o.target))],
    });
    s.bindings = mergeOutcomes(
      s.bindings,
      back.map((o) => (o.status === 'bound' ? { ...o, status: 'rolled-back' as const } : o)),
    );
  }
  r.stopped = {
    at: new Date().toISOString(),
    why: 'StageFailed',
    stage: index,
    detail: failed.map((o) => `${o.target} ${o.binding}: ${o.reason ?? o.status} (${o.detail})`).join('; '),
  };
  log.warn('rollout stage failed and was rolled back', { certificateId: id, stage: index + 1 });
}

/** Every stage bound: the held version is now the consumers' one. */
async function finish(ctx: Ctx, r: RebindState): Promise<void> {
  const { s } = ctx;
  s.rebind = null;
  ctx.show('Waiting', `every consumer bound to ${r.thumbprint}`, false);
  if (r.why === 'NewVersion') await announceNewVersion(ctx, s.bindings, r.previousThumbprint);
}

async function sync(
  ctx: Ctx,
  summary: string,
  input: { version: string; thumbprint: string; previousThumbprint: string | null; only: string[] },
): Promise<BindingOutcome[]> {
  try {
    return await syncBindings.executeWithOptions({ summary }, [{ certificateId: ctx.id, ...input }]);
  } catch (err) {
    const e = describeFailure(err);
    return input.only.map((t) => ({
      target: t,
      binding: 'all',
      before: input.previousThumbprint,
      after: null,
      status: 'failed' as const,
      detail: `${e.type}: ${e.message}`,
    }));
  }
}

/** Outcomes of one stage replace that target's earlier ones; the others stay. */
function mergeOutcomes(old: BindingOutcome[], fresh: BindingOutcome[]): BindingOutcome[] {
  const key = (o: BindingOutcome) => `${o.target}\u0000${o.binding}`;
  const seen = new Set(fresh.map(key));
  const targets = new Set(fresh.map((o) => o.target));
  return [...old.filter((o) => !seen.has(key(o)) && !targets.has(o.target)), ...fresh];
}

/** One change-control mail (deduped by a stable event id per held version and topic). */
async function tell(ctx: Ctx, topic: RebindTopic | NotifyTopic, text: string, key: string): Promise<void> {
  const { s, id } = ctx;
  const r = s.rebind;
  const input: NotifyInput = {
    kind: 'change-control',
    eventId: `${workflowInfo().workflowId}:change:${r?.version ?? `issue-c${s.cycle}`}:${key}`,
    certificateId: id,
    mode: ctx.mode(),
    recipientTag: s.observed?.tags.Recipient,
    current: { thumbprint: s.observed?.thumbprint ?? null, notAfter: s.observed?.notAfter ?? null },
    changeControl: {
      topic,
      text,
      thumbprint: r?.thumbprint ?? null,
      previousThumbprint: r?.previousThumbprint ?? s.observed?.thumbprint ?? null,
      notAfter: r?.oldNotAfter ?? s.observed?.notAfter ?? null,
    },
    ...(r?.stopped && s.bindings.length ? { bindings: s.bindings } : {}),
  };
  try {
    await notify.executeWithOptions({ summary: `tell the people of ${id}: ${topic}` }, [input]);
  } catch (err) {
    // a mail outage never holds a change back; it shows in status, and the mail goes from the outbox later
    s.notifyError = describeFailure(err);
    keepUnsent(ctx, input);
    log.warn('change-control notice not sent', { certificateId: id, topic, error: s.notifyError.message });
  }
}

type NotifyTopic = NonNullable<NotifyInput['changeControl']>['topic'];

/** Approval before issuance: one step (request, remind, escalate) on `s.issueApproval`. */
export async function issueApprovalStep(
  ctx: Ctx,
  step: { kind: 'request' } | { kind: 'remind'; n: number } | { kind: 'escalate' },
): Promise<void> {
  const { s } = ctx;
  const now = new Date().toISOString();
  if (step.kind === 'request') {
    s.issueApproval = {
      subject: `issue a new certificate for ${ctx.id}`,
      requestedAt: now,
      status: 'pending',
      reminders: 0,
      escalated: false,
    };
    await tell(ctx, 'approval-requested', `approval needed to ${s.issueApproval.subject}`, `approval:${now}`);
  } else if (step.kind === 'remind') {
    s.issueApproval!.reminders = step.n;
    await tell(
      ctx,
      'approval-reminder',
      `still waiting for approval to ${s.issueApproval!.subject}`,
      `remind:${step.n}:${s.issueApproval!.requestedAt}`,
    );
  } else {
    s.issueApproval!.escalated = true;
    await tell(
      ctx,
      'approval-timeout',
      `nobody approved or denied: ${s.issueApproval!.subject}`,
      `timeout:${s.issueApproval!.requestedAt}`,
    );
  }
}

/** The approval a decision is about: a held re-binding's, else issuance's. */
export function pendingApproval(s: LifecycleState): { a: ApprovalState; before: 'rebind' | 'issue' } | null {
  if (s.rebind?.approval?.status === 'pending') return { a: s.rebind.approval, before: 'rebind' };
  if (s.issueApproval?.status === 'pending') return { a: s.issueApproval, before: 'issue' };
  return null;
}

/** Records a decision (validated before) where it belongs. */
export function decide(
  s: LifecycleState,
  verb: 'approve' | 'deny',
  d: { by?: string; reason?: string },
): void {
  const p = pendingApproval(s);
  if (!p) return;
  const next = decided(p.a, verb, d, new Date());
  if (p.before === 'rebind') s.rebind!.approval = next;
  else s.issueApproval = next;
}
