/**
 * Helpers shared by the ACME tests: CSRs made outside the issuer (like the vault does), account keys,
 * requests, a reader for the test DNS server, and unwrapping a classified failure.
 */
import 'reflect-metadata';
import { generateKeyPairSync, randomBytes, webcrypto } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import * as x509 from '@peculiar/x509';
import type { IssueRequest } from '../../activities/types';
export { failureOf } from './failure';

export type Kind = 'EC' | 'RSA';
const GEN = {
  EC: { name: 'ECDSA', namedCurve: 'P-256' },
  RSA: {
    name: 'RSASSA-PKCS1-v1_5',
    modulusLength: 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: 'SHA-256',
  },
} as const;
const SIGN = { EC: { name: 'ECDSA', hash: 'SHA-256' }, RSA: { name: 'RSASSA-PKCS1-v1_5' } } as const;

/** A key pair and CSR made outside the issuer, like the vault does; the private key is not extractable. */
export async function makeCsr(kind: Kind, names: string[]): Promise<string> {
  const keys = (await webcrypto.subtle.generateKey(GEN[kind], false, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${names[0]}`,
    keys,
    signingAlgorithm: SIGN[kind],
    extensions: [
      new x509.SubjectAlternativeNameExtension(names.map((value) => ({ type: 'dns' as const, value }))),
    ],
  });
  return csr.toString('pem');
}

export const accountKey = () =>
  generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  }) as string;

export const uniq = () => randomBytes(4).toString('hex');

export function request(names: string[], csrPem: string): IssueRequest {
  return { certificateId: `test/${names[0]}`, csrPem, dnsNames: names };
}

/** TXT values of a name as the DNS server at 127.0.0.1:port answers them ([] when there are none). */
export function dnsReader(port: number) {
  const resolver = new Resolver({ timeout: 2_000, tries: 1 });
  resolver.setServers([`127.0.0.1:${port}`]);
  return async (fqdn: string): Promise<string[]> => {
    try {
      return (await resolver.resolveTxt(fqdn)).map((chunks) => chunks.join(''));
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ENODATA' || code === 'ENOTFOUND') return [];
      throw err;
    }
  };
}
