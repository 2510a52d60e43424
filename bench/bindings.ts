/**
 * Benchmark (a script, not a test): time from merge to the last of N bindings verified live.
 *
 *   npx tsx bench/bindings.ts                 # N = 1, 20, 200 nginx sites + 200 App Service bindings, 5 runs each
 *   npx tsx bench/bindings.ts --sizes 1,20 --runs 3 --app-service-runs 0
 *
 * File/nginx: N TLS sites (SNI `site-001...`), each with its own certificate and key files, all consumers of one
 * certificate (`*.sites.bench.test`) in a local vault, in three layouts: one nginx for all N sites bound as one
 * batch (what Certflow does: all pairs written, one `nginx -t`, one reload, then each site probed), the same nginx
 * with batching off (`batchFileBindings: false`: site by site, each with its own `nginx -t` and reload, as Certflow
 * did before; the peer), one nginx per site (N hosts, 8 at a time), and one nginx for all N sites behind one real
 * sshd on loopback (ssh: the SSH host target, files over SFTP and commands over exec, one pooled connection for
 * the host, bound as one batch). Each run renews the certificate (vault
 * CSR → dev CA → merge, not timed), then times Certflow's own `syncBindings` activity, called directly (no
 * Temporal); a binding counts once a live TLS probe with SNI saw the new thumbprint over a trusted chain. The
 * workflow's own step from merge to syncBindings (one workflow task) is not included.
 * App Service: runAppServiceBench of bench/app-service-bind.ts (real ARM client against the FAKE ARM server).
 * Application Gateway, Front Door, API Management: runAzureConsumerBench of bench/azure-consumers-bind.ts (real ARM
 * SDK clients against their FAKE ARM servers), N = 20 and 200, +0 and +100 ms per ARM call:
 *   npx tsx bench/bindings.ts --layouts none --app-service-runs 0 --azure-runs 3
 * Writes bench/results/bindings.json.
 */
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createActivities } from '../activities/index';
import type { FileBindingTarget, KeyMaterial } from '../activities/bindings/file-reload';
import type { BindingOutcome } from '../activities/types';
import { runAppServiceBench, type AppServiceBenchResult } from './app-service-bind';
import {
  AZURE_CONSUMERS,
  runAzureConsumerBench,
  type AzureConsumer,
  type AzureConsumerBenchResult,
} from './azure-consumers-bind';
import { parseArgs } from './lib/args';
import { busyProcesses, loadAverage, machineFacts, type BusyProcess } from './lib/machine';
import { siteName, startNginxSites, type NginxSites } from '../test/support/nginx-sites';
import { readResults, stopOnSignals, writeResults } from './lib/results';
import { stopAll } from '../test/support/proc';
import { human, round, summarize, type Summary } from './lib/stats';
import { createBenchPki, ISSUER, renewDirect, seedOne, VAULT } from './lib/vault';
import { SshPool } from '../activities/bindings/ssh-connection';
import { sshFileHost } from '../activities/bindings/ssh-file-host';
import type { FileHost } from '../activities/bindings/file-host';
import { startSshd, type RunningSshd } from '../test/support/sshd';
import { readFileSync } from 'node:fs';

const args = parseArgs(process.argv.slice(2), {
  sizes: '1,20,200',
  layouts: 'shared,shared-serial,per-server,ssh',
  runs: 5,
  'app-service-runs': 5,
  /** Runs per Azure consumer scenario (Application Gateway, Front Door, API Management); 0 skips them. */
  'azure-runs': 3,
  'azure-consumers': 'app-gateway,front-door,api-management',
  'azure-sizes': '20,200',
  /** How long each probe waits for its site to serve the new certificate (the file target's default). */
  'settle-ms': 5_000,
  concurrency: 8,
});
const DAY_MS = 86_400_000;
const DOMAIN = 'sites.bench.test';
const CERT = 'sites';
/** Scratch directories in use, removed also when the run is interrupted. */
const tempDirs = new Set<string>();

/**
 * How the N sites are served:
 * - shared: one nginx with N server blocks, its file targets bound as one batch (Certflow's default);
 * - shared-serial: the same nginx with batching off, one target at a time (the peer);
 * - per-server: N nginx instances with one site each (N hosts), `concurrency` at a time;
 * - ssh: the shared nginx reached over SSH (a real sshd on loopback): the SSH host target, one batch, one connection.
 */
type Layout = 'shared' | 'shared-serial' | 'per-server' | 'ssh';

interface FileRun {
  ms: number;
  verified: number;
  failed: number;
  /** ssh: SSH connections the sshd accepted during the run (one per host expected). */
  sshConnections?: number;
  /** The first few failures, shortened. */
  failures: Array<{ binding: string; status: string; detail: string }>;
}

interface FileResult {
  kind: 'files+nginx';
  layout: Layout;
  bindings: number;
  concurrency: number;
  nginxInstances: number;
  runs: FileRun[];
  ms: Summary;
  perBindingMs: number;
  allVerified: boolean;
}

async function startServers(layout: Layout, n: number, dir: string, material: KeyMaterial) {
  // ssh: the same one nginx for all sites, reached through sshd
  const names = Array.from({ length: n }, (_, i) => siteName(i + 1));
  const groups = layout === 'per-server' ? names.map((name) => [name]) : [names];
  const servers: NginxSites[] = [];
  try {
    for (const [i, group] of groups.entries()) {
      servers.push(
        await startNginxSites({
          dir: path.join(dir, `nginx-${i + 1}`),
          names: group,
          domain: DOMAIN,
          certPem: material.chainPem.join('\n'),
          keyPem: material.keyPem,
        }),
      );
    }
  } catch (err) {
    await Promise.all(servers.map((s) => s.stop()));
    throw err;
  }
  return servers;
}

function targetsOf(servers: NginxSites[], rootPem: string, host?: FileHost): FileBindingTarget[] {
  return servers.flatMap((nginx) =>
    nginx.sites.map((s) => ({
      name: s.name,
      ...(host ? { host } : {}),
      certPath: s.certPath,
      keyPath: s.keyPath,
      validate: { command: nginx.command, args: nginx.testArgs },
      reload: { command: nginx.command, args: nginx.reloadArgs },
      probe: {
        host: '127.0.0.1',
        port: nginx.port,
        servername: s.serverName,
        caPem: rootPem,
        settleMs: args['settle-ms'],
      },
    })),
  );
}

async function fileBindings(layout: Layout, n: number): Promise<FileResult> {
  const concurrency = layout === 'shared-serial' ? 1 : args.concurrency;
  const dir = await mkdtemp(path.join(os.tmpdir(), `certflow-bench-bindings-${layout}-${n}-`));
  tempDirs.add(dir);
  try {
    const pki = await createBenchPki(dir);
    const names = [`*.${DOMAIN}`];
    const first = await seedOne(pki, CERT, names);
    const material = await pki.vault.exportSecret(CERT, first.version as string);
    const servers = await startServers(layout, n, dir, material);
    let sshd: RunningSshd | undefined;
    const pool = new SshPool();
    try {
      let host: FileHost | undefined;
      if (layout === 'ssh') {
        sshd = await startSshd();
        const s = sshd;
        host = sshFileHost(
          {
            name: 'bench-host',
            address: '127.0.0.1',
            port: s.port,
            user: s.user,
            privateKey: s.clientKey,
            hostKeys: [s.hostFingerprint],
          },
          pool,
        );
      }
      // connections the sshd accepted so far (its log has one line per accepted key)
      const accepted = () =>
        sshd
          ? readFileSync(path.join(sshd.dir, 'sshd.log'), 'utf8').split('Accepted publickey').length - 1
          : 0;
      const targets = targetsOf(servers, pki.rootPem, host);
      const activities = createActivities({
        vaults: new Map([[VAULT, pki.vault]]),
        issuers: new Map([[ISSUER, pki.issuer]]),
        fileBindings: () => targets,
        bindingConcurrency: concurrency,
        batchFileBindings: layout !== 'shared-serial',
        notifier: null,
      });
      const runs: FileRun[] = [];
      let previous = first.thumbprint;
      // one unmeasured warm-up run (JIT, first TLS handshakes, page cache)
      for (let run = -1; run < args.runs; run++) {
        const merged = await renewDirect(pki, CERT, names);
        // every run opens its connection anew, as a renewal an hour after the last one would
        await pool.close();
        const connectionsBefore = accepted();
        const started = performance.now();
        const outcomes = await activities.syncBindings({
          certificateId: `${VAULT}/${CERT}`,
          version: merged.version as string,
          thumbprint: merged.thumbprint as string,
          previousThumbprint: previous,
        });
        const ms = performance.now() - started;
        previous = merged.thumbprint;
        const failed = outcomes.filter((o) => !verified(o, merged.thumbprint as string));
        if (run >= 0) {
          runs.push({
            ms: round(ms),
            verified: outcomes.length - failed.length,
            failed: failed.length,
            ...(sshd ? { sshConnections: accepted() - connectionsBefore } : {}),
            failures: failed.slice(0, 3).map((o) => ({
              binding: o.target,
              status: o.status,
              detail: (o.detail ?? '').replace(/\s+/g, ' ').split(dir).join('<tmp>').slice(0, 300),
            })),
          });
        }
        console.log(
          `  ${layout}, ${n} site(s), run ${run < 0 ? 'warm-up' : run + 1}: ${human(ms)}, ` +
            `${outcomes.length - failed.length}/${n} verified live` +
            (failed[0] ? ` (first failure: ${failed[0].target}: ${failed[0].detail?.slice(0, 160)})` : ''),
        );
      }
      const ms = summarize(runs.map((r) => r.ms));
      return {
        kind: 'files+nginx',
        layout,
        bindings: n,
        concurrency,
        nginxInstances: servers.length,
        runs,
        ms,
        perBindingMs: round(ms.median / n),
        allVerified: runs.every((r) => r.failed === 0),
      };
    } finally {
      await pool.close();
      await sshd?.stop();
      await Promise.all(servers.map((s) => s.stop()));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
  }
}

/** Bound and the live probe saw the new certificate over a trusted chain. */
function verified(o: BindingOutcome, thumbprint: string): boolean {
  return o.status === 'bound' && o.probe?.ok === true && o.probe.servedThumbprint === thumbprint;
}

/** "x times faster than the 24 h best case" on the p95 (the slower, conservative figure). */
function versus24h(p95Ms: number): string {
  return `${Math.round(DAY_MS / p95Ms).toLocaleString('en-US')} times faster than the 24 h best case`;
}

interface BindingsResults {
  benchmark: 'bindings';
  at: string;
  machine: ReturnType<typeof machineFacts>;
  method: Record<string, string>;
  summary: string[];
  files: Array<FileResult & Scenario>;
  appService: Array<AppServiceBenchResult & Scenario>;
  azure?: Array<AzureConsumerBenchResult & Scenario>;
}

/** When a scenario ran and what else the machine was doing then. */
interface Scenario {
  at: string;
  loadAverage: { before: number[]; after: number[] };
  otherProcesses: BusyProcess[];
}

async function scenario<T>(run: () => Promise<T>): Promise<T & Scenario> {
  const before = loadAverage();
  const otherProcesses = await busyProcesses();
  const result = await run();
  return {
    ...result,
    at: new Date().toISOString(),
    loadAverage: { before, after: loadAverage() },
    otherProcesses,
  };
}

const LAYOUTS: Layout[] = ['shared', 'shared-serial', 'per-server', 'ssh'];

/** The SSH connections of an ssh scenario's runs, e.g. "1" or "1-2". */
function connections(f: FileResult): string {
  const c = f.runs.map((r) => r.sshConnections ?? 0);
  return Math.min(...c) === Math.max(...c) ? `${c[0]}` : `${Math.min(...c)}-${Math.max(...c)}`;
}

function summaryLines(r: Pick<BindingsResults, 'files' | 'appService' | 'azure'>): string[] {
  const range = (f: FileResult) =>
    `${Math.min(...f.runs.map((x) => x.verified))}-${Math.max(...f.runs.map((x) => x.verified))}`;
  return [
    ...r.files.map(
      (f) =>
        `${String(f.bindings).padStart(3)} nginx site(s), ${f.layout} (${f.nginxInstances} nginx, ` +
        `${f.layout === 'shared' ? 'one batch' : f.layout === 'ssh' ? `behind one sshd, one batch, ${connections(f)} connection(s) a run` : `${f.concurrency} at a time`}): ` +
        `median ${human(f.ms.median)}, p95 ${human(f.ms.p95)}` +
        (f.allVerified
          ? ` → ${versus24h(f.ms.p95)}`
          : ` — NOT all verified (${range(f)} of ${f.bindings} a run)`),
    ),
    ...r.appService.map(
      (a) =>
        `200 App Service bindings (fake ARM, +${a.latencyMs} ms/call): median ${human(a.medianMs)}, ` +
        `p95 ${human(a.p95Ms)} → ${versus24h(a.p95Ms)}`,
    ),
    ...(r.azure ?? []).map(
      (a) =>
        `${String(a.bindings).padStart(3)} ${a.consumer} bindings (fake ARM, +${a.latencyMs} ms/call, ${a.perResource} per resource): ` +
        `median ${human(a.ms.median)}, p95 ${human(a.ms.p95)}` +
        (a.allVerified ? ` → ${versus24h(a.ms.p95)}` : ' — NOT all verified'),
    ),
  ];
}

async function main(): Promise<void> {
  stopOnSignals(async () => {
    await stopAll();
    // synchronously, then exit: nothing of the interrupted run gets to write into them again
    for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  });
  const sizes = String(args.sizes)
    .split(',')
    .map((s) => Number(s.trim()))
    .filter((x) => Number.isInteger(x) && x > 0);
  if (!sizes.length) throw new Error(`--sizes: expected comma-separated counts such as 1,20,200`);
  const layouts = (String(args.layouts) === 'none' ? [] : String(args.layouts).split(',')) as Layout[];
  if (!layouts.every((l) => LAYOUTS.includes(l)))
    throw new Error(`--layouts: expected some of ${LAYOUTS.join(',')}`);
  // scenarios not run this time keep the figures of their last run
  const earlier = await readResults<BindingsResults>('bindings.json');
  const results: BindingsResults = {
    benchmark: 'bindings',
    at: new Date().toISOString(),
    machine: machineFacts(),
    method: {
      files:
        'N SNI sites with their own cert/key files, on one nginx (shared: one batch, one nginx -t and one reload; ' +
        'shared-serial: batching off, site by site) or one nginx each (per-server), or the shared nginx behind one ' +
        'sshd (ssh: files over SFTP, nginx -t and reload over exec, one connection opened per run); per run: renew (untimed), then ' +
        'Certflow syncBindings (atomic writes, nginx -t, nginx -s reload, live TLS probe with SNI and trusted chain)',
      appService:
        'runAppServiceBench (bench/app-service-bind.ts): real @azure/arm-appservice client, FAKE ARM server',
      statistics:
        'measured runs after one warm-up; nearest-rank median and p95 (with 5 runs or fewer, p95 is the slowest run)',
      baseline: 'App Service picks up a renewed Key Vault certificate by itself within 24-48 h',
      azure:
        'runAzureConsumerBench (bench/azure-consumers-bind.ts): real @azure/arm-network, arm-cdn, arm-apimanagement clients, ' +
        'FAKE ARM servers, 10 bindings per gateway / profile / service, updates polled every 100 ms; Application Gateway ' +
        'and API Management pick a new version up by themselves within 4 h, Front Door within 24-72 h',
    },
    summary: [],
    files: earlier?.files ?? [],
    appService: earlier?.appService ?? [],
    azure: earlier?.azure ?? [],
  };
  const save = async () => {
    const order = (f: FileResult) => LAYOUTS.indexOf(f.layout) * 1e6 + f.bindings;
    results.files.sort((x, y) => order(x) - order(y));
    results.summary = summaryLines(results);
    return writeResults('bindings.json', results);
  };
  for (const layout of layouts) {
    for (const n of sizes) {
      console.log(`files+nginx, ${layout}, ${n} binding(s), ${args.runs} runs:`);
      const r = await scenario(() => fileBindings(layout, n));
      results.files = [...results.files.filter((f) => f.layout !== layout || f.bindings !== n), r];
      await save();
    }
  }
  if (args['app-service-runs'] > 0) {
    const appService = [];
    for (const latencyMs of [0, 100]) {
      console.log(
        `App Service (fake ARM), 200 bindings, +${latencyMs} ms per ARM call, ${args['app-service-runs']} runs`,
      );
      appService.push(
        await scenario(() =>
          runAppServiceBench({ bindings: 200, runs: args['app-service-runs'], latencyMs }),
        ),
      );
    }
    results.appService = appService;
  }
  if (args['azure-runs'] > 0) {
    const consumers = String(args['azure-consumers']).split(',') as AzureConsumer[];
    if (!consumers.every((c) => AZURE_CONSUMERS.includes(c)))
      throw new Error(`--azure-consumers: expected some of ${AZURE_CONSUMERS.join(',')}`);
    const azureSizes = String(args['azure-sizes']).split(',').map(Number);
    for (const consumer of consumers) {
      for (const bindings of azureSizes) {
        for (const latencyMs of [0, 100]) {
          console.log(
            `${consumer} (fake ARM), ${bindings} bindings, +${latencyMs} ms per ARM call, ${args['azure-runs']} runs`,
          );
          const r = await scenario(() =>
            runAzureConsumerBench({ consumer, bindings, runs: args['azure-runs'], latencyMs }),
          );
          results.azure = [
            ...(results.azure ?? []).filter(
              (a) => a.consumer !== consumer || a.bindings !== bindings || a.latencyMs !== latencyMs,
            ),
            r,
          ];
          await save();
        }
      }
    }
  }
  const file = await save();
  console.log(
    `\nfrom merge to the last binding verified live (App Service alone: 24-48 h; App Gateway, APIM 4 h; Front Door 24-72 h):`,
  );
  for (const l of results.summary) console.log(`  ${l}`);
  console.log(`wrote ${file}`);
}

main().catch((err: Error) => {
  console.error(`bindings benchmark failed: ${err.stack ?? err.message}`);
  process.exitCode = 1;
});
