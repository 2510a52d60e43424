/**
 * The worker service as operators run it: the build, `dist/worker/main.js` (made by the suite's global setup, with
 * the prebuilt workflow bundle), in its own process against the real dev server.
 * Health and readiness, /metrics in the Prometheus text format (SDK and Certflow families), JSON logs that
 * come through our logger (SDK lines included) and never carry a secret, the per-issuer worker, SIGTERM
 * draining (503, then exit 0 within the grace time), and a bad configuration refused with exit code 2.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { randomBytes } from 'node:crypto';
import { dataConverterOf } from '../../client/payload-codec';
import { statusQuery, workflowIdFor } from '../../workflows/messages';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort, waitFor } from '../support/proc';
import { repoRoot, scratchDir } from '../support/tools';

const address = inject('temporalAddress');
const namespace = inject('temporalNamespace');
const dir = scratchDir('worker-service');
const SECRET = 'client-secret-value-7f3a9c';

interface Child {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}
const children: Child[] = [];

const EVENT_GRID_KEY = 'event-grid-key-of-forty-characters-0123456';

function startWorker(config: unknown, name: string, extraArgs: string[] = []): Child {
  const file = path.join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(config, null, 2));
  const proc = spawn(
    process.execPath,
    ['--enable-source-maps', 'dist/worker/main.js', '--config', file, ...extraArgs],
    {
      cwd: repoRoot,
      env: { ...process.env, CERTFLOW_TEST_CLIENT_SECRET: SECRET, CERTFLOW_TEST_EG_KEY: EVENT_GRID_KEY },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) =>
    proc.once('close', (code) => {
      writeFileSync(path.join(dir, `${name}.log`), out + err);
      resolve(code);
    }),
  );
  const child = { proc, stdout: () => out, stderr: () => err, exit };
  children.push(child);
  return child;
}

async function get(port: number, p: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${p}`, { signal: AbortSignal.timeout(5_000) });
  return { status: res.status, body: await res.text() };
}

// text format 0.0.4: comments, or `name{label="v",...} value [timestamp]`
const SAMPLE =
  /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*"(,|(?=\})))*\})? ([-+]?[0-9.eE+-]+|NaN|[+-]Inf)( -?\d+)?$/;
const COMMENT = /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]*( .*)?$/;

let badConfig: Child;
let unsetSecrets: Child;
let unreachable: Child;
let closedPort: number;

beforeAll(async () => {
  mkdirSync(dir, { recursive: true });
  // started now so that it runs while the service starts
  badConfig = startWorker(
    {
      temporal: { address, namespace },
      vaults: [{ kind: 'azure', name: 'kv', url: 'http://kv.example' }],
      notify: { email: { host: 'smtp.example.com', port: 25, from: 'x@example.com', password: SECRET } },
      http: { port: 'not-a-port' },
    },
    'bad',
  );
  // --check with three secret variables unset: all three named in one run
  unsetSecrets = startWorker(
    {
      temporal: { address, namespace, apiKey: { env: 'CERTFLOW_TEST_UNSET_API_KEY' } },
      vaults: [{ kind: 'local', name: 'lv', dir, encryptionKey: { env: 'CERTFLOW_TEST_UNSET_VAULT_KEY' } }],
      notify: {
        email: {
          host: 'smtp.example.com',
          port: 587,
          from: 'x@example.com',
          user: 'certflow',
          password: { env: 'CERTFLOW_TEST_UNSET_SMTP' },
        },
      },
    },
    'unset-secrets',
    ['--check'],
  );
  closedPort = await freePort();
  unreachable = startWorker(
    {
      temporal: { address: `127.0.0.1:${closedPort}`, connectTimeoutSeconds: 2 },
      http: { port: await freePort() },
    },
    'unreachable',
  );
});

afterAll(async () => {
  for (const c of children) if (c.proc.exitCode === null && c.proc.pid) c.proc.kill('SIGKILL');
  await Promise.all(children.map((c) => c.exit));
});

describe('worker service', () => {
  let port: number;
  let eventGridPort: number;
  let child: Child;
  const taskQueue = `svc-${process.pid}-${Date.now().toString(36)}`;

  beforeAll(async () => {
    port = await freePort();
    eventGridPort = await freePort();
    child = startWorker(
      {
        temporal: { address, namespace, connectTimeoutSeconds: 30 },
        taskQueue,
        vaults: [
          {
            kind: 'azure',
            name: 'kv-test',
            url: 'https://kv-test.vault.azure.net',
            credential: {
              kind: 'client-secret',
              tenantId: '00000000-0000-0000-0000-000000000001',
              clientId: '00000000-0000-0000-0000-000000000002',
              clientSecret: { env: 'CERTFLOW_TEST_CLIENT_SECRET' },
            },
          },
        ],
        issuers: [
          {
            kind: 'acme',
            name: 'test-ca',
            directoryUrl: 'https://127.0.0.1:14000/dir',
            contactEmail: 'pki@example.com',
            accountKeySecretName: 'acme-account',
            dns: { kind: 'challtestsrv', managementUrl: 'http://127.0.0.1:8055' },
            rateLimit: { perSecond: 2 },
          },
        ],
        certificates: [{ id: 'kv-test/site', issuer: 'test-ca' }],
        http: { port, eventGrid: { key: { env: 'CERTFLOW_TEST_EG_KEY' }, port: eventGridPort } },
        shutdownGraceSeconds: 5,
        log: { level: 'info', format: 'json' },
      },
      'service',
    );
    // a loaded shared machine (2 cores) takes a minute or more to start four worker processes at once
    await waitFor('/healthz', async () => (await get(port, '/healthz')).status === 200, {
      timeoutMs: 180_000,
    });
  }, 200_000);

  it('answers /healthz and becomes ready once every worker polls', async () => {
    expect((await get(port, '/healthz')).body).toBe('ok\n');
    const ready = await waitFor(
      '/readyz 200',
      async () => {
        if (child.proc.exitCode !== null)
          throw new Error(`worker exited: ${child.stderr()}${child.stdout()}`);
        const r = await get(port, '/readyz');
        return r.status === 200 ? r : undefined;
      },
      { timeoutMs: 150_000, intervalMs: 250 },
    );
    expect(ready.body).toContain(taskQueue);
    expect(ready.body).toContain(`${taskQueue}-issuer-test-ca`);
  }, 180_000);

  it('has a poller on the issuer task queue', async () => {
    const c = await Connection.connect({ address });
    try {
      // the server lists a poller once one of its polls has reached the queue's partition being described; a
      // poll that just returned and is being re-sent is not listed for a moment
      const pollers = await waitFor('a poller on the issuer task queue', async () => {
        const res = await c.workflowService.describeTaskQueue({
          namespace,
          taskQueue: { name: `${taskQueue}-issuer-test-ca` },
          taskQueueType: 2, // TASK_QUEUE_TYPE_ACTIVITY
        });
        return res.pollers?.length ? res.pollers : undefined;
      });
      expect(pollers[0]?.identity).toMatch(/issuer-test-ca$/);
    } finally {
      await c.close();
    }
  });

  it('serves /metrics in the Prometheus text format with SDK and Certflow families', async () => {
    const body = await waitFor('SDK metrics', async () => {
      const r = await get(port, '/metrics');
      return /^temporal_\w+/m.test(r.body) ? r.body : undefined;
    });
    const bad = body.split('\n').filter((l) => l !== '' && !COMMENT.test(l) && !SAMPLE.test(l));
    expect(bad).toEqual([]);
    for (const name of [
      'certflow_certificate_expiration_timestamp_seconds',
      'certflow_certificates',
      'certflow_worker_polling',
      'process_cpu_seconds_total',
      'certflow_renewals_total',
      'certflow_renewal_failures_total',
      'certflow_binding_syncs_total',
    ])
      expect(body).toContain(`# TYPE ${name} `);
    expect(body).toMatch(new RegExp(`^temporal_\\w+\\{[^}]*task_queue="${taskQueue}"`, 'm'));
  });

  it('takes Event Grid deliveries on a listener of its own, which does not serve /metrics', async () => {
    const validation = JSON.parse(
      readFileSync(
        path.join(repoRoot, 'test/fixtures/eventgrid/eventgrid-subscription-validation.json'),
        'utf8',
      ),
    ) as unknown;
    const deliver = (p: number) =>
      fetch(`http://127.0.0.1:${p}/eventgrid`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'aeg-sas-key': EVENT_GRID_KEY },
        body: JSON.stringify(validation),
        signal: AbortSignal.timeout(5_000),
      });
    const answered = await waitFor('the Event Grid listener', async () => {
      const r = await deliver(eventGridPort).catch(() => undefined);
      return r?.status === 200 ? r : undefined;
    });
    expect(await answered.json()).toMatchObject({ validationResponse: expect.any(String) });
    expect((await get(eventGridPort, '/metrics')).status).toBe(404);
    expect((await get(eventGridPort, '/healthz')).status).toBe(404);
    expect((await deliver(port)).status).toBe(404);
    expect((await get(port, '/metrics')).status).toBe(200);
  });

  it('logs JSON lines through its own logger, SDK lines included, never the secret', () => {
    const lines = child.stdout().trim().split('\n');
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.every((l) => typeof l.time === 'string' && typeof l.level === 'string')).toBe(true);
    expect(parsed.some((l) => l.sdkComponent === 'worker')).toBe(true);
    expect(parsed.some((l) => l.msg === 'Certflow worker running')).toBe(true);
    expect(child.stdout() + child.stderr()).not.toContain(SECRET);
    expect(child.stdout() + child.stderr()).not.toContain(EVENT_GRID_KEY);
  });

  it('on SIGTERM answers 503 on /readyz, then exits 0 within the grace time', async () => {
    const t0 = Date.now();
    child.proc.kill('SIGTERM');
    let saw503 = false;
    while (child.proc.exitCode === null) {
      try {
        const r = await get(port, '/readyz');
        if (r.status === 503) {
          saw503 = true;
          expect(r.body).toContain('shutting down');
        }
      } catch {
        break; // the server has closed
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(await child.exit).toBe(0);
    expect(saw503).toBe(true);
    // bounded by worker/main.ts: shutdownGraceSeconds (5) plus 10 s of slack, then it exits anyway
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(child.stdout()).toMatch(/"msg":"shutting down: \/readyz answers 503 from now"/);
  }, 30_000);
});

it('refuses a bad configuration with exit code 2, naming each field and echoing no secret', async () => {
  expect(await badConfig.exit).toBe(2);
  const err = badConfig.stderr();
  expect(err).toContain('vaults[0].url: expected an https URL');
  expect(err).toContain('notify.email.password: expected a secret reference');
  expect(err).toContain('http.port: expected port');
  expect(err).not.toContain(SECRET);
  expect(badConfig.stdout()).toBe('');
}, 180_000);

it('--check names every unset secret variable in one run, with exit code 2', async () => {
  expect(await unsetSecrets.exit).toBe(2);
  const err = unsetSecrets.stderr();
  expect(err).toContain('secrets missing or unusable (3 problems)');
  expect(err).toContain(
    'temporal.apiKey: expected the environment variable CERTFLOW_TEST_UNSET_API_KEY to be set',
  );
  expect(err).toContain(
    'vaults[0].encryptionKey: expected the environment variable CERTFLOW_TEST_UNSET_VAULT_KEY to be set',
  );
  expect(err).toContain(
    'notify.email.password: expected the environment variable CERTFLOW_TEST_UNSET_SMTP to be set',
  );
  expect(unsetSecrets.stdout()).toBe('');
}, 180_000);

it('gives up on an unreachable Temporal with exit code 1, naming address, namespace and cause', async () => {
  expect(await unreachable.exit).toBe(1);
  expect(unreachable.stderr()).toMatch(
    new RegExp(
      `cannot connect to Temporal at 127\\.0\\.0\\.1:${closedPort} \\(namespace "default"\\) after \\d+ attempts in \\d+ s: .+`,
    ),
  );
  expect(unreachable.stdout()).toContain('Temporal not reachable yet, retrying');
}, 180_000);

describe('configured certificates', () => {
  it('creates a configured certificate in its vault, enrolls it at start, the first renewal issues it, and schedules discovery', async () => {
    const port = await freePort();
    const taskQueue = `svc-enroll-${process.pid}-${Date.now().toString(36)}`;
    const vaultDir = path.join(dir, 'enroll-vault');
    process.env.CERTFLOW_TEST_VAULT_KEY ??= randomBytes(32).toString('base64');
    // histories encrypted at rest: the worker seals every payload with this key
    const payloadKey = randomBytes(32);
    process.env.CERTFLOW_TEST_PAYLOAD_KEY = payloadKey.toString('base64');
    const child = startWorker(
      {
        temporal: {
          address,
          namespace,
          connectTimeoutSeconds: 30,
          payloadEncryption: { keys: [{ id: 'svc-1', key: { env: 'CERTFLOW_TEST_PAYLOAD_KEY' } }] },
        },
        taskQueue,
        vaults: [
          {
            kind: 'local',
            name: 'svclocal',
            dir: vaultDir,
            encryptionKey: { env: 'CERTFLOW_TEST_VAULT_KEY' },
          },
        ],
        issuers: [{ kind: 'dev-ca', name: 'dev', dir: path.join(dir, 'enroll-ca'), validity: { days: 30 } }],
        certificates: [
          {
            id: 'svclocal/api',
            issuer: 'dev',
            policy: { daysBeforeExpiry: 10 },
            create: {
              dnsNames: ['api.example.test'],
              keyType: 'EC',
              tags: { Recipient: 'ops@example.test' },
            },
          },
        ],
        discovery: { schedule: { every: '1h' }, vaults: ['svclocal'], issuer: 'dev' },
        http: { port },
        shutdownGraceSeconds: 5,
        log: { level: 'info', format: 'json' },
      },
      'enroll',
    );
    const connection = await Connection.connect({ address });
    const client = new Client({
      connection,
      namespace,
      dataConverter: dataConverterOf([{ id: 'svc-1', key: payloadKey }]),
    });
    try {
      const handle = client.workflow.getHandle(workflowIdFor('svclocal/api'));
      const st = await waitFor(
        'the first renewal to issue the created certificate',
        async () => {
          const s = await handle.query(statusQuery).catch(() => undefined);
          // the attempt shows the merged thumbprint while it still re-binds and mails: wait for its outcome
          return s?.thumbprint && s.nextRenewalAt && s.lastAttempt ? s : undefined;
        },
        { timeoutMs: 90_000, intervalMs: 500 },
      );
      expect(st.lastAttempt?.trigger).toBe('Missing');
      expect(st.policy).toEqual({ source: 'override', daysBeforeExpiry: 10, jitterMinutes: 0 });
      expect(Date.parse(st.notAfter!) - Date.parse(st.nextRenewalAt!)).toBe(10 * 86_400_000);
      expect(child.stdout()).toContain('configured certificates enrolled');
      // the built CLI (dist/, its packages loaded by require) reads it, and names a lifecycle that does not exist
      const cli = (...args: string[]) =>
        spawnSync(process.execPath, [path.join(repoRoot, 'bin/certflow.mjs'), ...args], {
          cwd: repoRoot,
          encoding: 'utf8',
          env: {
            ...process.env,
            NO_COLOR: '1',
            CERTFLOW_TEMPORAL_ADDRESS: address,
            CERTFLOW_TEMPORAL_NAMESPACE: namespace,
            CERTFLOW_TEMPORAL_PAYLOAD_KEYS: `svc-1=${payloadKey.toString('base64')}`,
          },
        });
      const shown = cli('status', 'svclocal/api');
      expect(shown.status, shown.stderr).toBe(0);
      expect(shown.stdout).toContain('svclocal/api: ');
      expect(shown.stdout.toLowerCase()).toContain(st.thumbprint!.toLowerCase());
      const missing = cli('status', 'svclocal/none');
      expect(missing.status, missing.stderr).toBe(3);
      expect(missing.stderr).toContain('no lifecycle is running for svclocal/none');
      // stored encrypted: the lifecycle's input, as the server keeps it, is sealed with the worker's key
      const [started] = (await handle.fetchHistory()).events!;
      const input = started!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
      expect(Buffer.from(input.metadata!.encoding!).toString()).toBe('binary/encrypted');
      expect(Buffer.from(input.metadata!['encryption-key-id']!).toString()).toBe('svc-1');
      expect(Buffer.from(input.data!).includes(Buffer.from('svclocal/api'))).toBe(false);
      // fleet discovery: a Temporal Schedule per deployment (task queue)
      const schedule = client.schedule.getHandle(`certflow-fleet-discovery-${taskQueue}`);
      const described = await waitFor('the discovery schedule', () =>
        schedule.describe().catch(() => undefined),
      );
      expect(described.action.type).toBe('startWorkflow');
      await schedule.delete();
      await handle.terminate('test done');
    } finally {
      await client.connection.close();
      child.proc.kill('SIGTERM');
      await child.exit;
    }
  }, 150_000);
});
