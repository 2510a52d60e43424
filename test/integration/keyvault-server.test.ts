/**
 * The Azure Key Vault adapter, driven through the real @azure/keyvault-certificates / -secrets SDKs against
 * our Key Vault REST-compatible test server (test/servers/keyvault: ours, not Microsoft's, not an emulator).
 * Keys, CSRs and the merge's public-key check are real, so a wrong chain is refused as Key Vault refuses it.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { CertificateClient } from '@azure/keyvault-certificates';
import crypto, { X509Certificate } from 'node:crypto';
import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAzureKeyVault } from '../../activities/vault/azure-key-vault';
import type { Vault } from '../../activities/types';
import { startTestKeyVault, type TestKeyVault } from '../support/keyvault';
import { pemToDer } from '../support/test-ca';
import { failureOf } from '../support/failure';

let kv: TestKeyVault;
let vault: Vault;
/** Every failure the adapter threw in this file, checked at the end for key material. */
const thrown: unknown[] = [];
const exportedKeys: string[] = [];

const failure = (p: Promise<unknown>) => failureOf(p, thrown);

const spkiOfCsr = (pem: string) => Buffer.from(new x509.Pkcs10CertificateRequest(pem).publicKey.rawData);
const spkiOfCert = (pem: string) =>
  new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
const sha1 = (pem: string) => new X509Certificate(pem).fingerprint.replace(/:/g, '');

beforeAll(async () => {
  // Self certificates complete on the next request (their asynchronous issuance is tested in test/conformance)
  kv = await startTestKeyVault({ server: { issuanceDelayMs: 0 } });
  vault = kv.adapter('kv-test');
});

afterAll(async () => {
  await kv?.stop();
});

describe('renewal through the Unknown issuer', () => {
  it('creates a CSR in the vault, merges the chain a CA signed, and shows the new thumbprint', async () => {
    const seeded = await kv.seed('web', { tags: { Recipient: 'ops@example.test' } });
    const before = await vault.describe('web');
    expect(before).toMatchObject({
      id: 'kv-test/web',
      version: seeded.version,
      thumbprint: seeded.thumbprint,
      dnsNames: ['web.example.test'],
      subject: 'CN=web.example.test',
      tags: { Recipient: 'ops@example.test' },
      pendingOperation: false,
      policy: {
        issuerName: 'Unknown',
        key: { keyType: 'EC', curve: 'P-256', exportable: true },
        lifetimePercentage: 80,
      },
    });
    expect(before.thumbprint).toMatch(/^[0-9A-F]{40}$/);

    const pending = await vault.beginRenewal('web');
    expect(pending.reused).toBe(false);
    expect(pending.csrPem).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----/);
    // a new key per renewal (reuseKey false): the CSR's key is not the current certificate's
    expect(spkiOfCsr(pending.csrPem).equals(spkiOfCert(seeded.leafPem))).toBe(false);
    expect((await vault.describe('web')).pendingOperation).toBe(true);

    const leaf = kv.ca.signCsr(pending.csrPem, { days: 10 });
    const after = await vault.merge('web', [leaf, kv.ca.caCertPem]);
    expect(after.thumbprint).toBe(sha1(leaf));
    expect(after.thumbprint).not.toBe(before.thumbprint);
    expect(after.version).not.toBe(before.version);
    expect(after.notAfter).toBe(new Date(new X509Certificate(leaf).validTo).toISOString());
    expect(after.pendingOperation).toBe(false);
    expect(after.tags).toEqual({ Recipient: 'ops@example.test' });

    // the vault's own view agrees
    const client = new CertificateClient(kv.url, kv.credential, kv.clientOptions);
    const latest = await client.getCertificate('web');
    expect(latest.properties.x509ThumbprintString?.toUpperCase()).toBe(after.thumbprint);
    expect(latest.properties.tags).toEqual({ Recipient: 'ops@example.test' });
  });

  it('treats a merge of the chain already in the vault as done, without merging again', async () => {
    const seeded = await kv.seed('again');
    const merges = () =>
      kv.server.requests.filter((r) => r.path === '/certificates/again/pending/merge').length;
    const count = merges();
    const state = await vault.merge('again', [seeded.leafPem, kv.ca.caCertPem]);
    expect(state.thumbprint).toBe(seeded.thumbprint);
    expect(merges()).toBe(count);
    expect(
      kv.server.requests.some((r) => r.method === 'PATCH' && r.path.startsWith('/certificates/again/')),
    ).toBe(false);
  });

  it.each([
    ['the tags PATCH after the merge failed', 'torn'],
    ['the worker died between the merge and the tags PATCH', 'crashed'],
  ] as const)(
    'completes the tags on a retry when %s (the retry finds the chain already merged)',
    async (_what, name) => {
      const seeded = await kv.seed(name, { tags: { Recipient: 'old@example.test' } });
      const pending = await vault.beginRenewal(name); // the operation carries the tags of this moment
      const client = new CertificateClient(kv.url, kv.credential, kv.clientOptions);
      await client.updateCertificateProperties(name, seeded.version, {
        tags: { Recipient: 'new@example.test', Team: 'edge' },
      });
      const chain = [kv.ca.signCsr(pending.csrPem), kv.ca.caCertPem];
      const patches = () =>
        kv.server.requests.filter((r) => r.method === 'PATCH' && r.path.startsWith(`/certificates/${name}/`))
          .length;

      if (name === 'torn') {
        kv.server.injectFault({ status: 500, count: 1, match: new RegExp(`^PATCH /certificates/${name}/`) });
        const err = await failure(vault.merge(name, chain));
        expect(err.type).toBe('VaultUnavailable');
        expect(err.nonRetryable).toBe(false);
      } else {
        await client.mergeCertificate(name, [
          pemToDer(chain[0]!, 'CERTIFICATE'),
          pemToDer(chain[1]!, 'CERTIFICATE'),
        ]);
      }
      // the merge itself went through, with the operation's (stale) tags
      const half = await vault.describe(name);
      expect(half.thumbprint).toBe(sha1(chain[0]!));
      expect(half.tags).toEqual({ Recipient: 'old@example.test' });

      const merges = kv.server.requests.filter(
        (r) => r.path === `/certificates/${name}/pending/merge`,
      ).length;
      const retried = await vault.merge(name, chain);
      expect(retried.version).toBe(half.version);
      expect(retried.tags).toEqual({ Recipient: 'new@example.test', Team: 'edge' });
      expect(kv.server.requests.filter((r) => r.path === `/certificates/${name}/pending/merge`)).toHaveLength(
        merges,
      );
      const latest = await client.getCertificate(name);
      expect(latest.properties.tags).toEqual({ Recipient: 'new@example.test', Team: 'edge' });

      // once the tags are right, a further retry writes nothing
      const count = patches();
      expect((await vault.merge(name, chain)).tags).toEqual({ Recipient: 'new@example.test', Team: 'edge' });
      expect(patches()).toBe(count);
    },
  );

  it('refuses a chain for another key and changes nothing (the vault checks the public key)', async () => {
    const seeded = await kv.seed('guarded');
    const pending = await vault.beginRenewal('guarded');
    const stranger = kv.ca.issueServerCert(['guarded.example.test']).certPem;

    const err = await failure(vault.merge('guarded', [stranger, kv.ca.caCertPem]));
    expect(err.type).toBe('KeyMismatch');
    expect(err.nonRetryable).toBe(true);
    expect(err.message).toMatch(/public key/);

    const state = await vault.describe('guarded');
    expect(state.thumbprint).toBe(seeded.thumbprint);
    expect(state.version).toBe(seeded.version);
    expect(state.pendingOperation).toBe(true);

    // the pending request is intact: the right chain still merges
    const merged = await vault.merge('guarded', [kv.ca.signCsr(pending.csrPem), kv.ca.caCertPem]);
    expect(merged.thumbprint).not.toBe(seeded.thumbprint);
  });

  it('reuses the CSR of an operation in progress (Key Vault answers a second create with 409)', async () => {
    await kv.seed('reuse');
    const first = await vault.beginRenewal('reuse');
    const second = await vault.beginRenewal('reuse');
    expect(second.reused).toBe(true);
    expect(second.csrPem).toBe(first.csrPem);
    expect(
      kv.server.requests.filter((r) => r.path === '/certificates/reuse/create' && r.status === 202),
    ).toHaveLength(2); // seed + first

    const client = new CertificateClient(kv.url, kv.credential, kv.clientOptions);
    const conflict = await client
      .beginCreateCertificate('reuse', { issuerName: 'Unknown', subject: 'CN=reuse.example.test' })
      .then(
        () => undefined,
        (e: { statusCode?: number }) => e.statusCode,
      );
    expect(conflict).toBe(409);
  });

  it('cancels a renewal so the next one starts with a fresh CSR', async () => {
    await kv.seed('cancel');
    const first = await vault.beginRenewal('cancel');
    await vault.cancelRenewal('cancel');
    await vault.cancelRenewal('cancel'); // idempotent
    expect((await vault.describe('cancel')).pendingOperation).toBe(false);
    const next = await vault.beginRenewal('cancel');
    expect(next.reused).toBe(false);
    expect(next.csrPem).not.toBe(first.csrPem);
  });

  it('re-applies tags changed while the renewal was pending to the merged version, by explicit version', async () => {
    const seeded = await kv.seed('retag', { tags: { Recipient: 'old@example.test' } });
    const pending = await vault.beginRenewal('retag'); // the operation carries the tags of this moment
    const client = new CertificateClient(kv.url, kv.credential, kv.clientOptions);
    await client.updateCertificateProperties('retag', seeded.version, {
      tags: { Recipient: 'new@example.test' },
    });

    const merged = await vault.merge('retag', [kv.ca.signCsr(pending.csrPem), kv.ca.caCertPem]);
    expect(merged.tags).toEqual({ Recipient: 'new@example.test' });
    expect(
      kv.server.requests.some(
        (r) => r.method === 'PATCH' && r.path === `/certificates/retag/${merged.version}`,
      ),
    ).toBe(true);
  });

  it('completes a first issuance an operator started: no version yet, the CSR is reused, create-time tags kept', async () => {
    const client = new CertificateClient(kv.url, kv.credential, kv.clientOptions);
    await client.beginCreateCertificate(
      'fresh',
      {
        issuerName: 'Unknown',
        subject: 'CN=fresh.example.test',
        subjectAlternativeNames: { dnsNames: ['fresh.example.test'] },
      },
      { tags: { Recipient: 'team@example.test' } },
    );
    const before = await vault.describe('fresh');
    expect(before).toMatchObject({ version: null, thumbprint: null, notAfter: null, pendingOperation: true });
    expect(before.policy?.key).toMatchObject({ keyType: 'RSA', keySize: 2048 });

    const pending = await vault.beginRenewal('fresh');
    expect(pending.reused).toBe(true);
    const leaf = kv.ca.signCsr(pending.csrPem);
    const after = await vault.merge('fresh', [leaf, kv.ca.caCertPem]);
    expect(after).toMatchObject({
      thumbprint: sha1(leaf),
      pendingOperation: false,
      tags: { Recipient: 'team@example.test' },
    });
    expect(after.version).toMatch(/^[0-9a-f]{32}$/);
  });

  it('builds CSRs with the key type and size of the policy', async () => {
    const cases = [
      {
        name: 'rsa3072',
        policy: { keyType: 'RSA', keySize: 3072, keyCurveName: undefined },
        expect: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 3072 },
      },
      {
        name: 'ecp384',
        policy: { keyType: 'EC', keyCurveName: 'P-384' },
        expect: { name: 'ECDSA', namedCurve: 'P-384' },
      },
    ] as const;
    for (const c of cases) {
      await kv.seed(c.name, { policy: c.policy });
      const csr = new x509.Pkcs10CertificateRequest((await vault.beginRenewal(c.name)).csrPem);
      expect(csr.publicKey.algorithm).toMatchObject(c.expect);
      expect(csr.subject).toBe(`CN=${c.name}.example.test`);
      expect(await csr.verify()).toBe(true);
    }
  });

  it('says CertificateNotFound for a certificate the vault does not have', async () => {
    const err = await failure(vault.describe('nope'));
    expect(err.type).toBe('CertificateNotFound');
    expect(err.nonRetryable).toBe(true);
    expect((await failure(vault.beginRenewal('nope'))).type).toBe('CertificateNotFound');
  });
});

describe('authentication and authorization', () => {
  it('answers a request without a token with the Bearer challenge', async () => {
    const res = await new Promise<{ status?: number; challenge?: string }>((resolve, reject) => {
      const req = https.request(`${kv.url}/certificates/web?api-version=7.6`, { ca: kv.caPem }, (r) => {
        r.resume();
        resolve({ status: r.statusCode, challenge: r.headers['www-authenticate'] });
      });
      req.on('error', reject);
      req.end();
    });
    expect(res.status).toBe(401);
    expect(res.challenge).toBe(
      `Bearer authorization="https://login.microsoftonline.com/${kv.entra.tenantId}", resource="https://vault.azure.net"`,
    );
  });

  it.each([
    ['an expired token', { expiresInSeconds: -3600 }, /expired/],
    ['a token for another audience', { audience: 'https://management.azure.com' }, /audience/i],
    ['a token signed by a key the issuer does not publish', { untrustedKey: true }, /kid|signature/],
  ])('rejects %s as VaultUnauthorized (401), non-retryable', async (_what, overrides, reason) => {
    const bad = createAzureKeyVault({
      name: 'kv-test',
      url: kv.url,
      credential: kv.entra.credential(overrides),
      clientOptions: kv.clientOptions,
    });
    const err = await failure(bad.describe('web'));
    expect(err.type).toBe('VaultUnauthorized');
    expect(err.nonRetryable).toBe(true);
    expect(err.message).toMatch(/401/);
    expect(err.message).toMatch(reason);
  });

  it('names the missing permission when an access policy does not allow the call', async () => {
    await kv.seed('policed');
    const objectId = crypto.randomUUID();
    kv.server.setAccessPolicy(objectId, { certificates: ['get', 'list'] });
    const reader = createAzureKeyVault({
      name: 'kv-test',
      url: kv.url,
      credential: kv.entra.credential({ objectId }),
      clientOptions: kv.clientOptions,
    });
    expect((await reader.describe('policed')).thumbprint).toMatch(/^[0-9A-F]{40}$/);
    const err = await failure(reader.beginRenewal('policed'));
    expect(err.type).toBe('VaultForbidden');
    expect(err.nonRetryable).toBe(true);
    expect(err.message).toContain("'certificates/create'");
    const secretErr = await failure(
      reader.exportSecret('policed', (await reader.describe('policed')).version ?? ''),
    );
    expect(secretErr.type).toBe('VaultForbidden');
    expect(secretErr.message).toContain("'secrets/get'");
  });

  it('refuses a vault whose TLS certificate it does not trust, without retrying', async () => {
    const { tlsOptions: _trust, ...untrusting } = kv.clientOptions;
    const naive = createAzureKeyVault({
      name: 'kv-test',
      url: kv.url,
      credential: kv.credential,
      clientOptions: untrusting,
    });
    const err = await failure(naive.describe('web'));
    expect(err.type).toBe('VaultTlsUntrusted');
    expect(err.nonRetryable).toBe(true);
  });
});

describe('throttling and outages', () => {
  it('surfaces an injected 429 as retryable with the Retry-After delay', async () => {
    await kv.seed('busy');
    kv.server.injectFault({ status: 429, retryAfter: 7, count: 1, match: 'GET /certificates/busy' });
    const err = await failure(vault.describe('busy'));
    expect(err.type).toBe('VaultThrottled');
    expect(err.nonRetryable).toBe(false);
    expect(err.nextRetryDelay).toBe(7000);
    // the fault was used up: the next call goes through
    expect((await vault.describe('busy')).pendingOperation).toBe(false);
  });

  it('surfaces a 500 as retryable', async () => {
    kv.server.injectFault({ status: 500, count: 1, match: 'merge' });
    const pending = await vault.beginRenewal('busy');
    const err = await failure(vault.merge('busy', [kv.ca.signCsr(pending.csrPem), kv.ca.caCertPem]));
    expect(err.type).toBe('VaultUnavailable');
    expect(err.nonRetryable).toBe(false);
    expect(
      (await vault.merge('busy', [kv.ca.signCsr(pending.csrPem), kv.ca.caCertPem])).pendingOperation,
    ).toBe(false);
  });

  it('answers a throttle burst: a share of every kind of request 429 with Retry-After, until it ends', async () => {
    await kv.seed('burst');
    const client = new CertificateClient(kv.url, kv.credential, kv.clientOptions);
    const secrets = kv.adapter('kv-test');
    const statusOf = (p: Promise<unknown>) =>
      p.then(
        () => 200,
        (e: { statusCode?: number }) => e.statusCode ?? 0,
      );
    await client.getCertificate('burst'); // the Bearer challenge is answered before the burst
    const before = kv.server.throttleStats();
    expect(before.on).toBe(false);

    kv.server.setThrottle({ share: 1, retryAfterSeconds: 3 });
    const err = await failure(vault.describe('burst'));
    expect(err.type).toBe('VaultThrottled');
    expect(err.nonRetryable).toBe(false);
    expect(err.nextRetryDelay).toBe(3000);
    expect((await failure(secrets.setSecret('burst-secret', 'v'))).type).toBe('VaultThrottled');
    expect(await statusOf(client.getCertificatePolicy('burst'))).toBe(429);
    const throttled = kv.server.requests.filter((r) => r.status === 429).at(-1);
    expect(throttled).toMatchObject({ method: 'GET', path: '/certificates/burst/policy', authorized: true });

    // half: every second request of the burst, whatever it asks for
    kv.server.setThrottle({ share: 0.5, retryAfterSeconds: 1 });
    const half = [];
    for (let i = 0; i < 6; i++) half.push(await statusOf(client.getCertificate('burst')));
    expect(half).toEqual([200, 429, 200, 429, 200, 429]);

    // random: each request with probability share
    kv.server.setThrottle({ share: 1, retryAfterSeconds: 1, pick: 'random' });
    expect(await statusOf(client.getCertificate('burst'))).toBe(429);
    kv.server.setThrottle({ share: 0, retryAfterSeconds: 1, pick: 'random' });
    expect(await statusOf(client.getCertificate('burst'))).toBe(200);

    kv.server.setThrottle(undefined);
    expect(await statusOf(client.getCertificate('burst'))).toBe(200);
    expect(await secrets.getSecret('burst-secret')).toBeNull();
    const after = kv.server.throttleStats();
    expect(after.on).toBe(false);
    expect(after.throttled - before.throttled).toBe(7);
    expect(after.seen - before.seen).toBe(11);
    expect(() => kv.server.setThrottle({ share: 1.5, retryAfterSeconds: 1 })).toThrow(/share/);
  });

  it('lets the SDK itself ride out a 429 when SDK retries are enabled (the Retry-After header is real)', async () => {
    const patient = createAzureKeyVault({
      name: 'kv-test',
      url: kv.url,
      credential: kv.credential,
      clientOptions: { ...kv.clientOptions, retryOptions: { maxRetries: 2 } },
    });
    kv.server.injectFault({ status: 429, retryAfter: 1, count: 1, match: 'GET /certificates/busy' });
    const t0 = Date.now();
    expect((await patient.describe('busy')).thumbprint).toMatch(/^[0-9A-F]{40}$/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
  });
});

describe('exportSecret', () => {
  it.each([
    ['PEM, EC P-256', 'pem-ec', { contentType: 'application/x-pem-file' }],
    [
      'PKCS#12 (the Key Vault default), EC P-384',
      'p12-ec',
      { contentType: undefined, keyType: 'EC', keyCurveName: 'P-384' },
    ],
    [
      'PKCS#12, RSA 2048',
      'p12-rsa',
      { contentType: 'application/x-pkcs12', keyType: 'RSA', keySize: 2048, keyCurveName: undefined },
    ],
  ] as const)('returns a key that matches the certificate (%s)', async (_what, name, policy) => {
    const seeded = await kv.seed(name, { policy });
    const secret = await vault.exportSecret(name, seeded.version);
    exportedKeys.push(secret.keyPem);
    expect(secret.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const publicOfKey = crypto.createPublicKey(secret.keyPem).export({ type: 'spki', format: 'der' });
    expect(publicOfKey.equals(spkiOfCert(seeded.leafPem))).toBe(true);
    expect(secret.chainPem).toHaveLength(2);
    expect(sha1(secret.chainPem[0] ?? '')).toBe(seeded.thumbprint);
    expect(sha1(secret.chainPem[1] ?? '')).toBe(sha1(kv.ca.caCertPem));
  });

  it('refuses a certificate whose key is not exportable', async () => {
    const seeded = await kv.seed('locked', { policy: { exportable: false } });
    const err = await failure(vault.exportSecret('locked', seeded.version));
    expect(err.type).toBe('KeyNotExportable');
    expect(err.nonRetryable).toBe(true);
  });
});

describe('listing', () => {
  it('pages through the vault with nextLink', async () => {
    const client = new CertificateClient(kv.url, kv.credential, kv.clientOptions);
    for (let i = 0; i < 26; i++) {
      await client.beginCreateCertificate(`self-${i}`, {
        issuerName: 'Self',
        subject: `CN=self-${i}`,
        keyType: 'EC',
      });
    }
    const before = kv.server.requests.filter((r) => r.path === '/certificates' && r.status === 200).length;
    const names: string[] = [];
    for await (const p of client.listPropertiesOfCertificates()) names.push(p.name ?? '');
    expect(names.filter((n) => n.startsWith('self-'))).toHaveLength(26);
    expect(
      kv.server.requests.filter((r) => r.path === '/certificates' && r.status === 200).length - before,
    ).toBeGreaterThanOrEqual(2);
  });
});

describe('secrecy', () => {
  it('never put key material or tokens in a thrown error', () => {
    expect(thrown.length).toBeGreaterThan(5);
    expect(exportedKeys.length).toBeGreaterThan(0);
    const keyBodies = exportedKeys.map((k) => k.replace(/-----[^-]+-----|\s/g, ''));
    for (const err of thrown) {
      const text = `${String((err as Error).message)} ${JSON.stringify(err)} ${String((err as Error).stack)}`;
      expect(text).not.toMatch(/PRIVATE KEY/);
      expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\./); // a JWT
      for (const body of keyBodies) expect(text).not.toContain(body.slice(40, 100));
      expect((err as Error).cause).toBeUndefined();
    }
  });
});
