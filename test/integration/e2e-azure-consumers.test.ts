/**
 * Every Azure consumer re-bound through a running Worker: the local stack (Key Vault-compatible server, pebble over
 * ACME with DNS-01, nginx, SMTP) plus Application Gateway, Front Door and API Management, each a FAKE of its ARM
 * REST API (test/servers/arm-*.ts) driven by its real ARM SDK client. The fakes read the certificate from the Key
 * Vault server as the real services read Key Vault, and serve each listener / custom domain over TLS by SNI, so the
 * targets' live probes are real handshakes checked against pebble's root.
 * A renewal → every consumer on the new version within seconds, verified; then a consumer that keeps failing is
 * reported (classified) without blocking the others, and re-bound by the next sync.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createApiManagementTarget } from '../../activities/bindings/api-management';
import { createAppGatewayTarget } from '../../activities/bindings/app-gateway';
import { createFrontDoorTarget } from '../../activities/bindings/front-door';
import type { BindingOutcome, BindingTarget } from '../../activities/types';
import { certificateLifecycle } from '../../workflows/lifecycle';
import { renewNowUpdate, statusQuery, syncNowUpdate, workflowIdFor } from '../../workflows/messages';
import { startFakeApiManagement, type FakeApiManagement } from '../servers/arm-apimanagement';
import { startFakeFrontDoor, type FakeFrontDoor } from '../servers/arm-cdn';
import { thumbprintOfPem, type FakeArmCore, type SecretVersion } from '../servers/arm-fake';
import { startFakeNetwork, type FakeNetwork } from '../servers/arm-network';
import { waitFor } from '../support/proc';
import type { LocalStack } from '../support/stack';
import { startStackWithWorker, type StackWithWorker } from '../support/stack-worker';

const address = inject('temporalAddress');
const namespace = inject('temporalNamespace');
const taskQueue = `e2e-azure-${process.pid}`;
const SUB = '0b1b1b1b-0000-4000-8000-0000000000b1';
const KV_ARM_ID = `/subscriptions/${SUB}/resourceGroups/rg-sec/providers/Microsoft.KeyVault/vaults/kv-e2e`;

let running: StackWithWorker;
let stack: LocalStack;
let client: Client;
let gw: FakeNetwork;
let afd: FakeFrontDoor;
let apim: FakeApiManagement;
let targets: BindingTarget[] = [];

beforeAll(async () => {
  [gw, afd, apim] = await Promise.all([startFakeNetwork(), startFakeFrontDoor(), startFakeApiManagement()]);
  const [gwPort, afdPort, apimPort] = await Promise.all([
    gw.startListeners(),
    afd.startDomains(),
    apim.startGateway(),
  ]);
  running = await startStackWithWorker(
    { address, namespace, taskQueue },
    { certName: 'azure-site', seedDays: 90, bindings: (id) => (id === stack?.certificateId ? targets : []) },
  );
  ({ stack, client } = running);

  // the services read the certificate from the Key Vault server, as the real ones read Key Vault
  const resolver = async (
    _host: string,
    name: string,
    version: string | null,
  ): Promise<SecretVersion | null> => {
    const v = version ?? (await stack.vault.describe(name)).version;
    if (!v) return null;
    const m = await stack.vault.exportSecret(name, v);
    const certPem = m.chainPem.join('\n');
    return { certPem, keyPem: m.keyPem, version: v, thumbprint: thumbprintOfPem(certPem), enabled: true };
  };
  for (const f of [gw, afd, apim] as FakeArmCore[]) {
    f.vault.resolver = resolver;
    f.setLroPolls(1);
  }
  const secretId = stack.vault.secretIdOf('azure-site', 'x').replace(/\/x$/, ''); // versionless
  const host = stack.dnsName;
  await gw.addGateway({
    subscriptionId: SUB,
    resourceGroup: 'rg-net',
    name: 'gw',
    sslCertificates: [{ name: 'site', keyVaultSecretId: secretId }],
    listeners: [{ name: 'https', hostNames: [host], sslCertificate: 'site' }],
  });
  const current = (await stack.vault.describe('azure-site')).version as string;
  await afd.addProfile({
    subscriptionId: SUB,
    resourceGroup: 'rg-edge',
    name: 'afd',
    secrets: [{ name: 'site', secretSource: `${KV_ARM_ID}/secrets/azure-site`, secretVersion: current }],
    domains: [{ name: 'site', hostName: host, secret: 'site' }],
  });
  await apim.addService({
    subscriptionId: SUB,
    resourceGroup: 'rg-apis',
    name: 'apim',
    hostnames: [{ type: 'Proxy', hostName: host, keyVaultId: `${secretId}/${current}` }],
  });
  const probe = (port: number) => (hostName: string) => ({
    host: '127.0.0.1',
    port,
    servername: hostName,
    caPem: stack.pebbleRootPem,
  });
  const common = (f: FakeArmCore) => ({
    credential: f.credential,
    clientOptions: f.clientOptions,
    subscriptions: [{ subscriptionId: SUB }],
    pollIntervalMs: 50,
    probeSettleMs: 5_000,
  });
  targets = [
    createAppGatewayTarget({ name: 'app-gateway', ...common(gw), probe: probe(gwPort) }),
    createFrontDoorTarget({
      name: 'front-door',
      ...common(afd),
      keyVaultResourceId: () => KV_ARM_ID,
      probe: probe(afdPort),
    }),
    createApiManagementTarget({ name: 'api-management', ...common(apim), probe: probe(apimPort) }),
  ];
});

afterAll(async () => {
  // the lifecycle outlives the worker on the shared dev server: end it, so no other test meets its workflow id
  await client?.workflow
    .getHandle(workflowIdFor(stack.certificateId))
    .terminate('test done')
    .catch(() => undefined);
  await running?.stop();
  await Promise.all([gw?.close(), afd?.close(), apim?.close()]);
});

const byTarget = (bindings: BindingOutcome[]) => new Map(bindings.map((b) => [b.target, b]));

describe('every Azure consumer re-bound through a running worker (ARM fakes, real SDK clients)', () => {
  let handle: WorkflowHandle<typeof certificateLifecycle>;

  it('a renewal puts Application Gateway, Front Door and API Management on the new version within seconds, each verified live', async () => {
    const id = stack.certificateId;
    const seeded = (await stack.vault.describe('azure-site')).thumbprint;
    handle = await client.workflow.start(certificateLifecycle, {
      taskQueue,
      workflowId: workflowIdFor(id),
      args: [{ certificateId: id, issuer: stack.issuerName }],
    });
    await waitFor('the lifecycle to wait', async () =>
      (await handle.query(statusQuery)).phase === 'Waiting' ? true : undefined,
    );

    const t0 = performance.now();
    const outcome = await handle.executeUpdate(renewNowUpdate, { args: [{ reason: 'e2e azure consumers' }] });
    const ms = performance.now() - t0;
    expect(outcome.status).toBe('renewed');
    const got = byTarget(outcome.bindings);
    for (const t of ['nginx', 'app-gateway', 'front-door', 'api-management']) {
      expect(got.get(t), t).toMatchObject({ status: 'bound', before: seeded, after: outcome.newThumbprint });
      expect(got.get(t)?.probe, t).toMatchObject({ ok: true, servedThumbprint: outcome.newThumbprint });
    }
    expect(gw.gateway(SUB, 'rg-net', 'gw')?.sslCertificates[0]?.thumbprint).toBe(outcome.newThumbprint);
    expect(afd.profile(SUB, 'rg-edge', 'afd')?.secrets.get('site')?.secretVersion).toBe(outcome.newVersion);
    expect(apim.service(SUB, 'rg-apis', 'apim')?.hostnames[0]?.keyVaultId).toMatch(
      new RegExp(`/secrets/azure-site/${outcome.newVersion}$`),
    );
    const inWorkflow = Date.parse(outcome.finishedAt) - Date.parse(outcome.startedAt);
    console.log(
      `[e2e-azure] renew → nginx + 3 Azure consumers verified live: ${ms.toFixed(0)} ms (${inWorkflow} ms in the renewal workflow)`,
    );
  });

  it('a consumer that keeps failing is reported, classified, without blocking the others; the next sync re-binds it', async () => {
    // API Management answers 503 to every update for a while: the first try and the SDK's 3 retries
    apim.fault({ status: 503, count: 4, match: 'PATCH ' });
    const outcome = await handle.executeUpdate(renewNowUpdate, {
      args: [{ reason: 'e2e azure consumers, APIM down', force: true }],
    });
    expect(outcome.status).toBe('renewed');
    const got = byTarget(outcome.bindings);
    for (const t of ['nginx', 'app-gateway', 'front-door'])
      expect(got.get(t), t).toMatchObject({
        status: 'bound',
        after: outcome.newThumbprint,
        probe: { ok: true },
      });
    expect(got.get('api-management')).toMatchObject({ status: 'failed', after: outcome.oldThumbprint });
    expect(got.get('api-management')?.detail).toMatch(/HTTP 503 .*server error or not at all, retried later/);
    // the lifecycle keeps the failed consumer for a re-sync with backoff
    const st = await handle.query(statusQuery);
    expect(st.bindings.find((b) => b.target === 'api-management')?.status).toBe('failed');

    // Azure is back: a sync (the lifecycle's own retry does the same after its backoff) re-binds it, the rest unchanged
    expect(apim.requests.filter((r) => r.method === 'PATCH').map((r) => r.status)).toEqual([
      202, 503, 503, 503, 503,
    ]);
    const synced = byTarget(await handle.executeUpdate(syncNowUpdate, { args: [{ requestedBy: 'e2e' }] }));
    expect(synced.get('api-management')).toMatchObject({
      status: 'bound',
      after: outcome.newThumbprint,
      probe: { ok: true },
    });
    for (const t of ['nginx', 'app-gateway', 'front-door'])
      expect(synced.get(t)?.status, t).toBe('unchanged');
  });
});
