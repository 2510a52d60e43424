/**
 * Change control for one certificate, pure: which change windows, freezes, approval rule and rollout stages apply
 * (selected by certificate id, id pattern or tag, and for windows and freezes also by binding target), and what
 * the lifecycle should do next about a re-binding it holds back (`rebindStep`). The configuration travels in the
 * lifecycle's input (`changeControl`, worker/change-control-config.ts validates it); the state in `s.rebind` and
 * `s.issueApproval` (state.ts). The workflow side is rebind.ts.
 */
import { type ApprovalRule, type ApprovalState, approvalStep, type ApprovalStep } from './approval';
import { type FreezeSpec, gateText, type RebindGate, rebindGate, type WindowSpec } from './windows';

export interface CertificateSelector {
  ids?: string[];
  /** A certificate-id glob (activities/globs.ts). */
  pattern?: string;
  tag?: { name: string; value: string };
}

/** Applies to the certificates picked (all when absent) and, when `targets` is set, only to those binding targets. */
export interface Scoped {
  certificates?: CertificateSelector;
  targets?: string[];
}

export interface RolloutRule {
  name: string;
  certificates?: CertificateSelector;
  /** Ordered stages of binding-target names (globs allowed): the first is the canary. Unlisted targets go last. */
  stages: string[][];
}

export interface ChangeControl {
  /** Hours before the served certificate's expiry after which re-binding ignores windows and freezes (default 72). */
  deadlineHours?: number;
  windows?: Array<WindowSpec & Scoped>;
  freezes?: Array<FreezeSpec & Scoped>;
  approval?: Array<ApprovalRule & { certificates?: CertificateSelector }>;
  rollout?: RolloutRule[];
}

/**
 * Certflow's certificate-id glob (`*` within a segment, `**` across `/`, `?` one character; whole id, any case),
 * the same dialect as activities/globs.ts, which workflow code may not import; a unit test keeps the two equal.
 */
export function globMatch(pattern: string, id: string): boolean {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*' && pattern[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 'i').test(id);
}

export function selects(
  sel: CertificateSelector | undefined,
  certificateId: string,
  tags: Record<string, string>,
): boolean {
  if (!sel) return true;
  const named = sel.ids !== undefined || sel.pattern !== undefined;
  const picked =
    !named ||
    (sel.ids?.includes(certificateId) ?? false) ||
    (sel.pattern !== undefined && globMatch(sel.pattern, certificateId));
  return picked && (sel.tag === undefined || tags[sel.tag.name] === sel.tag.value);
}

const targetMatches = (patterns: readonly string[], target: string) =>
  patterns.some((p) => p === target || globMatch(p, target));

/** The change control that applies to a certificate (targets: those of the stage about to be bound; none known: []). */
export interface Applied {
  windows: WindowSpec[];
  freezes: FreezeSpec[];
  approval: ApprovalRule | null;
  rollout: RolloutRule | null;
  deadlineHours: number | undefined;
  /** Anything here holds re-binding back or shapes it: the lifecycle defers binding after a merge. */
  gated: boolean;
}

export function appliedTo(
  cc: ChangeControl | undefined,
  certificateId: string,
  tags: Record<string, string>,
  targets: readonly string[] = [],
): Applied {
  const scoped = <T extends Scoped>(xs: T[] | undefined): T[] =>
    (xs ?? []).filter(
      (x) =>
        selects(x.certificates, certificateId, tags) &&
        (!x.targets || targets.some((t) => targetMatches(x.targets!, t))),
    );
  const anyScoped = <T extends Scoped>(xs: T[] | undefined): boolean =>
    (xs ?? []).some((x) => selects(x.certificates, certificateId, tags));
  const approval = (cc?.approval ?? []).find((a) => selects(a.certificates, certificateId, tags)) ?? null;
  const rollout = (cc?.rollout ?? []).find((r) => selects(r.certificates, certificateId, tags)) ?? null;
  return {
    windows: scoped(cc?.windows),
    freezes: scoped(cc?.freezes),
    approval,
    rollout,
    deadlineHours: cc?.deadlineHours,
    gated:
      anyScoped(cc?.windows) ||
      anyScoped(cc?.freezes) ||
      (approval !== null && approval.before !== 'issue') ||
      rollout !== null,
  };
}

/** A re-binding the lifecycle holds back (a merged version waiting for its window, approval or next stage). */
export interface RebindState {
  version: string;
  thumbprint: string;
  /** The version and certificate consumers are on now (the rollback target of a failed stage). */
  previousVersion: string | null;
  previousThumbprint: string | null;
  /** Expiry of the certificate consumers still serve: the deadline counts back from it. */
  oldNotAfter: string | null;
  /** Renewal: Certflow merged it; NewVersion: it appeared in the vault (observe mode, by hand). */
  why: 'Renewal' | 'NewVersion';
  since: string;
  /** Stages of target names, fixed when the rollout starts (null: not listed yet). */
  stages: string[][] | null;
  /** Stages done (bound and verified live). */
  done: number;
  approval: ApprovalState | null;
  /** Stopped: a stage failed and was rolled back (`stage`), or approval was denied. */
  stopped: { at: string; why: 'StageFailed' | 'Denied'; stage?: number; detail: string } | null;
  /** Asked for by a renewal with ignoreWindows (an emergency wave): windows and freezes do not hold it. */
  ignoreWindows?: boolean;
  /** Notices sent: the first "waiting for window" (its time), the deadline override, the stop. */
  told: { waiting?: string; deadline?: boolean; stopped?: boolean };
}

/** What to do next about a held re-binding. */
export type RebindStep =
  | { kind: 'list' } // learn the binding targets (to form stages and scope target windows)
  | { kind: 'tell'; topic: RebindTopic; at?: string }
  | { kind: 'approval'; step: Exclude<ApprovalStep, { kind: 'wait' } | { kind: 'granted' }> }
  | { kind: 'stage'; index: number; targets: string[]; deadline: boolean }
  | { kind: 'done' }
  | { kind: 'wait'; until: Date | null; text: string };

export type RebindTopic = 'waiting-for-window' | 'deadline-override' | 'rollout-failed' | 'approval-denied';

/**
 * The next step of a held re-binding, first hit wins: stopped (tell once, then wait for a person), approval
 * (request, remind, escalate; denied stops it), the targets (listed once), the stage's window (deadline overrides:
 * told once), then the next stage.
 */
export function rebindStep(input: {
  r: Readonly<RebindState>;
  now: Date;
  cc: ChangeControl | undefined;
  certificateId: string;
  tags: Record<string, string>;
}): RebindStep {
  const { r, now, cc, certificateId, tags } = input;
  if (r.stopped) {
    if (!r.told.stopped)
      return { kind: 'tell', topic: r.stopped.why === 'Denied' ? 'approval-denied' : 'rollout-failed' };
    return {
      kind: 'wait',
      until: null,
      text:
        r.stopped.why === 'Denied'
          ? `re-binding to ${r.thumbprint} denied: ${r.stopped.detail} (the new version stays in the vault, unbound)`
          : `rollout stopped at stage ${(r.stopped.stage ?? 0) + 1}: ${r.stopped.detail} (stage rolled back; \`certflow sync\` binds every consumer)`,
    };
  }
  const base = appliedTo(cc, certificateId, tags);
  if (base.approval && base.approval.before !== 'issue') {
    const a = approvalStep(r.approval, base.approval, now);
    if (a.kind === 'wait') return { kind: 'wait', until: a.until, text: a.text };
    if (a.kind !== 'granted') return { kind: 'approval', step: a };
  }
  if (!r.stages) return { kind: 'list' };
  if (r.done >= r.stages.length) return { kind: 'done' };
  const targets = r.stages[r.done]!;
  const scoped = appliedTo(cc, certificateId, tags, targets);
  const g: RebindGate = r.ignoreWindows
    ? { open: true, at: null, why: 'open', deadline: null }
    : gateOf(scoped, now, r.oldNotAfter);
  if (g.why === 'deadline') {
    if (!r.told.deadline) return { kind: 'tell', topic: 'deadline-override' };
    return { kind: 'stage', index: r.done, targets, deadline: true };
  }
  if (g.open) return { kind: 'stage', index: r.done, targets, deadline: false };
  const at = g.at?.toISOString();
  if (at && r.told.waiting === undefined) return { kind: 'tell', topic: 'waiting-for-window', at };
  return { kind: 'wait', until: g.at, text: stageText(r, gateText(g)) };
}

const stageText = (r: Readonly<RebindState>, text: string) =>
  r.stages && r.stages.length > 1 ? `stage ${r.done + 1} of ${r.stages.length}: ${text}` : text;

export function gateOf(a: Applied, now: Date, notAfter: string | null): RebindGate {
  return rebindGate({
    now,
    windows: a.windows,
    freezes: a.freezes,
    notAfter,
    ...(a.deadlineHours !== undefined ? { deadlineHours: a.deadlineHours } : {}),
  });
}

/**
 * The rollout's stages over the certificate's binding targets (in their listed order): each configured stage takes
 * the targets it names (exact names or globs, first stage first), targets named by no stage form the last one;
 * empty stages are dropped. No rollout rule: one stage of every target.
 */
export function planStages(rule: RolloutRule | null, targets: readonly string[]): string[][] {
  if (!rule) return targets.length ? [[...targets]] : [];
  const left = [...targets];
  const stages: string[][] = [];
  for (const names of rule.stages) {
    const stage = left.filter((t) => targetMatches(names, t));
    if (stage.length) stages.push(stage);
    for (const t of stage) left.splice(left.indexOf(t), 1);
  }
  if (left.length) stages.push(left);
  return stages;
}
