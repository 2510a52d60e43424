/**
 * Why a certificate is renewed: a chain of small named rules, first hit wins, in the way cert-manager's
 * `trigger/policies` reads. Each rule looks at the facts and answers with a message, or nothing. Reasons are stable
 * identifiers shown in status, the Web UI and emails. Pure: shared by the lifecycle, the legacy v2 code and tests.
 *
 * Automatic rules are silent while the last attempt failed: then `Retry` decides when to try again, so a failing
 * certificate is retried with backoff instead of in a loop.
 */
import type { CertificateState } from '../../activities/types';
import type { RenewRequest } from '../messages';
import type { KeyShape, ObservedCertificate, RenewalPlan } from '../policy';

export type TriggerReason = 'Missing' | 'Expired' | 'PolicyChanged' | 'Manual' | 'Retry' | 'NearingRenewal';

export interface Trigger {
  reason: TriggerReason;
  message: string;
}

export interface TriggerFacts {
  cert: ObservedCertificate;
  now: Date;
  /** The renewal time under the policy in force (null without a current version). */
  plan: RenewalPlan | null;
  /** A person's request waiting to run. */
  manual: RenewRequest | null;
  /** Failed attempts in a row, when the next may start, and what the last one was about. */
  failures: number;
  retryAt: Date | null;
  lastTrigger?: string;
  lastErrorType?: string;
}

export interface TriggerRule {
  name: TriggerReason;
  /** Automatic rules stay silent while attempts are failing (Retry takes over). */
  automatic: boolean;
  check(f: TriggerFacts): string | undefined;
}

const sameNames = (a: string[], b: string[]): boolean => {
  const norm = (x: string[]) => [...new Set(x.map((n) => n.toLowerCase()))].sort().join(',');
  return norm(a) === norm(b);
};
const family = (t: string): string => t.toUpperCase().replace(/-HSM$/, '');

/** How the key the policy asks for differs from the certificate's key, or undefined when it does not. */
export function keyDifference(want?: KeyShape, have?: KeyShape): string | undefined {
  if (!want || !have) return undefined;
  if (family(want.type) !== family(have.type))
    return `the policy asks for a ${want.type} key, the certificate has ${have.type}`;
  if (family(want.type) === 'RSA' && want.size && have.size && want.size !== have.size)
    return `the policy asks for RSA ${want.size}, the certificate has RSA ${have.size}`;
  if (family(want.type) === 'EC' && want.curve && have.curve && want.curve !== have.curve)
    return `the policy asks for curve ${want.curve}, the certificate has ${have.curve}`;
  return undefined;
}

export const Missing: TriggerRule = {
  name: 'Missing',
  automatic: true,
  check: (f) => (f.cert.version ? undefined : 'the certificate has no issued version yet'),
};

export const Expired: TriggerRule = {
  name: 'Expired',
  automatic: true,
  check: (f) =>
    f.cert.notAfter && Date.parse(f.cert.notAfter) <= f.now.getTime()
      ? `the certificate expired at ${f.cert.notAfter}`
      : undefined,
};

export const PolicyChanged: TriggerRule = {
  name: 'PolicyChanged',
  automatic: true,
  check: ({ cert: c }) => {
    if (c.policyDnsNames?.length && c.dnsNames && !sameNames(c.policyDnsNames, c.dnsNames))
      return `the policy asks for names [${c.policyDnsNames.join(', ')}], the certificate has [${c.dnsNames.join(', ')}]`;
    return keyDifference(c.policyKey, c.key);
  },
};

export const Manual: TriggerRule = {
  name: 'Manual',
  automatic: false,
  check: (f) => (f.manual ? f.manual.reason || 'manual renew requested' : undefined),
};

export const Retry: TriggerRule = {
  name: 'Retry',
  automatic: false,
  check: (f) =>
    f.failures > 0 && f.retryAt && f.retryAt <= f.now
      ? `retry #${f.failures} of ${f.lastTrigger ?? 'the renewal'} after ${f.lastErrorType ?? 'a failure'}`
      : undefined,
};

export const NearingRenewal: TriggerRule = {
  name: 'NearingRenewal',
  automatic: true,
  check: ({ plan, now }) => {
    if (!plan || plan.at.getTime() > now.getTime()) return undefined;
    if (plan.basis === 'ari')
      return `the CA's renewal window (ARI) has opened: renewing at ${plan.at.toISOString()}`;
    if (plan.basis === 'fallback') return `renewal time ${plan.at.toISOString()} has come (${plan.note})`;
    return `renewal time ${plan.at.toISOString()} has come`;
  },
};

/** The chain, in order. */
export const TRIGGER_RULES: readonly TriggerRule[] = [
  Missing,
  Expired,
  PolicyChanged,
  Manual,
  Retry,
  NearingRenewal,
];

/** The first rule that fires, or undefined when the certificate can wait. */
export function firstTrigger(
  f: TriggerFacts,
  rules: readonly TriggerRule[] = TRIGGER_RULES,
): Trigger | undefined {
  for (const rule of rules) {
    if (rule.automatic && f.failures > 0) continue;
    const message = rule.check(f);
    if (message !== undefined) return { reason: rule.name, message };
  }
  return undefined;
}

/** The rule inputs of an observation: the certificate, and what its policy asks for. */
export function observedOf(o: CertificateState | null): ObservedCertificate {
  return {
    version: o?.version ?? null,
    notBefore: o?.notBefore ?? null,
    notAfter: o?.notAfter ?? null,
    dnsNames: o?.dnsNames,
    policyDnsNames: o?.policy?.dnsNames,
    key: o?.key ?? undefined,
    policyKey: o?.policy
      ? { type: o.policy.key.keyType, size: o.policy.key.keySize, curve: o.policy.key.curve }
      : undefined,
  };
}
