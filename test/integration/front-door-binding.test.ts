/**
 * The Front Door Standard/Premium binding target with the real `@azure/arm-cdn` client against a FAKE Azure
 * Resource Manager (test/servers/arm-cdn.ts): ARM cannot run here and no emulator exists, so the fake follows the
 * documented Microsoft.Cdn wire format (profiles, customer-certificate secrets written as long-running operations,
 * custom domains, paging, ARM errors). The live probe is a real TLS handshake against the fake's SNI front end.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createFrontDoorTarget, type FrontDoorTargetOptions } from '../../activities/bindings/front-door';
import type { BindingContext, BindingOutcome } from '../../activities/types';
import { startFakeFrontDoor, type FakeFrontDoor } from '../servers/arm-cdn';
import { createTestCa } from '../support/test-ca';

const SUB = '0c0c0c0c-0000-4000-8000-00000000000c';
const KV_ID = `/subscriptions/${SUB}/resourceGroups/rg-security/providers/Microsoft.KeyVault/vaults/kv-prod`;
const KV = 'kv-prod.vault.azure.net';
const ca = createTestCa({ keyType: 'ec' });
const issue = () => ca.issueServerCert(['*.contoso.test'], { keyType: 'ec' });
const [old, fresh, unrelated] = [issue(), issue(), issue()];

let fake: FakeFrontDoor;
let port: number;
const tp = { old: '', fresh: '', unrelated: '' };

beforeAll(async () => {
  fake = await startFakeFrontDoor();
  port = await fake.startDomains();
});
afterAll(async () => {
  await fake?.close();
});
/** A fresh fake with the vault before the renewal (only the old version). */
function restart() {
  fake.reset();
  tp.old = fake.vault.put(KV, 'web', old, 'v1').thumbprint;
  tp.unrelated = fake.vault.put(KV, 'other', unrelated, 'o1').thumbprint;
}
beforeEach(restart);
const renew = () => (tp.fresh = fake.vault.put(KV, 'web', fresh, 'v2').thumbprint);

const ctx = (): BindingContext => ({
  certificateId: 'kv-prod/web',
  version: 'v2',
  thumbprint: tp.fresh,
  previousThumbprint: tp.old,
  secretId: `https://${KV}/secrets/web/v2`,
  notAfter: null,
  material: () => Promise.reject(new Error('a Front Door target must never ask for the private key')),
});
const probe = (hostName: string) => ({ host: '127.0.0.1', port, servername: hostName, caPem: ca.caCertPem });
const target = (over: Partial<FrontDoorTargetOptions> = {}) =>
  createFrontDoorTarget({
    name: 'front-door',
    credential: fake.credential,
    clientOptions: fake.clientOptions,
    subscriptions: [{ subscriptionId: SUB }],
    keyVaultResourceId: () => KV_ID,
    pollIntervalMs: 20,
    probe,
    probeSettleMs: 2_000,
    ...over,
  });

async function seed() {
  const src = (name: string) => `${KV_ID.toUpperCase()}/secrets/${name}`; // ARM ids are case-insensitive
  await fake.addProfile({
    subscriptionId: SUB,
    resourceGroup: 'rg-edge',
    name: 'afd-prod',
    secrets: [
      { name: 'web-pinned', secretSource: src('web'), secretVersion: 'v1' },
      { name: 'web-latest', secretSource: src('web'), useLatestVersion: true },
      { name: 'other', secretSource: src('other'), secretVersion: 'o1' },
    ],
    domains: [
      { name: 'shop', hostName: 'shop.contoso.test', secret: 'web-pinned' },
      { name: 'www', hostName: 'www.contoso.test', secret: 'web-pinned', domainValidationState: 'Pending' },
      { name: 'api', hostName: 'api.contoso.test', secret: 'web-latest' },
      { name: 'other', hostName: 'other.contoso.test', secret: 'other' },
    ],
  });
  await fake.addProfile({
    subscriptionId: SUB,
    resourceGroup: 'rg-edge',
    name: 'classic-cdn',
    sku: 'Standard_Microsoft',
    secrets: [{ name: 'web', secretSource: src('web'), secretVersion: 'v1' }],
    domains: [],
  });
  renew();
}

const name = (o: BindingOutcome) => o.binding.split('/').slice(-3).join('/');
const byName = (os: BindingOutcome[]) => new Map(os.map((o) => [name(o), o]));
const puts = () => fake.requests.filter((r) => r.method === 'PUT');

describe('Front Door binding target (real @azure/arm-cdn client, FAKE ARM server)', () => {
  it('moves pinned secrets to the new version, reloads "latest" ones, verifies each custom domain; a second sync changes nothing', async () => {
    await seed();
    const got = byName(await target().sync(ctx()));
    expect([...got.keys()].sort()).toEqual(['afd-prod/secrets/web-latest', 'afd-prod/secrets/web-pinned']);
    const pinned = got.get('afd-prod/secrets/web-pinned');
    expect(pinned).toMatchObject({
      status: 'bound',
      before: tp.old,
      after: tp.fresh,
      probe: { ok: true, servedThumbprint: tp.fresh },
    });
    expect(pinned?.detail).toMatch(
      /moved to version v2: .* \(custom domains: shop\.contoso\.test, www\.contoso\.test\); domain validation not approved for www\.contoso\.test \(Pending\)/,
    );
    expect(got.get('afd-prod/secrets/web-latest')).toMatchObject({
      status: 'bound',
      before: tp.old,
      after: tp.fresh,
    });
    expect(got.get('afd-prod/secrets/web-latest')?.detail).toContain('reloaded (follows the latest version)');
    const profile = fake.profile(SUB, 'rg-edge', 'afd-prod');
    expect(profile?.secrets.get('web-pinned')).toMatchObject({
      secretVersion: 'v2',
      useLatestVersion: false,
      thumbprint: tp.fresh,
    });
    expect(profile?.secrets.get('web-latest')).toMatchObject({
      secretVersion: undefined,
      useLatestVersion: true,
      thumbprint: tp.fresh,
    });
    expect(profile?.secrets.get('other')?.thumbprint).toBe(tp.unrelated);
    expect(fake.profile(SUB, 'rg-edge', 'classic-cdn')?.secrets.get('web')?.thumbprint).toBe(tp.old); // not Front Door
    expect(puts()).toHaveLength(2);
    expect(fake.requests.some((r) => r.path.startsWith('/fake-operations/azure-async/'))).toBe(true);

    fake.requests.length = 0;
    const second = await target().sync(ctx());
    expect(second.map((o) => o.status)).toEqual(['unchanged', 'unchanged']);
    expect(second.every((o) => o.probe?.ok)).toBe(true);
    expect(puts()).toEqual([]);
  });

  it('classifies throttling and server errors, reports a missing resource group, a deleted profile and a version it cannot read', async () => {
    await seed();
    fake.fault({
      status: 429,
      retryAfter: 1,
      match:
        'PUT /subscriptions/' +
        SUB +
        '/resourceGroups/rg-edge/providers/Microsoft.Cdn/profiles/afd-prod/secrets/web-pinned',
    });
    fake.fault({ status: 500, count: 20, match: /secrets\/web-latest$/ });
    const outcomes = await target({
      subscriptions: [{ subscriptionId: SUB, resourceGroups: ['rg-edge', 'rg-gone'] }],
    }).sync(ctx());
    const got = byName(outcomes);
    expect(got.get('afd-prod/secrets/web-pinned')?.status).toBe('bound');
    expect(
      puts()
        .filter((r) => r.path.endsWith('/web-pinned'))
        .map((r) => r.status),
    ).toEqual([429, 201]);
    expect(got.get('afd-prod/secrets/web-latest')).toMatchObject({
      status: 'failed',
      before: tp.old,
      after: tp.old,
    });
    expect(got.get('afd-prod/secrets/web-latest')?.detail).toMatch(
      /writing secret 'web-latest' of Front Door profile 'afd-prod' failed.*HTTP 500.*retried later/,
    );
    const gone = outcomes.find((o) => o.binding.endsWith('/resourceGroups/rg-gone'));
    expect(gone?.detail).toMatch(/resource group 'rg-gone' does not exist.*ResourceGroupNotFound/);

    // the profile is deleted after discovery
    restart();
    await seed();
    fake.once(/^PUT .*\/secrets\/web-pinned$/, () => fake.profiles.clear());
    const deleted = byName(await target().sync(ctx()));
    expect(deleted.get('afd-prod/secrets/web-pinned')?.detail).toMatch(
      /was deleted between discovery and bind \(HTTP 404 ResourceNotFound/,
    );

    // the new version cannot be read by Front Door: the operation fails, the secret keeps the old certificate
    restart();
    await fake.addProfile({
      subscriptionId: SUB,
      resourceGroup: 'rg-edge',
      name: 'afd-prod',
      secrets: [{ name: 'web', secretSource: `${KV_ID}/secrets/web`, secretVersion: 'v1' }],
      domains: [{ name: 'shop', hostName: 'shop.contoso.test', secret: 'web' }],
    });
    const [unread] = await target().sync({ ...ctx(), thumbprint: tp.fresh || 'AA' });
    expect(unread).toMatchObject({ status: 'failed', before: tp.old, after: tp.old });
    expect(unread?.detail).toMatch(
      /failed, it keeps .*: BadRequest: The long-running operation has failed\. BadRequest\. .*could not be accessed.*\(refused by Azure\)$/,
    );
  });

  it('rolls a pinned secret back when a custom domain keeps serving something else', async () => {
    await seed();
    const outcomes = await target({
      probe: (host) => (host === 'shop.contoso.test' ? probe('other.contoso.test') : probe(host)),
      probeSettleMs: 300,
    }).sync(ctx());
    const pinned = byName(outcomes).get('afd-prod/secrets/web-pinned');
    expect(pinned).toMatchObject({ status: 'rolled-back', before: tp.old, after: tp.old });
    expect(pinned?.detail).toMatch(/does not serve it: .*; rolled back to version v1$/);
    expect(fake.profile(SUB, 'rg-edge', 'afd-prod')?.secrets.get('web-pinned')).toMatchObject({
      secretVersion: 'v1',
      thumbprint: tp.old,
    });
  });
});
