/**
 * Real key material for the test Key Vault: key pairs per policy, PKCS#10 requests, self-signed certificates,
 * and the secret a certificate is backed by (PEM or PKCS#12).
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { execFile } from 'node:child_process';
import crypto, { X509Certificate, webcrypto } from 'node:crypto';
import { tools } from '../../support/tools';
import { parseSubject, type WirePolicy } from './wire';

// @peculiar/x509 picks up Node's global WebCrypto (globalThis.crypto) by itself.
type Algo = webcrypto.RsaHashedKeyGenParams | webcrypto.EcKeyGenParams;
type SignAlgo = webcrypto.Algorithm | webcrypto.EcdsaParams;

function algorithmFor(policy: WirePolicy): { gen: Algo; sign: SignAlgo } {
  const kp = policy.key_props ?? {};
  if ((kp.kty ?? 'RSA').startsWith('EC')) {
    const curve = kp.crv ?? 'P-256';
    const hash = curve === 'P-384' ? 'SHA-384' : curve === 'P-521' ? 'SHA-512' : 'SHA-256';
    return {
      gen: { name: 'ECDSA', namedCurve: curve },
      sign: { name: 'ECDSA', hash } as webcrypto.EcdsaParams,
    };
  }
  const gen: webcrypto.RsaHashedKeyGenParams = {
    name: 'RSASSA-PKCS1-v1_5',
    modulusLength: kp.key_size ?? 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: 'SHA-256',
  };
  return { gen, sign: { name: 'RSASSA-PKCS1-v1_5' } };
}

/** A new key pair as PKCS#8 DER (the vault's copy of the private key). */
export async function generateKey(policy: WirePolicy): Promise<Buffer> {
  const { gen } = algorithmFor(policy);
  const pair = (await webcrypto.subtle.generateKey(gen, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  return Buffer.from(await webcrypto.subtle.exportKey('pkcs8', pair.privateKey));
}

async function importPair(policy: WirePolicy, pkcs8: Buffer): Promise<webcrypto.CryptoKeyPair> {
  const { gen } = algorithmFor(policy);
  const privateKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, gen, true, ['sign']);
  const publicKey = await webcrypto.subtle.importKey('spki', spkiOf(pkcs8), gen, true, ['verify']);
  return { privateKey, publicKey };
}

export function spkiOf(pkcs8: Buffer): Buffer {
  const key = crypto.createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  return crypto.createPublicKey(key).export({ type: 'spki', format: 'der' });
}

const KEY_USAGE: Record<string, number> = {
  digitalSignature: x509.KeyUsageFlags.digitalSignature,
  nonRepudiation: x509.KeyUsageFlags.nonRepudiation,
  keyEncipherment: x509.KeyUsageFlags.keyEncipherment,
  dataEncipherment: x509.KeyUsageFlags.dataEncipherment,
  keyAgreement: x509.KeyUsageFlags.keyAgreement,
  keyCertSign: x509.KeyUsageFlags.keyCertSign,
  cRLSign: x509.KeyUsageFlags.cRLSign,
  encipherOnly: x509.KeyUsageFlags.encipherOnly,
  decipherOnly: x509.KeyUsageFlags.decipherOnly,
};

function extensionsFor(policy: WirePolicy): x509.Extension[] {
  const props = policy.x509_props ?? {};
  const sans: x509.JsonGeneralNames = [
    ...(props.sans?.dns_names ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(props.sans?.emails ?? []).map((value) => ({ type: 'email' as const, value })),
    ...(props.sans?.upns ?? []).map((value) => ({ type: 'upn' as const, value })),
    ...(props.sans?.uris ?? []).map((value) => ({ type: 'url' as const, value })),
    ...(props.sans?.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const usage = (props.key_usage ?? []).reduce((acc, u) => acc | (KEY_USAGE[u] ?? 0), 0);
  return [
    ...(sans.length ? [new x509.SubjectAlternativeNameExtension(sans)] : []),
    ...(usage ? [new x509.KeyUsagesExtension(usage, true)] : []),
    ...(props.ekus?.length ? [new x509.ExtendedKeyUsageExtension(props.ekus)] : []),
  ];
}

/** A PKCS#10 request in DER for the policy's subject and SANs, signed with the pending key. */
export async function buildCsr(policy: WirePolicy, pkcs8: Buffer): Promise<Buffer> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: parseSubject(policy.x509_props?.subject ?? ''),
    keys: await importPair(policy, pkcs8),
    signingAlgorithm: algorithmFor(policy).sign,
    extensions: extensionsFor(policy),
  });
  return Buffer.from(csr.rawData);
}

/** A validity window: `notBefore` to `notAfter`, epoch ms of the server's clock. */
export interface Validity {
  notBefore: number;
  notAfter: number;
}

/** The "Self" issuer: a self-signed certificate for the policy, valid for `validity`. */
export async function selfSign(policy: WirePolicy, pkcs8: Buffer, validity: Validity): Promise<Buffer> {
  const keys = await importPair(policy, pkcs8);
  const name = parseSubject(policy.x509_props?.subject ?? '');
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '01' + crypto.randomBytes(15).toString('hex'),
    subject: name,
    issuer: name,
    notBefore: new Date(validity.notBefore),
    notAfter: new Date(validity.notAfter),
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    signingAlgorithm: algorithmFor(policy).sign,
    extensions: [new x509.BasicConstraintsExtension(false, undefined, true), ...extensionsFor(policy)],
  });
  return Buffer.from(cert.rawData);
}

/** The CA behind the server's integrated issuers (DigiCert, GlobalSign): ours, made at start, EC P-256. */
export interface IssuingCa {
  certDer: Buffer;
  name: x509.Name;
  privateKey: webcrypto.CryptoKey;
}

export async function createIssuingCa(commonName: string, now: number): Promise<IssuingCa> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const name = new x509.Name(`CN=${commonName}, O=Certflow tests`);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01' + crypto.randomBytes(15).toString('hex'),
    name,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 10 * 365 * 86400_000),
    keys,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certDer: Buffer.from(cert.rawData), name, privateKey: keys.privateKey };
}

/** An integrated CA's answer: the policy's certificate for the pending key, signed by `ca`; chain leaf first. */
export async function caSign(
  ca: IssuingCa,
  policy: WirePolicy,
  pkcs8: Buffer,
  validity: Validity,
): Promise<Buffer[]> {
  const keys = await importPair(policy, pkcs8);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '02' + crypto.randomBytes(15).toString('hex'),
    subject: parseSubject(policy.x509_props?.subject ?? ''),
    issuer: ca.name,
    notBefore: new Date(validity.notBefore),
    notAfter: new Date(validity.notAfter),
    publicKey: keys.publicKey,
    signingKey: ca.privateKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      await x509.AuthorityKeyIdentifierExtension.create(new x509.X509Certificate(ca.certDer)),
      ...extensionsFor(policy),
    ],
  });
  return [Buffer.from(cert.rawData), ca.certDer];
}

export interface ParsedCert {
  spki: Buffer;
  notBefore: number; // epoch seconds
  notAfter: number;
  x5t: string; // base64url SHA-1
}

export function parseCert(der: Buffer): ParsedCert {
  const cert = new X509Certificate(der);
  return {
    spki: cert.publicKey.export({ type: 'spki', format: 'der' }),
    notBefore: Math.floor(new Date(cert.validFrom).getTime() / 1000),
    notAfter: Math.floor(new Date(cert.validTo).getTime() / 1000),
    x5t: crypto.createHash('sha1').update(der).digest('base64url'),
  };
}

export function toPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.replace(/.{1,64}/g, '$&\n')}-----END ${label}-----\n`;
}

/**
 * The backing secret's value: PEM (key then chain) or base64 PKCS#12 without a password, as Key Vault serves
 * it; without the key when it is not exportable.
 */
export async function secretValue(
  contentType: string,
  pkcs8: Buffer | undefined,
  chain: Buffer[],
): Promise<string> {
  const pem = (pkcs8 ? toPem(pkcs8, 'PRIVATE KEY') : '') + chain.map((c) => toPem(c, 'CERTIFICATE')).join('');
  if (contentType === 'application/x-pem-file') return pem;
  return (await toPkcs12(pem, pkcs8 !== undefined)).toString('base64');
}

// node has no PKCS#12 writer and node-forge cannot encode EC keys: the test server borrows openssl.
function toPkcs12(pem: string, withKey: boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      tools.openssl(),
      ['pkcs12', '-export', '-passout', 'pass:', ...(withKey ? [] : ['-nokeys'])],
      { encoding: 'buffer', maxBuffer: 1 << 20 },
      (err, stdout) =>
        err ? reject(new Error(`openssl pkcs12 -export failed (exit ${err.code ?? '?'})`)) : resolve(stdout),
    );
    child.stdin?.end(pem);
  });
}
