/**
 * Pure renewal-time math and trigger rules, shared by workflows, the client and tests.
 * Key Vault semantics: renew at a percentage of lifetime (default 80 %) or N days before expiry; Certflow adds a
 * per-certificate override, a deterministic jitter (earlier, never later) and a floor before expiry.
 */
import type { EffectivePolicy, PolicyOverride } from './messages';

export interface KeyShape {
  /** 'RSA' or 'EC' (HSM variants count as their family). */
  type: string;
  size?: number;
  curve?: string;
}

export interface ObservedCertificate {
  version: string | null;
  notBefore: string | null;
  notAfter: string | null;
  lifetimePercentage?: number;
  daysBeforeExpiry?: number;
  /** Names on the current certificate, and the names the policy asks for (empty: no opinion). */
  dnsNames?: string[];
  policyDnsNames?: string[];
  /** Key of the current certificate, and the key the policy asks for. */
  key?: KeyShape;
  policyKey?: KeyShape;
}

export interface DecisionContext {
  /** A person asked for a renewal (CLI, Event Grid, webhook). */
  manual?: { reason?: string };
  policy?: EffectivePolicy;
  /** Seeds the jitter: the certificate id, so a certificate always gets the same offset. */
  jitterKey?: string;
  /** The CA's suggested renewal window (ACME ARI): renew at a stable point inside it when that comes first. */
  window?: { start: string; end: string } | null;
}

export const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;
export const DEFAULT_LIFETIME_PERCENTAGE = 80;
/** The latest a renewal may start: this share of the lifetime before expiry, at most 7 days. */
const FLOOR_SHARE = 0.1;
const FLOOR_MAX_MS = 7 * DAY_MS;
/** Jitter never exceeds this share of the lifetime, so short-lived certificates keep their rhythm. */
const JITTER_MAX_SHARE = 0.05;
/** The largest jitter an override or the configuration may ask for (7 days): the config schema and CLI use it. */
export const MAX_JITTER_MINUTES = 10_080;
/**
 * The renewal-loop guard: a certificate is never renewed again sooner than this share of its lifetime after it
 * was last renewed (or issued), whatever the trigger; and a policy that would renew within it is refused.
 */
export const RENEWAL_GUARD_SHARE = 0.1;
/**
 * A policy that does not fit the certificate (it would renew within the guard: "30 days before expiry" on a
 * 6-day certificate) renews at this share of the lifetime instead, the way cert-manager falls back to 2/3.
 */
export const FALLBACK_LIFETIME_SHARE = 2 / 3;
/** The lowest lifetime percentage a policy may ask for: at the guard share or below it would renew at once. */
export const MIN_LIFETIME_PERCENTAGE = Math.floor(RENEWAL_GUARD_SHARE * 100) + 1;
const MIN_PERCENTAGE = MIN_LIFETIME_PERCENTAGE;

/** The policy in force: an override wins over the vault's lifetime action, which wins over the default. */
export function effectivePolicy(
  vault: { lifetimePercentage?: number; daysBeforeExpiry?: number } | null | undefined,
  override?: PolicyOverride | null,
  defaults: { jitterMinutes?: number } = {},
): EffectivePolicy {
  const jitterMinutes = override?.jitterMinutes ?? defaults.jitterMinutes ?? 0;
  if (override?.daysBeforeExpiry !== undefined)
    return { source: 'override', daysBeforeExpiry: override.daysBeforeExpiry, jitterMinutes };
  if (override?.lifetimePercentage !== undefined)
    return { source: 'override', lifetimePercentage: override.lifetimePercentage, jitterMinutes };
  if (vault?.daysBeforeExpiry !== undefined)
    return { source: 'vault', daysBeforeExpiry: vault.daysBeforeExpiry, jitterMinutes };
  if (vault?.lifetimePercentage !== undefined)
    return { source: 'vault', lifetimePercentage: vault.lifetimePercentage, jitterMinutes };
  return { source: 'default', lifetimePercentage: DEFAULT_LIFETIME_PERCENTAGE, jitterMinutes };
}

/**
 * Checks an override; the message names the field and the expected value. Undefined when it is fine. Given the
 * current certificate's lifetime, also refuses a rule that would renew it right after issuance (the loop guard).
 */
export function validatePolicyOverride(o: unknown, current?: { lifetimeMs: number }): string | undefined {
  if (typeof o !== 'object' || o === null) return 'policy: expected an object';
  const p = o as Record<string, unknown>;
  const known = ['lifetimePercentage', 'daysBeforeExpiry', 'jitterMinutes', 'clear'];
  const unknown = Object.keys(p).filter((k) => !known.includes(k));
  if (unknown.length) return `${unknown[0]}: unknown field (expected one of ${known.join(', ')})`;
  const isInt = (v: unknown) => typeof v === 'number' && Number.isInteger(v);
  if (p.lifetimePercentage !== undefined && p.daysBeforeExpiry !== undefined)
    return 'lifetimePercentage, daysBeforeExpiry: expected only one of them';
  if (
    p.lifetimePercentage !== undefined &&
    !(isInt(p.lifetimePercentage) && inRange(p.lifetimePercentage, MIN_PERCENTAGE, 99))
  )
    return `lifetimePercentage: expected a whole number from ${MIN_PERCENTAGE} to 99 (at ${MIN_PERCENTAGE - 1} % or less a certificate would be renewed right after issuance)`;
  if (
    p.daysBeforeExpiry !== undefined &&
    !(isInt(p.daysBeforeExpiry) && inRange(p.daysBeforeExpiry, 1, 3650))
  )
    return 'daysBeforeExpiry: expected a whole number of days from 1 to 3650';
  if (
    p.jitterMinutes !== undefined &&
    !(isInt(p.jitterMinutes) && inRange(p.jitterMinutes, 0, MAX_JITTER_MINUTES))
  )
    return `jitterMinutes: expected a whole number of minutes from 0 to ${MAX_JITTER_MINUTES}`;
  if (p.clear !== undefined && typeof p.clear !== 'boolean') return 'clear: expected true or false';
  if (p.clear && (p.lifetimePercentage !== undefined || p.daysBeforeExpiry !== undefined))
    return 'clear: cannot be combined with lifetimePercentage or daysBeforeExpiry';
  if (
    !p.clear &&
    p.lifetimePercentage === undefined &&
    p.daysBeforeExpiry === undefined &&
    p.jitterMinutes === undefined
  )
    return 'policy: expected lifetimePercentage, daysBeforeExpiry, jitterMinutes or clear';
  if (current && typeof p.daysBeforeExpiry === 'number') {
    const renewAtMs = current.lifetimeMs - p.daysBeforeExpiry * DAY_MS;
    if (renewAtMs <= current.lifetimeMs * RENEWAL_GUARD_SHARE)
      return `daysBeforeExpiry: ${p.daysBeforeExpiry} days would renew this certificate (it lives ${durationText(current.lifetimeMs)}) right after issuance; expected fewer than ${Math.max(0, Math.floor(((1 - RENEWAL_GUARD_SHARE) * current.lifetimeMs) / DAY_MS))} days`;
  }
  return undefined;
}

/** A duration for people: "5 minutes", "6 days". */
export function durationText(ms: number): string {
  const units: Array<[number, string]> = [
    [DAY_MS, 'day'],
    [3_600_000, 'hour'],
    [MINUTE_MS, 'minute'],
    [1000, 'second'],
  ];
  for (const [size, name] of units) {
    if (ms >= size) {
      const n = Math.round(ms / size);
      return `${n} ${name}${n === 1 ? '' : 's'}`;
    }
  }
  return `${Math.max(0, Math.round(ms))} ms`;
}

function inRange(v: unknown, lo: number, hi: number): boolean {
  return typeof v === 'number' && v >= lo && v <= hi;
}

/**
 * A certificate's policy from the configuration: its own rule as the lifecycle's starting override (the defaults'
 * rule fills in only what the certificate leaves out; without a rule of its own the vault's policy applies), and
 * the jitter from the certificate or the defaults. The one place configuration policies are merged.
 */
export function configuredPolicy(
  defaults: PolicyOverride | undefined,
  own: PolicyOverride | undefined,
): { policy?: PolicyOverride; jitterMinutes?: number } {
  const jitterMinutes = own?.jitterMinutes ?? defaults?.jitterMinutes;
  const { lifetimePercentage, daysBeforeExpiry } = { ...defaults, ...own };
  const rule =
    daysBeforeExpiry !== undefined
      ? { daysBeforeExpiry }
      : lifetimePercentage !== undefined
        ? { lifetimePercentage }
        : undefined;
  return {
    ...(own && rule ? { policy: rule } : {}),
    ...(jitterMinutes !== undefined ? { jitterMinutes } : {}),
  };
}

/** Applies a validated override to the one in force (`clear` drops the renewal rule, keeps nothing else). */
export function mergeOverride(current: PolicyOverride | null, next: PolicyOverride): PolicyOverride | null {
  if (next.clear) return next.jitterMinutes !== undefined ? { jitterMinutes: next.jitterMinutes } : null;
  const rule =
    next.lifetimePercentage !== undefined
      ? { lifetimePercentage: next.lifetimePercentage }
      : next.daysBeforeExpiry !== undefined
        ? { daysBeforeExpiry: next.daysBeforeExpiry }
        : {
            ...(current?.lifetimePercentage !== undefined
              ? { lifetimePercentage: current.lifetimePercentage }
              : {}),
            ...(current?.daysBeforeExpiry !== undefined
              ? { daysBeforeExpiry: current.daysBeforeExpiry }
              : {}),
          };
  const jitterMinutes = next.jitterMinutes ?? current?.jitterMinutes;
  return { ...rule, ...(jitterMinutes !== undefined ? { jitterMinutes } : {}) };
}

/**
 * When this certificate should be renewed, or null when it has no current version (renew now).
 * The policy's time, moved earlier by the jitter, never after the floor before expiry, never before notBefore.
 */
export function renewalTime(c: ObservedCertificate, ctx: DecisionContext = {}): Date | null {
  if (!c.version || !c.notBefore || !c.notAfter) return null;
  const nb = Date.parse(c.notBefore);
  const na = Date.parse(c.notAfter);
  const lifetime = Math.max(0, na - nb);
  const policy = ctx.policy ?? effectivePolicy(c);
  let at =
    policy.daysBeforeExpiry !== undefined
      ? na - policy.daysBeforeExpiry * DAY_MS
      : nb + (lifetime * (policy.lifetimePercentage ?? DEFAULT_LIFETIME_PERCENTAGE)) / 100;
  const jitterMs = Math.min(policy.jitterMinutes * MINUTE_MS, lifetime * JITTER_MAX_SHARE);
  if (jitterMs > 0) at -= jitterMs * unitHash(ctx.jitterKey ?? c.version);
  const floor = na - Math.min(lifetime * FLOOR_SHARE, FLOOR_MAX_MS);
  const inWindow = windowTime(ctx, nb);
  // the CA's window wins when it comes first (e.g. a revocation planned by the CA); never later than our own time
  if (inWindow !== null && inWindow < at) at = inWindow;
  // a days-before rule longer than the lifetime means "as soon as valid"
  return new Date(Math.max(nb, Math.min(at, floor)));
}

/** When to renew, and on what basis (for status and the rules' messages). */
export interface RenewalPlan {
  at: Date;
  /** policy: the policy's time; ari: the CA's window; floor: the latest safe time; fallback: the policy did not fit. */
  basis: 'policy' | 'ari' | 'floor' | 'fallback';
  /** Why the policy's own time was not used, for people. */
  note?: string;
}

/**
 * The renewal time of the current certificate with the loop guard applied: a policy that would renew within
 * RENEWAL_GUARD_SHARE of the lifetime after issuance does not fit this certificate (e.g. the CA issued a shorter
 * lifetime than the policy expects) and renews at FALLBACK_LIFETIME_SHARE instead. Null without a version.
 */
export function renewalPlan(c: ObservedCertificate, ctx: DecisionContext = {}): RenewalPlan | null {
  const at = renewalTime(c, ctx);
  if (!at || !c.notBefore || !c.notAfter) return null;
  const nb = Date.parse(c.notBefore);
  const lifetime = Math.max(0, Date.parse(c.notAfter) - nb);
  const guard = nb + lifetime * RENEWAL_GUARD_SHARE;
  const byCa = windowTime(ctx, nb) === at.getTime();
  if (at.getTime() >= guard || byCa || lifetime === 0) {
    const floor = Date.parse(c.notAfter) - Math.min(lifetime * FLOOR_SHARE, FLOOR_MAX_MS);
    return { at, basis: byCa ? 'ari' : at.getTime() === floor && !byCa ? 'floor' : 'policy' };
  }
  const policy = ctx.policy ?? effectivePolicy(c);
  return {
    at: new Date(nb + lifetime * FALLBACK_LIFETIME_SHARE),
    basis: 'fallback',
    note: `the policy (${ruleText(policy)}) would renew this certificate, which lives ${durationText(lifetime)}, right after issuance: renewing at ${Math.round(FALLBACK_LIFETIME_SHARE * 100)} % of its lifetime instead`,
  };
}

/**
 * The renewal-loop guard: no renewal sooner than RENEWAL_GUARD_SHARE of the current certificate's lifetime after
 * Certflow last renewed it (or saw the vault renew it). Null when nothing holds a renewal back: no current version,
 * or no renewal yet (a certificate issued elsewhere may be renewed at once).
 */
export function renewalGuardUntil(c: ObservedCertificate, lastRenewedAt: string | null): Date | null {
  if (!c.version || !c.notBefore || !c.notAfter || !lastRenewedAt) return null;
  const lifetime = Math.max(0, Date.parse(c.notAfter) - Date.parse(c.notBefore));
  return new Date(Date.parse(lastRenewedAt) + lifetime * RENEWAL_GUARD_SHARE);
}

/** The renewal rule of a policy, for people: "at 80 % of lifetime", "30 days before expiry". */
export function ruleText(p: Pick<EffectivePolicy, 'daysBeforeExpiry' | 'lifetimePercentage'>): string {
  return p.daysBeforeExpiry !== undefined
    ? `${p.daysBeforeExpiry} days before expiry`
    : `at ${p.lifetimePercentage ?? DEFAULT_LIFETIME_PERCENTAGE}% of lifetime`;
}

/** A stable point inside the CA's renewal window (RFC 9773 asks clients to pick one at random). */
export function windowTime(ctx: DecisionContext, notBefore?: number): number | null {
  const w = ctx.window;
  if (!w) return null;
  const start = Date.parse(w.start);
  const end = Date.parse(w.end);
  if (!Number.isFinite(start) || !Number.isFinite(end) || end < start) return null;
  // a window that began before this certificate existed is not about it (and must never renew it in a loop)
  if (notBefore !== undefined && start < notBefore) return null;
  return Math.floor(start + (end - start) * unitHash(`${ctx.jitterKey ?? ''}#ari`));
}

/**
 * A stable number in [0, 1) from a string: FNV-1a then murmur3's finaliser, so ids that differ only in their
 * last characters still spread evenly. Deterministic, so replays and restarts agree.
 */
export function unitHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 2 ** 32;
}

/**
 * Backoff between failed attempts of the lifecycle: 5 min, 10, 20, ... capped at 6 h, and never more than a
 * quarter of the time the certificate has left, so a failing renewal gets more tries as expiry nears.
 */
export function retryDelayMs(consecutiveFailures: number, msUntilExpiry?: number): number {
  const backoff = Math.min(5 * MINUTE_MS * 2 ** Math.max(0, consecutiveFailures - 1), 6 * 3_600_000);
  if (msUntilExpiry === undefined || msUntilExpiry <= 0) return backoff;
  return Math.max(MINUTE_MS, Math.min(backoff, msUntilExpiry / 4));
}

/**
 * When the lifecycle tries again after `consecutiveFailures` failed attempts, the last of which finished at
 * `lastFinishedAt`: the backoff, capped by the time the certificate has left (see retryDelayMs). The one rule
 * behind the lifecycle's retry and the "next attempt" promised in the failure email.
 */
export function nextAttemptAt(
  consecutiveFailures: number,
  lastFinishedAt: string,
  notAfter: string | null | undefined,
): Date {
  const finished = Date.parse(lastFinishedAt);
  const msLeft = notAfter ? Date.parse(notAfter) - finished : undefined;
  return new Date(finished + retryDelayMs(consecutiveFailures, msLeft));
}

/** Poll delay: the CA's Retry-After, but growing with each poll (30 s doubling to 1 h) when the CA asks too often. */
export function pollDelaySeconds(retryAfterSeconds: number, polls: number): number {
  const backoff = Math.min(30 * 2 ** polls, 3600);
  return Math.max(1, Math.min(Math.max(retryAfterSeconds, backoff), 6 * 3600));
}
