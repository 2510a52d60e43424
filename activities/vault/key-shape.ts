import type { X509Certificate } from 'node:crypto';

const CURVES: Record<string, string> = {
  prime256v1: 'P-256',
  secp384r1: 'P-384',
  secp521r1: 'P-521',
  secp256k1: 'P-256K',
};

/** The key of a certificate in Key Vault's words ('RSA' + size, 'EC' + curve), to compare with its policy. */
export function keyShapeOf(cert: X509Certificate): { type: string; size?: number; curve?: string } | null {
  const key = cert.publicKey;
  const d = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'rsa')
    return { type: 'RSA', ...(d?.modulusLength ? { size: d.modulusLength } : {}) };
  if (key.asymmetricKeyType === 'ec') {
    const curve = d?.namedCurve ? (CURVES[d.namedCurve] ?? d.namedCurve) : undefined;
    return { type: 'EC', ...(curve ? { curve } : {}) };
  }
  return null;
}
