/**
 * A re-issue wave too long for one run (workflows/wave.ts): on a dev server of its own whose history limit
 * suggests continue-as-new after a few hundred events (instead of the default 4 Ki events, a wave of about 400
 * certificates), the wave drains what is under way, continues as new with its entries, and goes on. Every
 * certificate is renewed exactly once across the runs and the final report counts them all. With
 * CERTFLOW_RECORD_HISTORIES=<release> its runs become replay fixtures (<release>-wave-<n>.json).
 */
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { NativeConnection, Worker } from '@temporalio/worker';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WaveActivities } from '../../activities/wave';
import { reissueWave } from '../../workflows/wave';
import { type WaveEntry, WAVE_SA } from '../../workflows/wave-messages';
import { waitFor } from '../support/proc';
import { type DevServer, startDevServer } from '../support/temporal';
import { repoRoot, scratchDir } from '../support/tools';

const require = createRequire(import.meta.url);
/** History events after which the server suggests continue-as-new (the default is 4096). */
const SUGGEST_AFTER = 150;

let server: DevServer;
let client: Client;
let connection: NativeConnection;
beforeAll(async () => {
  const dir = scratchDir('wave-continue');
  mkdirSync(dir, { recursive: true });
  server = await startDevServer({
    dir,
    dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': SUGGEST_AFTER },
  });
  client = new Client({
    connection: await Connection.connect({ address: server.address }),
    namespace: server.namespace,
  });
  connection = await NativeConnection.connect({ address: server.address });
});
afterAll(async () => {
  await connection?.close();
  await client?.connection.close();
  await server?.stop();
});

/** The runs of a workflow, first to last, following its continue-as-new events. */
async function runsOf(h: WorkflowHandle, firstRunId: string): Promise<string[]> {
  const runs = [firstRunId];
  for (;;) {
    const history = await client.workflow.getHandle(h.workflowId, runs.at(-1)).fetchHistory();
    const next = history.events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
    if (!next) return runs;
    runs.push(next);
  }
}

describe('re-issue wave across continue-as-new', () => {
  it('continues as new when the history grows, and still renews every certificate exactly once', async () => {
    const N = 40;
    const entries: WaveEntry[] = Array.from({ length: N }, (_, i) => ({
      id: `kv-${i % 3}/c${i}`,
      vault: `kv-${i % 3}`,
      issuer: 'ca',
      expiresAt: null,
      status: 'pending' as const,
    }));
    const renewed = new Map<string, number>();
    const inspected = new Map<string, number>();
    const bump = (m: Map<string, number>, id: string) => m.set(id, (m.get(id) ?? 0) + 1);
    const acts: WaveActivities = {
      selectWave: async () => ({ entries, vaultRates: { 'kv-0': 200, 'kv-1': 200, 'kv-2': 200 } }),
      inspectForWave: async ({ certificateId }) => {
        bump(inspected, certificateId);
        return {
          skip: certificateId === 'kv-1/c4' ? 're-issued since the wave began' : null,
          thumbprint: `OLD-${certificateId}`,
          keyId: `k-${certificateId}`,
        };
      },
      renewForWave: async ({ certificateId }) => {
        bump(renewed, certificateId);
        await new Promise((r) => setTimeout(r, 20));
        if (certificateId === 'kv-2/c8')
          throw ApplicationFailure.create({
            message: 'CA said no',
            type: 'AcmeRejected',
            nonRetryable: true,
          });
        return {
          status: 'reissued',
          oldThumbprint: `OLD-${certificateId}`,
          newThumbprint: `NEW-${certificateId}`,
          newKey: true,
        };
      },
    };
    const taskQueue = `wave-can-${Date.now()}`;
    const worker = await Worker.create({
      connection,
      namespace: server.namespace,
      taskQueue,
      workflowsPath: require.resolve('../../workflows/index.ts'),
      activities: acts,
    });
    const { report, runs, handle } = await worker.runUntil(async () => {
      const handle = await client.workflow.start(reissueWave, {
        taskQueue,
        workflowId: `wave-can-${Date.now()}`,
        args: [{ reason: 'key-compromise', selection: { all: true }, concurrency: 4 }],
      });
      const report = await handle.result();
      return { report, runs: await runsOf(handle, handle.firstExecutionRunId), handle };
    });

    // it did continue as new, more than once for 40 certificates at this limit
    expect(runs.length).toBeGreaterThanOrEqual(2);
    // every certificate inspected once and renewed once (the skipped one not at all), across the runs
    expect([...inspected.values()].every((n) => n === 1)).toBe(true);
    expect(inspected.size).toBe(N);
    expect(renewed.size).toBe(N - 1);
    expect([...renewed.values()].every((n) => n === 1)).toBe(true);
    expect(renewed.has('kv-1/c4')).toBe(false);
    // the report of the last run covers the whole wave
    expect(report).toMatchObject({
      state: 'Done',
      total: N,
      reissued: N - 2,
      skipped: 1,
      failed: 1,
      cancelled: 0,
      pending: 0,
      running: 0,
    });
    expect(report.entries.map((e) => e.id).sort()).toEqual(entries.map((e) => e.id).sort());
    expect(report.entries.find((e) => e.id === 'kv-2/c8')?.error?.type).toBe('AcmeRejected');
    for (const e of report.entries.filter((x) => x.status === 'reissued'))
      expect(e).toMatchObject({ oldThumbprint: `OLD-${e.id}`, newThumbprint: `NEW-${e.id}`, newKey: true });
    // the wave started once: the last run kept the first run's start (what "already re-issued since" is
    // judged against), not its own
    const first = await client.workflow.getHandle(handle.workflowId, runs[0]).describe();
    const second = await client.workflow.getHandle(handle.workflowId, runs[1]).describe();
    // within the first run (its first task may start late on a busy machine), before the second run began
    expect(Date.parse(report.startedAt)).toBeGreaterThanOrEqual(first.startTime.getTime());
    expect(Date.parse(report.startedAt)).toBeLessThan(second.startTime.getTime());
    // the Web UI's search attributes show the finished wave on the last run
    await waitFor('search attributes of the last run', async () => {
      const d = await client.workflow.getHandle(handle.workflowId).describe();
      return d.typedSearchAttributes.get(WAVE_SA.state) === 'Done' &&
        d.typedSearchAttributes.get(WAVE_SA.remaining) === 0
        ? true
        : undefined;
    });

    const release = process.env.CERTFLOW_RECORD_HISTORIES;
    if (release) {
      const dir = path.join(repoRoot, 'test/fixtures/histories');
      for (const [i, runId] of runs.slice(0, 2).entries())
        writeFileSync(
          path.join(dir, `${release}-wave-${i + 1}.json`),
          historyToJSON(await client.workflow.getHandle(handle.workflowId, runId).fetchHistory()),
        );
    }
    console.log(
      `[wave-continue] ${N} certificates in ${runs.length} runs (suggest continue-as-new after ${SUGGEST_AFTER} events)`,
    );
  });
});
