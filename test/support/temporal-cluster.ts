/**
 * A real Temporal cluster on this machine, the production topology without Docker: the Temporal server built from
 * the Go module proxy (`scripts/install-temporal-cluster.sh` puts it in `.tools/cluster/bin`), persistence and
 * visibility in a private PostgreSQL 15 cluster (Debian's binaries, its own data directory, a free loopback port),
 * several history shards, and either one server process or separate frontend / history / matching / worker
 * processes that can each be SIGKILLed and restarted. The `default` namespace and Certflow's search attributes are
 * registered at start.
 *
 * Used by `npm run test:cluster` (global setup), the chaos suite (`chaos/`) and benchmarks. Everything is stopped
 * by PID. Start: `const c = await startTemporalCluster(); ... c.address ...; await c.stop()`.
 */
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { ensureSearchAttributes } from '../../worker/search-attributes';
import { freePort, startProcess, tcpOpen, waitFor, type Started } from './proc';
import { scratchDir, toolsDir } from './tools';

const run = promisify(execFile);

export const CLUSTER_SERVICES = ['frontend', 'history', 'matching', 'worker'] as const;
export type ClusterService = (typeof CLUSTER_SERVICES)[number];

export const clusterDir = path.join(toolsDir, 'cluster');
/** A PostgreSQL data directory with both schemas applied, copied by each start (made by the install script). */
export const pgTemplateDir = path.join(clusterDir, 'pg-template');
const PG_USER = 'temporal';
/** Test-only credentials of a cluster that listens on 127.0.0.1 only (Temporal's own development config uses the same). */
const PG_PASSWORD = 'temporal';

export const clusterBins = {
  server: () => process.env.CERTFLOW_TEMPORAL_SERVER_BIN ?? path.join(clusterDir, 'bin', 'server'),
  sqlTool: () => process.env.CERTFLOW_TEMPORAL_SQL_BIN ?? path.join(clusterDir, 'bin', 'sql'),
  pgBinDir: () => process.env.CERTFLOW_PG_BIN_DIR ?? '/usr/lib/postgresql/15/bin',
};

export interface ClusterOptions {
  /** Scratch directory for the config, logs and the database (default: a new one under `.tools/run/`). */
  dir?: string;
  /** 'single': one `server start` process with every service; 'services': one process per service. */
  topology?: 'single' | 'services';
  /** History shards (fixed for the life of a database). Default 4. */
  historyShards?: number;
  /** Frontend gRPC port (default: a free one). */
  port?: number;
  /** Log level of the server processes (default 'warn'). */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

export interface TemporalCluster {
  /** Frontend gRPC address, `127.0.0.1:<port>`. */
  address: string;
  namespace: string;
  dir: string;
  topology: 'single' | 'services';
  postgres: { port: number; pid: number };
  /** The running server processes by service ('all' in the single-process topology). */
  pids(): Record<string, number>;
  /** SIGKILLs one service's process (or, with 'all', every server process; the database keeps running). */
  kill(service: ClusterService | 'all'): Promise<void>;
  /** Starts a killed service again (same ports and config); resolves once the frontend answers again. */
  restart(service: ClusterService | 'all'): Promise<void>;
  /** Stops the server processes, then PostgreSQL; removes the scratch directory unless `keep`. */
  stop(opts?: { keep?: boolean }): Promise<void>;
}

const isRoot = () => process.getuid?.() === 0;

/** PostgreSQL refuses to run as root: as root, its programs run as the `postgres` user (Debian's package makes it). */
function asPostgres(command: string, args: string[]): { command: string; args: string[] } {
  if (!isRoot()) return { command, args };
  return {
    command: '/usr/bin/setpriv',
    args: ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', command, ...args],
  };
}

async function chownRecursive(p: string): Promise<void> {
  if (isRoot()) await run('chown', ['-R', 'postgres:postgres', p]);
}

export function clusterInstalled(): string | null {
  for (const [what, p] of [
    ['the Temporal server', clusterBins.server()],
    ['the Temporal SQL tool', clusterBins.sqlTool()],
    ['PostgreSQL', path.join(clusterBins.pgBinDir(), 'postgres')],
  ] as const) {
    if (!existsSync(p)) return `${what} not found at ${p}: run 'bash scripts/install-temporal-cluster.sh'`;
  }
  return null;
}

/** initdb into `pgDir` (must not exist), owned by the postgres user when we are root. */
async function initdb(pgDir: string): Promise<void> {
  mkdirSync(pgDir, { recursive: true });
  const pwFile = path.join(path.dirname(pgDir), `${path.basename(pgDir)}.pw`);
  writeFileSync(pwFile, `${PG_PASSWORD}\n`, { mode: 0o600 });
  await chownRecursive(pwFile);
  await chownRecursive(pgDir);
  const { command, args } = asPostgres(path.join(clusterBins.pgBinDir(), 'initdb'), [
    '-D',
    pgDir,
    '-U',
    PG_USER,
    `--pwfile=${pwFile}`,
    '--auth=scram-sha-256',
    '--encoding=UTF8',
    '--locale=C',
    '--no-sync',
  ]);
  try {
    await run(command, args, { maxBuffer: 16 * 1024 * 1024 });
  } finally {
    rmSync(pwFile, { force: true });
  }
}

async function startPostgres(pgDir: string, logDir: string): Promise<{ port: number; proc: Started }> {
  const port = await freePort();
  const { command, args } = asPostgres(path.join(clusterBins.pgBinDir(), 'postgres'), [
    '-D',
    pgDir,
    '-p',
    String(port),
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'unix_socket_directories=',
    '-c',
    'max_connections=300',
    '-c',
    'shared_buffers=128MB',
    '-c',
    'logging_collector=off',
  ]);
  const proc = await startProcess({
    name: 'postgres',
    command,
    args,
    logDir,
    readyTimeoutMs: 60_000,
    ready: async () => {
      if (!(await tcpOpen(port))) return false;
      const { stdout } = await run(path.join(clusterBins.pgBinDir(), 'pg_isready'), [
        '-h',
        '127.0.0.1',
        '-p',
        String(port),
      ]).catch(() => ({ stdout: '' }));
      return stdout.includes('accepting connections');
    },
  });
  return { port, proc };
}

/** Both databases and their schemas through Temporal's SQL tool (the schemas are embedded in it). */
async function applySchemas(pgPort: number): Promise<void> {
  const base = [
    '--plugin',
    'postgres12',
    '--ep',
    '127.0.0.1',
    '-p',
    String(pgPort),
    '-u',
    PG_USER,
    '--pw',
    PG_PASSWORD,
  ];
  for (const [db, schema] of [
    ['temporal', 'postgresql/v12/temporal'],
    ['temporal_visibility', 'postgresql/v12/visibility'],
  ] as const) {
    const tool = (args: string[]) =>
      run(clusterBins.sqlTool(), [...base, '--db', db, ...args], { maxBuffer: 16 * 1024 * 1024 });
    await tool(['create-database']);
    await tool(['setup-schema', '-v', '0.0']);
    await tool(['update-schema', '--schema-name', schema]);
  }
}

/**
 * A PostgreSQL data directory with the `temporal` and `temporal_visibility` schemas applied (what the install script
 * keeps in `.tools/cluster/pg-template`, so each start copies it instead of running ~100 schema scripts).
 */
export async function makePgTemplate(target = pgTemplateDir): Promise<void> {
  const missing = clusterInstalled();
  if (missing) throw new Error(missing);
  const work = `${target}.tmp-${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  await initdb(work);
  const logDir = path.join(path.dirname(target), 'logs');
  const pg = await startPostgres(work, logDir);
  try {
    await applySchemas(pg.port);
  } finally {
    await stopPostgres(pg.proc);
  }
  rmSync(target, { recursive: true, force: true });
  await run('mv', [work, target]);
}

/** Fast shutdown (SIGINT): a smart shutdown (SIGTERM) would wait for every client to go. */
async function stopPostgres(proc: Started): Promise<void> {
  if (!proc.exited()) {
    try {
      process.kill(proc.pid, 'SIGINT');
    } catch {
      /* gone */
    }
    await waitFor(`postgres (pid ${proc.pid}) to stop`, async () => proc.exited(), {
      timeoutMs: 15_000,
      intervalMs: 50,
    }).catch(() => undefined);
  }
  await proc.stop();
}

/**
 * A free loopback port below 32768. Temporal's SQL schema keeps each host's membership port in a `smallint`
 * (cluster_membership.rpc_port): a port from the kernel's ephemeral range (32768-60999) makes every service die
 * at start with "value ... is out of range for type smallint". Random in 20000-32767, checked free by binding it.
 */
export async function clusterPort(taken: Set<number> = new Set()): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_768);
    if (taken.has(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.unref();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) {
      taken.add(port);
      return port;
    }
  }
  throw new Error('no free loopback port found in 20000-32767');
}

interface Ports {
  frontend: number;
  frontendHttp: number;
  frontendMembership: number;
  history: number;
  historyMembership: number;
  matching: number;
  matchingMembership: number;
  worker: number;
  workerMembership: number;
  /** Prometheus metrics: one port per server process (`all` or each service). */
  metrics: Record<string, number>;
}

function serverConfig(o: {
  ports: Ports;
  unit: string;
  pgPort: number;
  shards: number;
  dynamicConfig: string;
  logLevel: string;
}) {
  const p = o.ports;
  const store = (db: string, maxConns: number) => `      sql:
        pluginName: "postgres12"
        databaseName: "${db}"
        connectAddr: "127.0.0.1:${o.pgPort}"
        connectProtocol: "tcp"
        user: "${PG_USER}"
        password: "${PG_PASSWORD}"
        maxConns: ${maxConns}
        maxIdleConns: ${maxConns}
        maxConnLifetime: "1h"`;
  const svc = (grpc: number, membership: number, http?: number) => `    rpc:
      grpcPort: ${grpc}
      membershipPort: ${membership}
      bindOnLocalHost: true${http ? `\n      httpPort: ${http}` : ''}`;
  return `# written by test/support/temporal-cluster.ts
log:
  stdout: true
  level: ${o.logLevel}
persistence:
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  numHistoryShards: ${o.shards}
  datastores:
    postgres-default:
${store('temporal', 20)}
    postgres-visibility:
${store('temporal_visibility', 10)}
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "127.0.0.1"
  metrics:
    prometheus:
      framework: "tally"
      timerType: "histogram"
      listenAddress: "127.0.0.1:${p.metrics[o.unit]}"
services:
  frontend:
${svc(p.frontend, p.frontendMembership, p.frontendHttp)}
  history:
${svc(p.history, p.historyMembership)}
  matching:
${svc(p.matching, p.matchingMembership)}
  worker:
${svc(p.worker, p.workerMembership)}
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: "active"
  currentClusterName: "active"
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: "frontend"
      rpcAddress: "127.0.0.1:${p.frontend}"
dcRedirectionPolicy:
  policy: "noop"
dynamicConfigClient:
  filepath: "${o.dynamicConfig}"
  pollInterval: "10s"
`;
}

/** What the CLI's dev server also turns on; search attributes visible at once after registration. */
const DYNAMIC_CONFIG = `# written by test/support/temporal-cluster.ts
system.forceSearchAttributesCacheRefreshOnRead:
  - value: true
frontend.enableUpdateWorkflowExecution:
  - value: true
frontend.enableUpdateWorkflowExecutionAsyncAccepted:
  - value: true
frontend.namespaceRPS:
  - value: 10000
frontend.namespaceRPS.visibility:
  - value: 1000
`;

export async function startTemporalCluster(opts: ClusterOptions = {}): Promise<TemporalCluster> {
  const missing = clusterInstalled();
  if (missing) throw new Error(missing);
  const dir = opts.dir ?? scratchDir('temporal-cluster');
  const topology = opts.topology ?? 'services';
  const namespace = 'default';
  mkdirSync(dir, { recursive: true });
  const stops: Array<() => Promise<void>> = [];
  const cleanup = async () => {
    for (const s of stops.splice(0).reverse()) await s().catch(() => undefined);
  };
  try {
    // --- PostgreSQL: a copy of the template (schemas applied), or a fresh initdb + schemas
    const pgDir = path.join(dir, 'pg');
    const fresh = !existsSync(path.join(pgDir, 'PG_VERSION'));
    let schemasNeeded = false;
    if (fresh) {
      rmSync(pgDir, { recursive: true, force: true });
      if (existsSync(path.join(pgTemplateDir, 'PG_VERSION'))) {
        cpSync(pgTemplateDir, pgDir, { recursive: true });
        await chownRecursive(pgDir);
        await run('chmod', ['700', pgDir]);
      } else {
        await initdb(pgDir);
        schemasNeeded = true;
      }
    }
    const pg = await startPostgres(pgDir, dir);
    stops.push(() => stopPostgres(pg.proc));
    if (schemasNeeded) await applySchemas(pg.port);

    // --- the server's config (fixed ports, so a killed service comes back where it was)
    const taken = new Set<number>();
    const port = () => clusterPort(taken);
    const ports: Ports = {
      frontend: opts.port ?? (await port()),
      frontendHttp: await port(),
      frontendMembership: await port(),
      history: await port(),
      historyMembership: await port(),
      matching: await port(),
      matchingMembership: await port(),
      worker: await port(),
      workerMembership: await port(),
      metrics: {},
    };
    const units: string[] = topology === 'single' ? ['all'] : [...CLUSTER_SERVICES];
    const dynamicConfig = path.join(dir, 'dynamicconfig.yaml');
    writeFileSync(dynamicConfig, DYNAMIC_CONFIG);
    const configFile = (unit: string) => path.join(dir, `temporal-${unit}.yaml`);
    for (const unit of units) {
      ports.metrics[unit] = await port();
      writeFileSync(
        configFile(unit),
        serverConfig({
          ports,
          unit,
          pgPort: pg.port,
          shards: opts.historyShards ?? 4,
          dynamicConfig,
          logLevel: opts.logLevel ?? 'warn',
        }),
      );
    }
    const address = `127.0.0.1:${ports.frontend}`;

    // --- the server processes
    const procs = new Map<string, Started>();
    const servicePort: Record<string, number> = {
      all: ports.frontend,
      frontend: ports.frontend,
      history: ports.history,
      matching: ports.matching,
      worker: ports.worker,
    };
    const startUnit = async (unit: string): Promise<void> => {
      const args = ['--config-file', configFile(unit), '--allow-no-auth', 'start'];
      for (const s of unit === 'all' ? CLUSTER_SERVICES : [unit]) args.push('--service', s);
      const proc = await startProcess({
        name: `temporal-${unit}`,
        command: clusterBins.server(),
        args,
        logDir: dir,
        readyTimeoutMs: 120_000,
        ready: () => tcpOpen(servicePort[unit]!),
      });
      procs.set(unit, proc);
    };
    stops.push(async () => {
      await Promise.all([...procs.values()].map((p) => p.stop()));
    });
    // history first: the frontend and matching wait for it in membership anyway
    for (const unit of units) await startUnit(unit);

    const frontendAnswers = async (what: string, timeoutMs: number) =>
      waitFor(
        what,
        async () => {
          const dead = [...procs.values()].find((p) => p.exited());
          if (dead) throw new Error(`${dead.name} exited; see ${dead.logFile}`);
          const c = await Connection.connect({ address, connectTimeout: 2_000 });
          try {
            await c.workflowService.getSystemInfo({});
            return true;
          } finally {
            await c.close();
          }
        },
        { timeoutMs, intervalMs: 250 },
      );
    await frontendAnswers(`the cluster's frontend ${address}`, 120_000);

    // --- the default namespace and Certflow's search attributes
    const conn = await Connection.connect({ address });
    try {
      await waitFor(
        'the default namespace',
        async () => {
          try {
            await conn.workflowService.describeNamespace({ namespace });
            return true;
          } catch {
            await conn.workflowService
              .registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('3 days') })
              .catch((err: unknown) => {
                if (!String(err).includes('already')) throw err;
              });
            return false;
          }
        },
        { timeoutMs: 60_000, intervalMs: 500 },
      );
      await waitFor(
        'search attributes registered',
        async () => {
          await ensureSearchAttributes(conn, namespace);
          return true;
        },
        { timeoutMs: 60_000, intervalMs: 1_000 },
      );
      // visibility answers for the namespace (the namespace cache of every service has it)
      await waitFor(
        'visibility of the default namespace',
        async () => {
          await conn.workflowService.countWorkflowExecutions({ namespace, query: '' });
          return true;
        },
        { timeoutMs: 60_000, intervalMs: 500 },
      );
    } finally {
      await conn.close();
    }

    const killUnit = async (unit: string) => {
      const p = procs.get(unit);
      if (!p || p.exited()) return;
      process.kill(-p.pid, 'SIGKILL');
      await waitFor(`temporal-${unit} to die`, async () => p.exited(), { timeoutMs: 10_000, intervalMs: 20 });
      await p.stop();
    };
    return {
      address,
      namespace,
      dir,
      topology,
      postgres: { port: pg.port, pid: pg.proc.pid },
      pids: () => Object.fromEntries([...procs].map(([k, v]) => [k, v.pid])),
      async kill(service) {
        const targets = service === 'all' ? [...procs.keys()] : topology === 'single' ? ['all'] : [service];
        await Promise.all(targets.map(killUnit));
      },
      async restart(service) {
        const targets = service === 'all' ? units : topology === 'single' ? ['all'] : [service];
        for (const unit of targets) {
          const p = procs.get(unit);
          if (p && !p.exited()) continue;
          await startUnit(unit);
        }
        await frontendAnswers('the frontend after a restart', 120_000);
      },
      async stop({ keep = false } = {}) {
        await cleanup();
        if (!keep && !opts.dir) rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
