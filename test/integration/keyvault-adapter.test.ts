/**
 * The Azure Key Vault adapter's create, list, secretIdOf and SecretStore, and its behaviour under the injected
 * 429 and 500 faults of every operation, driven through the real Azure SDKs against our Key Vault
 * REST-compatible test server (test/servers/keyvault: ours, not Microsoft's, not an emulator).
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { CertificateClient } from '@azure/keyvault-certificates';
import { SecretClient } from '@azure/keyvault-secrets';
import crypto, { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CertificatePolicySnapshot, CertificateSummary } from '../../activities/types';
import { createAzureKeyVault } from '../../activities/vault/azure-key-vault';
import { startTestKeyVault, type TestKeyVault } from '../support/keyvault';
import { failureOf } from '../support/failure';

let kv: TestKeyVault;
let vault: ReturnType<typeof createAzureKeyVault>;
const thrown: unknown[] = [];

beforeAll(async () => {
  // Self certificates complete on the next request (their asynchronous issuance is tested in test/conformance)
  kv = await startTestKeyVault({ server: { issuanceDelayMs: 0 } });
  vault = kv.adapter('kv');
});

afterAll(async () => {
  await kv?.stop();
});

const failure = (p: Promise<unknown>) => failureOf(p, thrown);

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Requests the server answered with success. */
const requests = (method: string, path: string) =>
  kv.server.requests.filter((r) => r.method === method && r.path === path && r.status < 300).length;
const csrOf = (pem: string) => new x509.Pkcs10CertificateRequest(pem);
const spkiOfCert = (pem: string) =>
  new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
const policy = (over: Partial<CertificatePolicySnapshot> & { key: CertificatePolicySnapshot['key'] }) => ({
  subject: '',
  dnsNames: [],
  issuerName: 'Unknown',
  ...over,
});

describe('create', () => {
  it('starts a new certificate from a policy snapshot and reuses its operation on a retry', async () => {
    const snapshot = policy({
      subject: 'CN=shop.example.test, O=Example',
      dnsNames: ['shop.example.test', 'www.shop.example.test'],
      key: { keyType: 'EC', curve: 'P-384', reuseKey: false, exportable: true },
      validityInMonths: 6,
      daysBeforeExpiry: 20,
    });
    const first = await vault.create('shop', snapshot, { Recipient: 'shop@example.test' });
    expect(first.reused).toBe(false);
    const csr = csrOf(first.csrPem);
    expect(csr.subject).toBe('CN=shop.example.test, O=Example');
    expect(csr.publicKey.algorithm).toMatchObject({ name: 'ECDSA', namedCurve: 'P-384' });
    const sans = csr.extensions.find((e) => e instanceof x509.SubjectAlternativeNameExtension);
    expect(
      (sans as x509.SubjectAlternativeNameExtension | undefined)?.names.items.map((n) => n.value),
    ).toEqual(['shop.example.test', 'www.shop.example.test']);
    expect(await csr.verify()).toBe(true);

    const described = await vault.describe('shop');
    expect(described).toMatchObject({ version: null, thumbprint: null, pendingOperation: true });
    expect(described.policy).toEqual({ ...snapshot, issuerName: 'Unknown', lifetimeAction: 'EmailContacts' });

    // an activity retry (its first answer lost): the same CSR, no second create
    const again = await vault.create('shop', snapshot, { Recipient: 'shop@example.test' });
    expect(again).toEqual({ csrPem: first.csrPem, reused: true });
    expect(requests('POST', '/certificates/shop/create')).toBe(1);

    // the lifecycle's first renewal finishes it
    expect(await vault.beginRenewal('shop')).toEqual({ csrPem: first.csrPem, reused: true });
    const merged = await vault.merge('shop', [kv.ca.signCsr(first.csrPem), kv.ca.caCertPem]);
    expect(merged).toMatchObject({ pendingOperation: false, tags: { Recipient: 'shop@example.test' } });
    expect(merged.dnsNames).toEqual(['shop.example.test', 'www.shop.example.test']);

    const exists = await failure(vault.create('shop', snapshot));
    expect(exists).toMatchObject({ type: 'CertificateExists', nonRetryable: true });
    expect(exists.message).toContain(merged.version ?? '?');
  });

  it('supports HSM keys (never exportable) and refuses an exportable one before asking the vault', async () => {
    const pending = await vault.create(
      'hsm',
      policy({
        subject: 'CN=hsm.example.test',
        key: { keyType: 'RSA-HSM', keySize: 3072, reuseKey: false, exportable: false },
      }),
    );
    expect(csrOf(pending.csrPem).publicKey.algorithm).toMatchObject({ modulusLength: 3072 });
    expect((await vault.describe('hsm')).policy?.key).toEqual({
      keyType: 'RSA-HSM',
      keySize: 3072,
      reuseKey: false,
      exportable: false,
    });
    const merged = await vault.merge('hsm', [kv.ca.signCsr(pending.csrPem), kv.ca.caCertPem]);
    // Key Vault serves a non-exportable certificate's secret without its key
    expect(await failure(vault.exportSecret('hsm', merged.version ?? ''))).toMatchObject({
      type: 'KeyNotExportable',
      nonRetryable: true,
    });

    const before = kv.server.requests.length;
    const refused = await failure(
      vault.create(
        'hsm2',
        policy({ subject: 'CN=x', key: { keyType: 'EC-HSM', reuseKey: false, exportable: true } }),
      ),
    );
    expect(refused).toMatchObject({ type: 'InvalidPolicy', nonRetryable: true });
    expect(refused.message).toMatch(/key\.exportable must be false for an HSM key \(EC-HSM\)/);
    expect(kv.server.requests.length).toBe(before);
  });

  it('keeps the key across renewals when the policy says reuseKey', async () => {
    const pending = await vault.create(
      'sticky',
      policy({ dnsNames: ['sticky.example.test'], key: { keyType: 'EC', reuseKey: true, exportable: true } }),
    );
    expect(csrOf(pending.csrPem).subject).toBe('CN=sticky.example.test'); // subject from the first name
    const leaf = kv.ca.signCsr(pending.csrPem);
    await vault.merge('sticky', [leaf, kv.ca.caCertPem]);
    const renewal = await vault.beginRenewal('sticky');
    expect(Buffer.from(csrOf(renewal.csrPem).publicKey.rawData).equals(spkiOfCert(leaf))).toBe(true);
  });
});

describe('list', () => {
  it('pages through the whole vault: current versions, and pending-only certificates with version null', async () => {
    const client = new CertificateClient(kv.url, kv.credential, kv.clientOptions);
    for (let i = 0; i < 26; i++)
      await client.beginCreateCertificate(`bulk-${String(i).padStart(2, '0')}`, {
        issuerName: 'Self',
        subject: `CN=bulk-${i}`,
        keyType: 'EC',
      });
    const seeded = await kv.seed('listed', { tags: { Recipient: 'ops@example.test' } });
    await vault.beginRenewal('listed'); // a renewal pending on top of a current version
    await vault.create(
      'unissued',
      policy({ subject: 'CN=unissued', key: { keyType: 'EC', reuseKey: false, exportable: true } }),
      {
        Team: 'edge',
      },
    );

    const pages = requests('GET', '/certificates');
    const all = await collect(vault.list());
    expect(requests('GET', '/certificates') - pages).toBeGreaterThanOrEqual(2);
    const byName = new Map<string, CertificateSummary>(all.map((s) => [s.name, s]));
    expect([...byName.keys()].filter((n) => n.startsWith('bulk-'))).toHaveLength(26);
    expect(byName.get('bulk-00')).toMatchObject({
      id: 'kv/bulk-00',
      enabled: true,
      version: expect.stringMatching(/^[0-9a-f]{32}$/),
    });

    expect(byName.get('listed')).toEqual({
      id: 'kv/listed',
      name: 'listed',
      version: seeded.version,
      thumbprint: seeded.thumbprint,
      notAfter: new Date(new X509Certificate(seeded.leafPem).validTo).toISOString(),
      enabled: true,
      tags: { Recipient: 'ops@example.test' },
    });
    expect(byName.get('unissued')).toEqual({
      id: 'kv/unissued',
      name: 'unissued',
      version: null,
      thumbprint: null,
      notAfter: null,
      enabled: false,
      tags: { Team: 'edge' },
    });
  });
});

describe('secretIdOf', () => {
  it("names the version's secret, which a consumer can read from the vault", async () => {
    const seeded = await kv.seed('consumed');
    const id = vault.secretIdOf('consumed', seeded.version);
    expect(id).toBe(`${kv.url}/secrets/consumed/${seeded.version}`);
    const [, name, version] = new URL(id).pathname.split('/').slice(1);
    const { serviceVersion: _v, ...options } = kv.clientOptions;
    const secrets = new SecretClient(kv.url, kv.credential, options);
    const secret = await secrets.getSecret(name ?? '', { version });
    expect(secret.properties.id).toBe(id);
    expect(secret.value).toContain(seeded.leafPem.split('\n')[1]);
  });
});

describe('SecretStore', () => {
  it('reads null for a missing secret, writes, and writes again only when the value changes', async () => {
    const value = crypto.randomBytes(24).toString('base64');
    expect(await vault.getSecret('acme-account')).toBeNull();
    await vault.setSecret('acme-account', value);
    expect(await vault.getSecret('acme-account')).toBe(value);
    await vault.setSecret('acme-account', value);
    expect(requests('PUT', '/secrets/acme-account')).toBe(1);
    await vault.setSecret('acme-account', `${value}2`);
    expect(await vault.getSecret('acme-account')).toBe(`${value}2`);
    expect(requests('PUT', '/secrets/acme-account')).toBe(2);
  });

  it('refuses an invalid name and names the missing permission', async () => {
    expect(await failure(vault.setSecret('acme account', 'x'))).toMatchObject({ type: 'InvalidSecretName' });
    const objectId = crypto.randomUUID();
    kv.server.setAccessPolicy(objectId, { secrets: ['get'] });
    const reader = createAzureKeyVault({
      name: 'kv',
      url: kv.url,
      credential: kv.entra.credential({ objectId }),
      clientOptions: kv.clientOptions,
    });
    const err = await failure(reader.setSecret('acme-other', 'value'));
    expect(err).toMatchObject({ type: 'VaultForbidden', nonRetryable: true });
    expect(err.message).toContain("for secret 'acme-other'");
    expect(err.message).toContain("'secrets/set'");
  });
});

describe('injected faults: 429 retryable after Retry-After, 500 retryable, and the retry succeeds', () => {
  const ops: [string, (n: string) => string | RegExp, (n: string, v: string) => Promise<unknown>][] = [
    ['describe', (n) => `GET /certificates/${n}/`, (n) => vault.describe(n)],
    ['beginRenewal', (n) => `POST /certificates/${n}/create`, (n) => vault.beginRenewal(n)],
    ['exportSecret', (n) => `GET /secrets/${n}/`, (n, v) => vault.exportSecret(n, v)],
    ['list', () => /^GET \/certificates$/, () => collect(vault.list())],
    ['getSecret', (n) => `GET /secrets/${n}`, (n) => vault.getSecret(n)],
  ];
  const cases = ops.flatMap(([op, match, call]) =>
    [429, 500].map((status) => [op, status, match, call] as const),
  );

  it.each(cases)('%s answered %i', async (op, status, match, call) => {
    const name = `f-${op.toLowerCase()}-${status}`;
    const seeded = op === 'list' || op === 'getSecret' ? undefined : await kv.seed(name);
    kv.server.injectFault({
      status,
      retryAfter: status === 429 ? 7 : undefined,
      count: 1,
      match: match(name),
    });
    const err = await failure(call(name, seeded?.version ?? ''));
    expect(err.nonRetryable).toBe(false);
    if (status === 429) expect(err).toMatchObject({ type: 'VaultThrottled', nextRetryDelay: 7000 });
    else expect(err.type).toBe('VaultUnavailable');
    await call(name, seeded?.version ?? ''); // what Temporal's retry does: the fault was used up
  });

  it('merge answered 429 then 500, then merged once', async () => {
    await kv.seed('f-merge');
    const pending = await vault.beginRenewal('f-merge');
    const chain = [kv.ca.signCsr(pending.csrPem), kv.ca.caCertPem];
    const merges = requests('POST', '/certificates/f-merge/pending/merge'); // the seed's
    kv.server.injectFault({ status: 429, retryAfter: 3, count: 1, match: 'merge' });
    expect(await failure(vault.merge('f-merge', chain))).toMatchObject({
      type: 'VaultThrottled',
      nextRetryDelay: 3000,
    });
    kv.server.injectFault({ status: 500, count: 1, match: 'merge' });
    expect(await failure(vault.merge('f-merge', chain))).toMatchObject({
      type: 'VaultUnavailable',
      nonRetryable: false,
    });
    expect((await vault.merge('f-merge', chain)).pendingOperation).toBe(false);
    expect(requests('POST', '/certificates/f-merge/pending/merge')).toBe(merges + 1);
  });

  it('setSecret answered 429, then written once', async () => {
    kv.server.injectFault({ status: 429, retryAfter: 2, count: 1, match: 'PUT /secrets/f-put' });
    expect(await failure(vault.setSecret('f-put', 'v'))).toMatchObject({
      type: 'VaultThrottled',
      nextRetryDelay: 2000,
    });
    await vault.setSecret('f-put', 'v');
    expect(await vault.getSecret('f-put')).toBe('v');
  });

  it('a create whose answer was lost (the read of its operation failed) is finished by the retry, not repeated', async () => {
    await kv.seed('f-lost');
    // the first read is beginRenewal's own look for an operation; the second, the SDK's right after the create
    kv.server.injectFault({ status: 500, count: 1, skip: 1, match: 'GET /certificates/f-lost/pending' });
    expect(await failure(vault.beginRenewal('f-lost'))).toMatchObject({ type: 'VaultUnavailable' });
    const retried = await vault.beginRenewal('f-lost');
    expect(retried.reused).toBe(true);
    expect(requests('POST', '/certificates/f-lost/create')).toBe(2); // the seed's and the lost one
  });
});

describe('a vault in another cloud', () => {
  it('gets its token for the audience its challenge names (here https://vault.azure.cn)', async () => {
    const china = await startTestKeyVault({ audience: 'https://vault.azure.cn' });
    try {
      const scopes: string[] = [];
      const inner = china.credential;
      const credential = {
        getToken: (s: string | string[], o?: object) => (
          scopes.push([s].flat().join(' ')),
          inner.getToken(s, o)
        ),
      };
      const cn = createAzureKeyVault({
        name: 'cn',
        url: china.url,
        credential,
        clientOptions: china.clientOptions,
      });
      await china.seed('cn-web');
      expect((await cn.describe('cn-web')).thumbprint).toMatch(/^[0-9A-F]{40}$/);
      expect(new Set(scopes)).toEqual(new Set(['https://vault.azure.cn/.default']));

      // the server is strict: a token for the public cloud's audience is refused
      const wrong = createAzureKeyVault({
        name: 'cn',
        url: china.url,
        credential: china.entra.credential({ audience: 'https://vault.azure.net' }),
        clientOptions: china.clientOptions,
      });
      expect(await failure(wrong.describe('cn-web'))).toMatchObject({
        type: 'VaultUnauthorized',
        nonRetryable: true,
      });
    } finally {
      await china.stop();
    }
  });
});

describe('secrecy', () => {
  it('never put a secret value, key or token in a thrown error', () => {
    expect(thrown.length).toBeGreaterThan(10);
    for (const err of thrown) {
      const text = `${String((err as Error).message)} ${JSON.stringify(err)} ${String((err as Error).stack)}`;
      expect(text).not.toMatch(/PRIVATE KEY/);
      expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\./);
      expect((err as Error).cause).toBeUndefined();
    }
  });
});
