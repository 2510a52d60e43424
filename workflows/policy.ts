/**
 * Pure renewal-time math and trigger rules, shared by workflows, the client and tests.
 * Key Vault semantics: renew at a percentage of lifetime (default 80 %) or N days before expiry.
 */

export interface ObservedCertificate {
  version: string | null;
  notBefore: string | null;
  notAfter: string | null;
  lifetimePercentage?: number;
  daysBeforeExpiry?: number;
}

export interface Trigger {
  reason: 'Missing' | 'Expired' | 'NearingRenewal' | 'Manual' | 'Retry';
  message: string;
}

const DAY_MS = 86_400_000;

/** When this certificate should be renewed, or null when it has no current version (renew now). */
export function renewalTime(c: ObservedCertificate): Date | null {
  if (!c.version || !c.notBefore || !c.notAfter) return null;
  const nb = Date.parse(c.notBefore);
  const na = Date.parse(c.notAfter);
  if (c.daysBeforeExpiry !== undefined) {
    // never before notBefore: a days-before rule longer than the lifetime means "as soon as valid"
    return new Date(Math.max(nb, na - c.daysBeforeExpiry * DAY_MS));
  }
  const pct = c.lifetimePercentage ?? 80;
  return new Date(nb + ((na - nb) * pct) / 100);
}

type Rule = (c: ObservedCertificate, now: Date) => Trigger | undefined;

const rules: Rule[] = [
  (c) =>
    c.version ? undefined : { reason: 'Missing', message: 'the certificate has no issued version yet' },
  (c, now) =>
    c.notAfter && Date.parse(c.notAfter) <= now.getTime()
      ? { reason: 'Expired', message: `the certificate expired at ${c.notAfter}` }
      : undefined,
  (c, now) => {
    const at = renewalTime(c);
    return at && at.getTime() <= now.getTime()
      ? { reason: 'NearingRenewal', message: `renewal time ${at.toISOString()} has come` }
      : undefined;
  },
];

/** The first rule that fires, or undefined when the certificate can wait. */
export function dueTrigger(c: ObservedCertificate, now: Date): Trigger | undefined {
  for (const rule of rules) {
    const t = rule(c, now);
    if (t) return t;
  }
  return undefined;
}

/** Backoff between failed attempts of the lifecycle: 5 min, 10, 20, ... capped at 6 h. */
export function retryDelayMs(consecutiveFailures: number): number {
  return Math.min(5 * 60_000 * 2 ** Math.max(0, consecutiveFailures - 1), 6 * 3_600_000);
}
