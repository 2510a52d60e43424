/**
 * The Key Vault auto-renew compliance rule (Conformity KeyVault-006, "Enable SSL Certificate Auto-Renewal"),
 * for certificates whose CA Key Vault cannot renew by itself: a certificate complies when something renews it
 * automatically (here: a running, unpaused Certflow lifecycle) and its renewal rule leaves enough time before
 * expiry. The rule's own example: renewing 3 days before expiry is too late, 7 days is right. Pure.
 */
import { DAY_MS, DEFAULT_LIFETIME_PERCENTAGE } from '../workflows/policy';

export type AuditRuleId = 'NoAutomaticRenewal' | 'RenewalPaused' | 'RenewsTooLate';

export interface AuditSubject {
  certificateId: string;
  lifecycle: 'running' | 'paused' | 'none';
  notBefore: string | null;
  notAfter: string | null;
  /** The renewal rule in force: Certflow's effective policy when enrolled, the vault's lifetime action otherwise. */
  policy: { lifetimePercentage?: number; daysBeforeExpiry?: number; source?: string } | null;
}

export interface Finding {
  certificateId: string;
  rule: AuditRuleId;
  message: string;
}

/** The least time a renewal must leave before expiry: 7 days, or a tenth of a shorter certificate's lifetime. */
export function requiredMarginMs(lifetimeMs: number): number {
  return Math.min(7 * DAY_MS, lifetimeMs / 10);
}

/** How long before expiry the rule renews (without Certflow's floor, which would hide a bad policy). */
export function renewalMarginMs(
  policy: NonNullable<AuditSubject['policy']>,
  notBefore: string,
  notAfter: string,
): number {
  const nb = Date.parse(notBefore);
  const na = Date.parse(notAfter);
  if (policy.daysBeforeExpiry !== undefined) return policy.daysBeforeExpiry * DAY_MS;
  const pct = policy.lifetimePercentage ?? DEFAULT_LIFETIME_PERCENTAGE;
  return ((na - nb) * (100 - pct)) / 100;
}

export function auditCertificate(s: AuditSubject): Finding[] {
  const findings: Finding[] = [];
  const id = s.certificateId;
  if (s.lifecycle === 'none')
    findings.push({
      certificateId: id,
      rule: 'NoAutomaticRenewal',
      message: `no automatic renewal: no lifecycle runs for it (fix: certflow enroll ${id} --issuer <name>)`,
    });
  if (s.lifecycle === 'paused')
    findings.push({
      certificateId: id,
      rule: 'RenewalPaused',
      message: `automatic renewal is paused (fix: certflow resume ${id})`,
    });
  if (s.policy && s.notBefore && s.notAfter) {
    const lifetime = Date.parse(s.notAfter) - Date.parse(s.notBefore);
    const margin = renewalMarginMs(s.policy, s.notBefore, s.notAfter);
    const needed = requiredMarginMs(lifetime);
    if (lifetime > 0 && margin < needed) {
      const rule =
        s.policy.daysBeforeExpiry !== undefined
          ? `${s.policy.daysBeforeExpiry} days before expiry`
          : `at ${s.policy.lifetimePercentage ?? DEFAULT_LIFETIME_PERCENTAGE}% of lifetime`;
      findings.push({
        certificateId: id,
        rule: 'RenewsTooLate',
        message:
          `the policy (${rule}${s.policy.source ? `, ${s.policy.source}` : ''}) renews ${days(margin)} before expiry; ` +
          `a certificate living ${days(lifetime)} needs at least ${days(needed)} ` +
          `(fix: certflow policy ${id} --percent 80, or --days ${Math.ceil(needed / DAY_MS)} or more)`,
      });
    }
  }
  return findings;
}

function days(ms: number): string {
  const d = Math.round((ms / DAY_MS) * 10) / 10;
  if (d >= 1) return `${d} day${d === 1 ? '' : 's'}`;
  const h = Math.round(ms / 3_600_000);
  return `${h} hour${h === 1 ? '' : 's'}`;
}
