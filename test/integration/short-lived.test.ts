/**
 * Minutes-long certificates renew by themselves through a running worker, against the real servers (Key
 * Vault-compatible server with the real SDK, pebble over ACME with DNS-01, nginx, SMTP), and the search
 * attributes the Web UI shows match the vault afterwards.
 */
import type { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { certificateLifecycle } from '../../workflows/lifecycle';
import { historyQuery, pauseSignal, SA, statusQuery, workflowIdFor } from '../../workflows/messages';
import { waitFor } from '../support/proc';
import type { LocalStack } from '../support/stack';
import { startStackWithWorker, type StackWithWorker } from '../support/stack-worker';
import { repoRoot } from '../support/tools';
import { probeSettled } from '../support/nginx';

const address = inject('temporalAddress');
const namespace = inject('temporalNamespace');
const taskQueue = `short-${process.pid}`;

let running: StackWithWorker;
let stack: LocalStack;
let client: Client;

beforeAll(async () => {
  // pebble issues 60-second certificates; the vault policy renews at 50 % of lifetime
  running = await startStackWithWorker(
    { address, namespace, taskQueue },
    {
      certName: 'brief',
      seedMinutes: 1,
      pebbleValiditySeconds: 60,
      lifetimePercentage: 50,
    },
  );
  ({ stack, client } = running);
});

afterAll(async () => {
  await running?.stop();
});

describe('short-lived certificates', () => {
  it('renews twice by itself and the UI search attributes match the vault', async () => {
    const id = stack.certificateId;
    const seeded = await stack.vault.describe('brief');
    const handle = await client.workflow.start(certificateLifecycle, {
      taskQueue,
      workflowId: workflowIdFor(id),
      args: [{ certificateId: id, issuer: stack.issuerName }],
    });
    const history = await waitFor(
      'two automatic renewals',
      async () => {
        const h = await handle.query(historyQuery);
        return h.filter((o) => o.status === 'renewed').length >= 2 ? h : undefined;
      },
      { timeoutMs: 150_000, intervalMs: 500 },
    );
    // hold it still (a renewal every 30 s) so the vault, nginx and the UI can be compared
    await handle.signal(pauseSignal, { reason: 'compare the views' });
    await waitFor('paused', async () => (await handle.query(statusQuery)).phase === 'Paused', {
      timeoutMs: 60_000,
    });
    const renewed = history.filter((o) => o.status === 'renewed');
    expect(renewed.map((o) => o.trigger)).toEqual(['NearingRenewal', 'NearingRenewal']);
    expect(renewed[1]!.oldThumbprint).toBe(seeded.thumbprint);
    expect(renewed[0]!.oldThumbprint).toBe(renewed[1]!.newThumbprint);
    expect(renewed.every((o) => o.bindings.every((b) => b.status === 'bound'))).toBe(true);

    const vault = await stack.vault.describe('brief');
    expect(vault.thumbprint).toBe((await handle.query(statusQuery)).thumbprint);
    const served = await probeSettled(
      {
        host: '127.0.0.1',
        port: stack.nginx.port,
        servername: stack.dnsName,
        caPem: stack.pebbleRootPem,
      },
      vault.thumbprint,
    );
    expect(served.servedThumbprint, served.detail).toBe(vault.thumbprint);

    // the Web UI's view: visibility is eventually consistent, so wait for it to catch up with the vault
    const running = `CertificateId = "${id}" AND ExecutionStatus = "Running"`;
    const phaseInUi = async () => {
      for await (const wf of client.workflow.list({ query: running }))
        return wf.typedSearchAttributes.get(SA.phase);
    };
    const sa = await waitFor(
      'search attributes to show the new certificate',
      async () => {
        for await (const wf of client.workflow.list({
          query: `CertificateId = "${id}" AND ExecutionStatus = "Running"`,
        })) {
          const attrs = wf.typedSearchAttributes;
          if (attrs.get(SA.thumbprint) === vault.thumbprint) return attrs;
        }
        return undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(sa.get(SA.id)).toBe(id);
    expect(sa.get(SA.vault)).toBe(stack.kv.vaultName);
    expect(sa.get(SA.issuer)).toBe(stack.issuerName);
    expect(sa.get(SA.expiresAt)?.toISOString()).toBe(vault.notAfter);
    await waitFor('the phase in the UI', async () => (await phaseInUi()) === 'Paused');
    const st = await handle.query(statusQuery);
    expect(st.cycle).toBeGreaterThanOrEqual(2);
    const release = process.env.CERTFLOW_RECORD_HISTORIES;
    if (release) {
      // replay fixture: a run that waited, renewed by itself and continued as new
      const first = client.workflow.getHandle(workflowIdFor(id), handle.firstExecutionRunId);
      writeFileSync(
        path.join(repoRoot, 'test/fixtures/histories', `${release}-lifecycle-automatic-renew.json`),
        historyToJSON(await first.fetchHistory()),
      );
    }
    await handle.terminate('test done');
  }, 200_000);
});
