/**
 * The API Management binding target with the real `@azure/arm-apimanagement` client against a FAKE Azure Resource
 * Manager (test/servers/arm-apimanagement.ts): ARM cannot run here and no emulator exists, so the fake follows the
 * documented Microsoft.ApiManagement wire format (services with hostname configurations updated as a long-running
 * operation polled through Location, certificates with refreshSecret, paging, ARM errors). The live probe is a
 * real TLS handshake against the fake's SNI gateway.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createApiManagementTarget,
  type ApiManagementTargetOptions,
} from '../../activities/bindings/api-management';
import type { BindingContext, BindingOutcome } from '../../activities/types';
import { startFakeApiManagement, type FakeApiManagement } from '../servers/arm-apimanagement';
import { createTestCa } from '../support/test-ca';

const SUB = '0d0d0d0d-0000-4000-8000-00000000000d';
const KV = 'kv-prod.vault.azure.net';
const ca = createTestCa({ keyType: 'ec' });
const issue = () => ca.issueServerCert(['*.contoso.test'], { keyType: 'ec' });
const [old, fresh, unrelated] = [issue(), issue(), issue()];

let fake: FakeApiManagement;
let port: number;
const tp = { old: '', fresh: '', unrelated: '' };

beforeAll(async () => {
  fake = await startFakeApiManagement();
  port = await fake.startGateway();
});
afterAll(async () => {
  await fake?.close();
});
function restart() {
  fake.reset();
  fake.setLroPolls(2);
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
  material: () => Promise.reject(new Error('an API Management target must never ask for the private key')),
});
const probe = (hostName: string) => ({ host: '127.0.0.1', port, servername: hostName, caPem: ca.caCertPem });
const target = (over: Partial<ApiManagementTargetOptions> = {}) =>
  createApiManagementTarget({
    name: 'apim',
    credential: fake.credential,
    clientOptions: fake.clientOptions,
    subscriptions: [{ subscriptionId: SUB }],
    pollIntervalMs: 20,
    probe,
    probeSettleMs: 2_000,
    ...over,
  });

async function seed() {
  await fake.addService({
    subscriptionId: SUB,
    resourceGroup: 'rg-apis',
    name: 'apim-prod',
    hostnames: [
      { type: 'Proxy', hostName: 'api.contoso.test', keyVaultId: `https://${KV}/secrets/web` },
      {
        type: 'DeveloperPortal',
        hostName: 'portal.contoso.test',
        keyVaultId: `https://${KV}/secrets/web/v1`,
      },
      { type: 'Management', hostName: 'mgmt.contoso.test', keyVaultId: `https://${KV}/secrets/other` },
      { type: 'Proxy', hostName: 'legacy.contoso.test', uploaded: old },
    ],
    certificates: [
      { id: 'backend-latest', secretIdentifier: `https://${KV}/secrets/web` },
      { id: 'backend-pinned', secretIdentifier: `https://${KV}/secrets/web/v1` },
      { id: 'unrelated', secretIdentifier: `https://${KV}/secrets/other` },
    ],
  });
  renew();
}

const name = (o: BindingOutcome) => o.binding.split('/apim-prod/')[1] ?? o.binding;
const byName = (os: BindingOutcome[]) => new Map(os.map((o) => [name(o), o]));
const writes = () => fake.requests.filter((r) => r.method !== 'GET');

describe('API Management binding target (real @azure/arm-apimanagement client, FAKE ARM server)', () => {
  it('reloads custom domains and certificates from Key Vault, verifies each domain live; a second sync changes nothing', async () => {
    await seed();
    const got = byName(await target().sync(ctx()));
    expect([...got.keys()].sort()).toEqual([
      'certificates/backend-latest',
      'certificates/backend-pinned',
      'hostnameConfigurations/DeveloperPortal/portal.contoso.test',
      'hostnameConfigurations/Proxy/api.contoso.test',
      'hostnameConfigurations/Proxy/legacy.contoso.test',
    ]);
    expect(got.get('hostnameConfigurations/Proxy/api.contoso.test')).toMatchObject({
      status: 'bound',
      before: tp.old,
      after: tp.fresh,
      probe: { ok: true, servedThumbprint: tp.fresh },
    });
    expect(got.get('hostnameConfigurations/Proxy/api.contoso.test')?.detail).toContain(
      'reloaded from its versionless Key Vault id',
    );
    expect(got.get('hostnameConfigurations/DeveloperPortal/portal.contoso.test')?.detail).toContain(
      'moved to version v2',
    );
    expect(got.get('hostnameConfigurations/Proxy/legacy.contoso.test')).toMatchObject({
      status: 'failed',
      before: tp.old,
    });
    expect(got.get('certificates/backend-latest')).toMatchObject({
      status: 'bound',
      before: tp.old,
      after: tp.fresh,
    });
    expect(got.get('certificates/backend-pinned')?.detail).toContain('moved to version v2');
    const svc = fake.service(SUB, 'rg-apis', 'apim-prod');
    expect(svc?.hostnames.map((h) => `${h.hostName}=${h.keyVaultId ?? 'uploaded'}`)).toEqual([
      `api.contoso.test=https://${KV}/secrets/web`,
      `portal.contoso.test=https://${KV}/secrets/web/v2`,
      `mgmt.contoso.test=https://${KV}/secrets/other`,
      'legacy.contoso.test=uploaded',
    ]);
    expect(svc?.hostnames.find((h) => h.hostName === 'mgmt.contoso.test')?.thumbprint).toBe(tp.unrelated);
    expect(svc?.certificates.get('unrelated')?.thumbprint).toBe(tp.unrelated);
    // one service update, polled through Location
    expect(writes().map((r) => `${r.method} ${r.path.split('/apim-prod')[1]}`)).toEqual([
      'PATCH ',
      'POST /certificates/backend-latest/refreshSecret',
      'PUT /certificates/backend-pinned',
    ]);
    expect(
      fake.requests.filter((r) => r.path.startsWith('/fake-operations/location/')).length,
    ).toBeGreaterThanOrEqual(3);

    fake.requests.length = 0;
    const second = await target().sync(ctx());
    expect(second.filter((o) => o.status !== 'unchanged').map(name)).toEqual([
      'hostnameConfigurations/Proxy/legacy.contoso.test',
    ]);
    expect(writes()).toEqual([]);
  });

  it('classifies throttling and 5xx, reports a missing resource group, a service deleted meanwhile and a secret it cannot read', async () => {
    await seed();
    fake.fault({ status: 429, retryAfter: 1, match: 'PATCH ' });
    fake.fault({ status: 503, count: 20, match: /refreshSecret$/ });
    const outcomes = await target({
      subscriptions: [{ subscriptionId: SUB, resourceGroups: ['rg-apis', 'rg-missing'] }],
    }).sync(ctx());
    const got = byName(outcomes);
    expect(got.get('hostnameConfigurations/Proxy/api.contoso.test')?.status).toBe('bound');
    expect(fake.requests.filter((r) => r.method === 'PATCH').map((r) => r.status)).toEqual([429, 202]);
    expect(got.get('certificates/backend-latest')?.detail).toMatch(
      /refreshing certificate 'backend-latest' .* failed: HTTP 503 .*retried later/,
    );
    expect(outcomes.find((o) => o.binding.endsWith('/rg-missing'))?.detail).toMatch(/ResourceGroupNotFound/);

    restart();
    await seed();
    fake.once('PATCH ', () => fake.services.clear());
    const gone = byName(await target().sync(ctx())).get('hostnameConfigurations/Proxy/api.contoso.test');
    expect(gone?.detail).toMatch(/was deleted between discovery and bind \(HTTP 404 ResourceNotFound/);

    restart();
    await fake.addService({
      subscriptionId: SUB,
      resourceGroup: 'rg-apis',
      name: 'apim-prod',
      hostnames: [
        { type: 'Proxy', hostName: 'api.contoso.test', keyVaultId: `https://${KV}/secrets/web/v1` },
      ],
    });
    const [unread] = await target().sync(ctx()); // v2 does not exist in the vault
    expect(unread).toMatchObject({ status: 'failed', before: tp.old, after: tp.old });
    expect(unread?.detail).toMatch(
      /failed, they keep their previous certificates: HTTP 400 InvalidParameters: Failed to access KeyVault Secret .*\(refused by Azure\)$/,
    );
  });

  it('rolls a versioned custom domain back when it does not serve the new certificate', async () => {
    await seed();
    const outcomes = await target({
      probe: (host) => (host === 'portal.contoso.test' ? probe('mgmt.contoso.test') : probe(host)),
      probeSettleMs: 300,
    }).sync(ctx());
    const portal = byName(outcomes).get('hostnameConfigurations/DeveloperPortal/portal.contoso.test');
    expect(portal).toMatchObject({ status: 'rolled-back', before: tp.old, after: tp.old });
    expect(fake.service(SUB, 'rg-apis', 'apim-prod')?.hostnames[1]).toMatchObject({
      keyVaultId: `https://${KV}/secrets/web/v1`,
      thumbprint: tp.old,
    });
  });
});
