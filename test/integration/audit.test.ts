/**
 * `certflow audit` (KeyVault-006, complete) through `runCli` with a real client on the dev server, a real Worker of
 * the lifecycle with in-memory activities over a vault holding each kind of certificate (test/support/
 * fake-lifecycle.ts), and App Service Certificate orders read with the real `@azure/arm-certificateregistration`
 * client from the FAKE ARM server (test/servers/arm-certificateregistration.ts). Table, JSON and CSV; exit codes.
 */
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createCertificateOrders } from '../../activities/bindings/app-service-certificate-orders';
import { runCli } from '../../client/cli';
import { statusQuery, workflowIdFor } from '../../workflows/messages';
import {
  startFakeCertificateOrders,
  type FakeCertificateOrders,
} from '../servers/arm-certificateregistration';
import {
  createMemoryVault,
  fakeActivities,
  startFakeWorker,
  terminateVaultLifecycles,
} from '../support/fake-lifecycle';
import { waitFor } from '../support/proc';
import { createTestCa } from '../support/test-ca';

const address = inject('temporalAddress');
const namespace = inject('temporalNamespace');
const V = `aud${Date.now().toString(36)}`;
const taskQueue = `audit-test-${V}`;
const SUB = '0a1a1a1a-0000-4000-8000-0000000000a1';

const vault = createMemoryVault(V);
vault.add('issued-by-certflow', { lifetimeDays: 90 }); // Unknown issuer, enrolled below
vault.add('forgotten', { lifetimeDays: 90 }); // Unknown issuer, no lifecycle
vault.add('digicert-ok', { issuerName: 'DigiCert', lifetimeAction: 'AutoRenew' }); // enrolled below
vault.add('digicert-unwatched', { issuerName: 'DigiCert', lifetimeAction: 'AutoRenew' });
vault.add('globalsign-mail', { issuerName: 'GlobalSign', lifetimeAction: 'EmailContacts' });
vault.add('self-unknown', { issuerName: 'Self' }); // lifetime action not reported
vault.add('disabled', { issuerName: 'GlobalSign', lifetimeAction: 'EmailContacts', enabled: false });
const vaults = new Map([[V, vault]]);
const fake = fakeActivities(vaults);

let client: Client;
let worker: { stop(): Promise<void> };
let orders: FakeCertificateOrders;

beforeAll(async () => {
  worker = await startFakeWorker({ address, namespace, taskQueue, activities: fake.activities });
  client = new Client({ connection: await Connection.connect({ address }), namespace });
  orders = await startFakeCertificateOrders();
  const ca = createTestCa({ keyType: 'ec' });
  const cert = () => ca.issueServerCert(['www.contoso.test'], { keyType: 'ec' });
  const kv = {
    keyVaultId: `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv`,
    provisioningState: 'Succeeded',
  };
  orders.addOrder({
    subscriptionId: SUB,
    resourceGroup: 'rg',
    name: 'www',
    certificate: cert(),
    keyVault: { ...kv, secretName: 'www' },
  });
  orders.addOrder({
    subscriptionId: SUB,
    resourceGroup: 'rg',
    name: 'manual',
    certificate: cert(),
    keyVault: { ...kv, secretName: 'manual' },
    autoRenew: false,
  });
  orders.addOrder({
    subscriptionId: SUB,
    resourceGroup: 'rg-pending',
    name: 'unverified',
    certificate: cert(),
    keyVault: { ...kv, secretName: 'u' },
    status: 'Pendingissuance',
  });
  for (const name of ['issued-by-certflow', 'digicert-ok']) {
    const r = await cli({}, 'enroll', `${V}/${name}`, '--issuer', 'test-ca');
    expect(r.code, r.stderr).toBe(0);
    await waitFor(`${name} to be observed`, async () => {
      const st = await client.workflow.getHandle(workflowIdFor(`${V}/${name}`)).query(statusQuery);
      return st.thumbprint && st.phase === 'Waiting' ? st : undefined;
    });
  }
});

afterAll(async () => {
  if (client) {
    await terminateVaultLifecycles(client, V);
    await client.connection.close();
  }
  await worker?.stop();
  await orders?.close();
});

async function cli(extra: Partial<Parameters<typeof runCli>[1]>, ...args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    client,
    vaults,
    certificateOrders: createCertificateOrders({
      credential: orders.credential,
      clientOptions: orders.clientOptions,
      subscriptions: [{ subscriptionId: SUB }],
    }),
    out: { write: (s: string) => (stdout += s) },
    err: { write: (s: string) => (stderr += s) },
    env: { CERTFLOW_TASK_QUEUE: taskQueue },
    ...extra,
  });
  return { code, stdout, stderr };
}

interface AuditJson {
  scope: string;
  checked: number;
  compliant: number;
  orders: { checked: number; compliant: number };
  failed: number;
  warnings: number;
  findings: Array<{ certificateId: string; rule: string; severity: string; message: string }>;
}

describe('certflow audit (KeyVault-006) over a vault holding each kind of certificate', () => {
  it('finds every kind of non-compliance, as JSON, exit 1', async () => {
    const r = await cli({}, 'audit', '--vault', V, '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(1);
    const a = JSON.parse(r.stdout) as AuditJson;
    const of = (subject: string) =>
      a.findings
        .filter(
          (f) => f.certificateId === subject || f.certificateId.endsWith(`/certificateOrders/${subject}`),
        )
        .map((f) => `${f.rule}:${f.severity}`)
        .sort();
    expect(of(`${V}/issued-by-certflow`)).toEqual([]);
    expect(of(`${V}/digicert-ok`)).toEqual([]);
    expect(of(`${V}/forgotten`)).toEqual(['NoAutomaticRenewal:fail']);
    expect(of(`${V}/digicert-unwatched`)).toEqual(['NoLifecycle:fail']);
    expect(of(`${V}/globalsign-mail`)).toEqual(['IntegratedCaNotAutoRenew:fail', 'NoLifecycle:fail']);
    expect(of(`${V}/self-unknown`)).toEqual(['LifetimeActionUnknown:warn', 'NoLifecycle:fail']);
    expect(of(`${V}/disabled`)).toEqual([]); // disabled: not checked
    expect(of('www')).toEqual([]);
    expect(of('manual')).toEqual(['OrderAutoRenewOff:fail']);
    expect(of('unverified')).toEqual(['OrderDomainVerificationPending:warn']);
    expect(a).toMatchObject({
      scope: 'vaults',
      checked: 6,
      compliant: 2,
      orders: { checked: 3, compliant: 2 },
      warnings: 2,
    });
  });

  it('prints a table and CSV like report; warnings alone exit 0', async () => {
    const table = await cli({}, 'audit', '--vault', V);
    expect(table.code).toBe(1);
    expect(table.stdout).toMatch(/^CERTIFICATE +RULE +FINDING/);
    expect(table.stdout).toMatch(new RegExp(`${V}/self-unknown +LifetimeActionUnknown \\(warning\\)`));
    expect(table.stdout).toContain(
      '2 of 6 certificates comply, 2 of 3 App Service Certificate orders (2 warnings)',
    );

    const csv = await cli({}, 'audit', '--vault', V, '--csv');
    const lines = csv.stdout.split('\r\n');
    expect(lines[0]).toBe('subject,rule,severity,message');
    expect(lines.some((l) => l.startsWith(`${V}/globalsign-mail,IntegratedCaNotAutoRenew,fail,`))).toBe(true);
    expect(lines.some((l) => /certificateOrders\/manual,OrderAutoRenewOff,fail,/.test(l))).toBe(true);
    expect((await cli({}, 'audit', '--json', '--csv')).stderr).toMatch(
      /--json, --csv: choose one output format/,
    );

    // only warnings: an order waiting for domain verification, no certificate failing
    const r = await cli(
      {
        vaults: new Map(),
        certificateOrders: createCertificateOrders({
          credential: orders.credential,
          clientOptions: orders.clientOptions,
          subscriptions: [{ subscriptionId: SUB, resourceGroups: ['rg-pending'] }],
        }),
      },
      'audit',
      '--json',
    );
    const a = JSON.parse(r.stdout) as AuditJson;
    expect(a.findings.map((f) => `${f.rule}:${f.severity}`)).toEqual(['OrderDomainVerificationPending:warn']);
    expect(r.code).toBe(0);
  });
});
