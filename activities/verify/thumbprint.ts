/**
 * Certificate thumbprints, one way everywhere: SHA-1 of the DER in uppercase hex without separators (App Service
 * and Key Vault's portal style). Compare with `sameThumbprint` (case and separators ignored).
 */
import { X509Certificate } from 'node:crypto';
import { parseX509 } from './parsed';

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;

/** The thumbprint of a certificate given parsed, as DER bytes, or as PEM (the first certificate in the text). */
export function thumbprintOf(cert: X509Certificate | Uint8Array | string): string {
  const x509 =
    cert instanceof X509Certificate
      ? cert
      : typeof cert === 'string'
        ? parseX509(PEM_CERT.exec(cert)?.[0] ?? cert)
        : new X509Certificate(cert);
  return x509.fingerprint.replace(/:/g, '').toUpperCase();
}

/** The thumbprint of the first certificate in PEM text, or null when there is none (or it cannot be parsed). */
export function pemLeafThumbprint(pem: string): string | null {
  const block = PEM_CERT.exec(pem)?.[0];
  if (!block) return null;
  try {
    return thumbprintOf(block);
  } catch {
    return null;
  }
}

/** A thumbprint as written anywhere (colons, spaces, lowercase) in the one form. */
export function normalizeThumbprint(t: string): string {
  return t.replace(/[:\s]/g, '').toUpperCase();
}

export function sameThumbprint(a: string | null | undefined, b: string | null | undefined): boolean {
  return !!a && !!b && normalizeThumbprint(a) === normalizeThumbprint(b);
}
