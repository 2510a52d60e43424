/**
 * Conformance of our FAKE App Service (test/servers/arm-appservice.ts) to the real service, scenario by scenario,
 * with the facts (status codes, fields, headers, error codes) taken from recorded real sessions; and the App Service
 * adapter's behaviour on each difference that mattered. Recordings are in the public repository
 * Azure/azure-sdk-assets (read for facts; nothing of them is copied here). Each test names its scenario and gives
 * the recording it encodes.
 */
import https from 'node:https';
import { WebSiteManagementClient } from '@azure/arm-appservice';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAppServiceTarget } from '../../activities/bindings/app-service';
import type { BindingContext } from '../../activities/types';
import { ARM_API_VERSION, startFakeArm, type FakeArm } from '../servers/arm-appservice';
import { createTestCa } from '../support/test-ca';

const SUB = '0f0f0f0f-0000-4000-8000-00000000000f';
const KV_ID = `/subscriptions/${SUB}/resourceGroups/rg-sec/providers/Microsoft.KeyVault/vaults/kv-prod`;
const ca = createTestCa({ keyType: 'ec' });
const issue = () => ca.issueServerCert(['*.contoso.test'], { keyType: 'ec' });
const [old, fresh] = [issue(), issue()];

let fake: FakeArm;
let tp: { old: string; fresh: string };
beforeAll(async () => {
  fake = await startFakeArm();
});
afterAll(async () => {
  await fake?.close();
});
beforeEach(() => {
  fake.reset();
  tp = { old: fake.setSecret(KV_ID, 'web', old), fresh: '' };
});

/** One raw request, to check the wire (status, headers, body) as the recordings show it. */
function raw(method: string, path: string, body?: unknown) {
  return new Promise<{
    status: number;
    headers: Record<string, string | string[] | undefined>;
    json: unknown;
  }>((resolve, reject) => {
    const u = new URL(path, fake.url);
    u.searchParams.set('api-version', ARM_API_VERSION);
    const req = https.request(
      u,
      {
        method,
        ca: fake.caPem,
        headers: { authorization: 'Bearer fake-arm-access-token', 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            json: text ? JSON.parse(text) : null,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

function seedWebspace() {
  const plan = fake.addPlan({
    subscriptionId: SUB,
    resourceGroup: 'rg-web',
    name: 'plan',
    location: 'East US',
  });
  fake.addCertificate({
    subscriptionId: SUB,
    resourceGroup: 'rg-web',
    name: 'kv-prod-web',
    serverFarmId: plan,
    material: old,
    keyVault: { keyVaultId: KV_ID, secretName: 'web' },
  });
  fake.addSite({
    subscriptionId: SUB,
    resourceGroup: 'rg-web',
    name: 'shop',
    serverFarmId: plan,
    bindings: [{ hostName: 'shop.contoso.test', thumbprint: tp.old }],
  });
  tp.fresh = fake.setSecret(KV_ID, 'web', fresh);
  return plan;
}

const ctx = (): BindingContext => ({
  certificateId: 'kv-prod/web',
  version: 'v2',
  thumbprint: tp.fresh,
  previousThumbprint: tp.old,
  secretId: 'https://kv-prod.vault.azure.net/secrets/web/v2',
  notAfter: null,
  material: () => Promise.reject(new Error('not used by App Service')),
});
const target = (over: { importTimeoutMs?: number } = {}) =>
  createAppServiceTarget({
    name: 'apps',
    credential: fake.credential,
    clientOptions: fake.clientOptions,
    subscriptions: [{ subscriptionId: SUB, resourceGroups: ['rg-web'] }],
    keyVaultResourceId: () => KV_ID,
    importPollMs: 20,
    ...over,
  });

describe('ARM App Service: our fake against recorded real sessions', () => {
  // recording: js/sdk/appservice/arm-appservice/recordings/node/web_test/recording_webapps_get_test.json
  it('webapps_get: 200 with an ETag and x-ms-ratelimit-remaining-subscription-reads, a display-name location, explicit nulls in hostNameSslStates', async () => {
    seedWebspace();
    const r = await raw(
      'GET',
      `/subscriptions/${SUB}/resourceGroups/rg-web/providers/Microsoft.Web/sites/shop`,
    );
    expect(r.status).toBe(200);
    expect(r.headers.etag).toMatch(/^"[0-9A-F]+"$/);
    expect(r.headers['x-ms-ratelimit-remaining-subscription-reads']).toMatch(/^\d+$/);
    expect(r.headers['x-ms-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const site = r.json as { location: string; type: string; properties: Record<string, unknown> };
    expect(site).toMatchObject({ type: 'Microsoft.Web/sites', location: 'East US' });
    const states = site.properties.hostNameSslStates as Array<Record<string, unknown>>;
    expect(states[0]).toMatchObject({
      sslState: 'Disabled',
      thumbprint: null,
      virtualIP: null,
      ipBasedSslState: 'NotConfigured',
      hostType: 'Standard',
    });
    expect(states.find((s) => s.name === 'shop.contoso.test')).toMatchObject({
      sslState: 'SniEnabled',
      thumbprint: tp.old,
    });
    expect(site.properties).toMatchObject({
      siteScopedCertificatesEnabled: false,
      serverFarmId: expect.stringContaining('/serverfarms/plan'),
    });
    // the real client reads it, nulls and all
    const got = await new WebSiteManagementClient(fake.credential, SUB, fake.clientOptions).webApps.get(
      'rg-web',
      'shop',
    );
    expect(got.hostNameSslStates?.find((s) => s.name === 'shop.contoso.test')?.thumbprint).toBe(tp.old);
  });

  // recording: js/sdk/appservice/arm-appservice/recordings/node/web_test/recording_webapps_list_test.json
  it('webapps_list: a listing in a resource group that does not exist answers 404 ResourceGroupNotFound, and the adapter reports that scope as failed', async () => {
    // The wrapped body `{ error: { code: 'ResourceGroupNotFound', message: "Resource group 'x' could not be found." } }`
    // is ARM's own (its front door answers before the provider); no azure-sdk-assets recording of it was found,
    // the shape is the one the Azure CLI and the ARM documentation show.
    seedWebspace();
    const r = await raw('GET', `/subscriptions/${SUB}/resourceGroups/rg-typo/providers/Microsoft.Web/sites`);
    expect(r).toMatchObject({
      status: 404,
      json: {
        error: { code: 'ResourceGroupNotFound', message: "Resource group 'rg-typo' could not be found." },
      },
    });
    const outcomes = await createAppServiceTarget({
      name: 'apps',
      credential: fake.credential,
      clientOptions: fake.clientOptions,
      subscriptions: [{ subscriptionId: SUB, resourceGroups: ['rg-web', 'rg-typo'] }],
      keyVaultResourceId: () => KV_ID,
      importPollMs: 20,
    }).sync(ctx());
    const scope = outcomes.find((o) => o.binding === `/subscriptions/${SUB}/resourceGroups/rg-typo`);
    expect(scope).toMatchObject({ status: 'failed', before: null, after: null });
    expect(scope?.detail).toMatch(
      /^resource group 'rg-typo' does not exist in subscription .* \(mistyped or deleted\?\): listing web apps failed: HTTP 404 ResourceGroupNotFound/,
    );
    expect(outcomes.find((o) => o.binding.endsWith('/shop.contoso.test'))?.status).toBe('bound'); // rg-web still bound
  });

  // recording: the Azure CLI's webapp test `test_webapp_ssl_import` (Azure/azure-cli, src/azure-cli/azure/cli/command_modules/appservice/tests/latest/test_webapp_commands.py):
  // the import answers keyVaultSecretStatus "Initialized" with the thumbprint
  it('certificate import from Key Vault: the PUT answers Initialized, a later read Succeeded; the adapter waits for it', async () => {
    seedWebspace();
    fake.setImportPolls(2);
    const put = await raw(
      'PUT',
      `/subscriptions/${SUB}/resourceGroups/rg-web/providers/Microsoft.Web/certificates/kv-prod-web`,
      {
        location: 'East US',
        properties: {
          keyVaultId: KV_ID,
          keyVaultSecretName: 'web',
          serverFarmId: fake.state.plans.values().next().value?.id,
        },
      },
    );
    expect(put.status).toBe(200);
    expect((put.json as { properties: Record<string, unknown> }).properties).toMatchObject({
      keyVaultSecretStatus: 'Initialized',
      thumbprint: tp.old, // a re-sent certificate shows what it had until App Service has read the secret
    });
    const path = `/subscriptions/${SUB}/resourceGroups/rg-web/providers/Microsoft.Web/certificates/kv-prod-web`;
    const reads = [await raw('GET', path), await raw('GET', path), await raw('GET', path)];
    expect(
      reads.map(
        (r) => (r.json as { properties: { keyVaultSecretStatus: string } }).properties.keyVaultSecretStatus,
      ),
    ).toEqual(['Initialized', 'Initialized', 'Succeeded']);
    expect((reads[2]?.json as { properties: { thumbprint: string } }).properties.thumbprint).toBe(tp.fresh);

    fake.reset();
    tp.old = fake.setSecret(KV_ID, 'web', old);
    seedWebspace();
    fake.setImportPolls(3);
    const [o] = await target().sync(ctx());
    expect(o).toMatchObject({ status: 'bound', before: tp.old, after: tp.fresh });
    const certReads = fake.requests.filter(
      (r) => r.method === 'GET' && r.path.endsWith('/certificates/kv-prod-web'),
    );
    expect(certReads.length).toBeGreaterThanOrEqual(3);
  });

  it('certificate import from Key Vault: a failed status names what to grant or fix; an import that never finishes is bounded', async () => {
    seedWebspace();
    fake.failImport(KV_ID, 'web', 'AzureServiceUnauthorizedToAccessKeyVault');
    const [denied] = await target().sync(ctx());
    expect(denied).toMatchObject({ status: 'failed', before: tp.old, after: tp.old });
    expect(denied?.detail).toMatch(
      /importing App Service certificate 'kv-prod-web' .* failed: App Service reports keyVaultSecretStatus AzureServiceUnauthorizedToAccessKeyVault: .*grant App Service’s principal .* Key Vault Certificate User/,
    );
    expect(fake.binding(SUB, 'rg-web', 'shop', 'shop.contoso.test')?.thumbprint).toBe(tp.old);

    fake.reset();
    tp.old = fake.setSecret(KV_ID, 'web', old);
    seedWebspace();
    fake.failImport(KV_ID, 'web', 'KeyVaultSecretDoesNotExist');
    expect((await target().sync(ctx()))[0]?.detail).toMatch(
      /KeyVaultSecretDoesNotExist: the secret does not exist in the vault/,
    );

    fake.reset();
    tp.old = fake.setSecret(KV_ID, 'web', old);
    seedWebspace();
    fake.setImportPolls(1_000_000);
    const started = Date.now();
    const [slow] = await target({ importTimeoutMs: 300 }).sync(ctx());
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(slow?.detail).toMatch(
      /has not finished reading the secret after 0 s \(keyVaultSecretStatus Initialized\); retried later/,
    );
  });
});
