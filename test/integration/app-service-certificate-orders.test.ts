/**
 * App Service Certificate orders with the real `@azure/arm-certificateregistration` client against a FAKE Azure
 * Resource Manager (test/servers/arm-certificateregistration.ts), and their re-binding with the real
 * `@azure/arm-appservice` client against the FAKE App Service (test/servers/arm-appservice.ts): ARM cannot run
 * here and no emulator exists. Discovery with each order's state as data, the renew action, and a renewed order
 * re-imported into every webspace that uses it with every host name and slot re-bound and probed live.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createCertificateOrders,
  createCertificateOrderTarget,
} from '../../activities/bindings/app-service-certificate-orders';
import type { BindingContext } from '../../activities/types';
import { startFakeArm, type FakeArm } from '../servers/arm-appservice';
import {
  startFakeCertificateOrders,
  type FakeCertificateOrders,
} from '../servers/arm-certificateregistration';
import { createTestCa } from '../support/test-ca';

const SUB = '0e0e0e0e-0000-4000-8000-00000000000e';
const KV_ID = `/subscriptions/${SUB}/resourceGroups/rg-sec/providers/Microsoft.KeyVault/vaults/kv-certs`;
const ca = createTestCa({ keyType: 'ec' });
const issue = () => ca.issueServerCert(['*.contoso.test'], { keyType: 'ec' });

let orders: FakeCertificateOrders;
let web: FakeArm;
let frontend: number;

beforeAll(async () => {
  [orders, web] = await Promise.all([startFakeCertificateOrders(), startFakeArm()]);
  frontend = await web.startFrontend();
});
afterAll(async () => {
  await Promise.all([orders?.close(), web?.close()]);
});
beforeEach(() => {
  orders.reset();
  web.reset();
  orders.issue = () => issue();
});

const id = (name: string, rg = 'rg-certs') =>
  `/subscriptions/${SUB}/resourceGroups/${rg}/providers/Microsoft.CertificateRegistration/certificateOrders/${name}`;
const client = (resourceGroups?: string[]) =>
  createCertificateOrders({
    credential: orders.credential,
    clientOptions: orders.clientOptions,
    subscriptions: [{ subscriptionId: SUB, ...(resourceGroups ? { resourceGroups } : {}) }],
    now: () => new Date('2030-06-01T00:00:00Z'),
  });

function seedOrders() {
  const kv = (secretName: string, provisioningState = 'Succeeded') => ({
    keyVaultId: KV_ID,
    secretName,
    provisioningState,
  });
  orders.addOrder({
    subscriptionId: SUB,
    resourceGroup: 'rg-certs',
    name: 'shop',
    certificate: issue(),
    keyVault: kv('shop-cert'),
  });
  orders.addOrder({
    subscriptionId: SUB,
    resourceGroup: 'rg-certs',
    name: 'manual',
    certificate: issue(),
    keyVault: kv('manual'),
    autoRenew: false,
  });
  orders.addOrder({
    subscriptionId: SUB,
    resourceGroup: 'rg-certs',
    name: 'pending',
    certificate: issue(),
    keyVault: kv('pending'),
    status: 'Pendingissuance',
  });
  orders.addOrder({
    subscriptionId: SUB,
    resourceGroup: 'rg-other',
    name: 'locked-out',
    certificate: issue(),
    keyVault: kv('locked', 'AzureServiceUnauthorizedToAccessKeyVault'),
    nextAutoRenewal: '2030-05-01T00:00:00Z',
    lastIssued: '2029-05-01T00:00:00Z',
  });
  orders.addOrder({
    subscriptionId: SUB,
    resourceGroup: 'rg-other',
    name: 'no-vault',
    certificate: issue(),
    notRenewableReasons: ['ExpirationNotInRenewalTimeRange'],
  });
}

describe('App Service Certificate orders (real @azure/arm-certificateregistration client, FAKE ARM server)', () => {
  it('lists the orders with their Key Vault secret and their state as data; a missing resource group is a problem, not "no orders"', async () => {
    seedOrders();
    const { orders: listed, problems } = await client().list();
    const conditions = Object.fromEntries(listed.map((o) => [o.name, o.conditions.map((c) => c.type)]));
    expect(conditions).toEqual({
      shop: [],
      manual: ['AutoRenewOff'],
      pending: ['DomainVerificationPending'],
      'locked-out': ['RenewalFailed', 'KeyVaultSyncFailed'],
      'no-vault': ['NotRenewable', 'KeyVaultNotLinked'],
    });
    const shop = listed.find((o) => o.name === 'shop');
    expect(shop).toMatchObject({
      id: id('shop'),
      status: 'Issued',
      autoRenew: true,
      keyVault: { keyVaultId: KV_ID, secretName: 'shop-cert', status: 'Succeeded' },
    });
    expect(shop?.thumbprint).toMatch(/^[0-9A-F]{40}$/);
    expect(listed.find((o) => o.name === 'locked-out')?.conditions[1]?.message).toMatch(
      /AzureServiceUnauthorizedToAccessKeyVault: App Service may not read the vault: grant App Service’s principal .* Key Vault Certificate User/,
    );
    expect(problems).toEqual([]);

    const scoped = await client(['rg-certs', 'rg-missing']).list();
    expect(scoped.orders.map((o) => o.name).sort()).toEqual(['manual', 'pending', 'shop']);
    expect(scoped.problems).toEqual([
      {
        where: `/subscriptions/${SUB}/resourceGroups/rg-missing`,
        detail: expect.stringMatching(/resource group 'rg-missing' does not exist .*ResourceGroupNotFound/),
      },
    ]);
  });

  it('renews an order on request, refuses one pending domain verification, and re-binds every app and slot of a renewed order', async () => {
    seedOrders();
    const c = client();
    const before = await c.describe(id('shop'));
    expect(await c.renew(id('pending'))).toEqual({
      started: false,
      status: expect.stringMatching(/HTTP 400 BadRequest: .*pending domain verification/),
    });
    expect(orders.order(SUB, 'rg-certs', 'pending')?.renewals).toBe(0);
    await expect(c.describe(id('gone'))).rejects.toMatchObject({ failure: { kind: 'gone', status: 404 } });

    expect(await c.renew(id('shop'))).toEqual({ started: true, status: 'renewal requested' });
    const after = await c.describe(id('shop'));
    expect(after.thumbprint).not.toBe(before.thumbprint);
    expect(after.conditions).toEqual([]);

    // App Service: two webspaces use the order's secret; the secret now holds the renewed certificate
    const renewed = orders.order(SUB, 'rg-certs', 'shop')!.certificate;
    expect((await orders.vault.read('kv-certs.vault.azure.net', 'shop-cert', null))?.thumbprint).toBe(
      after.thumbprint,
    );
    const previous = issue();
    const previousTp = web.setSecret(KV_ID, 'shop-cert', previous);
    const freshTp = web.setSecret(KV_ID, 'shop-cert', renewed);
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
        material: previous,
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
    const target = createCertificateOrderTarget({
      name: 'app-service-certificates',
      orders: c,
      credential: web.credential,
      clientOptions: web.clientOptions,
      subscriptions: [{ subscriptionId: SUB }],
      importPollMs: 20,
      probe: (hostName) => ({ host: '127.0.0.1', port: frontend, servername: hostName, caPem: ca.caCertPem }),
    });
    const ctx: BindingContext = {
      certificateId: 'kv-certs/shop-cert',
      version: 'v2',
      thumbprint: after.thumbprint!,
      previousThumbprint: previousTp,
      secretId: 'https://kv-certs.vault.azure.net/secrets/shop-cert/v2',
      notAfter: after.notAfter,
      material: () => Promise.reject(new Error('never asked: App Service reads the vault itself')),
    };
    expect(freshTp).toBe(after.thumbprint);
    const outcomes = await target.sync(ctx);
    expect(outcomes.map((o) => `${o.binding.split('/').pop()}:${o.status}:${o.probe?.ok}`).sort()).toEqual([
      'rg-eus.contoso.test:bound:true',
      'rg-weu.contoso.test:bound:true',
      'staging-rg-eus.contoso.test:bound:true',
      'staging-rg-weu.contoso.test:bound:true',
    ]);
    expect(outcomes.every((o) => o.target === 'app-service-certificates')).toBe(true);
    // a certificate that is no order's secret has no binding here
    expect(
      await target.sync({
        ...ctx,
        certificateId: 'kv-certs/other',
        secretId: 'https://kv-certs.vault.azure.net/secrets/other/v1',
      }),
    ).toEqual([]);
  });
});
