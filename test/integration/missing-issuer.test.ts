/**
 * No silent stalls: a lifecycle whose issuer nobody serves fails its attempt with a clear, classified error instead
 * of staying in Issuing forever. On the real dev server (the time-skipping server does not skip time while an
 * activity waits for a worker): an issuer missing from the worker's configuration is refused at once by the first
 * step (UnknownIssuer), and an issuer whose workers are all gone fails when the order has waited its bound
 * (NoWorkerPolling).
 */
import { Client, Connection } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createActivities } from '../../activities/index';
import { lifecycleStatus, renewLifecycle } from '../../activities/lifecycles';
import type { certificateLifecycle } from '../../workflows/lifecycle';
import { workflowIdFor } from '../../workflows/messages';
import { createMemoryVault, fakeActivities, startFakeWorker } from '../support/fake-lifecycle';
import { failureOf } from '../support/failure';
import { waitFor } from '../support/proc';

const address = inject('temporalAddress');
const namespace = inject('temporalNamespace');
const V = `noissuer${process.pid}`;
const taskQueue = `noissuer-${process.pid}`;
const vault = createMemoryVault(V);
vault.add('orphan', { lifetimeDays: 90 });
const fake = fakeActivities(new Map([[V, vault]]));
let worker: { stop(): Promise<void> };
let client: Client;

beforeAll(async () => {
  worker = await startFakeWorker({ address, namespace, taskQueue, activities: fake.activities });
  client = new Client({ connection: await Connection.connect({ address }), namespace });
});
afterAll(async () => {
  await client?.workflow
    .getHandle(workflowIdFor(`${V}/orphan`))
    .terminate('test done')
    .catch(() => undefined);
  await worker?.stop();
  await client?.connection.close();
});

describe('an issuer nobody serves', () => {
  it('missing from the configuration: the first step refuses it at once, naming the known issuers', async () => {
    const acts = createActivities({ vaults: new Map([[V, vault]]), issuers: new Map(), notifier: null });
    const f = await failureOf(acts.prepareRenewal({ certificateId: `${V}/orphan`, issuer: 'letsencrypt' }));
    expect(f).toBeInstanceOf(ApplicationFailure);
    expect(f.type).toBe('UnknownIssuer');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toMatch(/issuer "letsencrypt" is not configured \(known: none\)/);
  });

  it('configured, but no worker polls its queue: the attempt fails NoWorkerPolling when the order has waited its bound', async () => {
    const id = `${V}/orphan`;
    await client.workflow.start<typeof certificateLifecycle>('certificateLifecycle', {
      taskQueue,
      workflowId: workflowIdFor(id),
      args: [
        {
          certificateId: id,
          issuer: 'gone',
          issuerTaskQueue: `${taskQueue}-issuer-gone`,
          issuerQueueWait: '3 seconds',
        },
      ],
    });
    await waitFor('the first observation', async () =>
      (await lifecycleStatus(client, id)).nextRenewalAt ? true : undefined,
    );
    const t0 = Date.now();
    const outcome = await renewLifecycle(client, id, { reason: 'test' });
    expect(outcome.status).toBe('failed');
    expect(outcome.error?.type).toBe('NoWorkerPolling');
    expect(outcome.error?.message).toMatch(
      /no worker picked the task up in time: is a worker with this issuer/,
    );
    expect(Date.now() - t0).toBeLessThan(30_000);
    const st = await lifecycleStatus(client, id);
    expect(st.phase).toBe('Failing');
    expect(st.lastError?.type).toBe('NoWorkerPolling');
  });
});
