/**
 * Our Key Vault test server (test/servers/keyvault: ours, not Microsoft's) as a vault that issues and renews
 * by itself: Self and integrated-CA requests that complete asynchronously, auto-renew on the server's own
 * clock, Event Grid CertificateNewVersionCreated deliveries, and the create quota. Driven through the real
 * @azure/keyvault-certificates SDK and the adapter; the server's clock is the test's.
 */
import { CertificateClient, type CertificatePolicy } from '@azure/keyvault-certificates';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateRefOf, parseDelivery } from '../../client/event-grid-events';
import { createAzureKeyVault } from '../../activities/vault/azure-key-vault';
import { failureOf } from '../support/failure';
import { startHttpSink, type HttpSink } from '../support/http-sink';
import { startTestKeyVault, type TestKeyVault } from '../support/keyvault';
import { rawKeyVault, type RawRequest } from '../support/keyvault-raw';
import { waitFor } from '../support/proc';

let kv: TestKeyVault;
let raw: RawRequest;
let client: CertificateClient;
let vault: ReturnType<typeof createAzureKeyVault>;
let sink: HttpSink;
/** The server's clock runs `offset` ms ahead of the real one. */
let offset = 0;
const DELAY = 5_000;

beforeAll(async () => {
  sink = await startHttpSink('/eventgrid');
  kv = await startTestKeyVault({
    server: {
      now: () => Date.now() + offset,
      issuanceDelayMs: DELAY,
      issuedValiditySeconds: 600,
      tickMs: 50,
      issuers: { 'Contoso-DigiCert': 'DigiCert' },
      eventGrid: { url: `${sink.url}?code=shared`, sasKey: 'sas-test-key' },
    },
  });
  raw = rawKeyVault(kv);
  client = new CertificateClient(kv.url, kv.credential, kv.clientOptions);
  vault = kv.adapter();
});

afterAll(async () => {
  await kv?.stop();
  await sink?.stop();
});

const policy = (name: string, issuerName: string, extra: Partial<CertificatePolicy> = {}) =>
  ({
    issuerName,
    subject: `CN=${name}.example.test`,
    subjectAlternativeNames: { dnsNames: [`${name}.example.test`] },
    keyType: 'EC',
    ...extra,
  }) as CertificatePolicy;

const status = async (name: string) =>
  (await raw('GET', `/certificates/${name}/pending`)).body.status as string;
const issued = (name: string) =>
  waitFor(`${name} issued`, async () => (await vault.describe(name)).version ?? undefined, {
    timeoutMs: 30_000,
  });
/** Moves the server's clock on and lets it act. */
async function advance(ms: number): Promise<void> {
  offset += ms;
  await kv.server.settle();
}

describe('issuance by the vault itself completes asynchronously', () => {
  it('Self: 202 inProgress, then completed with a target after the delay; self-signed', async () => {
    const created = await raw('POST', '/certificates/self-one/create', {
      policy: { key_props: { kty: 'EC' }, x509_props: { subject: 'CN=self-one' }, issuer: { name: 'Self' } },
    });
    expect(created.status).toBe(202);
    expect(created.body.status).toBe('inProgress');
    expect(await status('self-one')).toBe('inProgress');
    await advance(DELAY);
    const done = (await raw('GET', '/certificates/self-one/pending')).body;
    expect(done).toMatchObject({ status: 'completed', target: `${kv.url}/certificates/self-one` });
    const cert = new X509Certificate(
      Buffer.from((await raw('GET', '/certificates/self-one/')).body.cer, 'base64'),
    );
    expect(cert.issuer).toBe(cert.subject);
    expect(cert.verify(cert.publicKey)).toBe(true);
  });

  it.each([
    ['DigiCert', 'digi-one'],
    ['GlobalSign', 'glob-one'],
    ['Contoso-DigiCert', 'contoso-one'],
  ])('%s: signed by the server CA, chain of two in the secret', async (issuer, name) => {
    await client.beginCreateCertificate(
      name,
      policy(name, issuer, { contentType: 'application/x-pem-file' }),
    );
    expect(await status(name)).toBe('inProgress');
    expect((await vault.describe(name)).version).toBeNull();
    await advance(DELAY);
    const version = await issued(name);
    const ca = new X509Certificate(await kv.server.issuingCaPem());
    const { chainPem } = await vault.exportSecret(name, version);
    expect(chainPem).toHaveLength(2);
    const leaf = new X509Certificate(chainPem[0] ?? '');
    expect(leaf.checkIssued(ca)).toBe(true);
    expect(leaf.verify(ca.publicKey)).toBe(true);
    expect(leaf.subjectAltName).toBe(`DNS:${name}.example.test`);
    expect((await vault.describe(name)).policy).toMatchObject({
      issuerName: issuer,
      lifetimeAction: 'AutoRenew',
    });
  });

  it('refuses an issuer the vault does not know, and a merge into a request of an integrated CA', async () => {
    const unknown = await raw('POST', '/certificates/nope/create', {
      policy: { x509_props: { subject: 'CN=nope' }, issuer: { name: 'Verisign' } },
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.code).toBe('BadParameter');
    expect(unknown.body.error.message).toContain("'DigiCert'");

    await client.beginCreateCertificate('digi-merge', policy('digi-merge', 'DigiCert'));
    const merge = await raw('POST', '/certificates/digi-merge/pending/merge', {
      x5c: [kv.ca.caCertDer.toString('base64')],
    });
    expect(merge.status).toBe(400);
    await advance(DELAY);
  });
});

describe("auto-renew on the vault's own schedule", () => {
  it('renews at the lifetime percentage by the server clock, once, with policy and tags unchanged', async () => {
    await client.beginCreateCertificate(
      'auto-pct',
      policy('auto-pct', 'DigiCert', { lifetimeActions: [{ action: 'AutoRenew', lifetimePercentage: 50 }] }),
      { tags: { Recipient: 'ops@example.test' } },
    );
    await advance(DELAY);
    const first = await vault.describe('auto-pct');
    expect(first.version).toBeTruthy();
    const at = kv.server.autoRenewAt('auto-pct') ?? 0;
    const nbf = Date.parse(first.notBefore ?? '') / 1000;
    const exp = Date.parse(first.notAfter ?? '') / 1000;
    expect(at).toBeCloseTo(nbf + (exp - nbf) / 2, 0);

    // before the trigger: nothing
    offset = at * 1000 - Date.now() - 10_000;
    await kv.server.settle();
    expect(await status('auto-pct')).toBe('completed');
    // at the trigger: a request is started, and the new version comes after the issuance delay
    await advance(10_001);
    expect(await status('auto-pct')).toBe('inProgress');
    await advance(DELAY);
    const second = await vault.describe('auto-pct');
    expect(second.version).not.toBe(first.version);
    expect(second.tags).toEqual({ Recipient: 'ops@example.test' });
    expect(second.policy).toEqual(first.policy);
    // not again until the new version's own trigger
    await advance(1000);
    expect((await vault.describe('auto-pct')).version).toBe(second.version);
  });

  it('renews before expiry by days_before_expiry, scaled to the short test validity', async () => {
    await client.beginCreateCertificate(
      'auto-days',
      policy('auto-days', 'GlobalSign', {
        validityInMonths: 12,
        lifetimeActions: [{ action: 'AutoRenew', daysBeforeExpiry: 73 }],
      }),
    );
    await advance(DELAY);
    const first = await vault.describe('auto-days');
    const exp = Date.parse(first.notAfter ?? '') / 1000;
    const nbf = Date.parse(first.notBefore ?? '') / 1000;
    // 73 days of 12 months is a fifth of the lifetime
    expect(kv.server.autoRenewAt('auto-days')).toBeCloseTo(exp - (exp - nbf) * (73 / (12 * 30.4)), 0);
  });

  it('autoRenewNow starts a renewal at once; an EmailContacts or Unknown policy is never renewed by the vault', async () => {
    await client.beginCreateCertificate('auto-now', policy('auto-now', 'Self'));
    await advance(DELAY);
    const first = await vault.describe('auto-now');
    const version = await kv.server.autoRenewNow('auto-now');
    await advance(DELAY);
    expect((await vault.describe('auto-now')).version).toBe(version);
    expect(version).not.toBe(first.version);

    await client.beginCreateCertificate(
      'mail-only',
      policy('mail-only', 'Self', { lifetimeActions: [{ action: 'EmailContacts', lifetimePercentage: 10 }] }),
    );
    await advance(DELAY);
    expect(kv.server.autoRenewAt('mail-only')).toBeUndefined();
    await kv.seed('unknown-issuer');
    expect(kv.server.autoRenewAt('unknown-issuer')).toBeUndefined();
    await expect(kv.server.autoRenewNow('unknown-issuer')).rejects.toThrow(/Unknown/);
  });
});

describe('Event Grid', () => {
  it('POSTs CertificateNewVersionCreated for every new version, in the schema Certflow reads', async () => {
    const seeded = await kv.seed('evented');
    const delivered = await waitFor('the delivery', async () =>
      sink.requests.find((r) => r.body.includes(seeded.version)),
    );
    expect(delivered.method).toBe('POST');
    expect(delivered.path).toBe('/eventgrid?code=shared');
    expect(delivered.headers).toMatchObject({
      'aeg-event-type': 'Notification',
      'aeg-sas-key': 'sas-test-key',
      'aeg-data-version': '1',
      'content-type': 'application/json; charset=utf-8',
    });
    const parsed = parseDelivery(JSON.parse(delivered.body));
    expect(parsed.kind).toBe('events');
    const event = parsed.kind === 'events' ? parsed.events[0] : undefined;
    expect(event).toMatchObject({
      type: 'Microsoft.KeyVault.CertificateNewVersionCreated',
      subject: 'evented',
      data: {
        VaultName: kv.vaultName,
        ObjectType: 'Certificate',
        ObjectName: 'evented',
        Version: seeded.version,
      },
    });
    expect(certificateRefOf(event!, '[0]')).toMatchObject({ name: 'evented', version: seeded.version });
    expect(kv.server.deliveries.find((d) => d.version === seeded.version)).toMatchObject({
      status: 204,
      attempts: 1,
    });

    // the vault's own renewals too
    const renewed = await kv.server.autoRenewNow('auto-now');
    await advance(DELAY);
    await waitFor('the renewal delivery', async () => sink.requests.some((r) => r.body.includes(renewed)));
  });
});

describe('create quota (Key Vault: 20 key creates per 10 s)', () => {
  it('answers 429 Throttled with Retry-After beyond the quota; the adapter retries after it', async () => {
    let now = Date.now();
    const limited = await startTestKeyVault({
      server: { now: () => now, createQuota: { limit: 2, windowSeconds: 10 } },
    });
    try {
      const adapter = limited.adapter('q');
      const snapshot = (n: string) => ({
        subject: `CN=${n}`,
        dnsNames: [],
        issuerName: 'Unknown',
        key: { keyType: 'EC', reuseKey: false, exportable: true },
      });
      await adapter.create('q1', snapshot('q1'));
      now += 4000;
      await adapter.create('q2', snapshot('q2'));
      const throttled = await failureOf(adapter.create('q3', snapshot('q3')));
      expect(throttled).toMatchObject({ type: 'VaultThrottled', nonRetryable: false, nextRetryDelay: 6000 });
      const answer = await rawKeyVault(limited)('POST', '/certificates/q3/create', {
        policy: { x509_props: { subject: 'CN=q3' }, issuer: { name: 'Unknown' } },
      });
      expect(answer.status).toBe(429);
      expect(answer.headers['retry-after']).toBe('6');
      expect(answer.body.error).toEqual({
        code: 'Throttled',
        message:
          'Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached',
      });
      now += 6000;
      expect((await adapter.create('q3', snapshot('q3'))).reused).toBe(false);
    } finally {
      await limited.stop();
    }
  });
});
