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
import { bindingDrift, type DriftWatchConfig, nextProbeAt, probeDue } from './drift';
import type { CertificateMode } from './mode';
import { dueNotice, earliest, nextNoticeAt, type Notice, type NoticeFacts } from './notices';
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
  /** Drift watch: its schedule, and whether the lifecycle woke since the last probe (null: no watch in this run). */
  drift?: { config: Required<DriftWatchConfig>; woke: boolean } | null;
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
  | { kind: 'askWindow'; thumbprint: string }
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
    const renewal = renewalDue(f);
    if (renewal) return renewal;
  }
  if (notice) return { kind: 'notify', notice };
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
  if (o?.version && o.thumbprint && f.s.known && o.version !== f.s.known.version)
    return { kind: 'sync', why: 'NewVersion', version: o.version, thumbprint: o.thumbprint };
  if (ps && Date.parse(ps.nextAt) <= f.now.getTime())
    return { kind: 'sync', why: 'PendingSync', version: ps.version, thumbprint: ps.thumbprint };
  // the drift watch found a binding on another certificate (bindings still failing are PendingSync's)
  if (!ps && f.drift && o?.version && o.thumbprint && f.s.known?.version === o.version)
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
  if (!f.drift || !s.drift || s.paused || s.pendingSync || s.inFlight) return undefined;
  if (!o?.version || !o.thumbprint || s.known?.version !== o.version) return undefined;
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
  if (!f.drift || !s.drift || s.paused || !s.observed?.thumbprint) return null;
  return nextProbeAt(s.drift, f.drift.config, f.certificateId);
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
  return { kind: 'renew', trigger };
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
  const until = earliest(
    shown?.at,
    held ?? nextNoticeAt(noticeFacts(f)),
    f.mode === 'issue' && !s.paused ? windowCheckAt(s) : null,
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
        : (shown?.reason ?? 'waiting'),
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
