/**
 * The dev CA: leaves for RSA and EC CSRs with the extensions TLS and our verification expect, unique serials,
 * minute-scale validity, a CA that survives a restart (encrypted or not), and bad CSRs or CA files refused.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto, X509Certificate } from 'node:crypto';
import { mkdtempSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createDevCaIssuer, type DevCaIssuerOptions } from '../../activities/issuers/dev-ca';
import type { Issued } from '../../activities/types';
import { verifyIssuedChain } from '../../activities/verify/x509';
import { failureOf } from '../support/failure';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'certflow-dev-ca-'));
const dirs = { n: 0 };
const freshDir = () => path.join(tmp, `ca-${++dirs.n}`);

afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

type KeyAlg = 'rsa-2048' | 'ec-p256' | 'ec-p384' | 'rsa-1024';
const ALGORITHMS: Record<KeyAlg, webcrypto.RsaHashedKeyGenParams | webcrypto.EcKeyGenParams> = {
  'rsa-2048': {
    name: 'RSASSA-PKCS1-v1_5',
    hash: 'SHA-256',
    publicExponent: new Uint8Array([1, 0, 1]),
    modulusLength: 2048,
  },
  'rsa-1024': {
    name: 'RSASSA-PKCS1-v1_5',
    hash: 'SHA-256',
    publicExponent: new Uint8Array([1, 0, 1]),
    modulusLength: 1024,
  },
  'ec-p256': { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as webcrypto.EcKeyGenParams,
  'ec-p384': { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' } as webcrypto.EcKeyGenParams,
};

async function makeCsr(alg: KeyAlg, names = ['app.example.test', 'www.example.test']): Promise<string> {
  const algorithm = ALGORITHMS[alg];
  const keys = (await webcrypto.subtle.generateKey(algorithm, false, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      name: `CN=${names[0]}`,
      keys,
      signingAlgorithm: algorithm,
      extensions: [
        new x509.SubjectAlternativeNameExtension(names.map((value) => ({ type: 'dns' as const, value }))),
      ],
    },
    webcrypto,
  );
  return csr.toString('pem');
}

const devCa = (o: Partial<DevCaIssuerOptions> = {}) =>
  createDevCaIssuer({ name: 'test', dir: o.dir ?? freshDir(), validity: { days: 30 }, ...o });

async function issue(
  ca: ReturnType<typeof devCa>,
  csrPem: string,
  dnsNames: string[] = [],
): Promise<string[]> {
  const r = (await ca.submit({ certificateId: 'kv/app', csrPem, dnsNames })) as Issued;
  expect(r.status).toBe('issued');
  return r.chainPem;
}

const failure = failureOf;

describe('leaf certificates', () => {
  it.each<KeyAlg>(['rsa-2048', 'ec-p256', 'ec-p384'])(
    'issues for a %s CSR with TLS server extensions',
    async (alg) => {
      const ca = devCa();
      const csrPem = await makeCsr(alg);
      const chain = await issue(ca, csrPem, ['app.example.test', 'www.example.test']);
      expect(chain).toHaveLength(2);
      const [leafPem, intermediatePem] = chain as [string, string];
      const rootPem = await ca.rootPem();

      const leaf = new X509Certificate(leafPem);
      expect(leaf.subject).toBe('CN=app.example.test');
      expect(leaf.subjectAltName).toBe('DNS:app.example.test, DNS:www.example.test');
      expect(leaf.ca).toBe(false);
      expect(leaf.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // node's name for the EKU list: serverAuth only
      expect(leaf.publicKey.asymmetricKeyType).toBe(alg.startsWith('rsa') ? 'rsa' : 'ec');

      const ext = new x509.X509Certificate(leafPem);
      const bc = ext.getExtension(x509.BasicConstraintsExtension)!;
      expect([bc.ca, bc.critical]).toEqual([false, true]);
      const ku = ext.getExtension(x509.KeyUsagesExtension)!;
      const rsa = alg.startsWith('rsa');
      expect(ku.usages).toBe(
        x509.KeyUsageFlags.digitalSignature | (rsa ? x509.KeyUsageFlags.keyEncipherment : 0),
      );
      const ski = ext.getExtension(x509.SubjectKeyIdentifierExtension)!;
      expect(ski.keyId).toBe(Buffer.from(await ext.publicKey.getKeyIdentifier(webcrypto)).toString('hex'));
      const inter = new x509.X509Certificate(intermediatePem);
      const interSki = inter.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId;
      expect(ext.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId).toBe(interSki);

      const interBc = inter.getExtension(x509.BasicConstraintsExtension)!;
      expect([interBc.ca, interBc.pathLength, interBc.critical]).toEqual([true, 0, true]);
      const root = new x509.X509Certificate(rootPem);
      expect(await root.isSelfSigned(webcrypto)).toBe(true);
      expect(inter.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId).toBe(
        root.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId,
      );

      const verified = await verifyIssuedChain({
        csrPem,
        chainPem: chain,
        expectedDnsNames: ['app.example.test', 'www.example.test'],
        now: new Date(),
        trustAnchorsPem: [rootPem],
      });
      expect(verified.serialNumber).toBe(leaf.serialNumber.toUpperCase());
    },
  );

  it('takes the CSR names when the request names none, and honours the request names when it does', async () => {
    const ca = devCa();
    const csrPem = await makeCsr('ec-p256', ['a.example.test', 'b.example.test']);
    const [fromCsr] = await issue(ca, csrPem);
    expect(new X509Certificate(fromCsr!).subjectAltName).toBe('DNS:a.example.test, DNS:b.example.test');
    const [fromRequest] = await issue(ca, csrPem, ['A.example.test']);
    expect(new X509Certificate(fromRequest!).subjectAltName).toBe('DNS:a.example.test');
  });

  it('gives every leaf its own random, positive 16-byte serial (50 issuances)', async () => {
    const ca = devCa();
    const csrPem = await makeCsr('ec-p256');
    const serials: string[] = [];
    for (let i = 0; i < 50; i++)
      serials.push(new X509Certificate((await issue(ca, csrPem))[0]!).serialNumber);
    expect(new Set(serials).size).toBe(50);
    for (const s of serials) {
      expect(s).toMatch(/^[0-9A-F]{32}$/);
      expect(parseInt(s.slice(0, 2), 16)).toBeLessThan(0x80);
    }
  });

  it('issues for minutes, backdating notBefore one minute for clock skew', async () => {
    const at = new Date('2026-03-01T12:00:00.000Z');
    const ca = devCa({ validity: { minutes: 5 }, now: () => at });
    const [leafPem] = await issue(ca, await makeCsr('ec-p256'));
    const leaf = new X509Certificate(leafPem!);
    expect(new Date(leaf.validFrom).toISOString()).toBe('2026-03-01T11:59:00.000Z');
    expect(new Date(leaf.validTo).toISOString()).toBe('2026-03-01T12:05:00.000Z');
  });

  it('refuses a validity under a minute when it is configured', () => {
    expect(() => devCa({ validity: {} })).toThrow(/validity must be at least one minute/);
    expect(() => devCa({ validity: { minutes: -5, days: 0 } })).toThrow(/validity/);
  });

  it('never pends: poll is a non-retryable error', async () => {
    const f = await failure(devCa().poll('ref', { certificateId: 'kv/app', csrPem: '', dnsNames: [] }));
    expect([f.type, f.nonRetryable]).toEqual(['DevCaNeverPends', true]);
  });
});

describe('bad CSRs', () => {
  const ca = devCa();

  it('refuses a CSR whose signature does not verify', async () => {
    const pem = await makeCsr('ec-p256');
    const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 1]! ^= 0x01; // last byte of the signature
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    const f = await failure(
      ca.submit({ certificateId: 'kv/app', csrPem: tampered, dnsNames: ['app.example.test'] }),
    );
    expect([f.type, f.nonRetryable]).toEqual(['BadCsr', true]);
    expect(f.message).toMatch(/signature does not verify/);
  });

  it.each([
    ['garbage text', 'hello, please sign'],
    [
      'a PEM block of garbage',
      '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n',
    ],
  ])('refuses %s', async (_what, csrPem) => {
    const f = await failure(ca.submit({ certificateId: 'kv/app', csrPem, dnsNames: ['app.example.test'] }));
    expect([f.type, f.nonRetryable]).toEqual(['BadCsr', true]);
  });

  it('refuses a weak RSA key', async () => {
    const f = await failure(
      ca.submit({ certificateId: 'kv/app', csrPem: await makeCsr('rsa-1024'), dnsNames: [] }),
    );
    expect(f.type).toBe('BadCsr');
    expect(f.message).toMatch(/RSA of at least 2048 bits/);
  });
});

describe('the CA on disk', () => {
  it('is created once, with tight permissions, and survives a new instance', async () => {
    const dir = freshDir();
    const first = devCa({ dir });
    const csrPem = await makeCsr('ec-p256');
    await issue(first, csrPem);
    const rootPem = await first.rootPem();

    expect((await fs.stat(dir)).mode & 0o777).toBe(0o700);
    for (const f of await fs.readdir(dir))
      expect((await fs.stat(path.join(dir, f))).mode & 0o777).toBe(0o600);
    expect(await fs.readFile(path.join(dir, 'root.pem'), 'utf8')).toBe(rootPem);

    const second = devCa({ dir });
    expect(await second.rootPem()).toBe(rootPem);
    const chain = await issue(second, csrPem, ['app.example.test']);
    await expect(
      verifyIssuedChain({
        csrPem,
        chainPem: chain,
        expectedDnsNames: ['app.example.test'],
        now: new Date(),
        trustAnchorsPem: [rootPem],
      }),
    ).resolves.toBeDefined();
  });

  it('makes one CA when two instances start on an empty directory at once', async () => {
    const dir = freshDir();
    const [a, b] = await Promise.all([devCa({ dir }).rootPem(), devCa({ dir }).rootPem()]);
    expect(a).toBe(b);
    expect((await fs.readdir(dir)).sort()).toEqual(['ca.json', 'root.pem']);
  });

  it('encrypts the CA keys when given a key, and needs that key to open them', async () => {
    const dir = freshDir();
    const encryptionKey = Buffer.alloc(32, 7);
    const rootPem = await devCa({ dir, encryptionKey }).rootPem();
    const file = await fs.readFile(path.join(dir, 'ca.json'), 'utf8');
    expect(file).not.toMatch(/PRIVATE KEY/);
    expect(JSON.parse(file).intermediateKey).toHaveProperty('sealed');

    expect(await devCa({ dir, encryptionKey }).rootPem()).toBe(rootPem);
    const without = await failure(devCa({ dir }).rootPem());
    expect([without.type, without.message]).toEqual([
      'DevCaMisconfigured',
      expect.stringMatching(/encrypted: pass the encryptionKey/),
    ]);
    const wrong = await failure(devCa({ dir, encryptionKey: Buffer.alloc(32, 8) }).rootPem());
    expect(wrong.type).toBe('DevCaCorrupt');
    expect(() => devCa({ dir, encryptionKey: Buffer.alloc(16) })).toThrow(
      /encryptionKey: expected a Buffer of 32 bytes/,
    );
  });

  it('reports a damaged CA file and leaves it in place', async () => {
    const dir = freshDir();
    await devCa({ dir }).rootPem();
    const where = path.join(dir, 'ca.json');
    const file = JSON.parse(await fs.readFile(where, 'utf8'));
    const other = JSON.parse(
      await fs.readFile(
        path.join(
          await (async () => {
            const d = freshDir();
            await devCa({ dir: d }).rootPem();
            return d;
          })(),
          'ca.json',
        ),
        'utf8',
      ),
    );
    const swapped = JSON.stringify({ ...file, intermediateKey: other.intermediateKey });
    await fs.writeFile(where, swapped);
    const f = await failure(devCa({ dir }).rootPem());
    expect([f.type, f.nonRetryable]).toEqual(['DevCaCorrupt', true]);
    expect(f.message).toMatch(/key that does not belong to its certificate/);
    expect(f.message).not.toMatch(/PRIVATE KEY/);
    expect(await fs.readFile(where, 'utf8')).toBe(swapped);

    await fs.writeFile(where, '{"format": "certflow-dev-ca/v1", "rootCert');
    expect((await failure(devCa({ dir }).rootPem())).message).toMatch(/is not valid JSON/);
  });
});
