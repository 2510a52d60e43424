/**
 * Fleet discovery (workflows/fleet.ts) on the time-skipping test server with in-memory fleet activities: the
 * workflow's decisions are under test (start what is missing, never retire on a failed listing, retire only after
 * `graceRuns` runs and the vault's confirmation). The real activities, visibility and the Schedule are exercised
 * in test/integration/fleet-discovery.test.ts. Successive runs use a cron schedule here (the test server has no
 * Schedules): like a Schedule, cron hands each run the last completed run's result.
 */
import { activityInfo } from '@temporalio/activity';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createRequire } from 'node:module';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FleetActivities, RetireOutcome } from '../../activities/fleet';
import { globMatch } from '../../activities/globs';
import { type FleetInput, type FleetReport, fleetDiscovery } from '../../workflows/fleet';
import { waitFor } from '../support/proc';
import { startTestEnv } from './harness';

const require = createRequire(import.meta.url);

interface FakeCert {
  enabled?: boolean;
  tags?: Record<string, string>;
}

/** Vaults and running lifecycles in memory; every call is recorded with the run that made it. */
function fakeFleet(vaults: Record<string, Record<string, FakeCert>>, running: string[]) {
  const lifecycles = new Set(running);
  const failing = { list: new Set<string>(), visibility: new Set<string>() };
  const calls: Array<{ run: string; name: string; arg: unknown }> = [];
  const record = (name: string, arg: unknown) =>
    calls.push({ run: activityInfo().workflowExecution?.runId ?? '', name, arg });
  const exists = (id: string) => {
    const [v, n] = id.split('/') as [string, string];
    return vaults[v]?.[n] !== undefined;
  };
  const acts: FleetActivities = {
    async listVaultCertificates(input) {
      record('list', input.vault);
      if (failing.list.has(input.vault))
        throw ApplicationFailure.create({
          message: `vault ${input.vault}: 403`,
          type: 'VaultForbidden',
          nonRetryable: true,
        });
      const out = {
        vault: input.vault,
        present: [] as string[],
        matching: [] as string[],
        disabled: [] as string[],
      };
      for (const [name, c] of Object.entries(vaults[input.vault] ?? {})) {
        const id = `${input.vault}/${name}`;
        out.present.push(id);
        if (input.pattern && !globMatch(input.pattern, id)) continue;
        if (input.tag && c.tags?.[input.tag.name] !== input.tag.value) continue;
        (c.enabled === false ? out.disabled : out.matching).push(id);
      }
      return out;
    },
    async listLifecycles({ vault }) {
      record('listLifecycles', vault);
      if (failing.visibility.has(vault))
        throw ApplicationFailure.create({
          message: 'visibility unavailable',
          type: 'Unavailable',
          nonRetryable: true,
        });
      return [...lifecycles].filter((id) => id.startsWith(`${vault}/`)).sort();
    },
    async startLifecycles(input) {
      const { ids } = input;
      record('start', input);
      const started = ids.filter((id) => !lifecycles.has(id));
      started.forEach((id) => lifecycles.add(id));
      return { started, alreadyRunning: ids.filter((id) => !started.includes(id)), failed: [] };
    },
    async retireLifecycles({ ids }) {
      record('retire', ids);
      const out: RetireOutcome = { retired: [], stillPresent: [], notRunning: [], failed: [] };
      for (const id of ids) {
        if (exists(id)) out.stillPresent.push(id);
        else if (lifecycles.delete(id)) out.retired.push(id);
        else out.notRunning.push(id);
      }
      return out;
    },
  };
  return { acts, calls, lifecycles, failing, vaults };
}

let env: TestWorkflowEnvironment;
beforeEach(async () => {
  env = await startTestEnv();
});
afterEach(async () => {
  await env?.teardown();
});

async function withFleetWorker(
  acts: FleetActivities,
  name: string,
  fn: (taskQueue: string) => Promise<void>,
) {
  const taskQueue = `fleet-${name}-${Date.now()}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowsPath: require.resolve('../../workflows/index.ts'),
    activities: acts,
  });
  await worker.runUntil(() => fn(taskQueue));
}

const runOnce = (acts: FleetActivities, name: string, input: FleetInput) => {
  let report: FleetReport | undefined;
  return withFleetWorker(acts, name, async (taskQueue) => {
    report = await env.client.workflow.execute(fleetDiscovery, {
      taskQueue,
      workflowId: `fleet-${name}`,
      args: [input],
    });
  }).then(() => report!);
};

describe('fleet discovery (time-skipping)', () => {
  it('starts the lifecycles that are missing, and only for enabled certificates matching the filter', async () => {
    const fake = fakeFleet(
      {
        kv: {
          'api-1': { tags: { team: 'web' } },
          'api-2': { tags: { team: 'web' } },
          'api-3': { tags: { team: 'db' } },
          'api-off': { tags: { team: 'web' }, enabled: false },
          'web-1': { tags: { team: 'web' } },
        },
      },
      // web-1 was enrolled by hand: it does not match the filter but still exists, so it is left alone
      ['kv/api-1', 'kv/web-1'],
    );
    const report = await runOnce(fake.acts, 'starts', {
      vaults: ['kv'],
      pattern: 'kv/api-*',
      tag: { name: 'team', value: 'web' },
      issuer: 'acme',
      jitterMinutes: 30,
    });
    expect(fake.calls.filter((c) => c.name === 'start').map((c) => c.arg)).toEqual([
      { ids: ['kv/api-2'], issuer: 'acme', jitterMinutes: 30 },
    ]);
    expect(fake.calls.some((c) => c.name === 'retire')).toBe(false);
    expect(report.vaults).toEqual([
      {
        vault: 'kv',
        listed: 5,
        matching: 2,
        started: ['kv/api-2'],
        alreadyRunning: 1,
        retired: [],
        missing: {},
        errors: [],
      },
    ]);
    expect([...fake.lifecycles].sort()).toEqual(['kv/api-1', 'kv/api-2', 'kv/web-1']);
  });

  it('never retires when the vault listing or the lifecycle listing failed', async () => {
    const fake = fakeFleet({ broken: {}, blind: { a: {}, b: {} }, ok: { c: {} } }, [
      'broken/old',
      'blind/a',
      'blind/gone',
      'ok/c',
    ]);
    fake.failing.list.add('broken');
    fake.failing.visibility.add('blind');
    const report = await runOnce(fake.acts, 'failures', {
      vaults: ['broken', 'blind', 'ok'],
      issuer: 'acme',
      graceRuns: 1,
    });
    expect(fake.calls.some((c) => c.name === 'retire')).toBe(false);
    const [broken, blind, ok] = report.vaults;
    expect(broken).toMatchObject({ vault: 'broken', listed: 0, started: [], retired: [] });
    expect(broken!.errors).toEqual([
      { step: 'list certificates', type: 'VaultForbidden', message: 'vault broken: 403' },
    ]);
    // no visibility: every matching certificate is offered to the idempotent start, nothing is judged missing
    expect(blind).toMatchObject({
      listed: 2,
      started: ['blind/b'],
      alreadyRunning: 1,
      retired: [],
      missing: {},
    });
    expect(blind!.errors.map((e) => e.step)).toEqual(['list lifecycles']);
    // the other vaults' failures do not stop this one
    expect(ok).toMatchObject({ listed: 1, started: [], alreadyRunning: 1, errors: [] });
    expect(fake.lifecycles.has('broken/old')).toBe(true);
    expect(fake.lifecycles.has('blind/gone')).toBe(true);
  });

  it('retires a lifecycle only after its certificate was missing in graceRuns consecutive runs and the vault confirms', async () => {
    const fake = fakeFleet({ kv: { keep: {}, flaky: {}, ghost: {} } }, [
      'kv/keep',
      'kv/gone',
      'kv/flaky',
      'kv/ghost',
    ]);
    // ghost is never listed, yet the vault still answers for it when asked directly (a listing that skipped it);
    // flaky is left out of the first listing only (a certificate deleted and restored from soft-delete)
    const listed = fake.acts.listVaultCertificates;
    let listings = 0;
    fake.acts.listVaultCertificates = async (input) => {
      const out = await listed(input);
      const hidden = listings++ === 0 ? ['kv/ghost', 'kv/flaky'] : ['kv/ghost'];
      const visible = (ids: string[]) => ids.filter((id) => !hidden.includes(id));
      return { ...out, present: visible(out.present), matching: visible(out.matching) };
    };
    const runIds: string[] = [];
    await withFleetWorker(fake.acts, 'grace', async (taskQueue) => {
      const handle = await env.client.workflow.start(fleetDiscovery, {
        taskQueue,
        workflowId: 'fleet-grace',
        cronSchedule: '*/10 * * * *',
        args: [{ vaults: ['kv'], issuer: 'acme', graceRuns: 2 }],
      });
      /** Run n's report, read from its closing event once run n + 1 has begun (cron closes a run as continued). */
      const reportOf = async (n: number): Promise<FleetReport> => {
        await waitFor(`discovery run ${n + 1}`, async () => {
          for (const c of fake.calls) if (!runIds.includes(c.run)) runIds.push(c.run);
          if (runIds.length > n) return true;
          await env.sleep('5 minutes');
          return undefined;
        });
        const history = await env.client.workflow.getHandle(handle.workflowId, runIds[n - 1]).fetchHistory();
        const closed = history.events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes;
        return defaultPayloadConverter.fromPayload(closed!.lastCompletionResult!.payloads![0]!);
      };
      const retiresIn = (n: number) =>
        fake.calls.filter((c) => c.name === 'retire' && c.run === runIds[n - 1]);

      const r1 = await reportOf(1);
      expect(r1.vaults[0]!.missing).toEqual({ 'kv/flaky': 1, 'kv/ghost': 1, 'kv/gone': 1 });
      expect(retiresIn(1)).toEqual([]);

      const r2 = await reportOf(2);
      // flaky is listed again: its count starts over
      expect(retiresIn(2).map((c) => c.arg)).toEqual([['kv/ghost', 'kv/gone']]);
      expect(r2.vaults[0]!.retired).toEqual(['kv/gone']);
      // ghost: the vault still has it, so it is not retired and counting starts over
      expect(r2.vaults[0]!.missing).toEqual({});
      expect([...fake.lifecycles].sort()).toEqual(['kv/flaky', 'kv/ghost', 'kv/keep']);

      const r3 = await reportOf(3);
      expect(r3.vaults[0]).toMatchObject({ retired: [], missing: { 'kv/ghost': 1 }, started: [] });
      await handle.terminate('test done');
    });
  });
});
