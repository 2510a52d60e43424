/**
 * The throwaway test CA (test/support/test-ca.ts) that other tests use to sign CSRs and make TLS certificates.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import crypto, { X509Certificate, webcrypto } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createTestCa } from '../support/test-ca';

async function makeCsr(
  alg: webcrypto.RsaHashedKeyGenParams | webcrypto.EcKeyGenParams,
  sign: webcrypto.Algorithm | webcrypto.EcdsaParams,
) {
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=app.example.test',
    keys,
    signingAlgorithm: sign,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'app.example.test' }])],
  });
  return {
    pem: csr.toString('pem'),
    spki: Buffer.from(await webcrypto.subtle.exportKey('spki', keys.publicKey)),
  };
}

describe('createTestCa', () => {
  it.each([
    ['rsa', 'EC P-384', { name: 'ECDSA', namedCurve: 'P-384' }, { name: 'ECDSA', hash: 'SHA-384' }],
    [
      'ec',
      'RSA 2048',
      {
        name: 'RSASSA-PKCS1-v1_5',
        modulusLength: 2048,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: 'SHA-256',
      },
      { name: 'RSASSA-PKCS1-v1_5' },
    ],
  ] as const)('a %s CA signs an %s CSR into a leaf that chains to it', async (caKey, _what, alg, sign) => {
    const ca = createTestCa({ keyType: caKey });
    const csr = await makeCsr(alg, sign);
    const leaf = new X509Certificate(ca.signCsr(csr.pem, { minutes: 5 }));
    const root = new X509Certificate(ca.caCertPem);
    expect(leaf.checkIssued(root)).toBe(true);
    expect(leaf.verify(root.publicKey)).toBe(true);
    expect(leaf.publicKey.export({ type: 'spki', format: 'der' }).equals(csr.spki)).toBe(true);
    expect(leaf.subject).toBe('CN=app.example.test');
    expect(leaf.subjectAltName).toBe('DNS:app.example.test');
    expect(leaf.ca).toBe(false);
    const lifetime = new Date(leaf.validTo).getTime() - Date.now();
    expect(lifetime).toBeGreaterThan(4 * 60_000);
    expect(lifetime).toBeLessThanOrEqual(5 * 60_000);
    expect(root.ca).toBe(true);
  });

  it('overrides SANs on request and refuses a CSR whose signature does not verify', async () => {
    const ca = createTestCa({ keyType: 'ec' });
    const csr = await makeCsr({ name: 'ECDSA', namedCurve: 'P-256' }, { name: 'ECDSA', hash: 'SHA-256' });
    const leaf = new X509Certificate(ca.signCsr(csr.pem, { dnsNames: ['a.example.test', '10.1.2.3'] }));
    expect(leaf.subjectAltName).toBe('DNS:a.example.test, IP Address:10.1.2.3');

    const der = Buffer.from(csr.pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 5] = (der[der.length - 5] ?? 0) ^ 0xff; // inside the signature
    expect(() => ca.signCsr(der)).toThrow(/signature does not verify/);
  });

  it('issues a server certificate that a TLS client trusting only the CA accepts for 127.0.0.1', async () => {
    const ca = createTestCa();
    const { certPem, keyPem } = ca.issueServerCert(['127.0.0.1', 'localhost']);
    const server = https.createServer({ cert: certPem, key: keyPem }, (_req, res) => res.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { port } = server.address() as AddressInfo;
      const body = await new Promise<string>((resolve, reject) => {
        https
          .get(`https://127.0.0.1:${port}/`, { ca: ca.caCertPem }, (res) => {
            let text = '';
            res.on('data', (c) => (text += c));
            res.on('end', () => resolve(text));
          })
          .on('error', reject);
      });
      expect(body).toBe('ok');
      const otherCa = createTestCa({ keyType: 'ec' });
      const refused = await new Promise<string>((resolve) => {
        https
          .get(`https://127.0.0.1:${port}/`, { ca: otherCa.caCertPem }, () => resolve('accepted'))
          .on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      });
      expect(refused).not.toBe('accepted');
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
    expect(crypto.createPrivateKey(keyPem).asymmetricKeyType).toBe('ec');
  });
});
