/**
 * Keys and CSRs for the local vault: the policy's KeySpec checked up front (what Key Vault accepts, minus HSMs),
 * keys generated with node:crypto, and the PKCS#10 request built with @peculiar/x509 from the policy's subject
 * and DNS names, signed by the key itself.
 */
import 'reflect-metadata'; // @peculiar/x509 2.x needs a Reflect polyfill loaded first
import * as x509 from '@peculiar/x509';
import crypto, { webcrypto, type KeyObject } from 'node:crypto';
import type { CertificatePolicySnapshot, KeySpec } from '../types';
import { nonRetryable } from './azure-key-vault-errors';

const RSA_SIZES = [2048, 3072, 4096];
/** Curve (Key Vault / JOSE name) → OpenSSL name and the hash Key Vault pairs with it. */
const CURVES: Record<string, { openssl: string; hash: string }> = {
  'P-256': { openssl: 'prime256v1', hash: 'SHA-256' },
  'P-384': { openssl: 'secp384r1', hash: 'SHA-384' },
  'P-521': { openssl: 'secp521r1', hash: 'SHA-512' },
};

type Shape = { type: 'RSA'; size: number } | { type: 'EC'; curve: string };

/** Refuses a policy the local vault cannot honour, naming the field and what is accepted. */
export function checkPolicy(policy: CertificatePolicySnapshot, where: string): void {
  const invalid = (field: string, expected: string) =>
    nonRetryable('PolicyInvalid', `${where}: policy.${field}: expected ${expected}.`);
  if (!policy || typeof policy !== 'object') throw invalid('', 'a certificate policy object');
  if (typeof policy.subject !== 'string' || !policy.subject.trim())
    throw invalid('subject', 'a distinguished name such as "CN=app.example.com"');
  try {
    new x509.Name(policy.subject);
  } catch {
    throw invalid('subject', 'a distinguished name such as "CN=app.example.com"');
  }
  if (
    !Array.isArray(policy.dnsNames) ||
    policy.dnsNames.some((n) => typeof n !== 'string' || !/^[A-Za-z0-9*.-]{1,253}$/.test(n))
  )
    throw invalid('dnsNames', 'a list of DNS names (letters, digits, dots, dashes, a leading "*.")');
  if (!policy.key || typeof policy.key !== 'object') throw invalid('key', 'a key specification');
  if (typeof policy.key.reuseKey !== 'boolean') throw invalid('key.reuseKey', 'true or false');
  if (typeof policy.key.exportable !== 'boolean') throw invalid('key.exportable', 'true or false');
  shapeOf(policy.key, where);
}

function shapeOf(spec: KeySpec, where: string): Shape {
  const type = String(spec.keyType).toUpperCase();
  if (type === 'RSA-HSM' || type === 'EC-HSM')
    throw nonRetryable(
      'PolicyUnsupported',
      `${where}: policy.key.keyType '${spec.keyType}' asks for a hardware-protected key, which the local vault ` +
        `cannot give (its keys are files encrypted with a key from the environment). Use 'RSA' or 'EC' here, or ` +
        `keep this certificate in Azure Key Vault Premium / Managed HSM.`,
    );
  if (type === 'RSA') {
    const size = spec.keySize ?? 2048;
    if (!RSA_SIZES.includes(size))
      throw nonRetryable(
        'PolicyInvalid',
        `${where}: policy.key.keySize: expected one of ${RSA_SIZES.join(', ')} for RSA, got ${String(spec.keySize)}.`,
      );
    return { type, size };
  }
  if (type === 'EC') {
    const curve = spec.curve ?? 'P-256';
    if (!CURVES[curve])
      throw nonRetryable(
        'PolicyInvalid',
        `${where}: policy.key.curve: expected one of ${Object.keys(CURVES).join(', ')}, got ${String(spec.curve)}.`,
      );
    return { type, curve };
  }
  throw nonRetryable(
    'PolicyInvalid',
    `${where}: policy.key.keyType: expected 'RSA' or 'EC', got '${String(spec.keyType)}'.`,
  );
}

export function generateKey(spec: KeySpec, where: string): Promise<KeyObject> {
  const shape = shapeOf(spec, where);
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, _pub: KeyObject, priv: KeyObject) => (err ? reject(err) : resolve(priv));
    if (shape.type === 'RSA') crypto.generateKeyPair('rsa', { modulusLength: shape.size }, done);
    else crypto.generateKeyPair('ec', { namedCurve: CURVES[shape.curve]!.openssl }, done);
  });
}

/** Whether an existing key has the shape the policy asks for (reuseKey only reuses a key that still fits). */
export function keyFits(key: KeyObject, spec: KeySpec, where: string): boolean {
  const shape = shapeOf(spec, where);
  const details = key.asymmetricKeyDetails ?? {};
  return shape.type === 'RSA'
    ? key.asymmetricKeyType === 'rsa' && details.modulusLength === shape.size
    : key.asymmetricKeyType === 'ec' && details.namedCurve === CURVES[shape.curve]!.openssl;
}

export function spkiOf(key: KeyObject): Buffer {
  return crypto.createPublicKey(key).export({ type: 'spki', format: 'der' });
}

/** A PKCS#10 request in PEM for the policy's subject and DNS names, signed with `key`. */
export async function buildCsr(key: KeyObject, policy: CertificatePolicySnapshot): Promise<string> {
  const { importParams, signingAlgorithm } = algorithmsOf(key);
  const subtle = webcrypto.subtle;
  const keys = {
    privateKey: await subtle.importKey(
      'pkcs8',
      key.export({ type: 'pkcs8', format: 'der' }),
      importParams,
      false,
      ['sign'],
    ),
    publicKey: await subtle.importKey('spki', spkiOf(key), importParams, true, ['verify']),
  };
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: policy.subject,
    keys: keys as x509.Pkcs10CertificateRequestCreateParams['keys'],
    signingAlgorithm,
    extensions: policy.dnsNames.length
      ? [new x509.SubjectAlternativeNameExtension(policy.dnsNames.map((value) => ({ type: 'dns', value })))]
      : [],
  });
  return csr.toString('pem');
}

function algorithmsOf(key: KeyObject): {
  importParams: webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams;
  signingAlgorithm: webcrypto.Algorithm | webcrypto.EcdsaParams;
} {
  if (key.asymmetricKeyType === 'rsa')
    return {
      importParams: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
      signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5' },
    };
  const curve = Object.entries(CURVES).find(([, c]) => c.openssl === key.asymmetricKeyDetails?.namedCurve);
  if (key.asymmetricKeyType !== 'ec' || !curve)
    throw new Error(`unsupported key type ${key.asymmetricKeyType ?? 'unknown'} for a CSR`);
  return {
    importParams: { name: 'ECDSA', namedCurve: curve[0] },
    signingAlgorithm: { name: 'ECDSA', hash: curve[1].hash },
  };
}
