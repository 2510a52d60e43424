/**
 * An emergency re-issue wave through running Workers on the real Temporal dev server: 50 certificates in our Key
 * Vault server (its create quota enforced: 20 key creates per 10 s, 429 + Retry-After beyond), re-issued by
 * pebble over ACME (DNS-01), started, paused, resumed and reported through the `certflow reissue` CLI.
 * Shown: every certificate re-issued with a new public key and its old certificate revoked at pebble; the vault's
 * quota never exceeded and no 429 answered (the vault queue's rate keeps under it); nothing started while paused;
 * the report complete; a re-run of the wave skips all 50; a dry run split with --parts puts each in one part;
 * parts selecting at once list the lifecycles and scan the vault's tags once between them.
 */
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runCli } from '../../client/cli';
import { createActivities } from '../../activities/index';
import { lifecycleStatus, renewLifecycle, startLifecycle } from '../../activities/lifecycles';
import { mapLimit } from '../../activities/bindings/concurrency';
import { createAzureKeyVault } from '../../activities/vault/azure-key-vault';
import type { Vault } from '../../activities/types';
import { createWaveActivities, keyIdOf } from '../../activities/wave';
import { partOfId } from '../../workflows/wave-plan';
import { createCertflowWorker } from '../../worker/worker';
import { KEY_VAULT_KEY_CREATES } from '../../worker/quotas';
import { createVaultWorkers, vaultRates } from '../../worker/vault-workers';
import { issuerTaskQueueFor } from '../../workflows/messages';
import {
  type WaveReport,
  type WaveSelection,
  waveProgressQuery,
  waveWorkflowId,
} from '../../workflows/wave-messages';
import { startTestKeyVault, type TestKeyVault } from '../support/keyvault';
import { pebbleIssuer, startPebble, type Pebble } from '../support/pebble';
import { waitFor } from '../support/proc';

const address = inject('temporalAddress');
const namespace = inject('temporalNamespace');
const N = 50;
const VAULT = 'kvwave';
const ISSUER = 'pebble';
const taskQueue = `reissue-wave-${randomBytes(4).toString('hex')}`;
const WAVE = `it-${randomBytes(3).toString('hex')}`;
const ids = Array.from({ length: N }, (_, i) => `${VAULT}/c${String(i).padStart(2, '0')}`);

let kv: TestKeyVault;
let pebble: Pebble;
let client: Client;
let connection: NativeConnection;
const workers: Array<{ worker: Worker; run: Promise<void> }> = [];
const oldPem = new Map<string, string>();

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(args, {
    client,
    out: { write: (s: string) => (out += s) },
    err: { write: (s: string) => (err += s) },
    env: {},
    pollIntervalMs: 250,
  });
  return { code, out, err };
}

beforeAll(async () => {
  kv = await startTestKeyVault();
  pebble = await startPebble();
  const pebbleRoot = await pebble.rootsPem();
  const vault = createAzureKeyVault({
    name: VAULT,
    url: kv.url,
    credential: kv.credential,
    clientOptions: kv.clientOptions,
  });
  // seeded before the quota is on (an operator's fleet, made over weeks), then issued once by pebble below
  for (const id of ids) await kv.seed(id.split('/')[1]!, { days: 30 });

  const issuer = pebbleIssuer(pebble, ISSUER);
  const vaults = new Map([[VAULT, vault]]);
  const issuers = new Map([[ISSUER, issuer]]);
  client = new Client({ connection: await Connection.connect({ address }), namespace });
  const queues = [{ vault: VAULT, keyCreateQuota: KEY_VAULT_KEY_CREATES }];
  const activities = {
    ...createActivities({ vaults, issuers, notifier: null, trustAnchorsPem: () => [pebbleRoot] }),
    ...createWaveActivities({ client, vaults, issuers, vaultRates: vaultRates(queues), heartbeatMs: 2_000 }),
  };
  connection = await NativeConnection.connect({ address });
  const main = await createCertflowWorker({
    connection,
    namespace,
    taskQueue,
    activities,
    shutdownGraceTime: '2 seconds',
  });
  const issuerWorker = await Worker.create({
    connection,
    namespace,
    taskQueue: issuerTaskQueueFor(taskQueue, ISSUER),
    activities: { issue: activities.issue, pollIssuance: activities.pollIssuance },
    shutdownGraceTime: '2 seconds',
  });
  const vaultWorkers = await createVaultWorkers({
    connection,
    namespace,
    taskQueue,
    vaults: queues,
    activities,
    shutdownGraceTime: '2 seconds',
  });
  for (const worker of [main, issuerWorker, ...vaultWorkers]) workers.push({ worker, run: worker.run() });

  for (const id of ids) await startLifecycle(client, { certificateId: id, issuer: ISSUER, taskQueue });
  await waitFor(
    'every lifecycle to have looked at its certificate',
    async () => {
      for (const id of ids) if (!(await lifecycleStatus(client, id)).thumbprint) return false;
      return true;
    },
    { timeoutMs: 120_000, intervalMs: 500, probeTimeoutMs: 60_000 },
  );
  // the current certificates come from pebble, so pebble can revoke them
  await mapLimit(ids, 10, async (id) => {
    const o = await renewLifecycle(client, id, { force: true, reason: 'first issue from pebble' });
    if (o.status !== 'renewed') throw new Error(`${id}: first issue failed: ${JSON.stringify(o.error)}`);
    oldPem.set(id, (await vault.certificatePem(id.split('/')[1]!))!);
  });
  kv.server.setCreateQuota(KEY_VAULT_KEY_CREATES);
}, 300_000);

afterAll(async () => {
  if (client) {
    for (const id of [...ids.map((i) => `certificate:${i}`), waveWorkflowId(WAVE)])
      await client.workflow
        .getHandle(id)
        .terminate('test over')
        .catch(() => undefined);
  }
  for (const w of workers) w.worker.shutdown();
  await Promise.all(workers.map((w) => w.run));
  await connection?.close();
  await client?.connection.close();
  await pebble?.stop();
  await kv?.stop();
}, 60_000);

describe('an emergency re-issue wave of 50 certificates', () => {
  let report: WaveReport;

  it('starts from the CLI, pauses and resumes mid-wave, and ends with a complete report', async () => {
    const started = await cli(
      'reissue',
      '--reason',
      'key-compromise',
      '--vault',
      VAULT,
      '--revoke-old',
      '--new-key',
      '--name',
      WAVE,
      '--task-queue',
      taskQueue,
      '--no-wait',
    );
    expect(started.code, started.err).toBe(0);
    expect(started.err).toContain(`wave ${WAVE} started`);
    const handle = client.workflow.getHandle(waveWorkflowId(WAVE));
    await waitFor(
      'a tenth of the wave done',
      async () => (await handle.query(waveProgressQuery)).reissued >= 5,
      {
        timeoutMs: 120_000,
        intervalMs: 200,
      },
    );
    const paused = await cli('reissue', 'pause', WAVE, '--reason', 'checking the first ones');
    expect(paused.code, paused.err).toBe(0);
    // those under way finish; then nothing moves while paused
    const settled = await waitFor(
      'the certificates under way to finish',
      async () => {
        const p = await handle.query(waveProgressQuery);
        return p.state === 'Paused' && p.running === 0 ? p : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 200 },
    );
    expect(settled.pending).toBeGreaterThan(0);
    const createsAtPause = kv.server.createStats().accepted;
    await new Promise((r) => setTimeout(r, 3_000));
    const still = await handle.query(waveProgressQuery);
    expect(still).toMatchObject({
      state: 'Paused',
      pending: settled.pending,
      running: 0,
      reissued: settled.reissued,
    });
    expect(kv.server.createStats().accepted).toBe(createsAtPause);
    expect(still.paused?.reason).toBe('checking the first ones');

    const resumed = await cli('reissue', 'resume', WAVE);
    expect(resumed.code, resumed.err).toBe(0);
    const followed = await cli('reissue', 'status', WAVE, '--json');
    expect(followed.code, followed.out + followed.err).toBe(0);
    report = JSON.parse(followed.out) as WaveReport;
    // not a terminal: plain progress lines, no carriage returns
    expect(followed.err).not.toContain('\r');
  }, 600_000);

  it('re-issued every certificate with a new key and revoked the old ones', async () => {
    expect(report.state).toBe('Done');
    expect(report.entries.map((e) => e.id).sort()).toEqual([...ids].sort());
    expect(report).toMatchObject({
      total: N,
      reissued: N,
      failed: 0,
      skipped: 0,
      cancelled: 0,
      pending: 0,
      running: 0,
    });
    const vault = createAzureKeyVault({
      name: VAULT,
      url: kv.url,
      credential: kv.credential,
      clientOptions: kv.clientOptions,
    });
    for (const e of report.entries) {
      expect(e, `${e.id}: ${e.note ?? ''}`).toMatchObject({
        status: 'reissued',
        newKey: true,
        revoked: 'revoked',
      });
      expect(e.newThumbprint).not.toBe(e.oldThumbprint);
      const now = await vault.certificatePem(e.id.split('/')[1]!);
      expect(keyIdOf(now!), e.id).not.toBe(keyIdOf(oldPem.get(e.id)!));
      expect((await lifecycleStatus(client, e.id)).thumbprint?.toUpperCase()).toBe(
        e.newThumbprint?.toUpperCase(),
      );
    }
  });

  it("kept within the vault's key-create quota without a single 429", () => {
    const stats = kv.server.createStats();
    console.log(`[reissue-wave] Key Vault creates: ${JSON.stringify(stats)}`);
    expect(stats.accepted).toBe(N);
    expect(stats.maxInWindow).toBeLessThanOrEqual(20);
    expect(stats.throttled).toBe(0);
  });

  it('prints the report as a table, and a re-run of the wave skips what it re-issued', async () => {
    const table = await cli('reissue', 'report', WAVE);
    expect(table.code).toBe(0);
    expect(table.out.split('\n').filter((l) => l.startsWith(`${VAULT}/`))).toHaveLength(N);
    expect(table.out).toMatch(/50 re-issued, 0 skipped, 0 failed, 0 cancelled of 50/);

    const again = await cli(
      'reissue',
      '--reason',
      'key-compromise',
      '--vault',
      VAULT,
      '--name',
      WAVE,
      '--task-queue',
      taskQueue,
      '--json',
    );
    expect(again.code, again.err).toBe(0);
    const second = JSON.parse(again.out) as WaveReport;
    expect(second).toMatchObject({ total: N, skipped: N, reissued: 0, failed: 0 });
    expect(kv.server.createStats().accepted).toBe(N); // no key made
  }, 300_000);

  it('a dry run split with --parts puts each certificate in exactly one part, named by its wave', async () => {
    const dry = await cli(
      'reissue',
      '--reason',
      'ca-distrust',
      '--vault',
      VAULT,
      '--parts',
      '3',
      '--name',
      'split',
      '--dry-run',
      '--json',
    );
    expect(dry.code, dry.err).toBe(0);
    const r = JSON.parse(dry.out) as {
      selected: Array<{ id: string; wave: string }>;
      parts: Array<{ wave: string; count: number }>;
      refused?: string;
    };
    expect(r.refused).toBeUndefined();
    expect(r.parts.map((p) => p.wave)).toEqual([
      'split-part-1-of-3',
      'split-part-2-of-3',
      'split-part-3-of-3',
    ]);
    expect(r.parts.reduce((n, p) => n + p.count, 0)).toBe(N);
    expect(r.selected.map((e) => e.id).sort()).toEqual([...ids].sort());
    for (const p of r.parts) {
      expect(p.count).toBeGreaterThan(5);
      expect(r.selected.filter((e) => e.wave === p.wave)).toHaveLength(p.count);
    }
    const table = await cli(
      'reissue',
      '--reason',
      'ca-distrust',
      '--vault',
      VAULT,
      '--parts',
      '3',
      '--name',
      'split',
      '--dry-run',
    );
    expect(table.out).toMatch(
      new RegExp(
        `^${N} certificate\\(s\\) would be re-issued by 3 waves: split-part-1-of-3 \\d+, split-part-2-of-3 \\d+, split-part-3-of-3 \\d+ \\(nothing started: --dry-run\\)$`,
        'm',
      ),
    );
  });

  it('parts selecting at once share one listing of the lifecycles and one tag scan of the vault, not one each', async () => {
    const real = kv.adapter(VAULT);
    const team = (name: string) => (Number(name.slice(1)) % 3 === 0 ? 'a' : 'b');
    let scans = 0;
    // the real vault's listing, each certificate tagged team=a or team=b; counted
    const vault: Vault = {
      ...real,
      async *list() {
        scans++;
        for await (const c of real.list()) yield { ...c, tags: { ...c.tags, team: team(c.name) } };
      },
    };
    // the real client; its visibility listings counted
    let listings = 0;
    const workflow = Object.create(client.workflow, {
      list: {
        value: (...args: Parameters<Client['workflow']['list']>) => (
          listings++,
          client.workflow.list(...args)
        ),
      },
    }) as Client['workflow'];
    const counting = Object.create(client, { workflow: { value: workflow } }) as Client;
    const acts = createWaveActivities({
      client: counting,
      vaults: new Map([[VAULT, vault]]),
      issuers: new Map(),
      vaultRates: {},
      selectionReuseMs: 1_500,
    });
    const select = (index: number, selection: WaveSelection = { all: true }, now = new Date()) =>
      new MockActivityEnvironment().run(acts.selectWave, {
        selection: { ...selection, part: { index, of: 3 } },
        now: now.toISOString(),
      }) as ReturnType<typeof acts.selectWave>;
    const byTag: WaveSelection = { tag: { name: 'team', value: 'a' } };
    const parts = await Promise.all([1, 2, 3].map((k) => select(k, byTag)));
    expect([scans, listings]).toEqual([1, 1]);
    // together exactly the tagged ones, each in its own part
    expect(parts.flatMap((p) => p.entries.map((e) => e.id)).sort()).toEqual(
      ids.filter((id) => team(id.split('/')[1]!) === 'a').sort(),
    );
    for (const [i, p] of parts.entries())
      expect(p.entries.every((e) => partOfId(e.id, 3) === i + 1)).toBe(true);
    // reused shortly after; read again once the reuse is over
    await select(2, byTag);
    expect([scans, listings]).toEqual([1, 1]);
    await new Promise((r) => setTimeout(r, 1_600));
    await select(2, byTag);
    expect([scans, listings]).toEqual([2, 2]);

    // an expiry window: shared too, and a selection whose time lies beyond the shared listing's reach lists anew
    // (every certificate here expires within 20 years: each part takes all of its own)
    const soon: WaveSelection = { vault: VAULT, expiringWithinSeconds: 20 * 365 * 86_400 };
    const t0 = new Date();
    const windowed = await Promise.all([1, 2, 3].map((k) => select(k, soon, t0)));
    expect(listings).toBe(3);
    expect(windowed.flatMap((p) => p.entries.map((e) => e.id)).sort()).toEqual([...ids].sort());
    const late = await select(1, soon, new Date(t0.getTime() + 60_000));
    expect(listings).toBe(4);
    expect(late.entries.map((e) => e.id)).toEqual(windowed[0]!.entries.map((e) => e.id));
    // another wave shares nothing with these parts, even at once
    await new MockActivityEnvironment({
      workflowExecution: { workflowId: 'wave:another-part-1-of-3', runId: 'r' },
    }).run(acts.selectWave, { selection: { ...soon, part: { index: 1, of: 3 } }, now: t0.toISOString() });
    expect(listings).toBe(5);
  });

  it("holds the quota when 50 forced renewals arrive at once, without the wave's pacing", async () => {
    // the vault queue alone: every lifecycle asked at the same moment, a backlog of 50 key creates on one vault
    kv.server.setCreateQuota(KEY_VAULT_KEY_CREATES);
    const t0 = Date.now();
    const outcomes = await Promise.all(
      ids.map((id) => renewLifecycle(client, id, { force: true, reason: 'herd of manual renewals' })),
    );
    const seconds = (Date.now() - t0) / 1000;
    expect(outcomes.filter((o) => o.status === 'renewed')).toHaveLength(N);
    const stats = kv.server.createStats();
    console.log(`[reissue-wave] herd of ${N}: ${seconds.toFixed(1)} s, creates ${JSON.stringify(stats)}`);
    expect(stats.maxInWindow).toBeLessThanOrEqual(20);
    // the queue's rate (1.6/s over its 4 partitions' buckets) keeps the creates within the quota (measured before
    // the partitions were counted, at 1.8/s: four 429s); a stray one from the time between dispatch and the
    // vault's clock is retried once after its Retry-After
    expect(stats.throttled).toBeLessThanOrEqual(1);
    expect(seconds).toBeGreaterThan((N - 20) / 2); // paced: 50 creates cannot pass 20 per 10 s any faster
  }, 300_000);
});
