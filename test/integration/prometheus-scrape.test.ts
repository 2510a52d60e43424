/**
 * A real Prometheus (Debian's package) scraping a running worker service: `worker/main.ts` in its own process
 * with a local vault, the dev CA and a configured certificate (created and issued at start), one file binding
 * that takes the certificate and one whose validation fails. Prometheus loads the shipped alert rules; every
 * query of the shipped Grafana dashboard is run against it and must parse and answer, and the panels this
 * stack feeds must show data.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort, startProcess, waitFor, type Started } from '../support/proc';
import { repoRoot, scratchDir, tools } from '../support/tools';

const address = inject('temporalAddress');
const namespace = inject('temporalNamespace');
const dir = scratchDir('prometheus');
const taskQueue = `prom-${process.pid}-${Date.now().toString(36)}`;
const ID = `lv${process.pid}/site`;

interface PromResult {
  metric: Record<string, string>;
  value: [number, string];
}

let worker: Started;
let prometheus: Started;
let workerPort: number;
let promPort: number;

async function query(expr: string): Promise<{ status: string; resultType: string; result: PromResult[] }> {
  const url = `http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(expr)}`;
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  const body = (await res.json()) as {
    status: string;
    error?: string;
    data?: { resultType: string; result: PromResult[] };
  };
  if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`);
  return { status: body.status, ...body.data! };
}

const metricsBody = async () =>
  (await fetch(`http://127.0.0.1:${workerPort}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();

beforeAll(async () => {
  mkdirSync(dir, { recursive: true });
  workerPort = await freePort();
  promPort = await freePort();
  const vaultDir = path.join(dir, 'vault');
  const config = {
    temporal: { address, namespace },
    taskQueue,
    vaults: [
      {
        kind: 'local',
        name: ID.split('/')[0],
        dir: vaultDir,
        encryptionKey: { env: 'CERTFLOW_TEST_VAULT_KEY' },
      },
    ],
    issuers: [{ kind: 'dev-ca', name: 'dev', dir: path.join(dir, 'dev-ca'), validity: { days: 20 } }],
    bindings: [
      {
        kind: 'files',
        name: 'web',
        certificates: { ids: [ID] },
        certPath: path.join(dir, 'web/cert.pem'),
        keyPath: path.join(dir, 'web/key.pem'),
        validate: { command: 'true' },
        reload: { command: 'true' },
      },
      {
        kind: 'files',
        name: 'broken',
        certificates: { ids: [ID] },
        certPath: path.join(dir, 'broken/cert.pem'),
        keyPath: path.join(dir, 'broken/key.pem'),
        validate: { command: 'false' },
        reload: { command: 'true' },
      },
    ],
    certificates: [{ id: ID, issuer: 'dev', create: { dnsNames: ['site.test'], keyType: 'EC' } }],
    http: { host: '127.0.0.1', port: workerPort },
    shutdownGraceSeconds: 2,
    log: { level: 'warn', format: 'json' },
  };
  mkdirSync(path.join(dir, 'web'), { recursive: true });
  mkdirSync(path.join(dir, 'broken'), { recursive: true });
  writeFileSync(path.join(dir, 'worker.json'), JSON.stringify(config, null, 2));
  writeFileSync(
    path.join(dir, 'prometheus.yml'),
    [
      'global:',
      '  scrape_interval: 1s',
      '  evaluation_interval: 1s',
      'rule_files:',
      `  - ${path.join(repoRoot, 'deploy/prometheus/certflow-alerts.yml')}`,
      'scrape_configs:',
      '  - job_name: certflow',
      '    static_configs:',
      `      - targets: ['127.0.0.1:${workerPort}']`,
      '',
    ].join('\n'),
  );
  [worker, prometheus] = await Promise.all([
    startProcess({
      name: 'worker',
      command: process.execPath,
      args: ['--import', 'tsx', 'worker/main.ts', '--config', path.join(dir, 'worker.json')],
      cwd: repoRoot,
      env: { CERTFLOW_TEST_VAULT_KEY: randomBytes(32).toString('hex') },
      logDir: dir,
      // a loaded machine may take a minute to transform and start the worker
      ready: async () => (await fetch(`http://127.0.0.1:${workerPort}/readyz`)).status === 200,
      readyTimeoutMs: 180_000,
    }),
    startProcess({
      name: 'prometheus',
      command: tools.prometheus(),
      args: [
        `--config.file=${path.join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(dir, 'tsdb')}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
      ],
      logDir: dir,
      ready: async () => (await fetch(`http://127.0.0.1:${promPort}/-/ready`)).ok,
      readyTimeoutMs: 60_000,
    }),
  ]);
}, 300_000);

afterAll(async () => {
  await prometheus?.stop();
  await worker?.stop();
});

describe('Prometheus scraping a running worker', () => {
  it('scrapes the worker: up, polling, the certificate renewed and its bindings synced', async () => {
    await waitFor(
      'up{job="certflow"} == 1',
      async () => (await query('up{job="certflow"} == 1')).result.length > 0,
      {
        timeoutMs: 30_000,
      },
    );
    await waitFor(
      'the renewal and both bindings in Prometheus',
      async () =>
        (await query(`certflow_renewals_total{certificate="${ID}",result="success"}`)).result.length > 0 &&
        (await query(`certflow_binding_failing_since_timestamp_seconds{certificate="${ID}"}`)).result.length >
          0 &&
        (await query(`certflow_binding_syncs_total{certificate="${ID}",target="web"}`)).result.length > 0,
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    const polling = await query(`certflow_worker_polling{task_queue="${taskQueue}"}`);
    expect(polling.result.map((r) => r.value[1])).toEqual(['1']);
    const stale = await query(`certflow_binding_failing_since_timestamp_seconds{certificate="${ID}"}`);
    expect(stale.result.map((r) => r.metric.target)).toEqual(['broken']);
    const expiry = await waitFor(
      'the expiry of the issued certificate',
      async () =>
        (await query(`certflow_certificate_expiration_timestamp_seconds{certificate="${ID}"}`)).result[0],
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const daysLeft = (Number(expiry.value[1]) - Date.now() / 1000) / 86400;
    expect(daysLeft).toBeGreaterThan(19);
    expect(daysLeft).toBeLessThanOrEqual(20);
    // process and runtime metrics from prom-client, and the SDK's from Core's exporter
    for (const m of [
      'process_cpu_seconds_total',
      'nodejs_eventloop_lag_p99_seconds',
      'temporal_worker_start',
    ])
      expect((await query(`${m}{job="certflow"}`)).result.length, m).toBeGreaterThan(0);
  }, 300_000);

  it('reads the fleet by phase from Temporal visibility', async () => {
    const phases = await waitFor(
      'the certificate in the fleet gauge',
      async () => {
        const r = await query(`certflow_certificate_phase{certificate="${ID}"} == 1`);
        return r.result.length ? r.result.map((x) => x.metric.phase) : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 1_000 },
    );
    expect(phases).toHaveLength(1);
    const total = await query('sum(certflow_certificates)');
    expect(Number(total.result[0]!.value[1])).toBeGreaterThanOrEqual(1);
  }, 150_000);

  it('loads the shipped alert rules and evaluates them without error', async () => {
    const res = await waitFor(
      'the rules evaluated',
      async () => {
        const r = (await (await fetch(`http://127.0.0.1:${promPort}/api/v1/rules`)).json()) as {
          data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] };
        };
        const rules = r.data.groups.flatMap((g) => g.rules);
        return rules.length && rules.every((x) => x.health !== 'unknown') ? rules : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(res.map((r) => r.name).sort()).toEqual([
      'CertflowBindingStale',
      'CertflowCertificateExpiringWithoutRenewal',
      'CertflowLifecycleFailing',
      'CertflowWorkerDown',
      'CertflowWorkerNotPolling',
    ]);
    expect(res.filter((r) => r.health !== 'ok')).toEqual([]);
  });

  it("runs every panel query of the Grafana dashboard: each parses and answers, the stack's panels with data", async () => {
    const dashboard = JSON.parse(
      readFileSync(path.join(repoRoot, 'deploy/grafana/certflow-dashboard.json'), 'utf8'),
    ) as { panels: { title: string; type: string; targets?: { expr: string }[] }[] };
    // Grafana's variables as Grafana would fill them in
    const fill = (expr: string) => expr.replaceAll('$__rate_interval', '1m').replaceAll('$job', 'certflow');
    const body = await metricsBody();
    // what this stack feeds: a renewed certificate expiring in 20 days, two bindings (one failing), one worker
    const fed = [
      'Certificates by phase',
      'Expiring within 30 days',
      'Renewals',
      'Binding outcomes',
      'Stale bindings',
      'Workers polling',
      'CPU',
      'Memory',
      'Event loop lag p99',
      'Temporal activity and workflow task latency',
    ];
    let results: Record<string, number> = {};
    const runPanels = async () => {
      results = {};
      for (const p of dashboard.panels.filter((x) => x.type !== 'row')) {
        expect(p.targets?.length, p.title).toBeGreaterThan(0);
        for (const t of p.targets!) {
          const r = await query(fill(t.expr));
          expect(r.status, `${p.title}: ${t.expr}`).toBe('success');
          results[p.title] = (results[p.title] ?? 0) + r.result.length;
          // every metric a panel reads is one the worker exports (a typo would silently show nothing)
          for (const name of t.expr.match(/\b(certflow|process|nodejs|temporal)_[a-z0-9_]+/g) ?? []) {
            const family = name.replace(/_(bucket|sum|count)$/, '');
            expect(body, `${p.title}: ${name}`).toMatch(new RegExp(`^(# TYPE ${family} |${name}\\{)`, 'm'));
          }
        }
      }
    };
    // rate() and increase() need two samples of a series in their window: a counter born a second ago has one
    await waitFor(
      "the stack's panels with data",
      async () => {
        await runPanels();
        return fed.every((t) => (results[t] ?? 0) > 0) || undefined;
      },
      { timeoutMs: 30_000, intervalMs: 1_000 },
    ).catch(() => undefined);
    for (const title of fed) expect(results[title], title).toBeGreaterThan(0);
  });
});
