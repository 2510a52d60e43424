/**
 * What to look for in histories and logs to find a private key, however it was written: for each private
 * component of the key (EC: d; RSA: d, p, q), its hex, base64 and base64url forms, and a stretch of the base64 of
 * each DER encoding (PKCS#8, and SEC1 or PKCS#1) that lies wholly inside that component, aligned so that it
 * appears in the base64 of the whole encoding (a PEM body, a PKCS#12 or a JSON field). Never a stretch of a
 * public part (an RSA modulus is in every certificate), nor of a header common to all keys of a type.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';

const NEEDLE = 32; // characters: 24 bytes of base64, 16 bytes of hex; no false matches at that length

export function privateKeyNeedles(key: KeyObject | string | Buffer): string[] {
  const k =
    typeof key === 'string'
      ? createPrivateKey(key)
      : Buffer.isBuffer(key)
        ? createPrivateKey({ key, format: 'der', type: 'pkcs8' })
        : key;
  const jwk = k.export({ format: 'jwk' });
  const parts = [jwk.d, jwk.p, jwk.q]
    .filter((v): v is string => typeof v === 'string')
    .map((v) => Buffer.from(v, 'base64url'));
  const encodings = [k.export({ type: 'pkcs8', format: 'der' })];
  if (k.asymmetricKeyType === 'ec') encodings.push(k.export({ type: 'sec1', format: 'der' }));
  if (k.asymmetricKeyType === 'rsa') encodings.push(k.export({ type: 'pkcs1', format: 'der' }));
  const needles = new Set<string>();
  for (const part of parts) {
    needles.add(part.toString('hex').slice(0, NEEDLE));
    needles.add(part.toString('base64').slice(0, NEEDLE));
    needles.add(part.toString('base64url').slice(0, NEEDLE));
    for (const der of encodings) {
      const at = der.indexOf(part);
      if (at < 0) continue;
      const from = Math.ceil(at / 3) * 3; // the first byte of the part that starts a base64 group
      if (from + (NEEDLE / 4) * 3 > at + part.length) continue;
      needles.add(der.toString('base64').slice((from / 3) * 4, (from / 3) * 4 + NEEDLE));
    }
  }
  return [...needles];
}

/** Needles for a secret value: a private key in it (PEM), else a stretch from its middle (long values only). */
export function secretValueNeedles(value: string): string[] {
  const pem = /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]+?-----END [A-Z ]*PRIVATE KEY-----/.exec(value);
  if (pem) return privateKeyNeedles(pem[0]);
  if (value.length < 40) return value.length >= 16 ? [value] : [];
  const mid = Math.floor(value.length / 2);
  return [value.slice(mid - 16, mid + 16)];
}
