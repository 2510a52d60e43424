/**
 * Start-up costs of the build (dist/), as people meet them:
 *   - `certflow --help`                                            target < 0.3 s
 *   - `certflow status <id>` against a running dev server + worker target < 0.6 s
 *   - worker ready (connected, polling: /readyz 200) after start   target < 2 s (warm machine)
 * Each is run --runs times (the first of each is a warm-up, not counted); min and median of wall time, and of
 * the process's own CPU time (user + system: what the machine's load does not inflate), are printed and written
 * to bench/results/startup.json with the machine's load. On a shared machine run it alone:
 *
 *   npm run build && flock /work/heavy.lock npx tsx bench/startup.ts [--runs 10] [--worker-runs 5] [--note TEXT]
 *
 * It starts its own Temporal dev server (the project's pinned CLI) and a worker from dist/ with a local vault and
 * the dev CA, enrolls one certificate and waits for its first issuance, so `status` answers from a live lifecycle.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { startLifecycle } from '../activities/lifecycles';
import { createLocalVault } from '../activities/vault/local';
import { statusQuery, workflowIdFor } from '../workflows/messages';
import { startDevServer } from '../test/support/temporal';
import { freePort } from '../test/support/proc';
import { parseArgs } from './lib/args';
import { cpuSecondsOf, loadAverage, machineFacts } from './lib/machine';
import { writeResults, stopOnSignals } from './lib/results';
import { summarize, type Summary } from './lib/stats';
import { benchPolicy } from './lib/vault';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = parseArgs(process.argv.slice(2), { runs: 10, 'worker-runs': 5, note: '' });
const TARGETS_S = { help: 0.3, status: 0.6, workerReady: 2 };
const BIN = path.join(root, 'bin/certflow.mjs');
const WORKER = path.join(root, 'dist/worker/main.js');
const TIME = '/usr/bin/time'; // GNU time: the child's own CPU seconds

for (const f of [WORKER, path.join(root, 'dist/client/bin.js'), path.join(root, 'dist/workflow-bundle.js')])
  if (!existsSync(f)) throw new Error(`${path.relative(root, f)} is missing: run \`npm run build\` first`);

interface Figures {
  runs: number;
  wallS: Summary;
  cpuS: Summary | null;
  targetS: number;
  /** the median wall time is under the target */
  met: boolean;
}

const figures = (wall: number[], cpu: number[], targetS: number): Figures => {
  const wallS = summarize(wall, 3);
  return {
    runs: wall.length,
    wallS,
    cpuS: cpu.length ? summarize(cpu, 3) : null,
    targetS,
    met: wallS.median < targetS,
  };
};

/** Runs a CLI command `runs + 1` times (the first a warm-up); wall and CPU seconds of each counted run. */
function timeCli(argv: string[], runs: number, env: NodeJS.ProcessEnv, expectCode = 0): Figures {
  const wall: number[] = [];
  const cpu: number[] = [];
  const gnuTime = existsSync(TIME);
  for (let i = 0; i <= runs; i++) {
    const cmd = gnuTime ? TIME : process.execPath;
    const cmdArgs = gnuTime ? ['-f', '%U %S', process.execPath, BIN, ...argv] : [BIN, ...argv];
    const t0 = performance.now();
    const r = spawnSync(cmd, cmdArgs, { env, encoding: 'utf8' });
    const s = (performance.now() - t0) / 1000;
    if (r.status !== expectCode)
      throw new Error(`certflow ${argv.join(' ')} exited ${r.status}: ${r.stderr || r.stdout}`);
    if (i === 0) continue;
    wall.push(s);
    if (gnuTime) {
      const [u, sys] = r.stderr.trim().split('\n').pop()!.split(' ').map(Number);
      cpu.push(u! + sys!);
    }
  }
  return figures(wall, cpu, argv[0] === '--help' ? TARGETS_S.help : TARGETS_S.status);
}

interface WorkerStart {
  readyS: number;
  cpuS: number;
  bundleLoadMs: number | null;
  stop(): Promise<void>;
}

/** Starts the built worker and waits for /readyz 200 (connected, every Worker polling). */
async function startWorker(configFile: string, port: number, env: NodeJS.ProcessEnv): Promise<WorkerStart> {
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--enable-source-maps', WORKER, '--config', configFile], {
    env: { ...env, CERTFLOW_HTTP_PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the worker exited (${child.exitCode}):\n${log}`);
    if (Date.now() > deadline) throw new Error(`the worker was not ready in 120 s:\n${log}`);
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1_000) })
      .then((r) => r.status === 200)
      .catch(() => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const readyS = (performance.now() - t0) / 1000;
  const cpuS = await cpuSecondsOf(child.pid!);
  const loaded = /"msg":"workflow bundle loaded","ms":(\d+)/.exec(log);
  return {
    readyS,
    cpuS,
    bundleLoadMs: loaded ? Number(loaded[1]) : null,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'certflow-bench-startup-'));
  const cleanups: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  stopOnSignals(stopAll);
  const loadBefore = loadAverage();
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
    delete env.CERTFLOW_TEMPORAL_ADDRESS;
    console.log(`certflow --help: ${args.runs} runs`);
    const help = timeCli(['--help'], args.runs, env);

    const server = await startDevServer({ dir });
    cleanups.push(() => server.stop());
    const key = randomBytes(32).toString('base64');
    const vaultDir = path.join(dir, 'vault');
    const vault = createLocalVault({
      name: 'bench',
      dir: vaultDir,
      encryptionKey: Buffer.from(key, 'base64'),
    });
    await vault.create('site', benchPolicy(['site.bench.test']));
    const taskQueue = `bench-startup-${process.pid}`;
    const config = {
      temporal: { address: server.address, namespace: server.namespace },
      taskQueue,
      vaults: [{ kind: 'local', name: 'bench', dir: vaultDir, encryptionKey: { env: 'BENCH_VAULT_KEY' } }],
      issuers: [{ kind: 'dev-ca', name: 'dev', dir: path.join(dir, 'dev-ca'), validity: { days: 90 } }],
      defaults: { issuer: 'dev' },
      http: { host: '127.0.0.1', port: 1 },
      shutdownGraceSeconds: 2,
      log: { level: 'info', format: 'json' },
    };
    const configFile = path.join(dir, 'worker.json');
    writeFileSync(configFile, JSON.stringify(config));
    const workerEnv = { ...env, BENCH_VAULT_KEY: key };

    // worker ready: a warm-up start, then the counted ones (each stopped before the next)
    console.log(`worker ready: ${args['worker-runs']} starts`);
    const ready: WorkerStart[] = [];
    for (let i = 0; i <= args['worker-runs']; i++) {
      const w = await startWorker(configFile, await freePort(), workerEnv);
      await w.stop();
      if (i > 0) ready.push(w);
    }

    // status against a live lifecycle: a worker running, the certificate issued
    const worker = await startWorker(configFile, await freePort(), workerEnv);
    cleanups.push(() => worker.stop());
    const connection = await Connection.connect({ address: server.address });
    cleanups.push(() => connection.close());
    const client = new Client({ connection, namespace: server.namespace });
    await startLifecycle(client, { certificateId: 'bench/site', issuer: 'dev', taskQueue });
    const handle = client.workflow.getHandle(workflowIdFor('bench/site'));
    const until = Date.now() + 120_000;
    for (;;) {
      const st = await handle.query(statusQuery).catch(() => null);
      if (st?.phase === 'Waiting' && st.thumbprint) break;
      if (Date.now() > until) throw new Error(`the lifecycle did not reach Waiting: ${JSON.stringify(st)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    console.log(`certflow status bench/site: ${args.runs} runs`);
    const cliEnv = { ...env, CERTFLOW_TEMPORAL_ADDRESS: server.address };
    const status = timeCli(['status', 'bench/site'], args.runs, cliEnv);

    const results = {
      measuredAt: new Date().toISOString(),
      ...(args.note ? { runNote: args.note } : {}),
      machine: machineFacts(),
      loadAverageBefore: loadBefore,
      loadAverageAfter: loadAverage(),
      note:
        'wall seconds include waiting for a core on a shared machine; cpuS is the process’s own user+system time. ' +
        'Each figure excludes a first warm-up run.',
      help,
      status,
      workerReady: {
        ...figures(
          ready.map((r) => r.readyS),
          ready.map((r) => r.cpuS),
          TARGETS_S.workerReady,
        ),
        bundleLoadMs: summarize(
          ready.map((r) => r.bundleLoadMs ?? NaN),
          0,
        ),
      },
    };
    const show = (name: string, f: Figures) =>
      console.log(
        `${name.padEnd(28)} wall min ${f.wallS.min} s, median ${f.wallS.median} s` +
          (f.cpuS ? `; cpu min ${f.cpuS.min} s, median ${f.cpuS.median} s` : '') +
          `  (target < ${f.targetS} s: ${f.met ? 'met' : 'NOT met'})`,
      );
    show('certflow --help', help);
    show('certflow status <id>', status);
    show('worker ready', results.workerReady);
    console.log(
      `workflow bundle load (prebuilt, in the worker): median ${results.workerReady.bundleLoadMs.median} ms; ` +
        `load average ${loadBefore.join(' ')} -> ${results.loadAverageAfter.join(' ')}`,
    );
    console.log(`wrote ${await writeResults('startup.json', results)}`);
  } finally {
    await stopAll();
  }
}

await main();
