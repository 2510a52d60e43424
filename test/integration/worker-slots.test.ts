/**
 * Every Worker the worker service builds (main queue, each issuer's, each vault's) runs
 * `maxConcurrentActivities` activities at once: 1,000 by default instead of the SDK's 100
 * (worker/activity-slots.ts: a wave's re-binds wait together for their nginx batch, each holding a slot).
 * A dev server of its own; the Workers are built, not run.
 */
import type { Worker } from '@temporalio/worker';
import { NativeConnection } from '@temporalio/worker';
import { mkdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index';
import { DEFAULT_MAX_CONCURRENT_ACTIVITIES } from '../../worker/activity-slots';
import { parseConfig } from '../../worker/config';
import { createIssuerWorkers } from '../../worker/issuer-workers';
import { createVaultWorkers } from '../../worker/vault-workers';
import { createCertflowWorker } from '../../worker/worker';
import { type DevServer, startDevServer } from '../support/temporal';
import { scratchDir } from '../support/tools';

let server: DevServer;
let connection: NativeConnection;
beforeAll(async () => {
  const dir = scratchDir('worker-slots');
  mkdirSync(dir, { recursive: true });
  server = await startDevServer({ dir });
  connection = await NativeConnection.connect({ address: server.address });
});
afterAll(async () => {
  try {
    await connection?.close();
  } finally {
    await server?.stop();
  }
});

const noop = async () => undefined;
const activities = {
  issue: noop,
  pollIssuance: noop,
  prepareRenewal: noop,
  observe: noop,
} as unknown as Activities;

/** The activity slots the SDK gives a Worker (the fixed-size slot supplier it builds from the option). */
const slotsOf = (w: Worker) =>
  (w.options.tuner as { activityTaskSlotSupplier?: { numSlots?: number } }).activityTaskSlotSupplier
    ?.numSlots;

/** Builds the Workers, reads their slots, then runs and shuts each down (a Worker holds its connection until then). */
async function slots(
  taskQueue: string,
  maxConcurrentActivities?: number,
): Promise<Array<number | undefined>> {
  const common = {
    connection,
    namespace: server.namespace,
    taskQueue,
    activities,
    shutdownGraceTime: '1 second',
    ...(maxConcurrentActivities ? { maxConcurrentActivities } : {}),
  };
  const issuers = parseConfig(
    { issuers: [{ kind: 'dev-ca', name: 'ca', dir: scratchDir('worker-slots-ca'), validity: { days: 1 } }] },
    {},
  ).issuers;
  const workers = [
    await createCertflowWorker(common),
    ...(await createIssuerWorkers({ ...common, issuers })),
    ...(await createVaultWorkers({ ...common, vaults: [{ vault: 'v', keyCreateQuota: undefined }] })),
  ];
  const found = workers.map(slotsOf);
  for (const w of workers) {
    const running = w.run();
    w.shutdown();
    await running;
  }
  return found;
}

describe('activity slots', () => {
  it('each Worker runs 1,000 activities at once by default, not the SDK’s 100', async () => {
    expect(await slots('slots-default')).toEqual([1000, 1000, 1000]);
    expect(DEFAULT_MAX_CONCURRENT_ACTIVITIES).toBe(1000);
  });

  it('takes the configured number for every Worker', async () => {
    expect(await slots('slots-configured', 250)).toEqual([250, 250, 250]);
  });
});
