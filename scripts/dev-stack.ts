/**
 * `npm start`: Certflow on this machine with nothing but Node and the Temporal CLI, no Azure account.
 * Starts, all on 127.0.0.1 and with every bit of state in the data directory (default .data/):
 *   - the Temporal dev server (SQLite persistence) with its Web UI;
 *   - a mail sink: SMTP in, each mail saved as .eml and listed on a small web page;
 *   - a demo site over TLS (scripts/embedded/demo-site.ts), a `files` binding target reloaded with SIGHUP;
 *   - the real worker service (worker/main.ts) with a generated configuration (certflow.json): a local vault
 *     sealed with a key made once (vault.key, 0600), the dev CA with minutes-long validity, e-mail to the sink;
 * then enrolls three demo certificates (created in the vault with a policy and a Recipient tag), so renewals,
 * re-binds and mails happen while you watch. Ctrl-C stops every child by PID; the next start resumes the same
 * vault and workflows (nothing is enrolled twice). `--help` lists the flags (data directory, ports, lifetime).
 */
import { Client, Connection } from '@temporalio/client';
import { createRequire } from 'node:module';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createDevCaIssuer } from '../activities/issuers/dev-ca';
import { startLifecycle } from '../activities/lifecycles';
import { startDevServer } from '../test/support/temporal';
import { startProcess, tcpOpen, type Started } from '../test/support/proc';
import {
  DEMO_CERTIFICATES,
  demoRenewalOffsets,
  ISSUER,
  KEY_VARIABLE,
  keyBytes,
  TASK_QUEUE,
  VAULT,
  layout,
  openVault,
  prepareDataDir,
  seedVault,
  vaultKey,
  workerConfig,
  type DataLayout,
} from './embedded/demo';
import { startMailSink } from './embedded/mail-sink';
import {
  findTemporal,
  parseOptions,
  temporalAddressOf,
  USAGE,
  UsageError,
  type EmbeddedOptions,
} from './embedded/options';
import { ensureSearchAttributes } from '../worker/search-attributes';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const siteScript = path.join(root, 'scripts/embedded/demo-site.ts');
/** Short paths inside the current directory, absolute ones elsewhere. */
const rel = (p: string) => {
  const r = path.relative(process.cwd(), p);
  return r && !r.startsWith('..') ? r : p;
};

/** Worker settings the user's environment could override: the generated configuration must win. */
const WORKER_OVERRIDES = [
  'CERTFLOW_TEMPORAL_ADDRESS',
  'CERTFLOW_TEMPORAL_NAMESPACE',
  'CERTFLOW_TEMPORAL_API_KEY',
  'CERTFLOW_TASK_QUEUE',
  'CERTFLOW_HTTP_PORT',
  'CERTFLOW_HTTP_HOST',
];

async function checkPortsFree(o: EmbeddedOptions): Promise<void> {
  for (const [name, port] of Object.entries(o.ports))
    if (o.temporalAddress && (name === 'temporal' || name === 'ui')) continue;
    else if (await tcpOpen(port))
      throw new UsageError(
        `port ${port} (--${name}-port) is in use: is Certflow already running? Stop it, or pick another port`,
      );
}

const siteFiles = (d: DataLayout) => ['--cert', d.siteCert, '--key', d.siteKey];

async function startDemoSite(o: EmbeddedOptions, d: DataLayout): Promise<Started> {
  const files = siteFiles(d);
  return startProcess({
    name: 'demo-site',
    command: process.execPath,
    args: ['--import', tsx, siteScript, '--host', '127.0.0.1', '--port', String(o.ports.demo), ...files],
    logDir: d.logDir,
    ready: () => tcpOpen(o.ports.demo),
  });
}

/** The worker from the build (dist/, made by scripts/start.sh) as in production; from the sources without one. */
function workerEntry(): string[] {
  const built = path.join(root, 'dist/worker/main.js');
  return existsSync(built)
    ? ['--enable-source-maps', built]
    : ['--import', tsx, path.join(root, 'worker/main.ts')];
}

async function startWorker(o: EmbeddedOptions, d: DataLayout, key: string): Promise<Started> {
  return startProcess({
    name: 'worker',
    command: process.execPath,
    args: [...workerEntry(), '--config', d.configFile],
    cwd: root,
    env: { [KEY_VARIABLE]: key, ...Object.fromEntries(WORKER_OVERRIDES.map((v) => [v, ''])) },
    logDir: d.logDir,
    // a cold first start from the sources bundles the workflows (seconds); the build's worker loads them prebuilt
    readyTimeoutMs: 180_000,
    ready: async () => {
      const res = await fetch(`http://127.0.0.1:${o.ports.worker}/readyz`, {
        signal: AbortSignal.timeout(2_000),
      });
      return res.status === 200;
    },
  });
}

function banner(o: EmbeddedOptions, d: DataLayout, ui: string, mailUrl: string, enrolled: string[]): string {
  const address = temporalAddressOf(o);
  const env =
    address === '127.0.0.1:7233'
      ? ''
      : `  export CERTFLOW_TEMPORAL_ADDRESS=${address}${ui ? ` CERTFLOW_UI_URL=${ui}` : ''}\n`;
  const [site, api] = DEMO_CERTIFICATES.map((c) => `${VAULT}/${c.name}`);
  return `
Certflow is ready. State is kept in ${rel(d.dir)}/ (delete it to start over); Ctrl-C stops everything.

  Temporal ${ui ? `Web UI  ${ui}/namespaces/default/workflows` : `        ${address} (yours: its Web UI, if any, shows the lifecycles)`}
  mail sink        ${mailUrl}   (each mail is also saved as ${rel(d.mailDir)}/*.eml)
  demo site        https://localhost:${o.ports.demo}/   (its CA: ${rel(d.rootFile)}; your browser will warn)
  worker           http://127.0.0.1:${o.ports.worker}/metrics   (logs in ${rel(d.logDir)}/)

Demo certificates from the dev CA, issued for ${o.validityMinutes} minutes (valid from a minute before issuance, so
${o.validityMinutes + 1} minutes in all) and renewed at 50, 60 and 70 % of that: ${demoRenewalOffsets(
    o.validityMinutes,
  )
    .map((r) => r.after)
    .join(', ')} (m:ss) after each issuance
(the demo site is re-bound each time, and every renewal sends a mail):
${enrolled.map((l) => `  ${l}`).join('\n')}

Try, in another terminal:
${env}  npx certflow list
  npx certflow status ${site}
  npx certflow renew ${site}          (renews now and shows each step)
  npx certflow pause ${api} --reason "change freeze"   then   npx certflow resume ${api}
  npx certflow history ${site}
`;
}

/** `--temporal-address`: a server or cluster already running; Certflow's search attributes are registered there. */
async function useExistingTemporal(address: string) {
  console.log(`using the Temporal at ${address} (namespace default) ...`);
  const c = await Connection.connect({ address, connectTimeout: 10_000 }).catch((err: Error) => {
    throw new UsageError(`--temporal-address ${address}: cannot connect (${err.message})`);
  });
  try {
    await ensureSearchAttributes(c, 'default');
  } finally {
    await c.close();
  }
  return { address, uiUrl: null, process: null, stop: async () => undefined };
}

async function main(): Promise<void> {
  let o: EmbeddedOptions | null;
  try {
    o = parseOptions(process.argv.slice(2), process.env, process.cwd());
  } catch (err) {
    process.stderr.write(`certflow start: ${(err as Error).message}\n`);
    process.exit(2);
  }
  if (!o) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const stops: Array<{ what: string; stop: () => Promise<void> }> = [];
  let stopping: Promise<void> | undefined;
  const shutdown = (code: number) =>
    (stopping ??= (async () => {
      if (stops.length) console.log('\nstopping ...');
      for (const s of stops.reverse())
        await s.stop().catch((e: Error) => console.error(`  ${s.what}: ${e.message}`));
      if (stops.length) console.log('stopped');
      process.exit(code);
    })());
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));

  try {
    if (!o.temporalAddress) {
      const temporalBin = findTemporal(process.env, path.join(root, '.tools'));
      if (!temporalBin)
        throw new UsageError(
          "the Temporal CLI was not found: run 'npm run setup', put 'temporal' on PATH, or set CERTFLOW_TEMPORAL_BIN",
        );
      process.env.CERTFLOW_TEMPORAL_BIN = temporalBin;
    }
    await checkPortsFree(o);
    const d = layout(o.dataDir);
    prepareDataDir(d);
    const key = vaultKey(d);

    const temporal = o.temporalAddress
      ? await useExistingTemporal(o.temporalAddress)
      : await startDevServer({
          dir: d.logDir,
          ui: true,
          dbFile: path.join(d.dir, 'temporal.db'),
          port: o.ports.temporal,
          uiPort: o.ports.ui,
        });
    if (temporal.process) stops.push({ what: 'Temporal', stop: () => temporal.stop() });

    const mail = await startMailSink({
      dir: d.mailDir,
      host: '127.0.0.1',
      smtpPort: o.ports.smtp,
      webPort: o.ports.mail,
      onMail: (m) => console.log(`mail to ${m.to}: ${m.subject}`),
    });
    stops.push({ what: 'mail sink', stop: () => mail.stop() });

    const devCa = createDevCaIssuer({
      name: ISSUER,
      dir: d.caDir,
      validity: { minutes: o.validityMinutes },
      encryptionKey: keyBytes(key),
    });
    writeFileSync(d.rootFile, await devCa.rootPem());
    const created = await seedVault(openVault(d, key));
    if (created.length) console.log(`created in the local vault: ${created.join(', ')}`);

    console.log('starting the demo site and the worker ...');
    const site = await startDemoSite(o, d);
    stops.push({ what: 'demo site', stop: () => site.stop() });
    const config = workerConfig(o, d, {
      check: { command: process.execPath, args: ['--import', tsx, siteScript, '--check', ...siteFiles(d)] },
      reload: { command: process.execPath, args: ['-e', `process.kill(${site.pid}, 'SIGHUP')`] },
    });
    writeFileSync(d.configFile, `${JSON.stringify(config, null, 2)}\n`);
    const worker = await startWorker(o, d, key);
    stops.push({ what: 'worker', stop: () => worker.stop() });

    const client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
    stops.push({ what: 'client', stop: () => client.connection.close() });
    const enrolled: string[] = [];
    for (const c of DEMO_CERTIFICATES) {
      const certificateId = `${VAULT}/${c.name}`;
      const r = await startLifecycle(client, { certificateId, issuer: ISSUER, taskQueue: TASK_QUEUE });
      enrolled.push(
        `${certificateId.padEnd(22)} ${r.started ? 'enrolled now' : 'already enrolled: its lifecycle goes on'}`,
      );
    }

    const children = {
      ...(temporal.process ? { temporal: temporal.process } : {}),
      'demo-site': site,
      worker,
    };
    // a child that dies takes the demo down with a pointer to its log, rather than leaving it half-working
    const watchdog = setInterval(() => {
      const dead = Object.values(children).find((c) => c.exited());
      if (!dead || stopping) return;
      console.error(`certflow start: ${dead.name} stopped unexpectedly; see ${rel(dead.logFile)}`);
      void shutdown(1);
    }, 1_000);
    stops.push({ what: 'watchdog', stop: async () => clearInterval(watchdog) });

    console.log(banner(o, d, temporal.uiUrl ?? '', mail.webUrl, enrolled));
    console.log(
      `processes: ${Object.entries(children)
        .map(([n, c]) => `${n}=${c.pid}`)
        .join(' ')}`,
    );
  } catch (err) {
    const usage = err instanceof UsageError;
    console.error(`certflow start: ${usage ? '' : 'could not start: '}${(err as Error).message}`);
    await shutdown(usage ? 2 : 1);
  }
}

void main();
