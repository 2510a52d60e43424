/**
 * The `certflow` CLI against the real Temporal dev server: every command run in-process through `runCli` with a
 * real client, a real Worker of `certificateLifecycle` on a task queue of its own, and in-memory activities and
 * vault (test/support/fake-lifecycle.ts: the CLI is under test here, not the adapters).
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { BindingOutcome } from '../../activities/types';
import { runCli } from '../../client/cli';
import {
  type CertificateStatus,
  type RenewalOutcome,
  issuerTaskQueueFor,
  vaultTaskQueueFor,
  SA,
  statusQuery,
  workflowIdFor,
} from '../../workflows/messages';
import {
  createMemoryVault,
  fakeActivities,
  startFakeWorker,
  terminateVaultLifecycles,
} from '../support/fake-lifecycle';
import { freePort, waitFor } from '../support/proc';
import { defaultPayloadConverter } from '@temporalio/common';
import { parseConfig } from '../../worker/config';
import { lifecycleSettingsFor } from '../../worker/lifecycle-settings';

const address = inject('temporalAddress');
const namespace = inject('temporalNamespace');
const V = `cli${Date.now().toString(36)}`;
const taskQueue = `cli-test-${V}`;
const DAY = 86_400_000;

const vault = createMemoryVault(V);
vault.add('site', { lifetimeDays: 90 });
vault.add('slow', { lifetimeDays: 90 });
vault.add('broken', { lifetimeDays: 90 });
vault.add('paused', { lifetimeDays: 90 });
vault.add('tuned', { lifetimeDays: 90, lifetimePercentage: 70 });
vault.add('tight', { lifetimeDays: 90 });
vault.add('guarded', { lifetimeDays: 90 });
vault.add('leaving', { lifetimeDays: 90 });
vault.add('api-one', { tags: { team: 'web' } });
vault.add('api-two', { tags: { team: 'db' } });
vault.add('api-off', { tags: { team: 'web' }, enabled: false });
vault.add('late', { lifetimeDays: 365, daysBeforeExpiry: 3 });
vault.add('old', { lifetimeDays: 10, ageDays: 20 });
vault.add('soon', { lifetimeDays: 30, ageDays: 25 });
vault.add('fresh', { issued: false });
vault.add('windowed', { lifetimeDays: 90, tags: { change: 'nightly' } });
vault.add('windowed-file', { lifetimeDays: 90, tags: { change: 'nightly' } });
vault.add('windowed-bare', { lifetimeDays: 90, tags: { change: 'nightly' } });
const vaults = new Map([[V, vault]]);

/**
 * The workers' configuration: one change window (once a year) for the certificates tagged change=nightly, read
 * by worker/lifecycle-settings.ts as for the worker's own enrolment. It reaches `enroll` two ways: the fake
 * worker's answer to the enrolment check, and (standing in for `--config <file>`) the CLI's own deps.
 */
const workerConfig = parseConfig(
  {
    changeControl: {
      windows: [
        {
          // never opens (30 February): re-binding is held whenever the test runs (a real date's minute could be now)
          name: 'never',
          cron: '0 0 30 2 *',
          timeZone: 'UTC',
          durationMinutes: 1,
          certificates: { tag: { name: 'change', value: 'nightly' } },
        },
      ],
    },
  },
  {},
);
const settingsFor = (id: string) => lifecycleSettingsFor(workerConfig, id);

const bindingsOf = (id: string, thumbprint: string): BindingOutcome[] => [
  {
    target: 'nginx',
    binding: `${id.split('/')[1]}.example.test:443`,
    before: thumbprint,
    after: thumbprint,
    status: id.endsWith('/broken') ? 'failed' : 'unchanged',
    detail: id.endsWith('/broken') ? 'nginx -t refused the files' : 'already serving it',
  },
];
const fake = fakeActivities(vaults, {
  issueDelayMs: (id) => (id.endsWith('/slow') ? 2_500 : 0),
  issueFailure: (id) => (id.endsWith('/broken') ? 'AcmeRejectedIdentifier' : undefined),
  bindings: bindingsOf,
  lifecycleSettings: settingsFor,
});

let client: Client;
let worker: { stop(): Promise<void> };
let issuerConnection: NativeConnection | undefined;
let issuerWorker: { worker: Worker; running: Promise<void> } | undefined;
let vaultWorker: { worker: Worker; running: Promise<void> } | undefined;

beforeAll(async () => {
  worker = await startFakeWorker({ address, namespace, taskQueue, activities: fake.activities });
  // `enroll` routes issue / pollIssuance to the issuer's own queue, as the worker service's issuer workers do
  issuerConnection = await NativeConnection.connect({ address });
  const w = await Worker.create({
    connection: issuerConnection,
    namespace,
    taskQueue: issuerTaskQueueFor(taskQueue, 'test-ca'),
    activities: { issue: fake.activities.issue, pollIssuance: fake.activities.pollIssuance },
    shutdownGraceTime: '2 seconds',
  });
  issuerWorker = { worker: w, running: w.run() };
  // and the key and CSR to the vault's queue, as the worker service's vault workers do
  const vw = await Worker.create({
    connection: issuerConnection,
    namespace,
    taskQueue: vaultTaskQueueFor(taskQueue, V),
    activities: { prepareRenewal: fake.activities.prepareRenewal },
    shutdownGraceTime: '2 seconds',
  });
  vaultWorker = { worker: vw, running: vw.run() };
  client = new Client({ connection: await Connection.connect({ address }), namespace });
});

afterAll(async () => {
  if (client) {
    await terminateVaultLifecycles(client, V);
    await client.connection.close();
  }
  for (const w of [issuerWorker, vaultWorker]) {
    if (!w) continue;
    w.worker.shutdown();
    await w.running;
  }
  await issuerConnection?.close();
  await worker?.stop();
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(...args: string[]): Promise<Run> {
  return cliWith({ lifecycleSettings: settingsFor }, ...args);
}

/** The CLI without the configuration's settings unless given (`cli` has them, as with --config). */
async function cliWith(
  deps: Pick<Parameters<typeof runCli>[1], 'lifecycleSettings'>,
  ...args: string[]
): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    ...deps,
    client,
    vaults,
    out: { write: (s: string) => (stdout += s) },
    err: { write: (s: string) => (stderr += s) },
    env: { CERTFLOW_TASK_QUEUE: taskQueue },
    pollIntervalMs: 200,
  });
  return { code, stdout, stderr };
}

const json = <T>(r: Run): T => {
  expect(r.stderr, r.stderr).toBe('');
  return JSON.parse(r.stdout) as T;
};

/** Enrolls and waits until the lifecycle has observed the vault and rests in one of `phases`. */
async function enrolled(name: string, phases = ['Waiting']): Promise<CertificateStatus> {
  const r = await cli('enroll', `${V}/${name}`, '--issuer', 'test-ca');
  expect(r.code, r.stderr).toBe(0);
  return waitFor(`${name} to be observed`, async () => {
    const st = await client.workflow.getHandle(workflowIdFor(`${V}/${name}`)).query(statusQuery);
    return st.thumbprint && st.nextRenewalAt && phases.includes(st.phase) ? st : undefined;
  });
}

let nsErr = '';

describe('certflow CLI', () => {
  it('answers --help everywhere and rejects bad arguments precisely, exit 2', async () => {
    const general = await cli('--help');
    expect(general.code).toBe(0);
    for (const c of [
      'enroll',
      'list',
      'renew',
      'sync',
      'pause',
      'policy',
      'history',
      'report',
      'audit',
      'ui',
    ])
      expect(general.stdout).toContain(`  ${c} `);
    expect((await cli('help', 'renew')).stdout).toContain('usage: certflow renew <vault>/<name>');
    expect((await cli('policy', '--help')).stdout).toMatch(/--percent N\s+renew at N % of the lifetime/);
    expect((await cli()).code).toBe(2);

    const bad: Array<[string[], RegExp]> = [
      [['frobnicate'], /unknown command "frobnicate" \(expected one of: enroll, unenroll, list/],
      [['help', 'nope'], /help: unknown command "nope"/],
      [['renew'], /renew: missing <vault>\/<name>/],
      [['renew', 'kvx'], /expected "<vault>\/<name>", got "kvx"/],
      [['status', 'kv/x', 'extra'], /unexpected argument "extra"/],
      [['renew', 'kv/x', '--bogus'], /renew: unknown option --bogus/],
      [['renew', 'kv/x', '--reason'], /--reason: expected a value after it/],
      [['list', '--json=yes'], /--json: takes no value/],
      [['pause', 'kv/x'], /--reason: required for pause/],
      [['policy', 'kv/x'], /policy: expected --percent, --days, --jitter-minutes or --clear/],
      [['policy', 'kv/x', '--percent', 'abc'], /--percent: expected a whole number from 11 to 99, got "abc"/],
      [['policy', 'kv/x', '--days', '0'], /--days: expected a whole number from 1 to 3650, got "0"/],
      [['policy', 'kv/x', '--percent', '50', '--days', '10'], /--percent, --days: expected only one of them/],
      [['policy', 'kv/x', '--clear', '--days', '3'], /--clear: cannot be combined with --percent or --days/],
      [['list', '--expiring-within', 'soon'], /--expiring-within: expected a duration like 7d, 12h/],
      [['list', '--phase', 'Sleeping'], /--phase: expected one of Waiting, Renewing/],
      [['list', '--vault', 'a b'], /--vault: expected a vault name/],
      [['enroll', 'kv/x'], /--issuer: expected the name of a configured issuer/],
      [['enroll', 'kv/x', '--vault', V, '--issuer', 't'], /either <vault>\/<name> or --vault/],
      [['enroll', 'kv/x', '--issuer', 't', '--tag', 'a=b'], /--tag, --pattern, --dry-run: only with --vault/],
      [
        ['enroll', '--vault', 'nope', '--issuer', 't'],
        /--vault: vault "nope" is not configured \(known: cli/,
      ],
      [['enroll', '--vault', V, '--issuer', 't', '--tag', 'novalue'], /--tag: expected key=value/],
      [['report', '--json', '--csv'], /--json, --csv: choose one/],
      [['report', '--within', '0d'], /--within: expected a duration greater than zero/],
      [['ui', 'kv/x', '--ui', 'ftp://host'], /--ui: expected an http\(s\) URL/],
    ];
    for (const [args, message] of bad) {
      const r = await cli(...args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stdout).toBe('');
    }
  });

  it('needs --config for vault-wide commands when no vault access is injected', async () => {
    let stderr = '';
    const code = await runCli(['enroll', '--vault', V, '--issuer', 't'], {
      client,
      out: { write: () => {} },
      err: { write: (s: string) => (stderr += s) },
    });
    expect(code).toBe(2);
    expect(stderr).toContain('enroll --vault needs vault access: pass --config <file>');
  });

  it('exit 3 for a certificate without a lifecycle, and when Temporal cannot be reached', async () => {
    const missing = await cli('status', `${V}/nothing`);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain(`no lifecycle is running for ${V}/nothing`);
    expect((await cli('renew', `${V}/nothing`, '--no-wait')).code).toBe(3);

    let stderr = '';
    const port = await freePort();
    const code = await runCli(['status', 'kv/x', '--address', `127.0.0.1:${port}`], {
      out: { write: () => {} },
      err: { write: (s: string) => (stderr += s) },
      env: {},
    });
    expect(code).toBe(3);
    expect(stderr).toContain(`cannot reach Temporal at 127.0.0.1:${port}`);
  });

  it('operator friction: --version, JSON errors, a mistyped namespace, nothing printed before a not-found', async () => {
    const v = await cli('--version');
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^certflow \d+\.\d+\.\d+\n$/);
    // under --json an error is JSON on stderr; nothing on stdout
    const missing = await cli('renew', `${V}/nothing`, '--json');
    expect(missing.code).toBe(3);
    expect(missing.stdout).toBe('');
    expect(JSON.parse(missing.stderr)).toEqual({
      error: { message: expect.stringContaining(`no lifecycle is running for ${V}/nothing`), exitCode: 3 },
    });
    // renew of a missing certificate: the error, not "renewing ..." first
    const human = await cli('renew', `${V}/nothing`);
    expect(human.stdout).toBe('');
    const ns = await runCli(['status', `${V}/site`, '--namespace', 'no-such-namespace'], {
      out: { write: () => {} },
      err: { write: (t: string) => void (nsErr += t) },
      env: { CERTFLOW_TEMPORAL_ADDRESS: address },
    });
    expect(nsErr).toMatch(/namespace/i);
    expect(ns).toBe(3);
  });

  it('enroll asks a worker first: a missing certificate or vault is refused (exit 3), no id is named as the problem', async () => {
    const none = await cli('enroll', '--issuer', 'test-ca');
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('enroll: expected <vault>/<name>');
    const ghost = await cli('enroll', `${V}/ghost`, '--issuer', 'test-ca');
    expect(ghost.code).toBe(3);
    expect(ghost.stderr).toContain(`certificate "ghost" does not exist in vault "${V}"`);
    const noVault = await cli('enroll', 'novault/site', '--issuer', 'test-ca');
    expect(noVault.code).toBe(3);
    expect(noVault.stderr).toContain('vault "novault" is not configured');
    expect(
      await client.workflow
        .getHandle(workflowIdFor(`${V}/ghost`))
        .describe()
        .catch(() => null),
    ).toBeNull();
  });

  it("enroll starts the lifecycle with the workers' change control (from the worker's answer, else --config, else at its first look) and its window holds re-binding", async () => {
    const inputOf = async (name: string) => {
      const events = (await client.workflow.getHandle(workflowIdFor(`${V}/${name}`)).fetchHistory()).events!;
      const payload = events[0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
      return defaultPayloadConverter.fromPayload<{ changeControl?: unknown }>(payload);
    };
    // asked first: the worker answers what its configuration gives this certificate
    const r = json<{ status: string; settingsFrom: string }>(
      await cli('enroll', `${V}/windowed`, '--issuer', 'test-ca', '--json'),
    );
    expect(r).toMatchObject({ status: 'started', settingsFrom: 'worker' });
    expect((await inputOf('windowed')).changeControl).toEqual(workerConfig.changeControl);
    // --no-check: the configuration file's settings, from the same function
    const f = json<{ settingsFrom: string }>(
      await cli('enroll', `${V}/windowed-file`, '--issuer', 'test-ca', '--no-check', '--json'),
    );
    expect(f.settingsFrom).toBe('config');
    expect((await inputOf('windowed-file')).changeControl).toEqual(workerConfig.changeControl);
    // neither: started without, and stderr says so instead of looking the same
    const bare = await cliWith({}, 'enroll', `${V}/windowed-bare`, '--issuer', 'test-ca', '--no-check');
    expect(bare.code).toBe(0);
    expect(bare.stderr).toContain(`note: ${V}/windowed-bare started without the workers' change control`);
    expect((await inputOf('windowed-bare')).changeControl).toBeUndefined();

    // and the window applies: the tag selects the certificate in the lifecycle, re-binding waits for it
    await waitFor('windowed to be observed', async () => {
      const st = await client.workflow.getHandle(workflowIdFor(`${V}/windowed`)).query(statusQuery);
      return st.thumbprint && st.phase === 'Waiting' ? st : undefined;
    });
    expect((await cli('renew', `${V}/windowed`, '--no-wait', '--force')).code).toBe(0);
    const held = await waitFor('re-binding held for the window', async () => {
      const st = await client.workflow.getHandle(workflowIdFor(`${V}/windowed`)).query(statusQuery);
      return st.changeControl?.waitingUntil ? st : undefined;
    });
    expect(held.changeControl!.text).toMatch(/waiting for window at|deadline before expiry/);
    expect(fake.calls.sync).not.toContain(`${V}/windowed`);

    // the one started without them takes them from the worker at its first look: held the same way
    await waitFor('windowed-bare to be observed', async () => {
      const st = await client.workflow.getHandle(workflowIdFor(`${V}/windowed-bare`)).query(statusQuery);
      return st.thumbprint && st.phase === 'Waiting' ? st : undefined;
    });
    expect((await cli('renew', `${V}/windowed-bare`, '--no-wait', '--force')).code).toBe(0);
    await waitFor('windowed-bare re-binding held for the window', async () => {
      const st = await client.workflow.getHandle(workflowIdFor(`${V}/windowed-bare`)).query(statusQuery);
      return st.changeControl?.waitingUntil ? st : undefined;
    });
    expect(fake.calls.sync).not.toContain(`${V}/windowed-bare`);
  });

  it('resume says when there is nothing to resume; unenroll ends the lifecycle', async () => {
    await enrolled('leaving');
    const r = await cli('resume', `${V}/leaving`);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('is not paused: nothing to resume');
    const u = await cli('unenroll', `${V}/leaving`, '--reason', 'enrolled by mistake');
    expect(u.code).toBe(0);
    expect(u.stdout).toContain(`unenrolled ${V}/leaving: its lifecycle has finished`);
    expect(await client.workflow.getHandle(workflowIdFor(`${V}/leaving`)).result()).toEqual({
      retired: 'unenrolled: enrolled by mistake',
    });
    expect((await cli('pause', `${V}/leaving`, '--reason', 'x')).code).toBe(3);
  });

  it('enroll starts the lifecycle once (idempotent), with summary and search attributes set at start', async () => {
    const first = json<{ status: string; workflowId: string }>(
      await cli('enroll', `${V}/site`, '--issuer', 'test-ca', '--json'),
    );
    expect(first).toMatchObject({ status: 'started', workflowId: `certificate:${V}/site` });
    const again = await cli('enroll', `${V}/site`, '--issuer', 'other-ca');
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`${V}/site is already enrolled with issuer test-ca (unchanged)`);
    const d = await client.workflow.getHandle(first.workflowId).describe();
    expect(await d.staticSummary()).toBe(`Certificate ${V}/site (issuer test-ca)`);
    expect(d.typedSearchAttributes.get(SA.issuer)).toBe('test-ca');
    expect(d.typedSearchAttributes.get(SA.vault)).toBe(V);
    expect(d.taskQueue).toBe(taskQueue);
    // the issuer's calls go to its own rate-limited queue
    const history = await client.workflow.getHandle(first.workflowId).fetchHistory();
    const input = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
    expect(JSON.parse(Buffer.from(input ?? []).toString())).toMatchObject({
      issuerTaskQueue: issuerTaskQueueFor(taskQueue, 'test-ca'),
    });
  });

  it('ui: the link of a running lifecycle, from --ui, $CERTFLOW_UI_URL or the default', async () => {
    const r = await cli('ui', `${V}/site`);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(
      `http://127.0.0.1:8233/namespaces/${namespace}/workflows/certificate%3A${V}%2Fsite`,
    );
    const j = json<{ url: string }>(
      await cli('ui', `${V}/site`, '--ui', 'https://temporal.example/', '--json'),
    );
    expect(j.url).toBe(
      `https://temporal.example/namespaces/${namespace}/workflows/certificate%3A${V}%2Fsite`,
    );
  });

  it('ui: the fleet link without an id, exit 3 for a certificate without a lifecycle', async () => {
    const fleet = await cli('ui');
    expect(fleet.code).toBe(0);
    const url = new URL(fleet.stdout.trim());
    expect(url.pathname).toBe(`/namespaces/${namespace}/workflows`);
    expect(url.searchParams.get('query')).toContain("ExecutionStatus = 'Running'");
    const missing = await cli('ui', `${V}/nothing`);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain(`no lifecycle is running for ${V}/nothing`);
    expect(missing.stdout).toBe('');
  });

  it('status shows the query readably and as JSON', async () => {
    await enrolled('site');
    const st = json<CertificateStatus>(await cli('status', `${V}/site`, '--json'));
    const inVault = await vault.describe('site');
    expect(st).toMatchObject({
      certificateId: `${V}/site`,
      phase: 'Waiting',
      thumbprint: inVault.thumbprint,
    });
    const human = await cli('status', `${V}/site`);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`${V}/site: Waiting`);
    expect(human.stdout).toMatch(/policy: +at 80% of lifetime \(default\)/);
    expect(human.stdout).toContain(`thumbprint:  ${inVault.thumbprint}`);
  });

  it('list: table and JSON, filtered by vault, phase and expiring-within', async () => {
    await enrolled('site');
    type Row = { certificateId: string; phase: string; expiresAt: string; renewAt: string };
    const rows = await waitFor('list to show site with its expiry', async () => {
      const r = json<Row[]>(await cli('list', '--vault', V, '--json'));
      const site = r.find((x) => x.certificateId === `${V}/site`);
      return site?.expiresAt && site.renewAt ? r : undefined;
    });
    const site = rows.find((x) => x.certificateId === `${V}/site`)!;
    expect(site.phase).toBe('Waiting');
    expect(site.expiresAt).toBe((await vault.describe('site')).notAfter);
    const ids = (r: Run) => json<Row[]>(r).map((x) => x.certificateId);
    expect(ids(await cli('list', '--vault', V, '--expiring-within', '100d', '--json'))).toContain(
      `${V}/site`,
    );
    expect(ids(await cli('list', '--vault', V, '--expiring-within', '30d', '--json'))).not.toContain(
      `${V}/site`,
    );
    expect(ids(await cli('list', '--vault', V, '--phase', 'paused', '--json'))).not.toContain(`${V}/site`);
    expect(ids(await cli('list', '--vault', 'no-such-vault', '--json'))).toEqual([]);
    const table = await cli('list', '--vault', V);
    expect(table.stdout).toMatch(/^ID +MODE +PHASE +EXPIRES +RENEWS AT +LAST RESULT/);
    expect(table.stdout).toMatch(
      new RegExp(`${V}/site +issue +Waiting +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\dZ \\(in 8\\dd`),
    );
  });

  it('renew waits for the outcome and shows progress; --json prints the outcome', async () => {
    await enrolled('slow');
    const human = await cli('renew', `${V}/slow`, '--reason', 'cli test');
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toContain(`renewing ${V}/slow`);
    expect(human.stdout).toMatch(/\d\d:\d\d:\d\d {2}Issuing/);
    expect(human.stdout).toContain(`renewed ${V}/slow:`);
    expect(human.stdout).toContain(`binding nginx slow.example.test:443: unchanged`);

    const before = (await vault.describe('site')).thumbprint;
    await enrolled('site');
    const outcome = json<RenewalOutcome>(await cli('renew', `${V}/site`, '--json'));
    expect(outcome).toMatchObject({ status: 'renewed', trigger: 'Manual', oldThumbprint: before });
    expect(outcome.newThumbprint).toBe((await vault.describe('site')).thumbprint);
  });

  it('renew exits 1 when the renewal fails; --no-wait only asks', async () => {
    await enrolled('broken');
    const r = await cli('renew', `${V}/broken`, '--json');
    expect(r.code).toBe(1);
    expect(json<RenewalOutcome>(r)).toMatchObject({
      status: 'failed',
      error: { type: 'AcmeRejectedIdentifier' },
    });

    await enrolled('guarded');
    expect((await cli('renew', `${V}/guarded`)).code).toBe(0);
    const merges = () => fake.calls.merge.filter((id) => id === `${V}/guarded`).length;
    const before = merges();
    // just renewed: the renewal-loop guard refuses, and says why; --force passes it
    const held = await cli('renew', `${V}/guarded`, '--no-wait');
    expect(held.code).toBe(1);
    expect(held.stderr).toMatch(/renewal-loop guard holds renewals until .*--force/);
    const asked = await cli('renew', `${V}/guarded`, '--no-wait', '--force', '--json');
    expect(json(asked)).toEqual({ certificateId: `${V}/guarded`, requested: true });
    await waitFor('the accepted renewal to merge', async () => (merges() > before ? true : undefined));
  });

  it('sync prints each binding outcome; exit 1 when one failed', async () => {
    await enrolled('site');
    const ok = await cli('sync', `${V}/site`, '--json');
    const outcomes = json<BindingOutcome[]>(ok);
    expect(ok.code).toBe(0);
    expect(outcomes).toEqual(bindingsOf(`${V}/site`, (await vault.describe('site')).thumbprint!));
    const human = await cli('sync', `${V}/site`);
    expect(human.stdout).toMatch(/synced .*\/site:\n {2}nginx site\.example\.test:443: unchanged/);

    await enrolled('broken', ['Failing']);
    const bad = await cli('sync', `${V}/broken`);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('broken.example.test:443: failed');
  });

  it('pause needs a reason, refuses renew and sync while paused; resume lifts it', async () => {
    await enrolled('paused');
    const p = await cli('pause', `${V}/paused`, '--reason', 'change freeze', '--json');
    expect(json(p)).toEqual({ certificateId: `${V}/paused`, paused: true, reason: 'change freeze' });
    const st = await waitFor('the pause to show', async () => {
      const s = json<CertificateStatus>(await cli('status', `${V}/paused`, '--json'));
      return s.paused && s.phase === 'Paused' ? s : undefined;
    });
    expect(st.paused!.reason).toBe('change freeze');

    const renew = await cli('renew', `${V}/paused`);
    expect(renew.code).toBe(1);
    expect(renew.stderr).toMatch(/renew refused: .*paused \(change freeze\)/);
    expect((await cli('sync', `${V}/paused`)).code).toBe(1);

    expect((await cli('resume', `${V}/paused`)).code).toBe(0);
    await waitFor('the resume to show', async () => {
      const s = json<CertificateStatus>(await cli('status', `${V}/paused`, '--json'));
      return s.paused === null && s.phase === 'Waiting' ? s : undefined;
    });
  });

  it('policy sets and clears an override through the update', async () => {
    const first = await enrolled('tuned');
    expect(first.policy).toMatchObject({ source: 'vault', lifetimePercentage: 70 });
    const st = json<CertificateStatus>(await cli('policy', `${V}/tuned`, '--days', '30', '--json'));
    expect(st.policy).toEqual({ source: 'override', daysBeforeExpiry: 30, jitterMinutes: 0 });
    expect(Date.parse(st.nextRenewalAt!)).toBe(Date.parse(st.notAfter!) - 30 * DAY);
    const human = await cli('policy', `${V}/tuned`, '--clear');
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`policy of ${V}/tuned: at 70% of lifetime (vault)`);
  });

  it('history lists the attempts with thumbprints and bindings', async () => {
    const r = await cli('history', `${V}/slow`, '--json');
    const attempts = json<RenewalOutcome[]>(r);
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({
      attempt: 1,
      status: 'renewed',
      newThumbprint: (await vault.describe('slow')).thumbprint,
    });
    const human = await cli('history', `${V}/broken`);
    expect(human.stdout).toMatch(/#1 FAILED \(AcmeRejectedIdentifier\), trigger Manual/);
    expect(human.stdout).toContain('error: the CA refused');
  });

  it('enroll --vault enrolls the matching certificates (tag, pattern), skips disabled ones, and is idempotent', async () => {
    const args = ['enroll', '--vault', V, '--issuer', 'test-ca', '--pattern', 'API-*', '--tag', 'team=web'];
    type R = { certificateId: string; status: string };
    const dry = json<R[]>(await cli(...args, '--dry-run', '--json'));
    expect(dry.map((r) => [r.certificateId, r.status])).toEqual([
      [`${V}/api-off`, 'skipped'],
      [`${V}/api-one`, 'would-start'],
    ]);
    const done = json<R[]>(await cli(...args, '--json'));
    expect(done.map((r) => r.status)).toEqual(['skipped', 'started']);
    const again = await cli(...args);
    expect(again.stdout).toContain('0 enrolled, 1 already enrolled, 1 skipped');
    const d = await client.workflow.getHandle(workflowIdFor(`${V}/api-one`)).describe();
    expect(d.status.name).toBe('RUNNING');
    await expect(client.workflow.getHandle(workflowIdFor(`${V}/api-two`)).describe()).rejects.toThrow();
  });

  it('report: expired / expiring soon / valid / not issued, as a table, JSON and CSV', async () => {
    type Report = {
      scope: string;
      counts: Record<string, number>;
      certificates: Array<{ certificateId: string; state: string; enrolled: boolean }>;
    };
    const r = json<Report>(await cli('report', '--vault', V, '--json'));
    expect(r.scope).toBe('vaults');
    const state = (n: string) => r.certificates.find((c) => c.certificateId === `${V}/${n}`)?.state;
    expect([state('old'), state('soon'), state('site'), state('fresh')]).toEqual([
      'expired',
      'expiring',
      'valid',
      'not-issued',
    ]);
    expect(r.counts).toMatchObject({ expired: 1, expiring: 1, 'not-issued': 1 });
    expect(r.certificates.find((c) => c.certificateId === `${V}/site`)?.enrolled).toBe(true);
    expect(r.certificates.find((c) => c.certificateId === `${V}/old`)?.enrolled).toBe(false);
    // the safety buffer, from the lifecycle's status (enrolled certificates only)
    const buffer = (n: string) =>
      (r.certificates.find((c) => c.certificateId === `${V}/${n}`) as { safetyBuffer?: unknown })
        ?.safetyBuffer;
    expect(buffer('site')).toMatchObject({
      state: 'ok',
      text: expect.stringMatching(/left after a CA outage of 24 hours/),
    });
    expect(buffer('old')).toBeNull();

    const csv = await cli('report', '--vault', V, '--csv');
    const lines = csv.stdout.trim().split('\r\n');
    expect(lines[0]).toBe(
      'certificate,state,notAfter,daysLeft,enrolled,phase,enabled,safetyBufferHours,safetyBufferState',
    );
    expect(lines).toHaveLength(r.certificates.length + 1);
    expect(lines[1]).toMatch(new RegExp(`^${V}/old,expired,`));

    const table = await cli('report', '--vault', V, '--within', '7d');
    expect(table.stdout).toMatch(new RegExp(`${V}/old +Expired`));
    expect(table.stdout).toMatch(
      /Expired: 1, Expiring soon: 1, Valid: \d+, Not issued: 1 \(expiring soon = within 7d\)/,
    );
  });

  it('audit: no automatic renewal, paused, or a policy that renews too late; exit 1 with findings', async () => {
    await enrolled('tight');
    expect((await cli('policy', `${V}/tight`, '--days', '1')).code).toBe(0);
    await enrolled('paused', ['Waiting', 'Paused']);
    expect((await cli('pause', `${V}/paused`, '--reason', 'audit test')).code).toBe(0);
    await waitFor('the pause', async () =>
      (await client.workflow.getHandle(workflowIdFor(`${V}/paused`)).query(statusQuery)).paused
        ? true
        : undefined,
    );

    type Audit = {
      scope: string;
      checked: number;
      compliant: number;
      findings: Array<{ certificateId: string; rule: string; message: string }>;
    };
    const r = await cli('audit', '--vault', V, '--json');
    expect(r.code).toBe(1);
    const a = json<Audit>(r);
    const rules = (n: string) =>
      a.findings
        .filter((f) => f.certificateId === `${V}/${n}`)
        .map((f) => f.rule)
        .sort();
    expect(rules('late')).toEqual(['NoAutomaticRenewal', 'RenewsTooLate']);
    expect(rules('api-two')).toEqual(['NoAutomaticRenewal']);
    expect(rules('tight')).toEqual(['RenewsTooLate']);
    expect(rules('paused')).toEqual(['RenewalPaused']);
    expect(rules('site')).toEqual([]);
    expect(rules('api-off')).toEqual([]); // disabled: not checked
    expect(
      a.findings.find((f) => f.certificateId === `${V}/late` && f.rule === 'RenewsTooLate')?.message,
    ).toContain('renews 3 days before expiry; a certificate living 365 days needs at least 7 days');

    expect(a.scope).toBe('vaults');
    let stdout = '';
    const code = await runCli(['audit', '--vault', V], {
      client,
      out: { write: (s: string) => (stdout += s) },
      err: { write: () => {} },
    });
    expect(code).toBe(1);
    expect(stdout).toContain('enrolled certificates only');
    expect(stdout).not.toContain(`${V}/late `);
    expect(stdout).toMatch(new RegExp(`${V}/tight +RenewsTooLate`));
  });
});
