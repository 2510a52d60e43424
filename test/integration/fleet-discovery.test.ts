/**
 * Fleet discovery end to end on the real Temporal dev server: the real Schedule made by ensureDiscoverySchedule
 * and triggered by hand, the real discovery workflow and fleet activities (visibility queries, starts, retire
 * signals), a real local vault in a temp dir, and the real lifecycle workflow observing it. Renewals do not happen
 * here (the certificates are valid for 30 days): the lifecycles just wait, which is what discovery must handle.
 */
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import crypto from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createFleetActivities } from '../../activities/fleet';
import { createActivities } from '../../activities/index';
import type { CertificatePolicySnapshot, Issuer } from '../../activities/types';
import { createLocalVault } from '../../activities/vault/local';
import { deleteDiscoverySchedule, ensureDiscoverySchedule } from '../../worker/schedule';
import type { FleetInput, FleetReport } from '../../workflows/fleet';
import type { certificateLifecycle } from '../../workflows/lifecycle';
import { SA, workflowIdFor } from '../../workflows/messages';
import { startFakeWorker, terminateVaultLifecycles } from '../support/fake-lifecycle';
import { waitFor } from '../support/proc';
import { createTestCa } from '../support/test-ca';
import { scratchDir } from '../support/tools';

const address = inject('temporalAddress');
const namespace = inject('temporalNamespace');
const V = `fleet${Date.now().toString(36)}`;
const taskQueue = `fleet-test-${V}`;
const scheduleId = `certflow-fleet-discovery-${V}`;
const dir = scratchDir('fleet-discovery');
const vault = createLocalVault({ name: V, dir, encryptionKey: crypto.randomBytes(32) });
const vaults = new Map([[V, vault]]);
const ca = createTestCa({ keyType: 'ec' });
const input: FleetInput = { vaults: [V], pattern: `${V}/api-*`, issuer: 'dev', graceRuns: 2 };
/** An issuer that is never called: the certificates are far from renewal. */
const idleIssuer: Issuer = {
  name: 'dev',
  submit: () => Promise.reject(new Error('not used in this test')),
  poll: () => Promise.reject(new Error('not used in this test')),
};

const policy = (name: string): CertificatePolicySnapshot => ({
  subject: `CN=${name}.example.test`,
  dnsNames: [`${name}.example.test`],
  issuerName: 'Unknown',
  key: { keyType: 'EC', curve: 'P-256', reuseKey: false, exportable: true },
  lifetimePercentage: 80,
});

let client: Client;
let worker: { stop(): Promise<void> } | undefined;

beforeAll(async () => {
  for (const name of ['api-1', 'api-2', 'web-1']) {
    const { csrPem } = await vault.create(name, policy(name));
    await vault.merge(name, [ca.signCsr(csrPem, { days: 30 }), ca.caCertPem]);
  }
  client = new Client({ connection: await Connection.connect({ address }), namespace });
  worker = await startFakeWorker({
    address,
    namespace,
    taskQueue,
    activities: {
      ...createActivities({ vaults, issuers: new Map([['dev', idleIssuer]]), notifier: null }),
      ...createFleetActivities({ vaults, client, taskQueue }),
    },
  });
});

afterAll(async () => {
  if (client) {
    await deleteDiscoverySchedule(client, scheduleId);
    await terminateVaultLifecycles(client, V);
  }
  await worker?.stop();
  await client?.connection.close();
  await fs.rm(dir, { recursive: true, force: true });
});

/** Triggers one run, waits for its report, then until the schedule has taken note of its end (its result). */
async function runDiscovery(): Promise<FleetReport> {
  const handle = client.schedule.getHandle(scheduleId);
  const before = (await handle.describe()).info.numActionsTaken;
  await handle.trigger('SKIP');
  const action = await waitFor('the triggered discovery run', async () => {
    const d = await handle.describe();
    return d.info.numActionsTaken > before ? d.info.recentActions.at(-1)?.action : undefined;
  });
  const { workflowId, firstExecutionRunId } = action.workflow;
  const report = await client.workflow.getHandle(workflowId, firstExecutionRunId).result();
  await waitFor('the schedule to record the run', async () => {
    const d = await handle.describe();
    return d.info.runningActions.length === 0;
  });
  return report as FleetReport;
}

const lifecycleOf = (name: string) =>
  client.workflow.getHandle<typeof certificateLifecycle>(workflowIdFor(`${V}/${name}`));

describe('fleet discovery on a Temporal Schedule (real dev server, local vault)', () => {
  it('creates the schedule once and leaves it alone when nothing changed', async () => {
    expect(await ensureDiscoverySchedule(client, { scheduleId, taskQueue, every: '1h', input })).toEqual({
      scheduleId,
      outcome: 'created',
    });
    // an interval schedule also fires at every full UTC hour (intervals count from the epoch): paused, only the
    // tests' own triggers run it, whenever the suite runs (a triggered action runs on a paused schedule)
    await client.schedule.getHandle(scheduleId).pause('the tests trigger each run themselves');
    expect(
      (await ensureDiscoverySchedule(client, { scheduleId, taskQueue, every: '1h', input })).outcome,
    ).toBe('unchanged');
    const d = await client.schedule.getHandle(scheduleId).describe();
    expect(d.policies.overlap).toBe('SKIP');
    expect(d.spec.intervals?.[0]?.every).toBe(3_600_000);
    expect(d.action.args).toEqual([input]);
  });

  it('starts a lifecycle for each matching certificate, then retires the one deleted from the vault', async () => {
    const r1 = await runDiscovery();
    expect(r1.vaults).toEqual([
      expect.objectContaining({
        vault: V,
        listed: 3,
        matching: 2,
        started: [`${V}/api-1`, `${V}/api-2`],
        retired: [],
        errors: [],
      }),
    ]);
    for (const name of ['api-1', 'api-2']) {
      const d = await lifecycleOf(name).describe();
      expect(d.status.name).toBe('RUNNING');
      expect(d.typedSearchAttributes.get(SA.vault)).toBe(V);
    }
    await expect(lifecycleOf('web-1').describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
    // visibility is eventually consistent: judge "missing" only once it lists both lifecycles
    await waitFor('visibility to list both lifecycles', async () => {
      const { count } = await client.workflow.count(
        `${SA.vault.name} = '${V}' AND ExecutionStatus = 'Running'`,
      );
      return count === 2;
    });

    await fs.rm(path.join(dir, 'certificates', 'api-2'), { recursive: true });
    const r2 = await runDiscovery();
    expect(r2.vaults[0]).toMatchObject({ listed: 2, started: [], alreadyRunning: 1, retired: [] });
    expect(r2.vaults[0]!.missing).toEqual({ [`${V}/api-2`]: 1 });
    expect((await lifecycleOf('api-2').describe()).status.name).toBe('RUNNING');

    const r3 = await runDiscovery();
    expect(r3.vaults[0]).toMatchObject({ started: [], retired: [`${V}/api-2`], missing: {}, errors: [] });
    // the retire signal must wake a lifecycle that waits for its renewal time (days away)
    await waitFor('the retired lifecycle to complete', async () => {
      const d = await lifecycleOf('api-2').describe();
      return d.status.name === 'COMPLETED';
    });
    const ended = await lifecycleOf('api-2').result();
    expect(ended.retired).toMatch(/deleted from vault/);
    expect((await lifecycleOf('api-1').describe()).status.name).toBe('RUNNING');
  });

  it('updates the schedule when the configuration changed', async () => {
    const changed = { ...input, graceRuns: 3 };
    const r = await ensureDiscoverySchedule(client, {
      scheduleId,
      taskQueue,
      cron: '*/30 * * * *',
      input: changed,
    });
    expect(r.outcome).toBe('updated');
    const d = await client.schedule.getHandle(scheduleId).describe();
    expect(d.action.args).toEqual([changed]);
    expect(d.spec.intervals ?? []).toEqual([]);
    expect(
      (await ensureDiscoverySchedule(client, { scheduleId, taskQueue, cron: '*/30 * * * *', input: changed }))
        .outcome,
    ).toBe('unchanged');
  });
});
