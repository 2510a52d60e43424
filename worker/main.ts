/**
 * The Certflow worker service: `node dist/worker/main.js --config certflow.json` (built by `npm run build`;
 * `node --import tsx worker/main.ts` runs it from the sources).
 *
 * Start: load and validate the configuration (exit 2 listing every problem), install the Temporal runtime (our
 * logger, SDK metrics on loopback), serve /healthz, /readyz and /metrics, connect (with retries; exit 1 with
 * address, namespace and cause), register missing search attributes, build the activities' dependencies, load
 * the prebuilt workflow bundle (checked against its sources), and run the main Worker plus one rate-limited
 * Worker per issuer. With `http.eventGrid` configured, a second listener (its own port, no /metrics) takes Key
 * Vault's Event Grid deliveries on /eventgrid.
 * SIGTERM / SIGINT: /readyz turns 503 at once, every Worker shuts down (running activities get
 * `shutdownGraceSeconds` to finish), then the process exits 0.
 */
import { hostname } from 'node:os';
import { Client } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../activities/index';
import type { EventGridHandler } from '../client/event-grid';
import { issuerTaskQueueFor, vaultTaskQueueFor } from '../workflows/messages';
import { ConfigError, loadConfig, redactedConfig, resolveSecret, type CertflowConfig } from './config';
import { checkSecrets } from './config-secrets';
import { connectTemporal, monitorConnection, workerDataConverter, type ConnectionMonitor } from './connect';
import { buildDeps } from './deps';
import { enrollConfiguredWithRetries } from './enroll-configured';
import { createFleetActivities } from '../activities/fleet';
import { listLifecycles } from '../activities/lifecycles';
import { createWaveActivities } from '../activities/wave';
import { discoveryPlan, discoveryTag } from './discovery-config';
import { deleteDiscoverySchedule, ensureDiscoverySchedule } from './schedule';
import { startHttpServer, type Readiness, type RouteHandler } from './http';
import { createIssuerWorkers, issueRatePerSecond } from './issuer-workers';
import { keyCreateQuotaOf } from './quotas';
import { createVaultWorkers, vaultRates, type VaultQueue } from './vault-workers';
import { createLogger, type CertflowLogger } from './logger';
import { createMetrics, metricsEndpoint } from './metrics';
import { installRuntime } from './runtime';
import { ensureSearchAttributes } from './search-attributes';
import { createCertflowWorker } from './worker';
import { loadWorkflowBundle } from './workflow-bundle';

const USAGE = `usage: certflow-worker [--config <file.json>] [--check]

  --config <file>  the configuration (JSON); default $CERTFLOW_CONFIG, else defaults and environment only
  --check          validate the configuration, print it (secrets redacted) and exit
Environment overrides: CERTFLOW_TEMPORAL_ADDRESS, CERTFLOW_TEMPORAL_NAMESPACE, CERTFLOW_TEMPORAL_API_KEY,
CERTFLOW_TASK_QUEUE, CERTFLOW_HTTP_PORT, CERTFLOW_HTTP_HOST, CERTFLOW_LOG_LEVEL, CERTFLOW_LOG_FORMAT,
CERTFLOW_SHUTDOWN_GRACE_SECONDS.`;

interface Args {
  config?: string;
  check: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { check: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else if (a === '--check') args.check = true;
    else if (a === '--config' && argv[i + 1] !== undefined) args.config = argv[++i];
    else if (a.startsWith('--config=')) args.config = a.slice('--config='.length);
    else throw new ConfigError([{ path: a, message: 'unknown argument (see --help)' }], 'bad command line');
  }
  return args;
}

/** Lets stdout drain (it is asynchronous on pipes), then exits. */
async function exit(code: number): Promise<never> {
  await new Promise<void>((r) => process.stdout.write('', () => r()));
  process.exit(code);
}

interface Running {
  label: string;
  worker: Worker;
  run: Promise<void>;
}

async function main(): Promise<void> {
  let config: CertflowConfig;
  let args: Args;
  let eventGridKey: string | undefined;
  try {
    args = parseArgs(process.argv.slice(2));
    config = loadConfig(args.config ? { file: args.config } : {});
    // every unset or unusable secret at once, also under --check (not one per start)
    checkSecrets(config);
    if (args.check) {
      process.stdout.write(`${JSON.stringify(redactedConfig(config), null, 2)}\n`);
      return exit(0);
    }
    if (config.http.eventGrid?.key)
      eventGridKey = resolveSecret(config.http.eventGrid.key, process.env, 'http.eventGrid.key');
  } catch (err) {
    process.stderr.write(`certflow-worker: ${(err as Error).message}\n`);
    return exit(2);
  }

  const logger = createLogger(config.log);
  const metrics = createMetrics();
  const sdkMetricsUrl = await installRuntime({
    logger,
    level: config.log.level,
    ...(config.http.sdkMetricsPort ? { sdkMetricsPort: config.http.sdkMetricsPort } : {}),
  });
  logger.info('starting Certflow worker', { config: redactedConfig(config) });
  // before any Azure SDK client is made (its calls are traced); imported only when configured (start-up time)
  const tracing = config.tracing ? (await import('./tracing')).startTracing(config.tracing) : undefined;
  const plugins = tracing ? { plugins: [tracing.plugin] } : {};

  const running: Running[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  if (tracing) cleanups.push(() => tracing.shutdown());
  let monitor: ConnectionMonitor | undefined;
  let phase: 'starting' | 'running' | 'draining' = 'starting';

  const ready = (): Readiness => {
    if (phase !== 'running')
      return { ok: false, detail: phase === 'starting' ? 'starting' : 'shutting down' };
    if (monitor && !monitor.ok) return { ok: false, detail: monitor.detail };
    const stopped = running.find((r) => r.worker.getState() !== 'RUNNING');
    if (stopped) return { ok: false, detail: `worker ${stopped.label} is ${stopped.worker.getState()}` };
    return { ok: true, detail: `polling ${running.map((r) => r.label).join(', ')}` };
  };

  let stopping: Promise<never> | undefined;
  const shutdown = (reason: string, code: number): Promise<never> =>
    (stopping ??= (async () => {
      phase = 'draining';
      logger.info('shutting down: /readyz answers 503 from now', {
        reason,
        graceSeconds: config.shutdownGraceSeconds,
      });
      for (const r of running) if (r.worker.getState() === 'RUNNING') r.worker.shutdown();
      // Worker.shutdown() cancels activities still running after shutdownGraceTime; allow some slack beyond it
      const limitMs = config.shutdownGraceSeconds * 1000 + 10_000;
      let timer: NodeJS.Timeout | undefined;
      const drained = await Promise.race([
        Promise.allSettled(running.map((r) => r.run)).then(() => true),
        new Promise<false>((r) => (timer = setTimeout(() => r(false), limitMs))),
      ]);
      clearTimeout(timer);
      if (!drained) logger.error('workers did not stop in time', { limitMs });
      monitor?.stop();
      for (const c of cleanups.reverse())
        await c().catch((err) => logger.warn('cleanup failed', { error: err }));
      logger.info('stopped', { exitCode: drained ? code : 1 });
      return exit(drained ? code : 1);
    })());
  process.on('SIGTERM', () => void shutdown('SIGTERM', 0));
  process.on('SIGINT', () => void shutdown('SIGINT', 0));

  // mounted at once so that Event Grid hears 503 (and retries) until Temporal is connected, never 404
  let eventGrid: EventGridHandler | undefined;
  const eventGridRoute: RouteHandler = async (req, res) => {
    if (eventGrid) return eventGrid(req, res);
    if (!(req.url ?? '').startsWith('/eventgrid')) return false;
    res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '10' }).end('starting\n');
    return true;
  };

  try {
    const http = await startHttpServer({
      host: config.http.host,
      port: config.http.port,
      ready,
      metrics: metricsEndpoint(metrics, sdkMetricsUrl),
      logger,
    });
    cleanups.push(() => http.close());
    logger.info('serving /healthz, /readyz and /metrics', { url: http.url });
    const eg = config.http.eventGrid;
    // Event Grid on a listener of its own: exposing it to Azure does not expose /metrics
    const eventGridHttp = eg
      ? await startHttpServer({
          host: eg.host ?? config.http.host,
          port: eg.port,
          routes: eventGridRoute,
          logger,
        })
      : undefined;
    if (eventGridHttp) cleanups.push(() => eventGridHttp.close());

    // payloads encrypted when configured: every Client and Worker of this process uses the same converter
    const dataConverter = workerDataConverter(config.temporal, process.env);
    const converter = dataConverter ? { dataConverter } : {};
    const connection = await connectTemporal(config.temporal, { logger });
    cleanups.push(() => connection.close());
    monitor = monitorConnection(connection);
    logger.info('connected to Temporal', {
      address: config.temporal.address,
      namespace: config.temporal.namespace,
    });
    await registerSearchAttributes(connection, config.temporal.namespace, logger);
    if (eg && eventGridHttp) {
      const log = logger.child({ component: 'event-grid' });
      // loaded only when configured (start-up time); jose only for Entra tokens
      const { createEventGridHandler } = await import('../client/event-grid');
      const createEntraTokenVerifier = eg.entra
        ? (await import('../client/event-grid-entra')).createEntraTokenVerifier
        : undefined;
      eventGrid = createEventGridHandler({
        client: new Client({ connection, namespace: config.temporal.namespace, ...converter }),
        ...(eventGridKey ? { key: eventGridKey } : {}),
        ...(eg.entra && createEntraTokenVerifier
          ? {
              verifyToken: createEntraTokenVerifier({
                ...eg.entra,
                onRefused: (reason) => log.warn('Event Grid: Entra token refused', { reason }),
              }),
            }
          : {}),
        ...(eg.allowKeyInUrl ? { allowKeyInUrl: true } : {}),
        cooldownSeconds: eg.cooldownSeconds,
        log,
        vaultNameFromUrl: vaultNameFromUrl(config),
      });
      logger.info('taking Event Grid deliveries', { url: `${eventGridHttp.url}/eventgrid` });
    }

    const deps = await buildDeps(config, { metrics: metrics.sink, logger });
    cleanups.push(() => deps.close());
    const client = new Client({ connection, namespace: config.temporal.namespace, ...converter });
    metrics.watchFleet({ list: () => listLifecycles(client) });
    // every vault gets a queue for its key creates (lifecycles are routed there), rate-limited by its quota
    const configured = new Map(config.vaults.map((v) => [v.name, v]));
    const vaultQueues: VaultQueue[] = [...deps.vaults.keys()].map((name) => {
      const v = configured.get(name);
      const quota = v ? keyCreateQuotaOf(v) : undefined;
      return { vault: name, ...(quota ? { keyCreateQuota: quota } : {}) };
    });
    const activities = {
      ...createWaveActivities({
        client,
        vaults: deps.vaults,
        issuers: deps.issuers,
        vaultRates: vaultRates(vaultQueues),
      }),
      ...createActivities(deps),
      ...createFleetActivities({
        vaults: deps.vaults,
        client,
        taskQueue: config.taskQueue,
        ...(config.changeControl ? { changeControl: config.changeControl } : {}),
        ...(config.discovery && discoveryTag(config.discovery)
          ? { requiredTag: discoveryTag(config.discovery) }
          : {}),
      }),
    };

    const t0 = Date.now();
    // prebuilt at build time and checked against its sources (worker/workflow-bundle.ts); from the TypeScript
    // sources, bundled now when there is no fitting prebuilt bundle; from dist/, a stale bundle is refused.
    // Tracing needs its workflow interceptors inside the bundle: the traced variant (bundled now with the plugin
    // when running from the sources and it does not fit)
    const variant = tracing ? 'traced' : 'plain';
    const loaded = await loadWorkflowBundle({
      logger,
      variant,
      ...(plugins.plugins ? { plugins: plugins.plugins } : {}),
    });
    const workflowBundle = { code: loaded.code };
    logger.info(loaded.origin === 'prebuilt' ? 'workflow bundle loaded' : 'workflows bundled at start', {
      variant,
      ms: Date.now() - t0,
      bytes: loaded.code.length,
      ...(loaded.reason ? { reason: loaded.reason } : {}),
    });

    const grace = `${config.shutdownGraceSeconds} seconds`;
    const identity = `certflow@${hostname()}:${process.pid}`;
    const main = await createCertflowWorker({
      connection,
      namespace: config.temporal.namespace,
      taskQueue: config.taskQueue,
      activities,
      workflowBundle,
      shutdownGraceTime: grace,
      identity,
      maxCachedWorkflows: config.maxCachedWorkflows,
      maxConcurrentActivities: config.maxConcurrentActivities,
      ...converter,
      ...plugins,
    });
    const issuerWorkers = await createIssuerWorkers({
      connection,
      namespace: config.temporal.namespace,
      taskQueue: config.taskQueue,
      issuers: config.issuers,
      activities,
      shutdownGraceTime: grace,
      identity,
      maxConcurrentActivities: config.maxConcurrentActivities,
      ...converter,
      ...plugins,
    });
    const vaultWorkers = await createVaultWorkers({
      connection,
      namespace: config.temporal.namespace,
      taskQueue: config.taskQueue,
      vaults: vaultQueues,
      activities,
      shutdownGraceTime: grace,
      identity,
      maxConcurrentActivities: config.maxConcurrentActivities,
      ...converter,
      ...plugins,
    });
    const labelled = [
      { label: config.taskQueue, worker: main },
      ...issuerWorkers.map((worker, i) => ({
        label: issuerTaskQueueFor(config.taskQueue, config.issuers[i]!.name),
        worker,
      })),
      ...vaultWorkers.map((worker, i) => ({
        label: vaultTaskQueueFor(config.taskQueue, vaultQueues[i]!.vault),
        worker,
      })),
    ];
    if (stopping) return; // a signal came while we were starting
    for (const { label, worker } of labelled) {
      const run = worker.run().catch((err: Error) => {
        logger.error('worker failed', { taskQueue: label, error: err });
        void shutdown(`worker ${label} failed`, 1);
      });
      running.push({ label, worker, run });
    }
    phase = 'running';
    metrics.watchWorkers(() =>
      labelled.map(({ label, worker }) => ({
        taskQueue: label,
        polling: phase === 'running' && worker.getState() === 'RUNNING',
      })),
    );
    logger.info('Certflow worker running', {
      taskQueues: labelled.map((l) => l.label),
      rateLimits: Object.fromEntries(config.issuers.map((i) => [i.name, issueRatePerSecond(i) ?? null])),
      keyCreateRates: vaultRates(vaultQueues),
    });
    const enrolment = await enrollConfiguredWithRetries(
      config,
      { client, vaults: deps.vaults, logger },
      { stopped: () => phase !== 'running' },
    );
    enrolment.retries.catch((err: unknown) =>
      logger.error('enrolment retries stopped', { error: (err as Error).message }),
    );
    await scheduleDiscovery(config, client, logger);
  } catch (err) {
    const isConfig = err instanceof ConfigError;
    logger.error(isConfig ? 'invalid configuration' : 'could not start', {
      error: err,
      ...(isConfig ? { issues: err.issues } : {}),
    });
    process.stderr.write(`certflow-worker: ${(err as Error).message}\n`);
    await shutdown('start-up failed', isConfig ? 2 : 1);
  }
}

/** Fleet discovery on a Temporal Schedule when configured; removing the section removes the schedule. */
async function scheduleDiscovery(
  config: CertflowConfig,
  client: Client,
  logger: CertflowLogger,
): Promise<void> {
  // one schedule per deployment (task queue), so two deployments in one namespace never touch each other's
  const scheduleId = `certflow-fleet-discovery-${config.taskQueue}`;
  try {
    if (!config.discovery) {
      await deleteDiscoverySchedule(client, scheduleId);
      return;
    }
    const { timing, input } = discoveryPlan(config.discovery, {
      vaults: new Set(config.vaults.map((v) => v.name)),
      defaultIssuer: config.defaults.issuer,
      jitterMinutes: config.defaults.policy?.jitterMinutes,
      driftWatch: config.defaults.driftWatch,
    });
    const result = await ensureDiscoverySchedule(client, {
      scheduleId,
      taskQueue: config.taskQueue,
      ...timing,
      input,
    });
    logger.info('fleet discovery scheduled', { scheduleId, result, ...timing });
  } catch (err) {
    logger.error('could not set up the fleet discovery schedule', { error: err });
  }
}

/** Temporal Cloud does not let API keys add search attributes: then say which ones to add, and go on. */
async function registerSearchAttributes(
  connection: NativeConnection,
  namespace: string,
  logger: CertflowLogger,
): Promise<void> {
  try {
    const added = await ensureSearchAttributes(connection, namespace);
    if (added.length) logger.info('registered search attributes', { namespace, added });
  } catch (err) {
    logger.warn('could not register search attributes; add them with the Temporal CLI or tcld', {
      namespace,
      error: err,
    });
  }
}

/** Our vault name for a Key Vault URL in an event, from the configured Azure vaults (by host). */
function vaultNameFromUrl(config: CertflowConfig): (url: string) => string | undefined {
  const hostOf = (url: string) => {
    try {
      return new URL(url).host.toLowerCase();
    } catch {
      return undefined;
    }
  };
  const byHost = new Map(config.vaults.flatMap((v) => (v.kind === 'azure' ? [[hostOf(v.url), v.name]] : [])));
  return (url) => byHost.get(hostOf(url));
}

void main();
