/**
 * Chaos run (a script, not a test: it prints figures and writes chaos/results/renewals-<N>-<time>.json).
 *
 * N certificates, each served by its own site of one real nginx, renewed at once through ACME (pebble, real DNS-01
 * through challtestsrv) by the worker service (worker/main.ts, its own process) with a vault and mail to a real
 * SMTP server, on a real Temporal cluster (PostgreSQL, one process per service, 4 history shards). The vault
 * (`--vault`): `keyvault` (default), our Key Vault test server (test/servers/keyvault) at a production-style URL
 * (https://chaos-<run>.vault.azure.net) with its key-create quota (20 per 10 s), the worker signing in with a client
 * secret from its configuration to our test Entra's token endpoint (both reached through
 * test/support/redirect-hosts-preload.mjs); or `local`, the file-backed local vault (it never answers 429). While:
 *   - the worker is SIGKILLed at random moments (every 20-50 s) and started again 1-3 s later;
 *   - the history service, then the whole server (every service), is SIGKILLed and restarted 5 s later;
 *   - the CA fails 30 % of calls (connection reset on accept or on a request, through a TCP proxy in front of pebble), and is down
 *     (connections refused) for 2 minutes;
 *   - the SMTP server is down for a minute;
 *   - (keyvault) the vault answers bursts of 429 Throttled with Retry-After: every request for 25 s, then half of
 *     the requests (at random) for 25 s;
 *   - a client hammers the nginx sites with TLS handshakes (verified against the CA's root and each site's name).
 * Each renewal is asked for like `certflow renew` does (renewLifecycle with a request id, the same id resent when the
 * answer is lost), spread over the first 4 minutes.
 * Counted at the end: renewals completed, vault versions per renewal (from the vault's own state: the Key Vault
 * server's state file or the local vault's files), vault 429s answered, CA orders per renewal (distinct DNS-01 answers
 * per name: pebble makes new authorizations per order), emails per certificate, bindings left stale (served
 * thumbprint vs the vault's latest version), TLS handshake failures, recovery time after each kill, key material
 * found in workflow histories and logs (the sites' keys, the vault's keys and secrets, the vault's encryption key or
 * the client secret and the access tokens issued).
 *
 *   flock /work/heavy.lock node --import tsx chaos/renewals.ts [--count 20] [--spread 240] [--no-server-kills]
 *     [--vault keyvault|local] [--chaos-seconds 280] [--ca-fail-rate 0.3]
 * Against an existing server instead of a cluster of its own: CERTFLOW_TEST_TEMPORAL=host:port (no server kills).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { lifecycleStatus, renewLifecycle } from '../activities/lifecycles';
import { probeTls } from '../activities/verify/probe';
import type { Vault } from '../activities/types';
import { createAzureKeyVault } from '../activities/vault/azure-key-vault';
import { createLocalVault } from '../activities/vault/local';
import type { RenewalOutcome } from '../workflows/messages';
import { machineFacts } from '../bench/lib/machine';
import { startChalltestsrvProxy } from '../test/support/challtestsrv-proxy';
import { startNginxSites, siteName, type NginxSites } from '../test/support/nginx-sites';
import { startPebble, type Pebble } from '../test/support/pebble';
import { freePort, waitFor } from '../test/support/proc';
import { startSmtpSink, type ReceivedMail, type SmtpSink } from '../test/support/smtp';
import { createTestEntra, startEntraServer } from '../test/servers/keyvault/entra';
import { startKeyVaultServer, type KeyVaultServer } from '../test/servers/keyvault/server';
import type { CertificateRecord, SecretRecord } from '../test/servers/keyvault/store';
import { REDIRECT_HOSTS_ENV } from '../test/support/redirect-hosts';
import { createTestCa } from '../test/support/test-ca';
import { agentToLocalVault } from '../test/support/vault-host';
import { privateKeyNeedles, secretValueNeedles } from './key-needles';
import { startTemporalCluster, type TemporalCluster } from '../test/support/temporal-cluster';
import { temporalTargetFromEnv } from '../test/support/temporal-target';
import { repoRoot, scratchDir } from '../test/support/tools';

const { values: args } = parseArgs({
  options: {
    count: { type: 'string', default: '20' },
    spread: { type: 'string', default: '240' },
    'no-server-kills': { type: 'boolean', default: false },
    'ca-fail-rate': { type: 'string', default: '0.3' },
    'chaos-seconds': { type: 'string', default: '280' },
    vault: { type: 'string', default: 'keyvault' },
  },
});
const VAULT_KIND = args.vault;
if (VAULT_KIND !== 'keyvault' && VAULT_KIND !== 'local') throw new Error('--vault must be keyvault or local');
const N = Number(args.count);
const SPREAD_S = Number(args.spread);
const CA_FAIL_RATE = Number(args['ca-fail-rate']);
/** Length of the fault timeline; at the default 280 s the CA is down 2 minutes and SMTP 1 minute (scaled with it). */
const CHAOS_S = Number(args['chaos-seconds']);
if (!(CHAOS_S >= 30)) throw new Error('--chaos-seconds must be at least 30');
const atMsOf = (fraction: number) => Math.round(CHAOS_S * fraction * 1000); // ms into the chaos phase
if (!Number.isInteger(N) || N < 1) throw new Error('--count must be a positive integer');
if (!(SPREAD_S >= 0)) throw new Error('--spread must be a number of seconds');
if (!(CA_FAIL_RATE >= 0 && CA_FAIL_RATE < 1)) throw new Error('--ca-fail-rate must be in [0, 1)');

const dir = scratchDir('chaos');
/**
 * The vault's name, the first half of every certificate id (and lifecycle workflow id): one of its own per run, so
 * that a run on an existing server does not meet an earlier run's lifecycles (same ids, still running on that run's
 * task queue, which no worker polls any more: enrolment finds them "already running" and phase 1 never ends).
 */
const VAULT = `chaos-${Date.now().toString(36)}`;
const DOMAIN = 'chaos.certflow.test';
const t0 = Date.now();
const now = () => Date.now();
const rel = (t: number) => Math.round((t - phase2At) / 100) / 10; // seconds since the chaos began, 0.1 s
let phase2At = t0;
const log = (msg: string) => console.log(`[chaos ${((now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rand = (a: number, b: number) => a + Math.random() * (b - a);

// ---------------------------------------------------------------------------------------------------------------
// fault injectors

/** A TCP proxy in front of pebble: resets a share of new connections and of calls, or refuses all while `down`. */
function startCaProxy(target: number) {
  const state = { failRate: 0, down: false, accepted: 0, reset: 0, resetMidway: 0, refused: 0 };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (state.down) {
      state.refused++;
      client.resetAndDestroy();
      return;
    }
    if (Math.random() < state.failRate) {
      state.reset++;
      client.resetAndDestroy();
      return;
    }
    state.accepted++;
    const upstream = net.connect(target, '127.0.0.1');
    sockets.add(client).add(upstream);
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    // a share of the calls fails: each burst the client sends (a TLS record: a request, or a handshake step on a
    // connection kept alive between calls) resets the connection instead, with probability failRate
    client.on('data', (chunk: Buffer) => {
      if (Math.random() < state.failRate) {
        state.resetMidway++;
        client.resetAndDestroy();
        upstream.destroy();
        return;
      }
      upstream.write(chunk);
    });
    client.on('end', () => upstream.end());
    upstream.pipe(client);
  });
  return {
    state,
    async listen(): Promise<number> {
      const port = await freePort();
      await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
      return port;
    },
    /** Down: drop every open connection too (keep-alive connections would otherwise carry on). */
    setDown(down: boolean) {
      state.down = down;
      if (down) for (const s of sockets) s.resetAndDestroy();
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** TLS handshakes against random sites, `concurrency` at a time, each verified (chain to the root, the site's name). */
function startHammer(nginx: NginxSites, caPem: string, concurrency = 3) {
  const stats = { ok: 0, failed: 0, failures: [] as Array<{ at: number; site: string; error: string }> };
  let running = true;
  const one = (site: string) =>
    new Promise<void>((resolve) => {
      const s = tls.connect({
        host: '127.0.0.1',
        port: nginx.port,
        servername: site,
        ca: caPem,
        timeout: 10_000,
      });
      const done = (err?: Error) => {
        s.destroy();
        if (err) {
          stats.failed++;
          if (stats.failures.length < 50) stats.failures.push({ at: rel(now()), site, error: err.message });
        } else stats.ok++;
        resolve();
      };
      s.once('secureConnect', () => done());
      s.once('error', done);
      s.once('timeout', () => done(new Error('handshake timed out')));
    });
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) {
      const site = nginx.sites[Math.floor(Math.random() * nginx.sites.length)]!;
      await one(site.serverName);
      await sleep(5);
    }
  });
  return {
    stats,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// the worker service as its own process group

let workerConfig = '';
let worker: ChildProcess | undefined;
let workerSeq = 0;
const workerLogs: string[] = [];
let workerHttpPort = 0;
/** The worker's environment and preloads (keyvault: the host redirect to the test Key Vault and Entra). */
let workerEnv: NodeJS.ProcessEnv = process.env;
let workerPreload: string[] = [];

function startWorker(): ChildProcess {
  const name = `worker-${++workerSeq}`;
  const logFile = path.join(dir, `${name}.log`);
  workerLogs.push(logFile);
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', ...workerPreload, 'worker/main.ts', '--config', workerConfig],
    {
      cwd: repoRoot,
      env: workerEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
  const chunks: Buffer[] = [];
  proc.stdout!.on('data', (d: Buffer) => chunks.push(d));
  proc.stderr!.on('data', (d: Buffer) => chunks.push(d));
  proc.once('close', () => writeFileSync(logFile, Buffer.concat(chunks)));
  return proc;
}

async function killWorker(proc: ChildProcess): Promise<void> {
  const pid = proc.pid!;
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  if (!cmdline.includes('worker/main.ts')) throw new Error(`pid ${pid} is not our worker any more`);
  const closed = new Promise((r) => proc.once('close', r));
  process.kill(-pid, 'SIGKILL');
  await closed;
}

async function workerReady(): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(
      { host: '127.0.0.1', port: workerHttpPort, path: '/readyz', timeout: 2_000 },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------

interface Renewal {
  id: string;
  requestId: string;
  askAtS: number;
  askedAt?: number;
  answeredAt?: number;
  outcome?: RenewalOutcome;
  sends: number;
  errors: string[];
}

interface PerCert {
  id: string;
  renewed: boolean;
  outcome: string | null;
  sends: number;
  clientErrors: string[];
  secondsToAnswer: number | null;
  newVersions: number;
  caOrders: number;
  mails: number;
  mailSubjects: string[];
  stale: boolean;
  statusThumbprintMatchesVault: boolean;
}

interface KillRecord {
  what: string;
  atS: number;
  restartedAtS: number;
  /** Until the restarted part answers (worker: /readyz 200; server: the frontend answers a namespace call). */
  answersAfterS: number | null;
  /** Until the next renewal completed after the restart (null when none was outstanding). */
  progressAfterS: number | null;
}

async function main(): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const stops: Array<() => Promise<unknown>> = [];
  const target = temporalTargetFromEnv();
  const serverKills = target.kind === 'cluster' || (target.kind === 'dev-server' && !args['no-server-kills']);
  let cluster: TemporalCluster | undefined;
  let address: string;
  let namespace = 'default';
  try {
    if (target.kind === 'existing') {
      address = target.address!;
      namespace = target.namespace!;
      log(`Temporal: the existing server ${address} (no server kills)`);
    } else {
      log('starting a Temporal cluster (PostgreSQL, frontend/history/matching/worker, 4 shards)');
      cluster = await startTemporalCluster({ dir: path.join(dir, 'cluster'), topology: 'services' });
      stops.push(() => cluster!.stop({ keep: true }));
      address = cluster.address;
      namespace = cluster.namespace;
      log(`cluster ${address} pids ${JSON.stringify(cluster.pids())}, postgres ${cluster.postgres.pid}`);
    }
    const doServerKills = serverKills && !!cluster && !args['no-server-kills'];

    // --- CA, DNS, nginx, SMTP
    const pebble: Pebble = await startPebble();
    stops.push(() => pebble.stop());
    const pebbleRoot = await pebble.rootsPem();
    writeFileSync(path.join(dir, 'pebble-root.pem'), pebbleRoot);
    writeFileSync(path.join(dir, 'pebble-tls-ca.pem'), pebble.caBundlePem);
    const ca = startCaProxy(Number(new URL(pebble.directoryUrl).port));
    const caPort = await ca.listen();
    stops.push(() => ca.close());
    const dns = await startChalltestsrvProxy(pebble.challtestsrvUrl);
    stops.push(() => dns.close());

    const names = Array.from({ length: N }, (_, i) => siteName(i + 1));
    const boot = createTestCa().issueServerCert(names.map((n) => `${n}.${DOMAIN}`));
    const nginx = await startNginxSites({
      dir: path.join(dir, 'nginx'),
      names,
      domain: DOMAIN,
      certPem: boot.certPem,
      keyPem: boot.keyPem,
    });
    stops.push(() => nginx.stop());

    const mails: ReceivedMail[] = [];
    let smtp: SmtpSink | null = await startSmtpSink();
    const smtpPort = smtp.port;
    stops.push(async () => {
      await smtp?.stop();
    });

    const vaultDir = path.join(dir, 'vault');
    const kvDir = path.join(dir, 'keyvault');
    let kv:
      | {
          server: KeyVaultServer;
          entraStats: () => { issued: number; refused: number };
          tokens: () => string[];
        }
      | undefined;
    let vaultConfig: unknown;
    let vault: Vault;
    // what must never show in a history or a log (besides any PEM private key): what it is, and a needle
    const secrets: Array<{ what: string; needle: string }> = [];
    const secret = (what: string, needles: string[]) => {
      for (const needle of needles) secrets.push({ what, needle });
    };
    if (VAULT_KIND === 'keyvault') {
      // our Key Vault test server as https://chaos-<run>.vault.azure.net, our test Entra as login.microsoftonline.com
      const host = `${VAULT}.vault.azure.net`;
      const tlsCa = createTestCa({ commonName: 'Certflow chaos TLS CA (Key Vault, Entra)', keyType: 'ec' });
      const kvTls = tlsCa.issueServerCert([host, 'login.microsoftonline.com']);
      const entra = createTestEntra();
      const clientId = randomUUID();
      const clientSecret = randomBytes(24).toString('base64url');
      secret('the client secret', [clientSecret]);
      const server = await startKeyVaultServer({
        jwks: entra.jwks,
        issuer: entra.issuer,
        tenantId: entra.tenantId,
        tls: kvTls,
        dataDir: kvDir,
        vaultName: VAULT,
        publicUrl: `https://${host}`,
        createQuota: { limit: 20, windowSeconds: 10 },
      });
      stops.push(() => server.close());
      const login = await startEntraServer({ entra, tls: kvTls, clients: { [clientId]: clientSecret } });
      stops.push(() => login.close());
      kv = { server, entraStats: login.stats, tokens: login.issuedSignatures };
      workerEnv = {
        ...process.env,
        CERTFLOW_CHAOS_CLIENT_SECRET: clientSecret,
        [REDIRECT_HOSTS_ENV]: JSON.stringify({
          hosts: { [host]: server.port, 'login.microsoftonline.com': login.port },
          caPem: tlsCa.caCertPem,
        }),
      };
      workerPreload = ['--import', './test/support/redirect-hosts-preload.mjs'];
      vaultConfig = {
        kind: 'azure',
        name: VAULT,
        url: `https://${host}`,
        credential: {
          kind: 'client-secret',
          tenantId: entra.tenantId,
          clientId,
          clientSecret: { env: 'CERTFLOW_CHAOS_CLIENT_SECRET' },
        },
      };
      // this script reads the vault (to count stale bindings) with a token of its own, straight to the server
      vault = createAzureKeyVault({
        name: VAULT,
        url: `https://${host}`,
        credential: entra.credential(),
        clientOptions: {
          agent: agentToLocalVault(server.port, tlsCa.caCertPem),
          retryOptions: { maxRetries: 0 },
        },
      });
      log(
        `vault: the test Key Vault https://${host} (127.0.0.1:${server.port}), Entra on 127.0.0.1:${login.port}`,
      );
    } else {
      const encryptionKey = randomBytes(32).toString('base64');
      secret("the local vault's encryption key", [encryptionKey]);
      workerEnv = { ...process.env, CERTFLOW_CHAOS_VAULT_KEY: encryptionKey };
      vaultConfig = {
        kind: 'local',
        name: VAULT,
        dir: vaultDir,
        encryptionKey: { env: 'CERTFLOW_CHAOS_VAULT_KEY' },
      };
      vault = createLocalVault({
        name: VAULT,
        dir: vaultDir,
        encryptionKey: Buffer.from(encryptionKey, 'base64'),
      });
      log(`vault: a local vault in ${vaultDir}`);
    }
    const ids = names.map((n) => `${VAULT}/${n}`);
    workerHttpPort = await freePort();
    workerConfig = path.join(dir, 'certflow.json');
    const taskQueue = `chaos-${Date.now().toString(36)}`;
    writeFileSync(
      workerConfig,
      JSON.stringify(
        {
          temporal: { address, namespace, connectTimeoutSeconds: 60 },
          taskQueue,
          vaults: [vaultConfig],
          issuers: [
            {
              kind: 'acme',
              name: 'pebble',
              directoryUrl: `https://127.0.0.1:${caPort}/dir`,
              contactEmail: 'ops@example.test',
              accountKeyVault: VAULT,
              accountKeySecretName: 'acme-account-pebble',
              dns: { kind: 'challtestsrv', managementUrl: dns.url },
              caBundleFile: path.join(dir, 'pebble-tls-ca.pem'),
              trustAnchorFiles: [path.join(dir, 'pebble-root.pem')],
            },
          ],
          bindings: nginx.sites.map((s, i) => ({
            kind: 'files',
            name: `nginx-${s.name}`,
            certificates: { ids: [ids[i]] },
            certPath: s.certPath,
            keyPath: s.keyPath,
            validate: { command: nginx.command, args: nginx.testArgs },
            reload: { command: nginx.command, args: nginx.reloadArgs },
            probe: {
              host: '127.0.0.1',
              port: nginx.port,
              servername: s.serverName,
              caFile: path.join(dir, 'pebble-root.pem'),
            },
          })),
          certificates: names.map((n, i) => ({
            id: ids[i],
            issuer: 'pebble',
            create: {
              dnsNames: [`${n}.${DOMAIN}`],
              keyType: 'EC',
              tags: { Recipient: `owner-${n}@example.test` },
            },
          })),
          notify: { email: { host: '127.0.0.1', port: smtpPort, from: 'Certflow <certflow@example.test>' } },
          http: { port: workerHttpPort },
          shutdownGraceSeconds: 2,
          log: { level: 'info', format: 'json' },
        },
        null,
        2,
      ),
    );
    const client = new Client({ connection: await Connection.connect({ address }), namespace });
    stops.push(() => client.connection.close());
    stops.push(async () => {
      if (worker) await killWorker(worker).catch(() => undefined);
    });

    // --- phase 1: every certificate created, issued and bound once (no chaos)
    log(`phase 1: ${N} certificates created, issued and bound (no faults)`);
    const p1 = now();
    worker = startWorker();
    await waitFor(
      'every certificate issued and bound',
      async () => {
        const st = await Promise.all(ids.map((id) => lifecycleStatus(client, id).catch(() => undefined)));
        const done = st.filter(
          (s) => s?.thumbprint && s.phase === 'Waiting' && s.bindings[0]?.status === 'bound',
        );
        return done.length === N ? true : undefined;
      },
      { timeoutMs: 30 * 60_000, intervalMs: 2_000, probeTimeoutMs: 60_000 },
    );
    const phase1S = (now() - p1) / 1000;
    log(`phase 1 done in ${phase1S.toFixed(1)} s`);
    /** Versions of a certificate in the vault's own state (completed ones; a pending operation is not one). */
    const versionsOf = (name: string): number => {
      if (kv) {
        const state = JSON.parse(readFileSync(path.join(kvDir, 'state.json'), 'utf8')) as {
          certificates: CertificateRecord[];
        };
        return (
          state.certificates.find((c) => c.name.toLowerCase() === name.toLowerCase())?.versions.length ?? 0
        );
      }
      const record = JSON.parse(
        readFileSync(path.join(vaultDir, 'certificates', name, 'certificate.json'), 'utf8'),
      ) as { versions: unknown[] };
      return record.versions.length;
    };
    const versionsBefore = new Map(names.map((n) => [n, versionsOf(n)]));
    const mailsBefore = smtp.messages.length;
    const txtBefore = dns.txt.length;

    // --- phase 2: renewals under chaos
    phase2At = now();
    log(`phase 2: ${N} renewals asked over ${SPREAD_S} s, under chaos`);
    ca.state.failRate = CA_FAIL_RATE;
    const hammer = startHammer(nginx, pebbleRoot);
    const renewals: Renewal[] = ids.map((id, i) => ({
      id,
      requestId: `chaos-${i}-${randomBytes(4).toString('hex')}`,
      askAtS: N === 1 ? 0 : (SPREAD_S * i) / (N - 1),
      sends: 0,
      errors: [],
    }));
    const completions: number[] = [];
    const ask = async (r: Renewal) => {
      await sleep(r.askAtS * 1000);
      r.askedAt = now();
      const deadline = now() + 30 * 60_000;
      for (;;) {
        r.sends++;
        try {
          r.outcome = await renewLifecycle(client, r.id, {
            reason: 'chaos',
            force: true,
            requestId: r.requestId,
          });
          r.answeredAt = now();
          completions.push(r.answeredAt);
          return;
        } catch (err) {
          // the answer was lost even after the client's own resends (a long outage): the same request again
          if (r.errors.length < 10) r.errors.push(`${rel(now())} s: ${(err as Error).message}`);
          if (now() > deadline) return;
          await sleep(2_000);
        }
      }
    };
    const asked = Promise.all(renewals.map(ask));

    const kills: KillRecord[] = [];
    const progressAfter = (from: number) => {
      const next = completions.find((c) => c > from);
      return next ? Math.round((next - from) / 100) / 10 : null;
    };
    const allDone = () => renewals.every((r) => r.answeredAt || r.errors.length >= 10);
    const chaosEnd = phase2At + Math.max(SPREAD_S, CHAOS_S) * 1000;
    const events: Array<{ atS: number; what: string }> = [];
    const event = (what: string) => {
      events.push({ atS: rel(now()), what });
      log(what);
    };

    // the worker: SIGKILL at random moments, started again 1-3 s later
    const workerChaos = (async () => {
      while (now() < chaosEnd) {
        await sleep(rand(atMsOf(20 / 280), atMsOf(50 / 280)));
        if (now() >= chaosEnd) break;
        const at = now();
        event(`SIGKILL worker (pid ${worker!.pid})`);
        await killWorker(worker!);
        await sleep(rand(1_000, 3_000));
        const restarted = now();
        worker = startWorker();
        const rec: KillRecord = {
          what: 'worker',
          atS: rel(at),
          restartedAtS: rel(restarted),
          answersAfterS: null,
          progressAfterS: null,
        };
        kills.push(rec);
        await waitFor('worker ready', async () => ((await workerReady()) ? true : undefined), {
          timeoutMs: 120_000,
          intervalMs: 250,
        })
          .then(() => (rec.answersAfterS = Math.round((now() - restarted) / 100) / 10))
          .catch(() => undefined);
      }
    })();

    const serverChaos = (async () => {
      if (!doServerKills || !cluster) return;
      for (const [atMs, what] of [
        [atMsOf(40 / 280), 'history'],
        [atMsOf(100 / 280), 'all'],
      ] as const) {
        await sleep(Math.max(0, phase2At + atMs - now()));
        const at = now();
        event(`SIGKILL Temporal ${what === 'all' ? 'server (every service)' : `${what} service`}`);
        await cluster.kill(what);
        await sleep(5_000);
        const restarted = now();
        event(`restart Temporal ${what}`);
        const rec: KillRecord = {
          what: what === 'all' ? 'temporal-server' : `temporal-${what}`,
          atS: rel(at),
          restartedAtS: rel(restarted),
          answersAfterS: null,
          progressAfterS: null,
        };
        kills.push(rec);
        await cluster.restart(what);
        const conn = await Connection.connect({ address });
        await waitFor(
          'the namespace answers',
          async () => {
            await conn.workflowService.describeNamespace({ namespace });
            return true;
          },
          { timeoutMs: 120_000, intervalMs: 250 },
        ).catch(() => undefined);
        rec.answersAfterS = Math.round((now() - restarted) / 100) / 10;
        await conn.close();
      }
    })();

    const faultChaos = (async () => {
      await sleep(Math.max(0, phase2At + atMsOf(150 / 280) - now()));
      event(`CA down (connections refused) for ${(atMsOf(120 / 280) / 1000).toFixed(0)} s`);
      ca.setDown(true);
      await sleep(atMsOf(50 / 280));
      event(`SMTP down for ${(atMsOf(60 / 280) / 1000).toFixed(0)} s`);
      const down = smtp!;
      mails.push(...down.messages);
      smtp = null;
      await down.stop();
      await sleep(atMsOf(60 / 280));
      smtp = await startSmtpSink({ port: smtpPort });
      event('SMTP up again');
      await sleep(Math.max(0, phase2At + atMsOf(270 / 280) - now()));
      ca.setDown(false);
      event('CA up again (still failing 30 % of connections)');
    })();

    // the vault: bursts of 429 Throttled (Retry-After 5 s), every request, then half of them (at random)
    const bursts: Array<{ atS: number; seconds: number; share: number; retryAfterSeconds: number }> = [];
    const vaultChaos = (async () => {
      if (!kv) return;
      for (const [at, share] of [
        [60 / 280, 1],
        [190 / 280, 0.5],
      ] as const) {
        await sleep(Math.max(0, phase2At + atMsOf(at) - now()));
        const seconds = Math.max(20, atMsOf(25 / 280) / 1000); // 25 s at 280, never under 20 s
        event(
          `vault throttled for ${seconds.toFixed(0)} s: ${share === 1 ? 'every request' : `${share * 100} % of requests`} answered 429 (Retry-After 5 s)`,
        );
        bursts.push({ atS: rel(now()), seconds, share, retryAfterSeconds: 5 });
        kv.server.setThrottle({ share, retryAfterSeconds: 5, pick: 'random' });
        await sleep(seconds * 1000);
        kv.server.setThrottle(undefined);
        event('vault answers again');
      }
    })();

    await Promise.all([workerChaos, serverChaos, faultChaos, vaultChaos]);
    ca.state.failRate = 0;
    event('chaos over: no more faults');
    const waitStart = now();
    while (!allDone() && now() - waitStart < 20 * 60_000) await sleep(1_000);
    await Promise.race([asked, sleep(5_000)]);
    const phase2S = (now() - phase2At) / 1000;
    log(`phase 2 done in ${phase2S.toFixed(1)} s; letting mail and bindings settle for 20 s`);
    await sleep(20_000);
    // mails that met the SMTP outage wait in their lifecycle's outbox and go on a backoff (1, 2, 4 ... min): wait
    // for them (bounded), so the count is of mails per event, not of mails that happened to be sent by now
    const outboxStart = now();
    let unsent = -1;
    while (now() - outboxStart < 15 * 60_000) {
      const st = await Promise.all(ids.map((id) => lifecycleStatus(client, id).catch(() => undefined)));
      const waiting = st.reduce((a, s) => a + (s?.unsentMails?.count ?? 0), 0);
      if (waiting !== unsent) log(`${waiting} mail(s) waiting in lifecycle outboxes`);
      unsent = waiting;
      if (waiting === 0) break;
      await sleep(5_000);
    }
    const outboxWaitS = Math.round((now() - outboxStart) / 1000);
    await hammer.stop();
    for (const k of kills) k.progressAfterS = progressAfter(phase2At + k.restartedAtS * 1000);
    if (smtp) mails.push(...smtp.messages);

    // --- counting
    const perCert: PerCert[] = [];
    for (const [i, name] of names.entries()) {
      const r = renewals[i]!;
      const described = await vault.describe(name);
      const site = nginx.sites[i]!;
      const served = await probeTls({
        host: '127.0.0.1',
        port: nginx.port,
        servername: site.serverName,
        caPem: pebbleRoot,
      }).catch((e: Error) => ({ servedThumbprint: `probe failed: ${e.message}` }));
      const st = await lifecycleStatus(client, r.id).catch(() => undefined);
      const hostTxt = dns.txt.slice(txtBefore).filter((t) => t.host.includes(`${name}.${DOMAIN}`));
      const mailFor = mails
        .slice(mailsBefore)
        .filter((m) => JSON.stringify(m.to ?? '').includes(`owner-${name}@`));
      perCert.push({
        id: r.id,
        renewed: r.outcome?.status === 'renewed',
        outcome: r.outcome?.status ?? null,
        sends: r.sends,
        clientErrors: r.errors,
        secondsToAnswer: r.answeredAt && r.askedAt ? (r.answeredAt - r.askedAt) / 1000 : null,
        newVersions: versionsOf(name) - versionsBefore.get(name)!,
        caOrders: new Set(hostTxt.map((t) => t.value)).size,
        mails: mailFor.length,
        mailSubjects: mailFor.map((m) => m.subject ?? ''),
        stale: (served.servedThumbprint ?? '').toLowerCase() !== (described.thumbprint ?? '-').toLowerCase(),
        statusThumbprintMatchesVault: st?.thumbprint?.toLowerCase() === described.thumbprint?.toLowerCase(),
      });
    }
    const mailsInPhase2 = mails.length - mailsBefore; // `mails`: the first sink's (phase 1 included), then the second's

    // key material in histories and logs: every site's key (as nginx got it); the vault's encryption key (local),
    // or the client secret, the tokens Entra issued, and every key and secret the Key Vault holds (keyvault)
    for (const s of nginx.sites)
      secret(`the key of site ${s.name}`, privateKeyNeedles(readFileSync(s.keyPath, 'utf8')));
    let vaultKeysScanned = 0;
    if (kv) {
      for (const sig of kv.tokens()) secret('an access token', [sig.slice(0, 43)]);
      for (const f of readdirSync(path.join(kvDir, 'keys')).filter((x) => x.endsWith('.der'))) {
        secret(`Key Vault key ${f}`, privateKeyNeedles(readFileSync(path.join(kvDir, 'keys', f))));
        vaultKeysScanned++;
      }
      const stored = JSON.parse(safeRead(path.join(kvDir, 'secrets.json')) || '{"secrets":[]}') as {
        secrets: SecretRecord[];
      };
      for (const r of stored.secrets)
        for (const v of r.versions) secret(`Key Vault secret ${r.name}`, secretValueNeedles(v.value));
    }
    const leaks: string[] = [];
    const scan = (where: string, text: string) => {
      if (/PRIVATE KEY-----/.test(text)) leaks.push(`${where}: a PEM private key`);
      for (const { what, needle } of secrets)
        if (needle && text.includes(needle)) leaks.push(`${where}: ${what}`);
    };
    let histories = 0;
    let runs = 0;
    let historyEvents = 0;
    for await (const wf of client.workflow.list({ query: `TaskQueue = '${taskQueue}'` })) {
      runs++;
      const h = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
      historyEvents += h.events?.length ?? 0;
      scan(`history ${wf.workflowId}/${wf.runId}`, decodeAll(h));
      histories++;
    }
    for (const f of workerLogs) scan(path.basename(f), safeRead(f));
    if (cluster)
      for (const f of readdirSync(cluster.dir).filter((x) => x.endsWith('.log')))
        scan(`cluster/${f}`, safeRead(path.join(cluster.dir, f)));
    scan('nginx error log', safeRead(nginx.errorLog));

    const count = (f: (c: PerCert) => boolean) => perCert.filter(f).length;
    const dist = (xs: number[]) =>
      Object.fromEntries([...new Set(xs)].sort().map((v) => [v, xs.filter((x) => x === v).length]));
    const answered = perCert
      .map((c) => c.secondsToAnswer)
      .filter((x): x is number => x !== null)
      .sort((a, b) => a - b);
    const summary = {
      renewalsAsked: N,
      renewalsCompleted: count((c) => c.renewed),
      renewalsFailed: count((c) => c.outcome === 'failed'),
      renewalsUnanswered: count((c) => c.outcome === null),
      vaultVersionsPerRenewal: dist(perCert.map((c) => c.newVersions)),
      caOrdersPerRenewal: dist(perCert.map((c) => c.caOrders)),
      mailsPerCertificate: dist(perCert.map((c) => c.mails)),
      mailsInChaosPhase: mailsInPhase2,
      mailsStillUnsent: unsent,
      outboxWaitSeconds: outboxWaitS,
      bindingsLeftStale: count((c) => c.stale),
      statusBehindVault: count((c) => !c.statusThumbprintMatchesVault),
      tlsHandshakes: { ok: hammer.stats.ok, failed: hammer.stats.failed },
      recoverySeconds: kills.map((k) => ({
        what: k.what,
        answers: k.answersAfterS,
        progress: k.progressAfterS,
      })),
      maxRecoveryS: Math.max(0, ...kills.map((k) => Math.max(k.answersAfterS ?? 0, k.progressAfterS ?? 0))),
      keyMaterialFound: leaks.length,
      vault429s: kv
        ? {
            answered: kv.server.requests.filter((r) => r.status === 429).length,
            inBursts: kv.server.throttleStats().throttled,
            createQuota: kv.server.createStats().throttled,
          }
        : null,
      secondsToAnswer: {
        median: answered[Math.floor(answered.length / 2)] ?? null,
        max: answered.at(-1) ?? null,
      },
      clientResends: perCert.reduce((a, c) => a + c.sends - 1, 0),
    };
    const result = {
      what: `chaos/renewals.ts: renewals under worker, server, CA${kv ? ', vault (429)' : ''} and SMTP faults`,
      at: new Date(t0).toISOString(),
      machine: machineFacts(),
      setup: {
        temporal: cluster
          ? {
              kind: 'cluster',
              topology: 'services',
              historyShards: 4,
              persistence: 'PostgreSQL 15',
              server: 'v1.32.2',
            }
          : { kind: target.kind, address },
        worker: `worker/main.ts as its own process (${VAULT_KIND === 'keyvault' ? 'Key Vault test server, client-secret identity' : 'local vault'}, ACME to pebble, nginx files bindings, email)`,
        vault: kv
          ? {
              kind: 'keyvault',
              server: `test/servers/keyvault (ours), https://${VAULT}.vault.azure.net`,
              identity:
                'client secret from the worker configuration, tokens from test/servers/keyvault/entra.ts',
              createQuota: { limit: 20, windowSeconds: 10 },
              throttleBursts: bursts,
            }
          : { kind: 'local' },
        certificates: N,
        spreadSeconds: SPREAD_S,
        chaosSeconds: CHAOS_S,
        caFailRate: CA_FAIL_RATE,
        notCovered: kv
          ? []
          : ['vault 429 bursts: the local vault never answers 429 (run with --vault keyvault for them)'],
      },
      phase1Seconds: phase1S,
      phase2Seconds: phase2S,
      summary,
      events,
      kills,
      caProxy: ca.state,
      leaks: leaks.slice(0, 50),
      histories: { lifecycleRuns: runs, scanned: histories, events: historyEvents },
      keyScan: { needles: secrets.length, vaultKeys: vaultKeysScanned, sites: nginx.sites.length },
      vaultServer: kv
        ? {
            requests: kv.server.requests.length,
            byStatus: dist(kv.server.requests.map((r) => r.status)),
            throttle: kv.server.throttleStats(),
            createQuota: kv.server.createStats(),
            entraTokens: kv.entraStats(),
          }
        : null,
      tlsFailures: hammer.stats.failures,
      perCertificate: perCert,
    };
    mkdirSync(path.join(repoRoot, 'chaos', 'results'), { recursive: true });
    const out = path.join(
      repoRoot,
      'chaos',
      'results',
      `renewals-${N}-${new Date(t0).toISOString().replace(/[:.]/g, '-').slice(0, 19)}.json`,
    );
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(JSON.stringify(summary, null, 2));
    log(`results: ${path.relative(repoRoot, out)}; scratch (logs): ${dir}`);
  } finally {
    for (const s of stops.reverse()) await s().catch((e: Error) => console.error(`stop: ${e.message}`));
  }
}

function safeRead(f: string): string {
  try {
    return readFileSync(f, 'utf8');
  } catch {
    return '';
  }
}

/** Every byte array in a history (payloads) as text, plus the rest as JSON. */
function decodeAll(v: unknown): string {
  const parts: string[] = [];
  const walk = (x: unknown) => {
    if (x instanceof Uint8Array) parts.push(Buffer.from(x).toString('utf8'));
    else if (Array.isArray(x)) x.forEach(walk);
    else if (x && typeof x === 'object') for (const y of Object.values(x)) walk(y);
    else if (typeof x === 'string') parts.push(x);
  };
  walk(v);
  return parts.join('\n');
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
