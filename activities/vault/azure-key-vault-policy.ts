/**
 * Certificate policies between Key Vault's shape (@azure/keyvault-certificates) and ours
 * (CertificatePolicySnapshot). A snapshot shows any policy as it is (an integrated CA or Self with AutoRenew
 * too: observe mode reads it); the policies Certflow writes are for the "Unknown" issuer: Key Vault makes the key
 * and the CSR, a CA elsewhere signs it, and the only lifetime action Key Vault allows for such a certificate is
 * an email.
 */
import type { CertificatePolicy } from '@azure/keyvault-certificates';
import type { CertificatePolicySnapshot } from '../types';
import { nonRetryable } from './azure-key-vault-errors';

const KEY_TYPES = new Set(['RSA', 'RSA-HSM', 'EC', 'EC-HSM']);

/**
 * The certificate's own policy, pointed at the Unknown issuer (whose lifetime action can only be to email).
 * Only for a certificate Certflow owns: one the vault renews itself is taken over only when configured so
 * (beginRenewal's `takeOver`), since this switches off the vault's own renewal.
 */
export function renewalPolicy(policy: CertificatePolicy): CertificatePolicy {
  const { certificateType: _t, certificateTransparency: _ct, ...rest } = policy;
  return {
    ...rest,
    issuerName: 'Unknown',
    lifetimeActions: policy.lifetimeActions?.map((a) => ({ ...a, action: 'EmailContacts' as const })),
  } as CertificatePolicy;
}

export function snapshot(p: CertificatePolicy): CertificatePolicySnapshot {
  // the action that renews wins over a reminder: its trigger is when the vault makes the next version
  const action = p.lifetimeActions?.find((a) => a.action === 'AutoRenew') ?? p.lifetimeActions?.[0];
  const kind = action?.action;
  return {
    subject: p.subject ?? '',
    dnsNames: [...(p.subjectAlternativeNames?.dnsNames ?? [])],
    issuerName: p.issuerName ?? '',
    key: {
      keyType: p.keyType ?? 'RSA',
      ...(p.keySize !== undefined ? { keySize: p.keySize } : {}),
      ...(p.keyCurveName !== undefined ? { curve: p.keyCurveName } : {}),
      reuseKey: p.reuseKey ?? false,
      exportable: p.exportable ?? false,
    },
    ...(p.validityInMonths !== undefined ? { validityInMonths: p.validityInMonths } : {}),
    ...(action?.lifetimePercentage !== undefined ? { lifetimePercentage: action.lifetimePercentage } : {}),
    ...(action?.daysBeforeExpiry !== undefined ? { daysBeforeExpiry: action.daysBeforeExpiry } : {}),
    ...(kind === 'AutoRenew' || kind === 'EmailContacts' ? { lifetimeAction: kind } : {}),
  };
}

/**
 * The policy of a new certificate from a snapshot, issuer Unknown whatever the snapshot names. The secret's
 * content type stays Key Vault's default (PKCS#12), which App Service requires when it imports the certificate.
 * HSM key types (Key Vault Premium) are never exportable: Key Vault refuses the combination, and so do we,
 * before asking it.
 */
export function policyFromSnapshot(certName: string, s: CertificatePolicySnapshot): CertificatePolicy {
  const invalid = (what: string) =>
    nonRetryable('InvalidPolicy', `the policy for new certificate '${certName}' is invalid: ${what}.`);
  const { keyType, keySize, curve, reuseKey, exportable } = s.key;
  if (!KEY_TYPES.has(keyType))
    throw invalid(`key.keyType must be RSA, RSA-HSM, EC or EC-HSM, got '${keyType}'`);
  if (keyType.endsWith('-HSM') && exportable)
    throw invalid(
      `key.exportable must be false for an HSM key (${keyType}): its private key never leaves the HSM`,
    );
  const ec = keyType.startsWith('EC');
  const dnsNames = [...new Set(s.dnsNames.map((n) => n.trim()).filter(Boolean))];
  const subject = s.subject.trim() || (dnsNames[0] ? `CN=${dnsNames[0]}` : '');
  if (!subject) throw invalid('give a subject (e.g. "CN=app.example.com") or at least one DNS name');
  if (s.lifetimePercentage !== undefined && s.daysBeforeExpiry !== undefined)
    throw invalid('give lifetimePercentage or daysBeforeExpiry, not both');
  const trigger =
    s.lifetimePercentage !== undefined
      ? { lifetimePercentage: s.lifetimePercentage }
      : s.daysBeforeExpiry !== undefined
        ? { daysBeforeExpiry: s.daysBeforeExpiry }
        : undefined;
  return {
    issuerName: 'Unknown',
    subject,
    ...(dnsNames.length ? { subjectAlternativeNames: { dnsNames } } : {}),
    keyType: keyType as CertificatePolicy['keyType'],
    ...(ec ? { keyCurveName: (curve ?? 'P-256') as CertificatePolicy['keyCurveName'] } : {}),
    ...(!ec ? { keySize: keySize ?? 2048 } : {}),
    reuseKey,
    exportable,
    ...(s.validityInMonths !== undefined ? { validityInMonths: s.validityInMonths } : {}),
    ...(trigger ? { lifetimeActions: [{ action: 'EmailContacts' as const, ...trigger }] } : {}),
  } as CertificatePolicy;
}
