/**
 * The two kinds of certificate (DESIGN.md): `issue` (Certflow gets each version from its configured CA) and
 * `observe` (the vault renews the certificate itself; Certflow notices the new version, re-binds and tells people,
 * and never changes the policy or issuer). One source of truth for the rule, shared by workflows, activities
 * (the vault adapters' guard), the client (status, audit) and the worker (discovery).
 */
import type { CertificatePolicySnapshot } from '../../activities/types';

export type CertificateMode = 'issue' | 'observe';
export const CERTIFICATE_MODES = ['issue', 'observe'] as const satisfies readonly CertificateMode[];

/** Issuer names Key Vault renews by itself: its integrated CAs and self-signed. Compared case-insensitively. */
export const VAULT_ISSUERS = ['Self', 'DigiCert', 'GlobalSign'] as const;

/**
 * True when the vault renews this certificate by itself, or would if its lifetime action said so: any issuer
 * other than `Unknown` (Key Vault's name for "a CA outside the vault"). A certificate without a policy, or with
 * an empty issuer, is not the vault's.
 */
export function vaultRenewsItself(
  policy: Pick<CertificatePolicySnapshot, 'issuerName'> | null | undefined,
): boolean {
  const issuer = policy?.issuerName?.trim() ?? '';
  return issuer !== '' && issuer.toLowerCase() !== 'unknown';
}

/** The mode a certificate's policy implies; a configured mode (`forced`) wins. */
export function certificateMode(
  policy: Pick<CertificatePolicySnapshot, 'issuerName'> | null | undefined,
  forced?: CertificateMode,
): CertificateMode {
  if (forced) return forced;
  return vaultRenewsItself(policy) ? 'observe' : 'issue';
}
