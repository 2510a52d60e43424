/**
 * Manual and emergency renewals go ahead of routine ones on a vault's rate-limited key-create queue
 * (workflows/priority.ts, worker/vault-workers.ts). Real lifecycles on a dev server of their own with one task
 * queue partition (the order holds per partition; the default has several), in-memory vault and CA: routine
 * renewals are queued on the vault's queue first, then one for a certificate that was never issued (Missing), then
 * a manual one (`certflow renew`); the vault's worker starts only then, one key create at a time. The manual one
 * must come first, the missing one second, the routine ones after.
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { mkdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLifecycle } from '../../activities/lifecycles';
import { runCli } from '../../client/cli';
import { issuerTaskQueueFor, statusQuery, vaultTaskQueueFor, workflowIdFor } from '../../workflows/messages';
import {
  createMemoryVault,
  fakeActivities,
  startFakeWorker,
  terminateVaultLifecycles,
} from '../support/fake-lifecycle';
import { waitFor } from '../support/proc';
import { type DevServer, startDevServer } from '../support/temporal';
import { scratchDir } from '../support/tools';

const V = `prio${Date.now().toString(36)}`;
const taskQueue = `prio-${V}`;
const ROUTINE = ['r1', 'r2', 'r3', 'r4', 'r5', 'r6'];

const vault = createMemoryVault(V);
// 25 days into a 30-day lifetime: due now (NearingRenewal, no priority)
for (const n of ROUTINE) vault.add(n, { lifetimeDays: 30, ageDays: 25 });
vault.add('missing', { issued: false }); // never issued: Missing, priority 2
vault.add('urgent', { lifetimeDays: 90 }); // not due: renewed by hand (Manual, priority 1)
const fake = fakeActivities(new Map([[V, vault]]));

let server: DevServer;
let client: Client;
let connection: NativeConnection;
let main: { stop(): Promise<void> } | undefined;
let issuer: { worker: Worker; running: Promise<void> } | undefined;
beforeAll(async () => {
  const dir = scratchDir('vault-priority');
  mkdirSync(dir, { recursive: true });
  server = await startDevServer({
    dir,
    dynamicConfig: {
      'matching.numTaskqueueReadPartitions': 1,
      'matching.numTaskqueueWritePartitions': 1,
    },
  });
  client = new Client({
    connection: await Connection.connect({ address: server.address }),
    namespace: server.namespace,
  });
  connection = await NativeConnection.connect({ address: server.address });
  main = await startFakeWorker({
    address: server.address,
    namespace: server.namespace,
    taskQueue,
    activities: fake.activities,
  });
  const w = await Worker.create({
    connection,
    namespace: server.namespace,
    taskQueue: issuerTaskQueueFor(taskQueue, 'test-ca'),
    activities: { issue: fake.activities.issue, pollIssuance: fake.activities.pollIssuance },
    shutdownGraceTime: '2 seconds',
  });
  issuer = { worker: w, running: w.run() };
});
afterAll(async () => {
  if (client) await terminateVaultLifecycles(client, V).catch(() => undefined);
  if (issuer) {
    issuer.worker.shutdown();
    await issuer.running;
  }
  await main?.stop();
  await connection?.close();
  await client?.connection.close();
  await server?.stop();
});

/** The priority the lifecycle gave its key create on the vault's queue, once it is scheduled there. */
async function queuedKeyCreate(name: string): Promise<{ priorityKey: number | null }> {
  return waitFor(
    `${name}: key create queued on the vault's queue`,
    async () => {
      const { events } = await client.workflow.getHandle(workflowIdFor(`${V}/${name}`)).fetchHistory();
      const e = events?.find(
        (x) => x.activityTaskScheduledEventAttributes?.activityType?.name === 'prepareRenewal',
      )?.activityTaskScheduledEventAttributes;
      return e ? { priorityKey: e.priority?.priorityKey ?? null } : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  );
}

const enroll = (name: string) =>
  startLifecycle(client, {
    certificateId: `${V}/${name}`,
    issuer: 'test-ca',
    taskQueue,
    jitterMinutes: 0,
    driftWatch: { everyMinutes: 0 },
  });

describe("the vault's key-create queue", () => {
  it('serves a manual renewal first and a missing certificate next, ahead of routine renewals queued before them', async () => {
    for (const n of [...ROUTINE, 'urgent']) await enroll(n);
    for (const n of ROUTINE) expect(await queuedKeyCreate(n)).toEqual({ priorityKey: null });
    await enroll('missing');
    expect(await queuedKeyCreate('missing')).toEqual({ priorityKey: 2 });
    await waitFor('urgent to be observed', async () => {
      const st = await client.workflow.getHandle(workflowIdFor(`${V}/urgent`)).query(statusQuery);
      return st.thumbprint && st.phase === 'Waiting' ? st : undefined;
    });
    let err = '';
    const code = await runCli(['renew', `${V}/urgent`, '--no-wait', '--force'], {
      client,
      out: { write: () => true },
      err: { write: (s: string) => (err += s) },
      env: { CERTFLOW_TASK_QUEUE: taskQueue },
    });
    expect(code, err).toBe(0);
    expect(await queuedKeyCreate('urgent')).toEqual({ priorityKey: 1 });

    // now the vault's worker: one key create at a time, in the order the queue hands them out
    const order: string[] = [];
    const vw = await Worker.create({
      connection,
      namespace: server.namespace,
      taskQueue: vaultTaskQueueFor(taskQueue, V),
      activities: {
        prepareRenewal: async (input: Parameters<NonNullable<typeof fake.activities.prepareRenewal>>[0]) => {
          order.push(input.certificateId.split('/')[1]!);
          return fake.activities.prepareRenewal(input);
        },
      },
      maxConcurrentActivityTaskExecutions: 1,
      shutdownGraceTime: '2 seconds',
    });
    await vw.runUntil(() =>
      waitFor(
        'every key create served',
        async () => (order.length >= ROUTINE.length + 2 ? true : undefined),
        {
          timeoutMs: 60_000,
          intervalMs: 200,
        },
      ),
    );
    expect(order.slice(0, 2)).toEqual(['urgent', 'missing']);
    expect(order.slice(2).sort()).toEqual(ROUTINE);
  });
});
