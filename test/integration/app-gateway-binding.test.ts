/**
 * The Application Gateway binding target with the real `@azure/arm-network` client against a FAKE Azure Resource
 * Manager (test/servers/arm-network.ts): ARM cannot run here and no emulator exists, so the fake follows the
 * documented Microsoft.Network wire format (gateways with sslCertificates and httpListeners, paging with nextLink,
 * the update as a long-running operation polled through Azure-AsyncOperation, ARM errors). The live probe is a
 * real TLS handshake against the fake's SNI front end, which serves what each listener's certificate loaded.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAppGatewayTarget, type AppGatewayTargetOptions } from '../../activities/bindings/app-gateway';
import type { BindingContext, BindingOutcome } from '../../activities/types';
import { startFakeNetwork, type FakeNetwork } from '../servers/arm-network';
import { createTestCa } from '../support/test-ca';

const SUB_A = '0a0a0a0a-0000-4000-8000-00000000000a';
const SUB_B = '0b0b0b0b-0000-4000-8000-00000000000b';
const KV = 'kv-prod.vault.azure.net';
const ca = createTestCa({ keyType: 'ec' });
const issue = () => ca.issueServerCert(['*.contoso.test'], { keyType: 'ec' });
const [old, fresh, unrelated] = [issue(), issue(), issue()];

let fake: FakeNetwork;
let port: number;
let tp: { old: string; fresh: string; unrelated: string };

beforeAll(async () => {
  fake = await startFakeNetwork();
  port = await fake.startListeners();
});
afterAll(async () => {
  await fake?.close();
});
beforeEach(() => {
  fake.reset();
  fake.setLroPolls(2);
  tp = {
    old: fake.vault.put(KV, 'web', old, 'v1').thumbprint,
    fresh: '',
    unrelated: fake.vault.put(KV, 'other', unrelated, 'o1').thumbprint,
  };
});

/** The renewal: the vault's new version, after the gateways loaded the old one. */
const renew = () => (tp.fresh = fake.vault.put(KV, 'web', fresh, 'v2').thumbprint);

const ctx = (over: Partial<BindingContext> = {}): BindingContext => ({
  certificateId: 'kv-prod/web',
  version: 'v2',
  thumbprint: tp.fresh.toLowerCase(),
  previousThumbprint: tp.old,
  secretId: `https://${KV}/secrets/web/v2`,
  notAfter: null,
  material: () =>
    Promise.reject(new Error('an Application Gateway target must never ask for the private key')),
  ...over,
});

const probe = (hostName: string) => ({ host: '127.0.0.1', port, servername: hostName, caPem: ca.caCertPem });
const target = (over: Partial<AppGatewayTargetOptions> = {}) =>
  createAppGatewayTarget({
    name: 'gateways',
    credential: fake.credential,
    clientOptions: fake.clientOptions,
    subscriptions: [{ subscriptionId: SUB_A }, { subscriptionId: SUB_B, resourceGroups: ['rg-b'] }],
    pollIntervalMs: 20,
    probe,
    probeSettleMs: 2_000,
    ...over,
  });

async function seed() {
  await fake.addGateway({
    subscriptionId: SUB_A,
    resourceGroup: 'rg-net',
    name: 'gw-web',
    sslCertificates: [
      { name: 'web-pinned', keyVaultSecretId: `https://${KV}/secrets/web/v1` },
      { name: 'web-latest', keyVaultSecretId: `https://${KV.toUpperCase()}/secrets/Web` },
      { name: 'other', keyVaultSecretId: `https://${KV}/secrets/other` },
    ],
    listeners: [
      { name: 'shop', hostNames: ['shop.contoso.test', 'www.contoso.test'], sslCertificate: 'web-pinned' },
      { name: 'api', hostNames: ['api.contoso.test'], sslCertificate: 'web-latest' },
      { name: 'other', hostNames: ['other.contoso.test'], sslCertificate: 'other' },
    ],
  });
  await fake.addGateway({
    subscriptionId: SUB_A,
    resourceGroup: 'rg-legacy',
    name: 'gw-uploaded',
    sslCertificates: [{ name: 'pfx', uploaded: old }],
    listeners: [{ name: 'legacy', hostNames: ['legacy.contoso.test'], sslCertificate: 'pfx' }],
  });
  renew();
  await fake.addGateway({
    subscriptionId: SUB_B,
    resourceGroup: 'rg-b',
    name: 'gw-done',
    sslCertificates: [{ name: 'web', keyVaultSecretId: `https://${KV}/secrets/web/v2` }],
    listeners: [{ name: 'intranet', hostNames: ['intranet.contoso.test'], sslCertificate: 'web' }],
  });
}

const name = (o: BindingOutcome) => o.binding.split('/').slice(-3).join('/');
const byName = (os: BindingOutcome[]) => new Map(os.map((o) => [name(o), o]));
const puts = () => fake.requests.filter((r) => r.method === 'PUT');

describe('Application Gateway binding target (real @azure/arm-network client, FAKE ARM server)', () => {
  it('points versioned references at the new version, refreshes versionless ones, verifies each listener live; a second sync changes nothing', async () => {
    await seed();
    const first = byName(await target().sync(ctx()));
    expect([...first.keys()].sort()).toEqual([
      'gw-done/sslCertificates/web',
      'gw-uploaded/sslCertificates/pfx',
      'gw-web/sslCertificates/web-latest',
      'gw-web/sslCertificates/web-pinned',
    ]);
    expect(first.get('gw-web/sslCertificates/web-pinned')).toMatchObject({
      status: 'bound',
      before: tp.old,
      after: tp.fresh,
      probe: { ok: true, servedThumbprint: tp.fresh },
    });
    expect(first.get('gw-web/sslCertificates/web-pinned')?.detail).toContain('pointed at version v2');
    expect(first.get('gw-web/sslCertificates/web-latest')).toMatchObject({
      status: 'bound',
      before: tp.old,
      after: tp.fresh,
    });
    expect(first.get('gw-web/sslCertificates/web-latest')?.detail).toContain(
      'refreshed from its versionless reference',
    );
    expect(first.get('gw-done/sslCertificates/web')).toMatchObject({
      status: 'unchanged',
      after: tp.fresh,
      probe: { ok: true },
    });
    const uploaded = first.get('gw-uploaded/sslCertificates/pfx');
    expect(uploaded).toMatchObject({ status: 'failed', before: tp.old, after: tp.old });
    expect(uploaded?.detail).toMatch(
      /uploaded certificate .* does not upload private keys; reference the Key Vault secret/,
    );

    const gw = fake.gateway(SUB_A, 'rg-net', 'gw-web');
    expect(gw?.sslCertificates.map((c) => `${c.name}=${c.keyVaultSecretId}`)).toEqual([
      `web-pinned=https://${KV}/secrets/web/v2`,
      `web-latest=https://${KV.toUpperCase()}/secrets/Web`, // left versionless
      `other=https://${KV}/secrets/other`,
    ]);
    expect(gw?.sslCertificates.find((c) => c.name === 'other')?.thumbprint).toBe(tp.unrelated);
    // one update for the gateway, polled through Azure-AsyncOperation until it succeeded
    expect(puts().map((r) => r.path)).toEqual([
      `/subscriptions/${SUB_A}/resourceGroups/rg-net/providers/Microsoft.Network/applicationGateways/gw-web`,
    ]);
    expect(
      fake.requests.filter((r) => r.path.startsWith('/fake-operations/azure-async/')).length,
    ).toBeGreaterThanOrEqual(3);

    fake.requests.length = 0;
    const second = await target().sync(ctx());
    expect(
      second
        .filter((o) => o.status === 'unchanged')
        .map(name)
        .sort(),
    ).toEqual([
      'gw-done/sslCertificates/web',
      'gw-web/sslCertificates/web-latest',
      'gw-web/sslCertificates/web-pinned',
    ]);
    expect(puts()).toEqual([]);
  });

  it('classifies throttling, server errors and a missing resource group, and binds the rest', async () => {
    await seed();
    await fake.addGateway({
      subscriptionId: SUB_A,
      resourceGroup: 'rg-flaky',
      name: 'gw-flaky',
      sslCertificates: [{ name: 'web', keyVaultSecretId: `https://${KV}/secrets/web/v1` }],
      listeners: [{ name: 'flaky', hostNames: ['flaky.contoso.test'], sslCertificate: 'web' }],
    });
    fake.fault({
      status: 429,
      retryAfter: 1,
      match: 'PUT /subscriptions/' + SUB_A + '/resourceGroups/rg-net/',
    });
    fake.fault({ status: 503, count: 20, match: /applicationGateways\/gw-flaky$/ });
    const outcomes = await target({
      subscriptions: [
        { subscriptionId: SUB_A },
        { subscriptionId: SUB_B, resourceGroups: ['rg-b', 'rg-typo'] },
      ],
    }).sync(ctx());
    const got = byName(outcomes);
    expect(got.get('gw-web/sslCertificates/web-pinned')?.status).toBe('bound');
    const gwPuts = puts().filter((r) => r.path.endsWith('/gw-web'));
    expect(gwPuts.map((r) => r.status)).toEqual([429, 201]);
    expect((gwPuts[1]?.at ?? 0) - (gwPuts[0]?.at ?? 0)).toBeGreaterThanOrEqual(950);

    const flaky = got.get('gw-flaky/sslCertificates/web');
    expect(flaky?.status).toBe('failed');
    expect(flaky?.detail).toMatch(
      /HTTP 503 InternalServerError: .*server error or not at all, retried later/,
    );

    const typo = outcomes.find((o) => o.binding === `/subscriptions/${SUB_B}/resourceGroups/rg-typo`);
    expect(typo).toMatchObject({ status: 'failed', before: null, after: null });
    expect(typo?.detail).toMatch(
      /resource group 'rg-typo' does not exist .*HTTP 404 ResourceGroupNotFound.*not checked/,
    );
    expect(got.get('gw-done/sslCertificates/web')?.status).toBe('unchanged'); // rg-b still listed
  });

  it('reports a gateway deleted between discovery and bind as failed', async () => {
    await seed();
    fake.once(/^GET .*\/applicationGateways\/gw-web$/, () => fake.deleteGateway(SUB_A, 'rg-net', 'gw-web'));
    const got = byName(await target().sync(ctx()));
    for (const n of ['gw-web/sslCertificates/web-pinned', 'gw-web/sslCertificates/web-latest']) {
      expect(got.get(n)?.status, n).toBe('failed');
      expect(got.get(n)?.detail, n).toMatch(
        /^application gateway 'gw-web' in resource group 'rg-net' was deleted between discovery and bind \(HTTP 404 ResourceNotFound/,
      );
    }
    expect(got.get('gw-done/sslCertificates/web')?.status).toBe('unchanged');
  });

  it('rolls a versioned reference back when its listener does not serve the new certificate; a failed load keeps the old one', async () => {
    await seed();
    // the probe of shop.contoso.test reaches a listener that still serves another certificate
    const outcomes = await target({
      probe: (host) => (host === 'shop.contoso.test' ? probe('other.contoso.test') : probe(host)),
      probeSettleMs: 300,
    }).sync(ctx());
    const got = byName(outcomes);
    const pinned = got.get('gw-web/sslCertificates/web-pinned');
    expect(pinned).toMatchObject({ status: 'rolled-back', before: tp.old, after: tp.old });
    expect(pinned?.detail).toMatch(
      /does not serve it: .*serves .*; rolled back to https:\/\/kv-prod\.vault\.azure\.net\/secrets\/web\/v1$/,
    );
    expect(fake.gateway(SUB_A, 'rg-net', 'gw-web')?.sslCertificates[0]).toMatchObject({
      keyVaultSecretId: `https://${KV}/secrets/web/v1`,
      thumbprint: tp.old,
    });
    expect(got.get('gw-web/sslCertificates/web-latest')?.status).toBe('bound'); // versionless: no way back, and none needed

    // the new version cannot be read by the gateway: the operation fails, nothing changes
    fake.reset();
    fake.vault.put(KV, 'web', old, 'v1');
    await fake.addGateway({
      subscriptionId: SUB_A,
      resourceGroup: 'rg-net',
      name: 'gw-web',
      sslCertificates: [{ name: 'web', keyVaultSecretId: `https://${KV}/secrets/web/v1` }],
      listeners: [{ name: 'shop', hostNames: ['shop.contoso.test'], sslCertificate: 'web' }],
    });
    const [failed] = await target({ subscriptions: [{ subscriptionId: SUB_A }] }).sync(ctx());
    expect(failed).toMatchObject({ status: 'failed', before: tp.old, after: tp.old });
    expect(failed?.detail).toMatch(
      /updating application gateway 'gw-web' failed, it keeps its previous certificates: .*ApplicationGatewayKeyVaultSecretException/,
    );
  });
});
