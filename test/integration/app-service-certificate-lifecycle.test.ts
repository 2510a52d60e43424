/**
 * An App Service Certificate order with a lifecycle in observe mode, through a running worker on the real dev
 * server, with the real `@azure/arm-certificateregistration` and `@azure/arm-appservice` clients against FAKE Azure
 * Resource Manager servers (test/servers/arm-certificateregistration.ts, arm-appservice.ts): no ARM can run here.
 * The order's state shows in status; `certflow renew` calls the order's renew action (Azure renews, never a CA of
 * Certflow's); the renewed certificate is re-imported into every App Service plan using it and every host name
 * and slot is re-bound and probed at once, instead of App Service's 24-48 h sync.
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createCertificateOrders,
  createCertificateOrderTarget,
} from '../../activities/bindings/app-service-certificate-orders';
import { createActivities } from '../../activities/index';
import {
  lifecycleStatus,
  renewLifecycle,
  startLifecycle,
  lifecycleHandle,
} from '../../activities/lifecycles';
import { createAppServiceCertificatesVault } from '../../activities/vault/app-service-certificates';
import { createCertflowWorker } from '../../worker/worker';
import { historyQuery, observeNowSignal } from '../../workflows/messages';
import { startFakeArm, type FakeArm } from '../servers/arm-appservice';
import {
  startFakeCertificateOrders,
  type FakeCertificateOrders,
} from '../servers/arm-certificateregistration';
import { waitFor } from '../support/proc';
import { createTestCa } from '../support/test-ca';

const address = inject('temporalAddress');
const namespace = inject('temporalNamespace');
const taskQueue = `asc-${process.pid}`;
const SUB = '0e0e0e0e-0000-4000-8000-00000000000f';
const KV_ID = `/subscriptions/${SUB}/resourceGroups/rg-sec/providers/Microsoft.KeyVault/vaults/kv-asc`;
const VAULT = 'appservice';
const ca = createTestCa({ keyType: 'ec' });
const issue = () => ca.issueServerCert(['*.contoso.test'], { keyType: 'ec' });

let orders: FakeCertificateOrders;
let web: FakeArm;
let native: NativeConnection;
let worker: Worker;
let running: Promise<void>;
let client: Client;
let previousTp: string;

beforeAll(async () => {
  [orders, web] = await Promise.all([startFakeCertificateOrders(), startFakeArm()]);
  const frontend = await web.startFrontend();
  orders.issue = () => issue();
  const first = issue();
  orders.addOrder({
    subscriptionId: SUB,
    resourceGroup: 'rg-certs',
    name: 'shop',
    certificate: first,
    keyVault: { keyVaultId: KV_ID, secretName: 'shop-cert', provisioningState: 'Succeeded' },
  });
  orders.addOrder({
    subscriptionId: SUB,
    resourceGroup: 'rg-certs',
    name: 'manual',
    certificate: issue(),
    keyVault: { keyVaultId: KV_ID, secretName: 'manual', provisioningState: 'Succeeded' },
    autoRenew: false,
  });
  // App Service: two plans in two regions use the order's secret, each site with a slot
  previousTp = web.setSecret(KV_ID, 'shop-cert', first);
  for (const [rg, location] of [
    ['rg-weu', 'West Europe'],
    ['rg-eus', 'East US'],
  ] as const) {
    const plan = web.addPlan({ subscriptionId: SUB, resourceGroup: rg, name: `plan-${rg}`, location });
    web.addCertificate({
      subscriptionId: SUB,
      resourceGroup: rg,
      name: 'shop-cert',
      serverFarmId: plan,
      material: first,
      keyVault: { keyVaultId: KV_ID, secretName: 'shop-cert' },
    });
    web.addSite({
      subscriptionId: SUB,
      resourceGroup: rg,
      name: `shop-${rg}`,
      serverFarmId: plan,
      bindings: [{ hostName: `${rg}.contoso.test`, thumbprint: previousTp }],
      slots: { staging: [{ hostName: `staging-${rg}.contoso.test`, thumbprint: previousTp }] },
    });
  }
  const orderClient = createCertificateOrders({
    credential: orders.credential,
    clientOptions: orders.clientOptions,
    subscriptions: [{ subscriptionId: SUB }],
  });
  const target = createCertificateOrderTarget({
    name: 'app-service-certificates',
    orders: orderClient,
    credential: web.credential,
    clientOptions: web.clientOptions,
    subscriptions: [{ subscriptionId: SUB }],
    importPollMs: 20,
    probe: (hostName) => ({ host: '127.0.0.1', port: frontend, servername: hostName, caPem: ca.caCertPem }),
  });
  native = await NativeConnection.connect({ address });
  worker = await createCertflowWorker({
    connection: native,
    namespace,
    taskQueue,
    activities: createActivities({
      vaults: new Map([[VAULT, createAppServiceCertificatesVault({ name: VAULT, orders: orderClient })]]),
      issuers: new Map(),
      bindings: () => [target],
      notifier: null,
    }),
  });
  running = worker.run();
  client = new Client({ connection: await Connection.connect({ address }), namespace });
});

afterAll(async () => {
  for (const n of ['shop', 'manual'])
    await lifecycleHandle(client, `${VAULT}/${n}`)
      .terminate('test done')
      .catch(() => undefined);
  if (worker?.getState() === 'RUNNING') worker.shutdown();
  await running;
  await native?.close();
  await client?.connection.close();
  await Promise.all([orders?.close(), web?.close()]);
});

describe('App Service Certificate orders in observe mode', () => {
  it('shows the order’s state; certflow renew asks the order; every plan, host name and slot is re-bound at once', async () => {
    for (const n of ['shop', 'manual'])
      await startLifecycle(client, { certificateId: `${VAULT}/${n}`, issuer: 'none', taskQueue });
    const manual = await waitFor('the manual order observed', async () => {
      const s = await lifecycleStatus(client, `${VAULT}/manual`);
      return s.thumbprint ? s : undefined;
    });
    expect(manual.mode).toBe('observe');
    expect(manual.notes?.join('\n')).toMatch(/^AutoRenewOff: /m);
    const before = await waitFor('the shop order observed', async () => {
      const s = await lifecycleStatus(client, `${VAULT}/shop`);
      return s.thumbprint ? s : undefined;
    });
    expect(before.mode).toBe('observe');
    expect(before.thumbprint).toBe(previousTp);

    const asked = await renewLifecycle(client, `${VAULT}/shop`, { reason: 'rotate', requestedBy: 'test' });
    expect(asked.status).toBe('requested');
    expect(orders.order(SUB, 'rg-certs', 'shop')?.renewals).toBe(1);
    // App Service's copy of the secret follows the order's Key Vault secret
    const renewedTp = web.setSecret(KV_ID, 'shop-cert', orders.order(SUB, 'rg-certs', 'shop')!.certificate);
    await lifecycleHandle(client, `${VAULT}/shop`).signal(observeNowSignal, {
      reason: 'test: the order renewed',
    });
    const after = await waitFor(
      'the renewed order bound',
      async () => {
        const s = await lifecycleStatus(client, `${VAULT}/shop`);
        return s.thumbprint === renewedTp && s.phase === 'Waiting' ? s : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect(
      after.bindings.map((b) => `${b.binding.split('/').pop()}:${b.status}:${b.probe?.ok}`).sort(),
    ).toEqual([
      'rg-eus.contoso.test:bound:true',
      'rg-weu.contoso.test:bound:true',
      'staging-rg-eus.contoso.test:bound:true',
      'staging-rg-weu.contoso.test:bound:true',
    ]);
    const [last] = await lifecycleHandle(client, `${VAULT}/shop`).query(historyQuery);
    expect(last).toMatchObject({ status: 'renewed', trigger: 'VaultRenewed', newThumbprint: renewedTp });
  });
});
