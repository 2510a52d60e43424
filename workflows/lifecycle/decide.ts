/**
 * The lifecycle's decision, in one pure function: given the state, the latest observation of the vault and the
 * time, what to do next. Renewal time and reason come from here (the time math is `renewalPlan` in
 * workflows/policy.ts, the reasons are the named rules of triggers.ts, the notices those of notices.ts).
 *
 * Order: retire; a vault that cannot be read (back off, keep escalating); consumers to re-bind (a person asked, a
 * new version appeared, or bindings failed before); a renewal (issue mode: the trigger chain under the loop guard;
 * observe mode: a person asked the vault to renew); a notice due; the CA's renewal window; the drift watch's probe
 * of the bindings (drift.ts; drift it found is re-bound by the sync rule `BindingDrift`); otherwise wait until the
 * earliest of all the times above, with a reason people can read.
 */
import type { FailureInfo } from '../failures';
import type { EffectivePolicy, Phase } from '../messages';
import {
  DAY_MS,
  nextAttemptAt,
  renewalGuardUntil,
  renewalPlan,
  retryDelayMs,
  type ObservedCertificate,
  type RenewalPlan,
} from '../policy';
import { currentWindow, windowCheckAt, windowDue } from './ari';
import { approvalStep, type ApprovalStep } from './approval';
import { appliedTo, type ChangeControl, rebindStep, type RebindStep } from './change-control';
import { bindingDrift, type DriftWatchConfig, nextProbeAt, probeDue } from './drift';
import type { CertificateMode } from './mode';
import { dueNotice, earliest, nextNoticeAt, type Notice, type NoticeFacts } from './notices';
import { dueMail, nextMailAt, type UnsentMail } from './outbox';
import type { LifecycleState } from './state';
import { firstTrigger, observedOf, type Trigger } from './triggers';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

export interface Facts {
  workflowId: string;
  certificateId: string;
  now: Date;
  mode: CertificateMode;
  s: Readonly<LifecycleState>;
  /** The vault could not be read: the failure, how many reads in a row failed, and when the last one did. */
  observeError: { failure: FailureInfo; failures: number; at: string } | null;
  policy: EffectivePolicy;
  /** A person asked to re-bind every consumer. */
  syncRequested: boolean;
  /** The certificate is gone from its vault (fleet discovery): finish. */
  retired: string | null;
  /** A notice failed to go out: notices wait until then (mail down), instead of being retried in a loop. */
  noticesAfter?: Date | null;
  /** Change windows, freezes, approval and staged rollout (the lifecycle's input; change-control.ts). */
  changeControl?: ChangeControl;
  /** Drift watch: its schedule, and whether the lifecycle woke since the last probe (null: no watch in this run). */
  drift?: { config: Required<DriftWatchConfig>; woke: boolean } | null;
  /**
   * A re-binding held for the vault's new version goes on by its own steps once no rule holds it any more (the
   * rules changed): bound and announced once. Runs recorded before this (patch `held-rebind-own-steps`) synced it
   * as a new version and then re-bound it again.
   */
  heldRebindGoesOn?: boolean;
}

/**
 * Why consumers are re-bound: a person asked, a version Certflow did not make appeared, bindings failed before,
 * or the drift watch found a binding serving another certificate than the vault's current one.
 */
export type SyncWhy = 'SyncNow' | 'NewVersion' | 'PendingSync' | 'BindingDrift';

/** What the status shows as coming next. */
export interface Next {
  at: Date;
  reason: string;
}

export type Action =
  | { kind: 'retire'; reason: string }
  | { kind: 'renew'; trigger: Trigger }
  | { kind: 'askVault'; trigger: Trigger }
  | { kind: 'sync'; why: SyncWhy; version: string; thumbprint: string }
  | { kind: 'notify'; notice: Notice }
  /** A mail that could not be sent before (SMTP down): send it again (outbox.ts). */
  | { kind: 'resend'; mail: UnsentMail }
  | { kind: 'askWindow'; thumbprint: string }
  /** Change control holds a new version's re-binding back (rebind.ts), or advances a held one by a step. */
  | { kind: 'hold'; version: string; thumbprint: string }
  | { kind: 'rebind'; step: Exclude<RebindStep, { kind: 'wait' }> }
  /** Approval before issuance: request it, remind, escalate. */
  | { kind: 'issueApproval'; step: Extract<ApprovalStep, { kind: 'request' | 'remind' | 'escalate' }> }
  | { kind: 'probe'; thumbprint: string; why: 'schedule' | 'wake' }
  | { kind: 'wait'; until: Date | null; next: Next | null; phase: Phase; detail: string };

/** The decision. */
export function decide(f: Facts): Action {
  if (f.retired !== null) return { kind: 'retire', reason: f.retired };
  const held = f.noticesAfter && f.noticesAfter > f.now;
  const notice = held ? undefined : dueNotice(noticeFacts(f));
  if (f.observeError) {
    if (notice) return { kind: 'notify', notice };
    const next = upcoming(f);
    return {
      kind: 'wait',
      until: earliest(
        next?.at,
        f.noticesAfter && f.noticesAfter > f.now ? f.noticesAfter : nextNoticeAt(noticeFacts(f)),
      ),
      next,
      phase: 'Failing',
      detail: `cannot read the vault: ${f.observeError.failure.type}: ${f.observeError.failure.message}`,
    };
  }
  if (!f.s.paused) {
    const sync = syncDue(f);
    if (sync) return sync;
    const step = rebindDue(f);
    if (step && step.kind !== 'wait') return { kind: 'rebind', step };
    const renewal = renewalDue(f);
    if (renewal) return renewal;
  }
  if (notice) return { kind: 'notify', notice };
  const unsent = held ? undefined : dueMail(f.s.outbox, f.now);
  if (unsent) return { kind: 'resend', mail: unsent };
  const thumbprint = f.s.observed?.thumbprint;
  if (f.mode === 'issue' && !f.s.paused && thumbprint && windowDue(f.s, f.now))
    return { kind: 'askWindow', thumbprint };
  const probe = probeNow(f);
  if (probe) return probe;
  return rest(f);
}

/** The current certificate's renewal time under the policy in force (and the CA's window in issue mode). */
export function planOf(f: Pick<Facts, 'mode' | 's' | 'policy' | 'certificateId'>): RenewalPlan | null {
  return renewalPlan(observedOf(f.s.observed), {
    policy: f.policy,
    jitterKey: f.certificateId,
    window: f.mode === 'issue' ? currentWindow(f.s) : null,
  });
}

/** Observe mode: from when the vault's renewal counts as late (a grace after the expected time). */
export function vaultLateAt(f: Pick<Facts, 'mode' | 's' | 'policy' | 'certificateId'>): Date | null {
  if (f.mode !== 'observe') return null;
  const plan = planOf(f);
  const lifetime = lifetimeOf(observedOf(f.s.observed));
  return plan ? new Date(plan.at.getTime() + Math.min(12 * HOUR_MS, lifetime * 0.05)) : null;
}

export function noticeFacts(f: Facts): NoticeFacts {
  return {
    workflowId: f.workflowId,
    certificateId: f.certificateId,
    now: f.now,
    mode: f.mode,
    s: f.s,
    plan: planOf(f),
    vaultLateAt: vaultLateAt(f),
  };
}

function syncDue(f: Facts): Action | undefined {
  const o = f.s.observed;
  const ps = f.s.pendingSync;
  if (f.syncRequested && o?.version && o.thumbprint)
    return { kind: 'sync', why: 'SyncNow', version: o.version, thumbprint: o.thumbprint };
  // a version Certflow did not make: the vault renewed it (observe mode) or someone did, by hand
  if (o?.version && o.thumbprint && f.s.known && o.version !== f.s.known.version) {
    const ownSteps = f.heldRebindGoesOn === true && f.s.rebind?.version === o.version;
    if (!ownSteps && !gatedOf(f))
      return { kind: 'sync', why: 'NewVersion', version: o.version, thumbprint: o.thumbprint };
    // change control: held back, then bound by stages in its window (rebind.ts), announced when bound
    if (f.s.rebind?.version !== o.version)
      return { kind: 'hold', version: o.version, thumbprint: o.thumbprint };
  }
  if (ps && Date.parse(ps.nextAt) <= f.now.getTime())
    return { kind: 'sync', why: 'PendingSync', version: ps.version, thumbprint: ps.thumbprint };
  // the drift watch found a binding on another certificate (bindings still failing are PendingSync's)
  if (f.drift && o?.version && o.thumbprint && watching(f))
    if (bindingDrift(f.s.drift, o.thumbprint))
      return { kind: 'sync', why: 'BindingDrift', version: o.version, thumbprint: o.thumbprint };
  return undefined;
}

/**
 * The drift watch's probe, when due (schedule or wake): only with a current version the consumers are meant to be
 * on, nothing else pending for the bindings (a re-sync or an attempt verifies them anyway), and not while paused.
 */
function probeNow(f: Facts): Action | undefined {
  const { s } = f;
  const o = s.observed;
  if (!f.drift || !s.drift || !watching(f) || !o?.thumbprint) return undefined;
  const why = probeDue({
    d: s.drift,
    config: f.drift.config,
    key: f.certificateId,
    now: f.now,
    woke: f.drift.woke,
  });
  return why ? { kind: 'probe', thumbprint: o.thumbprint, why } : undefined;
}

/** The next scheduled probe, when the watch runs in this lifecycle. */
function probeAt(f: Facts): Date | null {
  const { s } = f;
  if (!f.drift || !s.drift || !watching(f)) return null;
  return nextProbeAt(s.drift, f.drift.config, f.certificateId);
}

/**
 * Whether the drift watch may probe (and re-bind what drifted) now: the consumers should be on the vault's current
 * version, and nothing else is moving them. Never while change control holds a version back (waiting for a window,
 * approval or a rollout stage, or denied / stopped): the bindings then serve the older version on purpose, and a
 * BindingDrift re-sync would go around the window, the approval or the rollback.
 */
function watching(f: Facts): boolean {
  const { s } = f;
  const o = s.observed;
  if (s.paused || s.pendingSync || s.inFlight || s.rebind) return false;
  return !!o?.version && !!o.thumbprint && s.known?.version === o.version;
}

/** The renewal to start now, if any: the trigger chain, then the loop guard (a forced manual request passes it). */
function renewalDue(f: Facts): Action | undefined {
  const { s } = f;
  const cert = observedOf(s.observed);
  if (f.mode === 'observe') {
    // the vault renews by itself; Certflow asks it to only when a person says so
    if (!s.manual || !s.observed?.version) return undefined;
    const trigger = { reason: 'Manual' as const, message: s.manual.reason || 'manual renew requested' };
    return guardHolds(f, cert, trigger) ? undefined : { kind: 'askVault', trigger };
  }
  const trigger = firstTrigger({
    cert,
    now: f.now,
    plan: planOf(f),
    manual: s.manual,
    failures: s.consecutiveFailures,
    retryAt: retryAt(f),
    lastTrigger: s.lastAttempt?.trigger,
    lastErrorType: s.lastAttempt?.error?.type,
  });
  if (!trigger || guardHolds(f, cert, trigger)) return undefined;
  const a = issueApprovalOf(f);
  if (a && a.kind !== 'granted') {
    if (a.kind === 'request' || a.kind === 'remind' || a.kind === 'escalate')
      return { kind: 'issueApproval', step: a };
    return undefined; // waiting for a person, or denied (a new renew request asks again)
  }
  return { kind: 'renew', trigger };
}

/** Change control: whether re-binding is held back for this certificate. */
function gatedOf(f: Facts): boolean {
  return appliedTo(f.changeControl, f.certificateId, f.s.observed?.tags ?? {}).gated;
}

/** The held re-binding's next step (null: none held). */
export function rebindDue(f: Facts): RebindStep | null {
  const r = f.s.rebind;
  if (!r) return null;
  return rebindStep({
    r,
    now: f.now,
    cc: f.changeControl,
    certificateId: f.certificateId,
    tags: f.s.observed?.tags ?? {},
  });
}

/** Approval before issuance under the rule that applies (null: no such rule). */
function issueApprovalOf(f: Facts): ApprovalStep | null {
  const rule = appliedTo(f.changeControl, f.certificateId, f.s.observed?.tags ?? {}).approval;
  if (f.mode !== 'issue' || rule?.before !== 'issue') return null;
  return approvalStep(f.s.issueApproval ?? null, rule, f.now);
}

/**
 * What change control is waiting for, if anything: a held re-binding (its window, approval, or a person after a
 * stop) or approval before issuance; with when to look again. Shown in status, the UI and `list`.
 */
export function heldBy(f: Facts): { until: Date | null; text: string } | null {
  if (f.s.paused) return null;
  const step = rebindDue(f);
  if (step?.kind === 'wait') return { until: step.until, text: step.text };
  const ia = f.s.issueApproval;
  if (ia && ia.status !== 'approved') {
    const a = issueApprovalOf(f);
    if (a?.kind === 'wait') return { until: a.until, text: a.text };
    if (ia.status === 'denied')
      return {
        until: null,
        text: `issuance denied by ${ia.by ?? 'unknown'}: ${ia.reason ?? ''} (\`certflow renew\` asks again)`,
      };
  }
  return null;
}

/** The loop guard: a renewal within RENEWAL_GUARD_SHARE of the lifetime after the last one waits. */
function guardHolds(f: Facts, cert: ObservedCertificate, t: Trigger): boolean {
  if (t.reason === 'Missing' || (t.reason === 'Manual' && f.s.manual?.force)) return false;
  const until = renewalGuardUntil(cert, f.s.lastRenewedAt);
  return until !== null && until > f.now;
}

/** Issue mode: when the next attempt after failures may start. */
function retryAt(f: Facts): Date | null {
  const { s } = f;
  return s.consecutiveFailures > 0 && s.lastAttempt
    ? nextAttemptAt(s.consecutiveFailures, s.lastAttempt.finishedAt, s.observed?.notAfter)
    : null;
}

/** Nothing to do now: wait until the earliest time something may be, and say what comes next. */
function rest(f: Facts): Action {
  const { s } = f;
  const shown = upcoming(f);
  const held = f.noticesAfter && f.noticesAfter > f.now ? f.noticesAfter : null;
  const change = heldBy(f);
  // a renewal that waits for approval before issuance is due already: wake for the approval's times, not it
  const awaitingIssue = !!f.s.issueApproval && f.s.issueApproval.status !== 'approved';
  const until = earliest(
    awaitingIssue && shown && shown.at <= f.now ? null : shown?.at,
    held ?? nextNoticeAt(noticeFacts(f)),
    held ?? nextMailAt(s.outbox),
    f.mode === 'issue' && !s.paused ? windowCheckAt(s) : null,
    change?.until,
    probeAt(f),
  );
  const late = vaultLateAt(f);
  const failing =
    s.consecutiveFailures > 0 || s.pendingSync !== null || (late !== null && late <= f.now && !s.paused);
  return {
    kind: 'wait',
    until,
    next: shown,
    phase: s.paused ? 'Paused' : failing ? 'Failing' : 'Waiting',
    detail: s.paused
      ? `paused: ${s.paused.reason}`
      : s.consecutiveFailures > 0 && s.lastAttempt?.error
        ? `last attempt failed (${s.lastAttempt.error.type}); next try at ${shown?.at.toISOString()}`
        : (change?.text ?? shown?.reason ?? 'waiting'),
  };
}

/**
 * What comes next for the status (`nextRenewalAt` and its reason): the next renewal step, or the retry of
 * bindings that failed when that comes first. Null while paused or reading the vault fails (then `decide` says).
 */
export function upcoming(f: Facts): Next | null {
  const { s } = f;
  if (f.observeError) {
    return {
      at: new Date(Date.parse(f.observeError.at) + retryDelayMs(f.observeError.failures)),
      reason: `read the vault again (failure #${f.observeError.failures})`,
    };
  }
  const next = s.paused ? null : nextStep(f);
  const sync = !s.paused && s.pendingSync ? new Date(s.pendingSync.nextAt) : null;
  return sync && (!next || sync < next.at) ? { at: sync, reason: 'retry the bindings that failed' } : next;
}

/** The next renewal step: a retry, the renewal time (held by the loop guard), or the vault's expected renewal. */
function nextStep(f: Facts): Next | null {
  const { s } = f;
  const cert = observedOf(s.observed);
  const plan = planOf(f);
  if (f.mode === 'observe') return vaultStep(f, plan);
  const retry = retryAt(f);
  if (retry) return { at: retry, reason: `retry after failure #${s.consecutiveFailures}` };
  if (!plan) return null;
  const guard = renewalGuardUntil(cert, s.lastRenewedAt);
  if (guard && guard > plan.at && guard > f.now)
    return {
      at: guard,
      reason: `RenewalGuard: renewed at ${s.lastRenewedAt}; the next renewal waits until ${guard.toISOString()}`,
    };
  return { at: plan.at, reason: plan.note ? `NearingRenewal (${plan.note})` : 'NearingRenewal' };
}

/** Observe mode: when to look for the vault's new version, checking often at first, then less. */
function vaultStep(f: Facts, plan: RenewalPlan | null): Next | null {
  const { s } = f;
  const lifetime = lifetimeOf(observedOf(s.observed));
  if (s.vaultRenewal) {
    const at = checkAfter(Date.parse(s.vaultRenewal.requestedAt), f.now, lifetime);
    return {
      at,
      reason: `the vault was asked to renew at ${s.vaultRenewal.requestedAt}: looking for its new version`,
    };
  }
  if (!plan)
    return {
      at: checkAfter(f.now.getTime(), f.now, lifetime),
      reason: 'waiting for the vault to issue the certificate',
    };
  if (plan.at > f.now)
    return { at: plan.at, reason: 'VaultRenewal: the vault renews the certificate itself' };
  const late = vaultLateAt(f);
  return {
    at: checkAfter(plan.at.getTime(), f.now, lifetime),
    reason:
      late && late <= f.now
        ? `VaultRenewalLate: no new version since ${plan.at.toISOString()}`
        : `VaultRenewal: the vault's new version is due since ${plan.at.toISOString()}`,
  };
}

/**
 * The next look after `from` (a renewal that is due, a request to the vault): soon at first (1 min, 5, 15, 1 h,
 * 3 h), then every 6 h; scaled down for short lifetimes (never more than a few percent of it).
 */
export function checkAfter(from: number, now: Date, lifetimeMs: number): Date {
  const steps: Array<[number, number]> = [
    [MINUTE_MS, 0.005],
    [5 * MINUTE_MS, 0.01],
    [15 * MINUTE_MS, 0.02],
    [HOUR_MS, 0.03],
    [3 * HOUR_MS, 0.04],
  ];
  const offsets = steps.map(([fixed, share]) => Math.max(1000, Math.min(fixed, lifetimeMs * share || fixed)));
  for (const off of offsets) if (from + off > now.getTime()) return new Date(from + off);
  const every = Math.max(1000, Math.min(6 * HOUR_MS, lifetimeMs * 0.05 || 6 * HOUR_MS));
  const last = from + (offsets.at(-1) ?? 0);
  return new Date(last + every * (Math.floor((now.getTime() - last) / every) + 1));
}

function lifetimeOf(c: ObservedCertificate): number {
  return c.notBefore && c.notAfter
    ? Math.max(0, Date.parse(c.notAfter) - Date.parse(c.notBefore))
    : 90 * DAY_MS;
}
