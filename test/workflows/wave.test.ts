/**
 * The emergency re-issue wave (workflows/wave.ts) on the dev server (the time-skipping test server refuses the
 * wave's timer and activity interleaving: "invalid history builder state") with in-memory wave activities, in
 * short real time: the workflow's decisions are under test (pacing per vault in workflow time, the bound on those
 * under way, skipped and failed certificates, cancel, a refused input). The real path (lifecycles, Key Vault's
 * quota, pebble, the CLI, pause and resume) is test/integration/reissue-wave.test.ts.
 */
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { WaveActivities } from '../../activities/wave';
import { runCli } from '../../client/cli';
import { reissueWave } from '../../workflows/wave';
import { partOfId } from '../../workflows/wave-plan';
import {
  type WaveInput,
  type WaveEntry,
  type WaveReport,
  type WaveSelection,
  waveCancelSignal,
  waveProgressQuery,
  waveReportQuery,
  waveWorkflowId,
} from '../../workflows/wave-messages';
import { waitFor } from '../support/proc';

const require = createRequire(import.meta.url);

const address = inject('temporalAddress');
const namespace = inject('temporalNamespace');
let client: Client;
let connection: NativeConnection;
beforeAll(async () => {
  client = new Client({ connection: await Connection.connect({ address }), namespace });
  connection = await NativeConnection.connect({ address });
});
afterAll(async () => {
  await connection?.close();
  await client?.connection.close();
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** N certificates over two vaults; renewals take `renewMs` of workflow time; some skipped or failing. */
function fakeWave(
  n: number,
  opts: {
    skip?: Set<string>;
    fail?: Set<string>;
    renewMs?: number;
    failMessage?: string;
    rates?: Record<string, number | null>;
    /** Renewals of these wait for it. */
    held?: { ids: Set<string>; until: Promise<void> };
  } = {},
) {
  const started: Array<{ id: string; at: number }> = [];
  let maxRunning = 0;
  let running = 0;
  const entries: WaveEntry[] = Array.from({ length: n }, (_, i) => ({
    id: `kv-${i % 2}/c${i}`,
    vault: `kv-${i % 2}`,
    issuer: 'ca',
    expiresAt: null,
    status: 'pending' as const,
  }));
  const acts: WaveActivities = {
    selectWave: async () => ({ entries, vaultRates: opts.rates ?? { 'kv-0': 5, 'kv-1': 5 } }),
    inspectForWave: async ({ certificateId }) => ({
      skip: opts.skip?.has(certificateId) ? 're-issued since' : null,
      thumbprint: 'OLD',
      keyId: 'k-old',
    }),
    renewForWave: async ({ certificateId }) => {
      started.push({ id: certificateId, at: Date.now() });
      running++;
      maxRunning = Math.max(maxRunning, running);
      try {
        await sleep(opts.renewMs ?? 100);
        if (opts.held?.ids.has(certificateId)) await opts.held.until;
        if (opts.fail?.has(certificateId))
          throw ApplicationFailure.create({
            message: opts.failMessage ?? 'CA said no',
            type: 'AcmeRejected',
            nonRetryable: true,
          });
        return {
          status: 'reissued',
          oldThumbprint: 'OLD',
          newThumbprint: `NEW-${certificateId}`,
          newKey: true,
        };
      } finally {
        running--;
      }
    },
  };
  return { acts, started, max: () => maxRunning };
}

async function withWorker<T>(
  acts: WaveActivities,
  fn: (taskQueue: string) => Promise<T>,
  taskQueue = `wave-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`,
): Promise<T> {
  const worker = await Worker.create({
    connection,
    namespace,
    taskQueue,
    workflowsPath: require.resolve('../../workflows/index.ts'),
    activities: acts,
  });
  return worker.runUntil(() => fn(taskQueue));
}

const INPUT: WaveInput = { reason: 'key-compromise', selection: { all: true }, searchAttributes: false };

/** The CLI with this file's client; what it printed. */
async function cli(...args: string[]): Promise<{ code: number; out: string; stderr: string }> {
  let out = '';
  let stderr = '';
  const code = await runCli(args, {
    client,
    out: { write: (t: string) => (out += t) },
    err: { write: (t: string) => (stderr += t) },
    env: {},
    pollIntervalMs: 100,
  });
  return { code, out, stderr };
}

/** `certflow reissue --all` split in `parts` as `name`, on the test's task queue. */
const splitRun = (name: string, parts: number, taskQueue: string, ...more: string[]) => {
  const args = `reissue --reason ca-distrust --all --parts ${parts} --name ${name} --task-queue ${taskQueue}`;
  return cli(...args.split(' '), ...more);
};

const ids12 = () => Array.from({ length: 12 }, (_, i) => `kv-${i % 2}/c${i}`);

/**
 * fakeWave whose activities apply the real rules a split depends on: the selection takes only its part
 * (selectCandidates' partOfId), and a certificate re-issued since the wave's `since` is skipped (reissuedSince).
 */
function splitWave(n: number, opts: Parameters<typeof fakeWave>[1] = {}) {
  const fake = fakeWave(n, opts);
  const all = Array.from({ length: n }, (_, i) => ({
    id: `kv-${i % 2}/c${i}`,
    vault: `kv-${i % 2}`,
    issuer: 'ca',
    expiresAt: null,
    status: 'pending' as const,
  }));
  const selections: WaveSelection[] = [];
  const sinces: string[] = [];
  const acts: WaveActivities = {
    ...fake.acts,
    inspectForWave: async (input) => {
      sinces.push(input.since);
      const done = fake.started.some((s) => s.id === input.certificateId && s.at >= Date.parse(input.since));
      if (done) return { skip: 're-issued since the wave began', thumbprint: 'NEW', keyId: 'k-new' };
      return fake.acts.inspectForWave(input);
    },
    selectWave: async ({ selection }) => {
      selections.push(selection);
      const part = selection.part;
      return {
        entries: all.filter((e) => !part || partOfId(e.id, part.of) === part.index),
        vaultRates: { 'kv-0': 50, 'kv-1': 50 },
      };
    },
  };
  return { fake, all, acts, selections, sinces };
}

describe('re-issue wave', () => {
  it('paces each vault at its rate, bounds those under way, and reports every certificate', async () => {
    const fake = fakeWave(12, { skip: new Set(['kv-0/c2']), fail: new Set(['kv-1/c5']), renewMs: 300 });
    const report = await withWorker(fake.acts, (taskQueue) =>
      client.workflow.execute(reissueWave, {
        taskQueue,
        workflowId: `wave-pace-${Date.now()}`,
        args: [{ ...INPUT, concurrency: 4 }],
      }),
    );
    expect(report).toMatchObject({
      state: 'Done',
      total: 12,
      reissued: 10,
      skipped: 1,
      failed: 1,
      pending: 0,
    });
    expect(report.entries.find((e) => e.id === 'kv-1/c5')?.error?.type).toBe('AcmeRejected');
    expect(report.entries.find((e) => e.id === 'kv-0/c2')).toMatchObject({ status: 'skipped' });
    expect(fake.max()).toBeLessThanOrEqual(4);
    // each vault at 5/s: its renewals spread over at least 200 ms each (a skipped one gives its slot back; the
    // inspection before each renewal moves single starts by a few ms)
    for (const [v, n] of [
      ['kv-0', 5], // six, one skipped
      ['kv-1', 6], // six, one of them failing at the CA
    ] as const) {
      const at = fake.started.filter((s) => s.id.startsWith(`${v}/`)).map((s) => s.at);
      expect(at.length).toBe(n);
      expect(at.at(-1)! - at[0]!).toBeGreaterThanOrEqual((n - 1) * 200 - 100);
    }
  });

  it('cancel starts nothing more: those under way finish, the rest are reported cancelled', async () => {
    // the renewals under way finish only once the cancel has been taken (however slow the machine)
    let release!: () => void;
    const until = new Promise<void>((r) => (release = r));
    const ids = new Set(Array.from({ length: 10 }, (_, i) => `kv-${i % 2}/c${i}`));
    const fake = fakeWave(10, { renewMs: 50, held: { ids, until } });
    const report = await withWorker(fake.acts, async (taskQueue) => {
      const handle = await client.workflow.start(reissueWave, {
        taskQueue,
        workflowId: `wave-cancel-${Date.now()}`,
        args: [{ ...INPUT, concurrency: 2 }],
      });
      await waitFor('two under way', async () => (await handle.query(waveProgressQuery)).running === 2, {
        timeoutMs: 30_000,
      });
      await handle.signal(waveCancelSignal, { by: 'test' });
      await waitFor(
        'the cancel taken',
        async () => (await handle.query(waveProgressQuery)).state === 'Cancelling',
      );
      release();
      return handle.result();
    });
    expect(report).toMatchObject({ state: 'Cancelled', total: 10, reissued: 2, cancelled: 8, pending: 0 });
  });

  it("fits its report to Temporal's 2 MiB payload limit: 150 failures with 15 KB messages (2.2 MB) end Done, and answer mid-wave", async () => {
    const n = 150;
    const failMessage = `the CA answered: ${'x'.repeat(15_000)}`;
    let release!: () => void;
    const last = `kv-1/c${n - 1}`;
    const fake = fakeWave(n, {
      fail: new Set(Array.from({ length: n - 1 }, (_, i) => `kv-${i % 2}/c${i}`)),
      renewMs: 10,
      failMessage,
      rates: { 'kv-0': null, 'kv-1': null },
      held: { ids: new Set([last]), until: new Promise<void>((r) => (release = r)) },
    });
    const { report, midway } = await withWorker(fake.acts, async (taskQueue) => {
      const h = await client.workflow.start(reissueWave, {
        taskQueue,
        workflowId: `wave-fit-${Date.now()}`,
        args: [{ ...INPUT, concurrency: 50 }],
        // without fitting, the completion is refused and retried: fail fast instead of waiting for the test's timeout
        workflowExecutionTimeout: '60s',
      });
      // mid-wave, with every failure in (2.2 MB of messages), the report query answers too: fitted as well (without,
      // the query never answers and the test times out)
      await waitFor(
        'every failure in',
        async () => ((await h.query(waveProgressQuery)).failed === n - 1 ? true : undefined),
        { timeoutMs: 45_000 },
      );
      const mid = await h.query(waveReportQuery);
      release();
      return { report: await h.result(), midway: mid };
    });
    expect(midway).toMatchObject({ total: n, failed: n - 1, running: 1 });
    expect(Buffer.byteLength(JSON.stringify(midway))).toBeLessThan(2 * 1024 * 1024);
    expect(report).toMatchObject({ state: 'Done', total: n, failed: n - 1, reissued: 1 });
    expect(Buffer.byteLength(JSON.stringify(report))).toBeLessThan(2 * 1024 * 1024);
    // every failure keeps its type and the start of its message
    expect(report.entries.filter((e) => e.error).every((e) => e.error!.type === 'AcmeRejected')).toBe(true);
    expect(report.entries[0]!.error!.message).toBe(`${failMessage.slice(0, 299)}…`);
  });

  it('a selection split with --parts runs one wave per part, each certificate re-issued once, reported per part', async () => {
    const { fake, all, acts, selections, sinces } = splitWave(30, { renewMs: 50 });
    const name = `parts-${Date.now()}`;
    const reissue = (taskQueue: string, parts: number) => splitRun(name, parts, taskQueue, '--json');
    const [{ code, out, stderr }, firstSelections, again, third] = await withWorker(
      acts,
      async (taskQueue) => {
        const first = await reissue(taskQueue, 3);
        const firstSelections = selections.splice(0);
        sinces.length = 0;
        // run again with another number of parts: it must skip what the first split re-issued
        const again = await reissue(taskQueue, 2);
        // and once more split as at first: the earliest of all runs still counts
        return [first, firstSelections, again, await reissue(taskQueue, 3)] as const;
      },
    );
    expect([code, stderr]).toEqual([0, expect.not.stringMatching(/error|refused|InvalidWave/i)]);
    // the parts run at once: their selections come in any order
    const byIndex = (x: unknown) => (x as { part: { index: number } }).part.index;
    expect(firstSelections.sort((a, b) => byIndex(a) - byIndex(b))).toEqual(
      [1, 2, 3].map((index) => ({ all: true, part: { index, of: 3 } })),
    );
    const { waves } = JSON.parse(out) as {
      waves: Array<{
        waveId: string;
        total: number;
        reissued: number;
        startedAt: string;
        entries: WaveEntry[];
      }>;
    };
    expect(waves.map((w) => w.waveId)).toEqual(
      [1, 2, 3].map((k) => waveWorkflowId(`${name}-part-${k}-of-3`)),
    );
    for (const [i, w] of waves.entries()) {
      expect(w.total).toBeGreaterThan(0);
      expect(w.reissued).toBe(w.total);
      expect(w.entries.every((e) => partOfId(e.id, 3) === i + 1)).toBe(true);
    }
    expect(waves.reduce((n, w) => n + w.total, 0)).toBe(30);

    // the re-runs (2 parts, then 3 again) look at every certificate since the first split's earliest start
    const firstStart = waves.map((w) => w.startedAt).sort()[0];
    for (const run of [again, third]) {
      expect(run.code, run.stderr).toBe(0);
      const later = (JSON.parse(run.out) as { waves: Array<{ total: number; skipped: number }> }).waves;
      expect(later.map((w) => w.total - w.skipped)).toEqual(later.map(() => 0));
      expect(later.reduce((n, w) => n + w.total, 0)).toBe(30);
    }
    expect(sinces).toHaveLength(60);
    // one point for all: the first split's earliest start (visibility's start time of its first run, a few ms
    // before the wave's own clock read it)
    expect(new Set(sinces).size).toBe(1);
    expect(Date.parse(sinces[0]!)).toBeLessThanOrEqual(Date.parse(firstStart!));
    expect(Date.parse(firstStart!) - Date.parse(sinces[0]!)).toBeLessThan(2_000);
    // every certificate re-issued exactly once, by its part's wave
    expect(fake.started.map((s) => s.id).sort()).toEqual(all.map((e) => e.id).sort());

    // the name alone is no wave: the CLI names its parts; a part reports by its name
    const report = await cli('reissue', 'report', name);
    expect(report.code).toBe(3);
    expect(report.stderr).toContain(
      `no wave named ${name} (workflow wave:${name}); it ran split in 2 parts: ${name}-part-1-of-2 ... ` +
        `${name}-part-2-of-2; it ran split in 3 parts: ${name}-part-1-of-3 ... ${name}-part-3-of-3`,
    );
    expect((await cli('reissue', 'report', `${name}-part-2-of-3`)).code).toBe(0);

    // a name too long for its parts' names is refused before anything starts, naming the field
    const long = await cli(
      'reissue',
      '--reason',
      'ca-distrust',
      '--all',
      '--parts',
      '12',
      '--name',
      'n'.repeat(95),
    );
    expect(long.code).toBe(2);
    expect(long.stderr).toMatch(/--name: with --parts 12 at most 86 characters/);
  });

  it('a split name is steered as one: pause and cancel reach every part; a run split another way is refused beside it', async () => {
    let release!: () => void;
    const until = new Promise<void>((r) => (release = r));
    const { fake, all, acts } = splitWave(12, { renewMs: 50, held: { ids: new Set(ids12()), until } });
    const name = `steer-${Date.now()}`;
    await withWorker(acts, async (taskQueue) => {
      const start = (parts: number, ...more: string[]) => splitRun(name, parts, taskQueue, ...more);
      expect((await start(2, '--no-wait', '--concurrency', '1')).code).toBe(0);
      const parts = [1, 2].map((k) => client.workflow.getHandle(waveWorkflowId(`${name}-part-${k}-of-2`)));
      await waitFor(
        'both parts under way',
        async () => {
          const p = await Promise.all(parts.map((h) => h.query(waveProgressQuery)));
          return p.every((x) => x.running > 0);
        },
        { timeoutMs: 30_000 },
      );

      // split another way beside them: refused, nothing started
      const beside = await start(3, '--no-wait');
      expect(beside.code).toBe(1);
      expect(beside.stderr).toContain(
        `wave ${name}: waves of this name split another way still run: ${name}-part-1-of-2, ${name}-part-2-of-2`,
      );
      await expect(
        client.workflow.getHandle(waveWorkflowId(`${name}-part-1-of-3`)).describe(),
      ).rejects.toBeInstanceOf(WorkflowNotFoundError);

      // pause by the name alone reaches both parts
      const paused = await cli('reissue', 'pause', name, '--reason', 'CA outage');
      expect(paused.code, paused.stderr).toBe(0);
      expect(paused.out).toMatch(
        new RegExp(`^${name}-part-1-of-2: pause sent;.*\\n${name}-part-2-of-2: pause sent;`),
      );
      await waitFor('both paused', async () => {
        const p = await Promise.all(parts.map((h) => h.query(waveProgressQuery)));
        return p.every((x) => x.state === 'Paused');
      });
      // the status of the name alone: each part's line, then the parts as one
      const status = await cli('reissue', 'status', name, '--no-wait');
      expect(status.code, status.stderr).toBe(0);
      expect(status.out).toMatch(
        new RegExp(
          `^${name}-part-1-of-2 \\[.*\\] paused: .*\n${name}-part-2-of-2 \\[.*\\] paused: .*\n` +
            `${name} \\[.*\\] paused: \\d+ re-issued, 0 skipped, 0 failed, 2 under way, \\d+ left of 12.* · 2 parts\n$`,
        ),
      );
      expect((await cli('reissue', 'cancel', name)).code).toBe(0);
      release();
      const reports = await Promise.all(parts.map((h) => h.result()));
      expect(reports.map((r) => r.state)).toEqual(['Cancelled', 'Cancelled']);
      // once they have ended, the report of the name alone is both parts' reports; its status too
      const report = await cli('reissue', 'report', name, '--json');
      expect(report.code, report.stderr).toBe(0);
      const doc = JSON.parse(report.out) as { waves: WaveReport[] };
      expect(doc.waves.map((w) => [w.waveId, w.state])).toEqual(
        [1, 2].map((k) => [waveWorkflowId(`${name}-part-${k}-of-2`), 'Cancelled']),
      );
      const ended = await cli('reissue', 'status', name);
      expect(ended.code, ended.stderr).toBe(0);
      expect(ended.out.match(/^CERTIFICATE +RESULT/gm)).toHaveLength(2);
      // --no-wait --json: each part's progress and the parts together, not every entry of their reports
      const snap = JSON.parse((await cli('reissue', 'status', name, '--no-wait', '--json')).out) as {
        parts: Array<{ wave: string; progress: Record<string, unknown> }>;
        combined: { state: string; total: number };
      };
      expect(snap.parts.map((p) => [p.wave, p.progress.state, 'entries' in p.progress])).toEqual(
        [1, 2].map((k) => [`${name}-part-${k}-of-2`, 'Cancelled', false]),
      );
      expect(snap.combined).toMatchObject({ state: 'Cancelled', total: 12 });
      // those under way finished; nothing else started
      expect(fake.started.length).toBe(reports.reduce((n, r) => n + r.reissued, 0));
      expect(fake.started.length).toBeLessThan(all.length);
    });
  });

  it('a split wave waits for an upgraded worker: one that does not know parts never runs it (no part takes the whole selection)', async () => {
    const { fake, all, acts } = splitWave(12, { renewMs: 20 });
    const name = `oldworker-${Date.now()}`;
    const taskQueue = `wave-old-${Date.now()}`;
    const old = await Worker.create({
      connection,
      namespace,
      taskQueue,
      workflowsPath: require.resolve('../support/wave-workflows-before-parts.ts'),
      activities: acts,
    });
    await old.runUntil(async () => {
      expect((await splitRun(name, 2, taskQueue, '--no-wait')).code).toBe(0);
      const part1 = client.workflow.getHandle(waveWorkflowId(`${name}-part-1-of-2`));
      // the old worker takes the workflow task and fails it: the type is not registered there
      await waitFor(
        'the old worker to refuse the part',
        async () => {
          const { raw } = await part1.describe();
          return (raw.pendingWorkflowTask?.attempt ?? 0) >= 2;
        },
        { timeoutMs: 30_000 },
      );
      expect(fake.started).toEqual([]);
    });
    // an upgraded worker on the same queue runs both parts, each certificate once
    const reports = await withWorker(
      acts,
      () =>
        Promise.all(
          [1, 2].map((k) => client.workflow.getHandle(waveWorkflowId(`${name}-part-${k}-of-2`)).result()),
        ),
      taskQueue,
    );
    expect(reports.reduce((n, r) => n + r.reissued, 0)).toBe(all.length);
    expect(fake.started.map((s) => s.id).sort()).toEqual(all.map((e) => e.id).sort());
  });

  /** 12 certificates in 3 parts, part 2 refused as a whole when it selects. */
  const partTwoFails = (): WaveActivities => {
    const { acts } = splitWave(12, { renewMs: 20 });
    return {
      ...acts,
      selectWave: async (input) => {
        if (input.selection.part?.index === 2)
          throw ApplicationFailure.create({
            message: 'part 2 of 3 is too large',
            type: 'InvalidWave',
            nonRetryable: true,
          });
        return acts.selectWave(input);
      },
    };
  };

  it('a part that fails as a whole does not stop following the others: every report, and the failure named', async () => {
    const name = `partfail-${Date.now()}`;
    const run = await withWorker(partTwoFails(), (taskQueue) => splitRun(name, 3, taskQueue, '--json'));
    expect(run.code).toBe(1);
    const doc = JSON.parse(run.out) as {
      waves: Array<{ waveId: string; reissued: number }>;
      failed: Array<{ wave: string; error: string }>;
    };
    expect(doc.waves.map((w) => w.waveId)).toEqual(
      [1, 3].map((k) => waveWorkflowId(`${name}-part-${k}-of-3`)),
    );
    expect(doc.waves.every((w) => w.reissued > 0)).toBe(true);
    expect(doc.failed).toEqual([
      {
        wave: `${name}-part-2-of-3`,
        error: `wave ${name}-part-2-of-3 failed: InvalidWave: part 2 of 3 is too large`,
      },
    ]);
  });

  it('a split wave is followed as one: each part as it ends, then the parts together, failed parts named', async () => {
    const name = `partplain-${Date.now()}`;
    const run = await withWorker(partTwoFails(), (taskQueue) => splitRun(name, 3, taskQueue));
    expect(run.code).toBe(1);
    const lines = run.stderr.split('\n');
    const ended = (wave: string) => lines.filter((l) => l.startsWith(`${wave} [`));
    // parts 1 and 3 each end with their own line; part 2 has none, its failure is said
    for (const k of [1, 3])
      expect(ended(`${name}-part-${k}-of-3`), run.stderr).toEqual([
        expect.stringMatching(
          /^\S+ \[#{30}\] done: \d+ re-issued, 0 skipped, 0 failed, 0 under way, 0 left of \d+/,
        ),
      ]);
    expect(ended(`${name}-part-2-of-3`)).toEqual([]);
    expect(lines).toContain(`wave ${name}-part-2-of-3 failed: InvalidWave: part 2 of 3 is too large`);
    // the last line of progress: the parts that ran, as one
    const whole = ended(name);
    const parts13 = ids12().filter((id) => partOfId(id, 3) !== 2).length;
    expect(whole.at(-1)).toMatch(
      new RegExp(
        `^${name} \\[#{30}\\] done: ${parts13} re-issued, 0 skipped, 0 failed, 0 under way, 0 left of ${parts13} .*` +
          ' · parts: 2 of 3 ended, 1 failed$',
      ),
    );
  });

  it('refuses a wave without a selection, naming the field (also in the CLI report of the failed wave)', async () => {
    const fake = fakeWave(1);
    const name = `bad-${Date.now()}`;
    const err = await withWorker(fake.acts, (taskQueue) =>
      client.workflow
        .execute(reissueWave, {
          taskQueue,
          workflowId: waveWorkflowId(name),
          args: [{ ...INPUT, selection: {} }],
        })
        .catch((e: unknown) => e),
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(((err as WorkflowFailedError).cause as ApplicationFailure).message).toMatch(
      /^selection: expected --all/,
    );
    expect(fake.started).toHaveLength(0);

    let out = '';
    let stderr = '';
    const code = await runCli(['reissue', 'report', name], {
      client,
      out: { write: (t: string) => (out += t) },
      err: { write: (t: string) => (stderr += t) },
      env: {},
      pollIntervalMs: 250,
    });
    expect([code, out]).toEqual([1, '']);
    expect(stderr).toMatch(
      new RegExp(`^certflow: wave ${name} failed: InvalidWave: selection: expected --all`),
    );
  });
});
