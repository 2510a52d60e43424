/**
 * The App Service binding target with the real `@azure/arm-appservice` client against a FAKE Azure Resource
 * Manager (test/servers/arm-appservice.ts): ARM cannot run here and no emulator exists, so the fake follows
 * the documented Microsoft.Web wire format (sites, slots, hostNameBindings, certificates, serverfarms, paging
 * with nextLink, ARM errors). The live probe is a real TLS handshake against the fake's SNI front end.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAppServiceTarget, type AppServiceTargetOptions } from '../../activities/bindings/app-service';
import type { BindingContext, BindingOutcome } from '../../activities/types';
import { startFakeArm, type FakeArm } from '../servers/arm-appservice';
import { createTestCa } from '../support/test-ca';

const SUB_A = '0a0a0a0a-0000-4000-8000-00000000000a';
const SUB_B = '0b0b0b0b-0000-4000-8000-00000000000b';
const KV_ID = `/subscriptions/${SUB_A}/resourceGroups/rg-security/providers/Microsoft.KeyVault/vaults/kv-prod`;

const ca = createTestCa({ keyType: 'ec' });
const issue = () => ca.issueServerCert(['*.contoso.test'], { keyType: 'ec' });
const [older, old, fresh, unrelated] = [issue(), issue(), issue(), issue()];

let fake: FakeArm;
let tp: { older: string; old: string; fresh: string; unrelated: string };
let frontendPort: number;

beforeAll(async () => {
  fake = await startFakeArm();
  frontendPort = await fake.startFrontend();
});
afterAll(async () => {
  await fake?.close();
});

beforeEach(() => {
  fake.reset();
  // remember each certificate's material (thumbprint → PEM) in the fake, then point the secret at the new one
  tp = {
    older: fake.setSecret(KV_ID, 'web', older),
    old: fake.setSecret(KV_ID, 'web', old),
    unrelated: fake.setSecret(KV_ID, 'unrelated', unrelated),
    fresh: fake.setSecret(KV_ID, 'web', fresh),
  };
});

const ctx = (over: Partial<BindingContext> = {}): BindingContext => ({
  certificateId: 'kv-prod/web',
  version: 'v3',
  thumbprint: tp.fresh.toLowerCase(), // Key Vault style; App Service shows uppercase
  previousThumbprint: tp.old,
  secretId: 'https://kv-prod.vault.azure.net/secrets/web/v3',
  notAfter: null,
  material: () => Promise.reject(new Error('an App Service target must never ask for the private key')),
  ...over,
});

const target = (over: Partial<AppServiceTargetOptions> = {}) =>
  createAppServiceTarget({
    name: 'azure-prod',
    credential: fake.credential,
    clientOptions: fake.clientOptions,
    subscriptions: [{ subscriptionId: SUB_A }, { subscriptionId: SUB_B, resourceGroups: ['rg-b'] }],
    keyVaultResourceId: () => KV_ID,
    concurrency: 4,
    importPollMs: 20,
    ...over,
  });

/**
 * Two subscriptions; in A two resource groups in two regions, three plans, apps with slots; in B one
 * configured resource group (with drift from an older version) and one that is not configured.
 */
function seedFleet() {
  const planA1 = fake.addPlan({
    subscriptionId: SUB_A,
    resourceGroup: 'rg-web',
    name: 'plan-a1',
    location: 'West Europe',
  });
  const planA2 = fake.addPlan({
    subscriptionId: SUB_A,
    resourceGroup: 'rg-web',
    name: 'plan-a2',
    location: 'West Europe',
  });
  const planA3 = fake.addPlan({
    subscriptionId: SUB_A,
    resourceGroup: 'rg-api',
    name: 'plan-a3',
    location: 'North Europe',
  });
  const planB = fake.addPlan({
    subscriptionId: SUB_B,
    resourceGroup: 'rg-b',
    name: 'plan-b',
    location: 'East US',
  });
  const planOther = fake.addPlan({
    subscriptionId: SUB_B,
    resourceGroup: 'rg-other',
    name: 'plan-o',
    location: 'East US',
  });
  const kv = { keyVaultId: KV_ID.toLowerCase(), secretName: 'Web' }; // ARM ids and names are case-insensitive
  fake.addCertificate({
    subscriptionId: SUB_A,
    resourceGroup: 'rg-web',
    name: 'kv-prod-web',
    serverFarmId: planA1,
    material: old,
    keyVault: kv,
  });
  fake.addCertificate({
    subscriptionId: SUB_A,
    resourceGroup: 'rg-web',
    name: 'other',
    serverFarmId: planA1,
    material: unrelated,
  });
  fake.addCertificate({
    subscriptionId: SUB_A,
    resourceGroup: 'rg-api',
    name: 'uploaded',
    serverFarmId: planA3,
    material: old,
  });
  fake.addCertificate({
    subscriptionId: SUB_B,
    resourceGroup: 'rg-b',
    name: 'web-from-kv',
    serverFarmId: planB,
    material: older,
    keyVault: kv,
  });
  fake.addCertificate({
    subscriptionId: SUB_B,
    resourceGroup: 'rg-other',
    name: 'kv-prod-web',
    serverFarmId: planOther,
    material: old,
    keyVault: kv,
  });

  const a = (resourceGroup: string) => ({ subscriptionId: SUB_A, resourceGroup });
  fake.addSite({
    ...a('rg-web'),
    name: 'shop',
    serverFarmId: planA1,
    bindings: [
      { hostName: 'shop.contoso.test', thumbprint: tp.old.toLowerCase() },
      { hostName: 'www.contoso.test', thumbprint: tp.old },
    ],
    slots: { staging: [{ hostName: 'staging.contoso.test', thumbprint: tp.old }] },
  });
  fake.addSite({
    ...a('rg-web'),
    name: 'blog',
    serverFarmId: planA2,
    bindings: [
      { hostName: 'blog.contoso.test', thumbprint: tp.old, sslState: 'IpBasedEnabled' },
      { hostName: 'other.contoso.test', thumbprint: tp.unrelated },
      { hostName: 'plain.contoso.test' },
    ],
  });
  fake.addSite({
    ...a('rg-web'),
    name: 'docs',
    serverFarmId: planA1,
    bindings: [{ hostName: 'docs.contoso.test', thumbprint: tp.fresh }],
  });
  fake.addSite({
    ...a('rg-api'),
    name: 'api',
    serverFarmId: planA3,
    bindings: [{ hostName: 'api.contoso.test', thumbprint: tp.old }],
    slots: { canary: [{ hostName: 'canary.contoso.test', thumbprint: tp.old }], empty: [] },
  });
  fake.addSite({
    subscriptionId: SUB_B,
    resourceGroup: 'rg-b',
    name: 'intranet',
    serverFarmId: planB,
    bindings: [{ hostName: 'intranet.contoso.test', thumbprint: tp.older }],
  });
  fake.addSite({
    subscriptionId: SUB_B,
    resourceGroup: 'rg-other',
    name: 'elsewhere',
    serverFarmId: planOther,
    bindings: [{ hostName: 'elsewhere.contoso.test', thumbprint: tp.old }],
  });
}

const EXPECTED_HOSTS = [
  'api.contoso.test',
  'blog.contoso.test',
  'canary.contoso.test',
  'docs.contoso.test',
  'intranet.contoso.test',
  'shop.contoso.test',
  'staging.contoso.test',
  'www.contoso.test',
];

const host = (o: BindingOutcome) => o.binding.split('/').pop() as string;
const byHost = (outcomes: BindingOutcome[]) => new Map(outcomes.map((o) => [host(o), o]));
const puts = () => fake.requests.filter((r) => r.method === 'PUT');

describe('App Service binding target (real ARM client, FAKE ARM server)', () => {
  it('re-binds every app and slot across subscriptions, groups and plans; a second sync is all unchanged', async () => {
    seedFleet();
    const probe = (hostName: string) => ({
      host: '127.0.0.1',
      port: frontendPort,
      servername: hostName,
      caPem: ca.caCertPem,
    });
    const t = target({ probe });

    const first = await t.sync(ctx());
    expect(first.map(host).sort()).toEqual(EXPECTED_HOSTS);
    const got = byHost(first);
    for (const h of EXPECTED_HOSTS.filter((x) => x !== 'docs.contoso.test')) {
      expect(got.get(h), h).toMatchObject({ status: 'bound', after: tp.fresh, target: 'azure-prod' });
      expect(got.get(h)?.probe, h).toMatchObject({ ok: true, servedThumbprint: tp.fresh });
    }
    expect(got.get('docs.contoso.test')).toMatchObject({
      status: 'unchanged',
      before: tp.fresh,
      after: tp.fresh,
    });
    expect(got.get('shop.contoso.test')?.before).toBe(tp.old); // seeded lowercase, reported normalised
    expect(got.get('intranet.contoso.test')?.before).toBe(tp.older); // drift: linked certificate's old version
    expect(got.get('staging.contoso.test')?.binding).toBe(
      `/subscriptions/${SUB_A}/resourceGroups/rg-web/providers/Microsoft.Web/sites/shop/slots/staging/hostNameBindings/staging.contoso.test`,
    );

    // what App Service now has
    expect(fake.binding(SUB_A, 'rg-web', 'shop', 'staging.contoso.test', 'staging')).toMatchObject({
      sslState: 'SniEnabled',
      thumbprint: tp.fresh,
    });
    expect(fake.binding(SUB_A, 'rg-web', 'blog', 'blog.contoso.test')).toMatchObject({
      sslState: 'IpBasedEnabled',
      thumbprint: tp.fresh,
    });
    expect(fake.binding(SUB_A, 'rg-web', 'blog', 'other.contoso.test')?.thumbprint).toBe(tp.unrelated);
    expect(fake.binding(SUB_B, 'rg-other', 'elsewhere', 'elsewhere.contoso.test')?.thumbprint).toBe(tp.old);
    const certs = [...fake.state.certificates.values()].map(
      (c) => `${c.subscriptionId}/${c.resourceGroup}/${c.name}=${c.thumbprint}`,
    );
    expect(certs).toEqual(
      expect.arrayContaining([
        `${SUB_A}/rg-web/kv-prod-web=${tp.fresh}`, // the linked certificate re-sent: refreshed from the secret
        `${SUB_A}/rg-api/kv-prod-web=${tp.fresh}`, // no linked one in that webspace: imported
        `${SUB_B}/rg-b/web-from-kv=${tp.fresh}`,
        `${SUB_B}/rg-other/kv-prod-web=${tp.old}`, // resource group not configured
      ]),
    );
    // one import per webspace, one PUT per binding that moved
    const certPuts = puts().filter((r) => r.path.includes('/certificates/'));
    expect(certPuts.map((r) => r.path.split('/')[4]).sort()).toEqual(['rg-api', 'rg-b', 'rg-web']);
    expect(puts().filter((r) => r.path.includes('/hostNameBindings/'))).toHaveLength(7);
    // listings were paged (page size 3) and every page was followed
    expect(
      fake.requests.filter((r) => r.path === `/subscriptions/${SUB_A}/providers/Microsoft.Web/sites`).length,
    ).toBeGreaterThan(1);

    fake.requests.length = 0;
    const second = await t.sync(ctx());
    expect(second.map((o) => `${host(o)}:${o.status}`).sort()).toEqual(
      EXPECTED_HOSTS.map((h) => `${h}:unchanged`),
    );
    expect(second.every((o) => o.probe?.ok)).toBe(true);
    expect(puts()).toEqual([]);
  });

  it('retries 429 (after Retry-After) and 5xx; a binding that keeps failing and an unlistable scope do not stop the rest', async () => {
    seedFleet();
    fake.fault({
      status: 429,
      retryAfter: 1,
      match:
        'PUT /subscriptions/' +
        SUB_A +
        '/resourceGroups/rg-web/providers/Microsoft.Web/sites/shop/hostNameBindings/www',
    });
    fake.fault({ status: 503, match: /GET .*\/sites\/api\/slots$/ });
    fake.fault({
      status: 500,
      count: 2,
      match: 'PUT /subscriptions/' + SUB_A + '/resourceGroups/rg-api/providers/Microsoft.Web/certificates',
    });
    fake.fault({ status: 502, count: 10, match: 'slots/staging/hostNameBindings/staging.contoso.test' });
    fake.fault({
      status: 403,
      match: `GET /subscriptions/${SUB_B}/resourceGroups/rg-b/providers/Microsoft.Web/sites`,
    });

    const outcomes = await target().sync(ctx());
    const got = byHost(outcomes);
    for (const h of [
      'www.contoso.test',
      'api.contoso.test',
      'canary.contoso.test',
      'shop.contoso.test',
      'blog.contoso.test',
    ]) {
      expect(got.get(h)?.status, h).toBe('bound');
    }
    const www = fake.requests.filter((r) => r.method === 'PUT' && r.path.endsWith('/www.contoso.test'));
    expect(www.map((r) => r.status)).toEqual([429, 200]);
    expect((www[1]?.at ?? 0) - (www[0]?.at ?? 0)).toBeGreaterThanOrEqual(950);

    const staging = got.get('staging.contoso.test');
    expect(staging).toMatchObject({ status: 'failed', before: tp.old, after: tp.old });
    expect(staging?.detail).toMatch(/re-binding staging\.contoso\.test on shop\/staging failed: HTTP 502/);
    expect(fake.requests.filter((r) => r.path.endsWith('/staging.contoso.test')).length).toBe(4); // 1 + 3 retries
    expect(fake.binding(SUB_A, 'rg-web', 'shop', 'staging.contoso.test', 'staging')?.thumbprint).toBe(tp.old);

    const scope = outcomes.find((o) => o.binding === `/subscriptions/${SUB_B}/resourceGroups/rg-b`);
    expect(scope).toMatchObject({ status: 'failed', before: null, after: null });
    expect(scope?.detail).toMatch(/listing web apps failed: HTTP 403.*Website Contributor.*not checked/);
    expect(got.has('intranet.contoso.test')).toBe(false);
  });

  it('reports a site deleted between discovery and bind as failed, and binds the others', async () => {
    seedFleet();
    // the first write comes after discovery has listed everything
    fake.once('PUT ', () => fake.deleteSite(SUB_A, 'rg-web', 'shop'));
    const outcomes = await target().sync(ctx());
    const got = byHost(outcomes);
    for (const h of ['shop.contoso.test', 'www.contoso.test', 'staging.contoso.test']) {
      expect(got.get(h), h).toMatchObject({ status: 'failed', before: tp.old, after: tp.old });
      expect(got.get(h)?.detail, h).toMatch(
        /^site was deleted between discovery and bind: shop(\/staging)? in resource group 'rg-web' is gone \(HTTP 404 ResourceNotFound/,
      );
    }
    expect(
      outcomes
        .filter((o) => o.status === 'bound')
        .map(host)
        .sort(),
    ).toEqual(['api.contoso.test', 'blog.contoso.test', 'canary.contoso.test', 'intranet.contoso.test']);
  });

  it('fails clearly, and changes no binding, when App Service does not get the new version from Key Vault', async () => {
    seedFleet();
    fake.setSecret(KV_ID, 'web', old); // e.g. the new version is not readable by App Service yet
    const outcomes = await target({
      subscriptions: [{ subscriptionId: SUB_A, resourceGroups: ['rg-web'] }],
    }).sync(ctx());
    const failed = outcomes.filter((o) => o.status === 'failed');
    expect(failed.map(host).sort()).toEqual([
      'blog.contoso.test',
      'shop.contoso.test',
      'staging.contoso.test',
      'www.contoso.test',
    ]);
    expect(byHost(outcomes).get('docs.contoso.test')?.status).toBe('unchanged');
    for (const o of failed) {
      expect(o).toMatchObject({ before: tp.old, after: tp.old });
      expect(o.detail).toBe(
        `not re-bound: App Service certificate 'kv-prod-web' in resource group 'rg-web' (West Europe) has thumbprint ${tp.old} ` +
          `after import from Key Vault secret 'web', expected ${tp.fresh}: App Service did not read the new secret version ` +
          '(check that its principal may read the vault’s secrets, and that the new version is enabled)',
      );
    }
    expect(fake.binding(SUB_A, 'rg-web', 'shop', 'shop.contoso.test')?.thumbprint).toBe(tp.old.toLowerCase());
    expect(puts().filter((r) => r.path.includes('/hostNameBindings/'))).toEqual([]);
  });
});
