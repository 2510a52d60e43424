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

export type TriggerReason = 'Missing' | 'Expired' | 'PolicyChanged' | 'NearingRenewal' | 'Manual' | 'Retry';

export interface Trigger {
  reason: TriggerReason;
  message: string;
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

/** Checks an override; the message names the field and the expected value. Undefined when it is fine. */
export function validatePolicyOverride(o: unknown): string | undefined {
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
    !(isInt(p.lifetimePercentage) && inRange(p.lifetimePercentage, 1, 99))
  )
    return 'lifetimePercentage: expected a whole number from 1 to 99';
  if (
    p.daysBeforeExpiry !== undefined &&
    !(isInt(p.daysBeforeExpiry) && inRange(p.daysBeforeExpiry, 1, 3650))
  )
    return 'daysBeforeExpiry: expected a whole number of days from 1 to 3650';
  if (p.jitterMinutes !== undefined && !(isInt(p.jitterMinutes) && inRange(p.jitterMinutes, 0, 1440)))
    return 'jitterMinutes: expected a whole number of minutes from 0 to 1440';
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
  return undefined;
}

function inRange(v: unknown, lo: number, hi: number): boolean {
  return typeof v === 'number' && v >= lo && v <= hi;
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

type Rule = (c: ObservedCertificate, now: Date, ctx: DecisionContext) => Trigger | undefined;

const sameNames = (a: string[], b: string[]): boolean => {
  const norm = (x: string[]) => [...new Set(x.map((n) => n.toLowerCase()))].sort().join(',');
  return norm(a) === norm(b);
};
const family = (t: string): string => t.toUpperCase().replace(/-HSM$/, '');

/** The ordered chain: missing, expired, policy changed, nearing renewal time, manual request. */
const rules: Rule[] = [
  (c) =>
    c.version ? undefined : { reason: 'Missing', message: 'the certificate has no issued version yet' },
  (c, now) =>
    c.notAfter && Date.parse(c.notAfter) <= now.getTime()
      ? { reason: 'Expired', message: `the certificate expired at ${c.notAfter}` }
      : undefined,
  (c) => {
    if (c.policyDnsNames?.length && c.dnsNames && !sameNames(c.policyDnsNames, c.dnsNames))
      return {
        reason: 'PolicyChanged',
        message: `the policy asks for names [${c.policyDnsNames.join(', ')}], the certificate has [${c.dnsNames.join(', ')}]`,
      };
    const want = c.policyKey;
    const have = c.key;
    if (!want || !have) return undefined;
    if (family(want.type) !== family(have.type))
      return {
        reason: 'PolicyChanged',
        message: `the policy asks for a ${want.type} key, the certificate has ${have.type}`,
      };
    if (family(want.type) === 'RSA' && want.size && have.size && want.size !== have.size)
      return {
        reason: 'PolicyChanged',
        message: `the policy asks for RSA ${want.size}, the certificate has RSA ${have.size}`,
      };
    if (family(want.type) === 'EC' && want.curve && have.curve && want.curve !== have.curve)
      return {
        reason: 'PolicyChanged',
        message: `the policy asks for curve ${want.curve}, the certificate has ${have.curve}`,
      };
    return undefined;
  },
  (c, now, ctx) => {
    const at = renewalTime(c, ctx);
    if (!at || at.getTime() > now.getTime()) return undefined;
    const byCa = windowTime(ctx, c.notBefore ? Date.parse(c.notBefore) : undefined) === at.getTime();
    return {
      reason: 'NearingRenewal',
      message: byCa
        ? `the CA's renewal window (ARI) has opened: renewing at ${at.toISOString()}`
        : `renewal time ${at.toISOString()} has come`,
    };
  },
  (_c, _now, ctx) =>
    ctx.manual ? { reason: 'Manual', message: ctx.manual.reason || 'manual renew requested' } : undefined,
];

/** The first rule that fires, or undefined when the certificate can wait. */
export function dueTrigger(
  c: ObservedCertificate,
  now: Date,
  ctx: DecisionContext = {},
): Trigger | undefined {
  for (const rule of rules) {
    const t = rule(c, now, ctx);
    if (t) return t;
  }
  return undefined;
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

/** Escalation before expiry while a certificate is not renewed: days left, each step sent once. */
export const ESCALATION_LADDER_DAYS = [14, 7, 3, 1, 0] as const;

/**
 * The ladder step to send now: the most urgent threshold crossed that was not sent yet. Steps crossed at the same
 * time are folded into that one (a certificate found with 2 days left gets the 3-day mail, not three mails).
 */
export function escalationDue(
  notAfter: string,
  now: Date,
  sent: readonly number[],
  ladder: readonly number[] = ESCALATION_LADDER_DAYS,
): { step: number; fold: number[] } | undefined {
  const left = (Date.parse(notAfter) - now.getTime()) / DAY_MS;
  const crossed = ladder.filter((d) => left <= d && !sent.includes(d));
  if (!crossed.length) return undefined;
  return { step: Math.min(...crossed), fold: crossed };
}

/** When the next ladder step comes, or null when every step is sent or passed. */
export function nextEscalationAt(
  notAfter: string,
  now: Date,
  sent: readonly number[],
  ladder: readonly number[] = ESCALATION_LADDER_DAYS,
): Date | null {
  const times = ladder
    .filter((d) => !sent.includes(d))
    .map((d) => Date.parse(notAfter) - d * DAY_MS)
    .filter((t) => t > now.getTime());
  return times.length ? new Date(Math.min(...times)) : null;
}

/** A pause longer than this is reported once to the certificate's people. */
export const PAUSED_TOO_LONG_MS = 7 * DAY_MS;
