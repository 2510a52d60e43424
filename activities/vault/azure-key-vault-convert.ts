/**
 * Key Vault's certificate shapes to ours (state, listing summary) and PEM/DER chains both ways.
 * Public material only: certificates, thumbprints, tags.
 */
import type {
  CertificateOperation,
  CertificateProperties,
  KeyVaultCertificate,
  KeyVaultCertificateWithPolicy,
} from '@azure/keyvault-certificates';
import { X509Certificate } from 'node:crypto';
import type { CertificateState, CertificateSummary } from '../types';
import { keyShapeOf } from './key-shape';
import { thumbprintOf } from '../verify/thumbprint';
import { nonRetryable } from './azure-key-vault-errors';
import { snapshot } from './azure-key-vault-policy';

export function toState(
  vault: string,
  name: string,
  latest: KeyVaultCertificateWithPolicy,
  current: KeyVaultCertificate | undefined,
  operation: CertificateOperation | undefined,
): CertificateState {
  const x509 = current?.cer?.length ? new X509Certificate(current.cer) : undefined;
  return {
    id: `${vault}/${name}`,
    vault,
    name,
    version: current?.properties.version ?? null,
    thumbprint: thumbprintOfVersion(current),
    notBefore: x509 ? new Date(x509.validFrom).toISOString() : null,
    notAfter: x509 ? new Date(x509.validTo).toISOString() : null,
    subject: x509 ? x509.subject.split('\n').join(', ') : null,
    dnsNames: x509 ? dnsNamesOf(x509) : [],
    tags: { ...(current?.properties.tags ?? latest.properties.tags ?? {}) },
    policy: latest.policy ? snapshot(latest.policy) : null,
    key: x509 ? keyShapeOf(x509) : null,
    // a cancelled operation (real Key Vault: still inProgress, cancellationRequested) waits for nothing
    pendingOperation: operation?.status === 'inProgress' && !operation.cancellationRequested,
  };
}

/**
 * One listed certificate. `current` is its newest version with a certificate, read in full (listings carry
 * no version and, on some emulators, no tags); undefined for a certificate still waiting for its first merge.
 */
export function toSummary(
  vault: string,
  listed: CertificateProperties,
  current: KeyVaultCertificate | undefined,
): CertificateSummary {
  const name = listed.name ?? '';
  const notAfter = current?.properties.expiresOn ?? (current ? listed.expiresOn : undefined);
  return {
    id: `${vault}/${name}`,
    name,
    version: current?.properties.version ?? null,
    thumbprint: thumbprintOfVersion(current),
    notAfter: notAfter ? notAfter.toISOString() : null,
    enabled: current?.properties.enabled ?? listed.enabled ?? false,
    tags: { ...(current?.properties.tags ?? listed.tags ?? {}) },
  };
}

/** Key Vault's x5t (the SHA-1 it computed), or the thumbprint of the certificate's bytes. */
function thumbprintOfVersion(cert: KeyVaultCertificate | undefined): string | null {
  if (cert?.properties.x509Thumbprint?.length)
    return Buffer.from(cert.properties.x509Thumbprint).toString('hex').toUpperCase();
  return cert?.cer?.length ? thumbprintOf(cert.cer) : null;
}

function dnsNamesOf(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '')
    .split(/,\s*/)
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4));
}

/** PEM blocks (one or more per string, leaf first) to DER, each checked to be an X.509 certificate. */
export function parseChain(certName: string, chainPem: string[]): Buffer[] {
  const ders = chainPem.flatMap((pem) =>
    [...pem.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)].map((m) =>
      Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64'),
    ),
  );
  if (ders.length === 0)
    throw nonRetryable(
      'InvalidChain',
      `merge into '${certName}': expected a PEM certificate chain (leaf first), got no CERTIFICATE block.`,
    );
  ders.forEach((der, i) => {
    try {
      new X509Certificate(der);
    } catch {
      throw nonRetryable(
        'InvalidChain',
        `merge into '${certName}': certificate #${i + 1} of the chain is not a valid X.509 certificate.`,
      );
    }
  });
  return ders;
}

export function toPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.replace(/.{1,64}/g, '$&\n')}-----END ${label}-----\n`;
}
