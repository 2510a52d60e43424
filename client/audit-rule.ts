/**
 * The Key Vault auto-renew compliance rule (Conformity KeyVault-006, "Enable SSL Certificate Auto-Renewal"),
 * complete: a certificate complies when something renews it automatically and its renewal rule leaves enough time
 * before expiry (the rule's own example: renewing 3 days before expiry is too late, 7 days is right).
 * - A certificate whose CA Key Vault cannot renew by itself (issuer Unknown): a running, unpaused Certflow
 *   lifecycle renews it (`NoAutomaticRenewal`, `RenewalPaused`).
 * - A certificate the vault renews itself (an integrated CA such as DigiCert or GlobalSign, or Self): its policy's
 *   lifetime action must be `AutoRenew` (`IntegratedCaNotAutoRenew`; unknown when the vault adapter does not say:
 *   `LifetimeActionUnknown`, a warning), and a Certflow lifecycle must watch it so its consumers are re-bound when
 *   the vault renews it (`NoLifecycle`).
 * - A lifecycle whose mode (issue / observe) does not match its certificate's policy (`ModeMismatch`): observe on a
 *   certificate the vault cannot renew fails (nothing renews it); issue on one the vault renews is a warning (a
 *   configured take-over), nothing when the status says the take-over was configured.
 * - An App Service Certificate order with auto-renew off (`OrderAutoRenewOff`), or whose renewal failed or cannot
 *   reach its Key Vault (`OrderRenewalFailed`); one waiting for domain verification, or with no Key Vault linked, is a
 *   warning. "Not renewable yet" (outside the renewal window) is normal and not reported.
 * - A policy that leaves too small a safety buffer for its lifetime (`SmallSafetyBuffer`, workflows/buffer.ts): the
 *   time left at renewal, less what the retry schedule needs to get a certificate through a one-day CA outage, is
 *   under 12 hours (a warning) or gone (fails): short lifetimes (Let's Encrypt `shortlived`, 160 hours) need an
 *   earlier renewal than 80 %.
 * Findings are `fail` (exit code 1) or `warn`. Pure.
 */
import type { CertificatePolicySnapshot } from '../activities/types';
import { certificateMode, vaultRenewsItself, type CertificateMode } from '../workflows/lifecycle/mode';
import { bufferText, safePercentage, safetyBuffer } from '../workflows/buffer';
import { DAY_MS, DEFAULT_LIFETIME_PERCENTAGE, MIN_LIFETIME_PERCENTAGE } from '../workflows/policy';

export type AuditRuleId =
  | 'NoAutomaticRenewal'
  | 'RenewalPaused'
  | 'RenewsTooLate'
  | 'IntegratedCaNotAutoRenew'
  | 'LifetimeActionUnknown'
  | 'NoLifecycle'
  | 'ModeMismatch'
  | 'OrderAutoRenewOff'
  | 'OrderRenewalFailed'
  | 'OrderDomainVerificationPending'
  | 'SmallSafetyBuffer';

export type Severity = 'fail' | 'warn';

export interface AuditSubject {
  certificateId: string;
  lifecycle: 'running' | 'paused' | 'none';
  notBefore: string | null;
  notAfter: string | null;
  /** The renewal rule in force: Certflow's effective policy when enrolled, the vault's lifetime action otherwise. */
  policy: { lifetimePercentage?: number; daysBeforeExpiry?: number; source?: string } | null;
  /** The vault's policy (issuer, lifetime action), when the vault was read; absent: not known. */
  vaultPolicy?: Pick<CertificatePolicySnapshot, 'issuerName' | 'lifetimeAction'> | null;
  /** The lifecycle's mode, when its status says; `modeForced`: configured on purpose (e.g. "issue" to take over). */
  lifecycleMode?: CertificateMode;
  modeForced?: boolean;
}

export interface Finding {
  /** A certificate id `<vault>/<name>`, or an App Service Certificate order's ARM id. */
  certificateId: string;
  rule: AuditRuleId;
  severity: Severity;
  message: string;
}

/** An App Service Certificate order as the audit sees it (activities/bindings/app-service-certificate-orders.ts). */
export interface OrderAuditSubject {
  id: string;
  name: string;
  autoRenew: boolean;
  notAfter: string | null;
  conditions: { type: string; message: string }[];
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
  const add = (rule: AuditRuleId, message: string, severity: Severity = 'fail') =>
    findings.push({ certificateId: id, rule, severity, message });
  const vp = s.vaultPolicy;
  const vaultRenews = !!vp && vaultRenewsItself(vp);
  // a lifecycle that issues it itself (mode "issue" configured to take it over) makes the vault's action moot
  const certflowIssues = s.lifecycle !== 'none' && s.lifecycleMode === 'issue';

  if (s.lifecycle === 'none') {
    if (vaultRenews)
      add(
        'NoLifecycle',
        `no Certflow lifecycle watches it: when the vault renews it (issuer ${vp?.issuerName}), nothing re-binds its consumers or checks the renewal happened (fix: certflow enroll ${id} --issuer <name>, or fleet discovery)`,
      );
    else
      add(
        'NoAutomaticRenewal',
        `no automatic renewal: no lifecycle runs for it (fix: certflow enroll ${id} --issuer <name>)`,
      );
  }
  if (s.lifecycle === 'paused')
    add('RenewalPaused', `automatic renewal is paused (fix: certflow resume ${id})`);
  if (vaultRenews && !certflowIssues) {
    if (vp?.lifetimeAction === undefined)
      add(
        'LifetimeActionUnknown',
        `issuer ${vp?.issuerName} is one Key Vault renews itself, but its lifetime action is not known here (a vault adapter that does not report it): check that it is AutoRenew`,
        'warn',
      );
    else if (vp.lifetimeAction !== 'AutoRenew')
      add(
        'IntegratedCaNotAutoRenew',
        `issuer ${vp.issuerName} is one Key Vault renews itself, but the policy's lifetime action is ${vp.lifetimeAction}: it will only e-mail before expiry (fix: set the lifetime action to AutoRenew in the certificate's policy)`,
      );
  }
  if (s.lifecycle !== 'none' && s.lifecycleMode && vp) {
    const implied = certificateMode(vp);
    if (implied === 'issue' && s.lifecycleMode === 'observe')
      add(
        'ModeMismatch',
        `its lifecycle runs in observe mode, but the policy (issuer ${vp.issuerName || 'none'}) implies issue: nothing renews it, the vault cannot and the lifecycle only watches (fix: remove the configured mode "observe", or give the certificate a policy its vault renews)`,
      );
    else if (implied === 'observe' && s.lifecycleMode === 'issue' && !s.modeForced)
      // a lifecycle only issues a certificate its vault renews when configured to take it over: say so, do not fail
      add(
        'ModeMismatch',
        `its lifecycle runs in issue mode, but the policy (issuer ${vp.issuerName}) is one the vault renews itself: Certflow takes it over (configured mode "issue"); the vault's own renewal is not used`,
        'warn',
      );
  }
  if (s.policy && s.notBefore && s.notAfter) {
    const lifetime = Date.parse(s.notAfter) - Date.parse(s.notBefore);
    const margin = renewalMarginMs(s.policy, s.notBefore, s.notAfter);
    const needed = requiredMarginMs(lifetime);
    if (lifetime > 0 && margin < needed) {
      const rule =
        s.policy.daysBeforeExpiry !== undefined
          ? `${s.policy.daysBeforeExpiry} days before expiry`
          : `at ${s.policy.lifetimePercentage ?? DEFAULT_LIFETIME_PERCENTAGE}% of lifetime`;
      add(
        'RenewsTooLate',
        `the policy (${rule}${s.policy.source ? `, ${s.policy.source}` : ''}) renews ${days(margin)} before expiry; ` +
          `a certificate living ${days(lifetime)} needs at least ${days(needed)} ` +
          `(fix: certflow policy ${id} --percent 80, or --days ${Math.ceil(needed / DAY_MS)} or more)`,
      );
    } else if (lifetime > 0 && s.lifecycle !== 'none' && s.lifecycleMode !== 'observe') {
      // Certflow's retry schedule is what rides out a CA outage: only where Certflow issues
      const b = safetyBuffer(margin);
      if (b.state !== 'ok') {
        const pct = safePercentage(lifetime, MIN_LIFETIME_PERCENTAGE);
        add(
          'SmallSafetyBuffer',
          `the policy (${ruleOf(s.policy)}) leaves too small a safety buffer for a certificate living ${days(lifetime)}: ${bufferText(b)} ` +
            (pct !== null
              ? `(fix: certflow policy ${id} --percent ${pct} or lower)`
              : '(fix: a longer-lived certificate: no renewal time leaves 12 hours after a one-day CA outage)'),
          b.state === 'none' ? 'fail' : 'warn',
        );
      }
    }
  }
  return findings;
}

/** KeyVault-006 for App Service Certificate orders: auto-renew on, renewals not failing. */
export function auditOrder(o: OrderAuditSubject): Finding[] {
  const findings: Finding[] = [];
  const add = (rule: AuditRuleId, message: string, severity: Severity = 'fail') =>
    findings.push({ certificateId: o.id, rule, severity, message });
  const condition = (type: string) => o.conditions.find((c) => c.type === type);
  if (!o.autoRenew)
    add(
      'OrderAutoRenewOff',
      condition('AutoRenewOff')?.message ??
        `App Service Certificate order '${o.name}' does not renew itself: auto-renew is off (fix: turn on auto-renew)`,
    );
  // a renewal that failed, or one that cannot reach Key Vault (the apps would keep the old certificate)
  for (const type of ['RenewalFailed', 'KeyVaultSyncFailed']) {
    const c = condition(type);
    if (c) add('OrderRenewalFailed', c.message);
  }
  const pending = condition('DomainVerificationPending');
  if (pending) add('OrderDomainVerificationPending', pending.message, 'warn');
  const unlinked = condition('KeyVaultNotLinked');
  if (unlinked) add('OrderRenewalFailed', unlinked.message, 'warn');
  return findings;
}

function ruleOf(p: NonNullable<AuditSubject['policy']>): string {
  const rule =
    p.daysBeforeExpiry !== undefined
      ? `${p.daysBeforeExpiry} days before expiry`
      : `at ${p.lifetimePercentage ?? DEFAULT_LIFETIME_PERCENTAGE}% of lifetime`;
  return `${rule}${p.source ? `, ${p.source}` : ''}`;
}

function days(ms: number): string {
  const d = Math.round((ms / DAY_MS) * 10) / 10;
  if (d >= 1) return `${d} day${d === 1 ? '' : 's'}`;
  const h = Math.round(ms / 3_600_000);
  return `${h} hour${h === 1 ? '' : 's'}`;
}
