/**
 * The lifecycle workflow on the time-skipping test server, with in-memory activities (the workflow is what is
 * under test here; the real vault, CA, nginx and SMTP are exercised in test/integration).
 */
import type { WorkflowHandle } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createRequire } from 'node:module';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index';
import type { BindingOutcome, CertificateState } from '../../activities/types';
import { ApplicationFailure } from '@temporalio/common';
import { certificateLifecycle } from '../../workflows/lifecycle';
import {
  pauseSignal,
  renewNowUpdate,
  resumeSignal,
  statusQuery,
  workflowIdFor,
} from '../../workflows/messages';
import { tools } from '../support/tools';
import { waitFor } from '../support/proc';

const require = createRequire(import.meta.url);
const DAY = 86_400_000;
let env: TestWorkflowEnvironment;

// a server per test: time skipping is global to a server, so tests must not share one
beforeEach(async () => {
  env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: tools.temporalTestServer() } },
  });
});
afterEach(async () => {
  await env?.teardown();
});

/** An in-memory vault + CA whose clock is the test server's (time-skipped) clock. */
interface FakeHooks {
  observe?: () => Promise<void>;
  issue?: () => Promise<void>;
  syncBindings?: () => Promise<BindingOutcome[]>;
}

function fakeActivities(lifetimeDays: number, hooks: FakeHooks = {}) {
  let version = 1;
  const calls: string[] = [];
  const stateAt = async (v: number, nbMs: number): Promise<CertificateState> => ({
    id: 'kv/site',
    vault: 'kv',
    name: 'site',
    version: `v${v}`,
    thumbprint: `THUMB${v}`,
    notBefore: new Date(nbMs).toISOString(),
    notAfter: new Date(nbMs + lifetimeDays * DAY).toISOString(),
    subject: 'CN=site',
    dnsNames: ['site.test'],
    tags: {},
    policy: null,
    pendingOperation: false,
  });
  let current: Promise<CertificateState> | null = null;
  const now = async () => Number(await env.currentTimeMs());
  const acts: Partial<Activities> = {
    async observe() {
      calls.push('observe');
      await hooks.observe?.();
      current ??= now().then((t) => stateAt(version, t));
      return current;
    },
    async beginRenewal() {
      calls.push('beginRenewal');
      return { csrPem: 'CSR', reused: false };
    },
    async issue() {
      calls.push('issue');
      await hooks.issue?.();
      return { status: 'issued', chainPem: ['LEAF'] };
    },
    async verify() {
      calls.push('verify');
      return { thumbprint: `THUMB${version + 1}` } as Awaited<ReturnType<Activities['verify']>>;
    },
    async merge() {
      calls.push('merge');
      version += 1;
      current = now().then((t) => stateAt(version, t));
      return current;
    },
    async syncBindings() {
      calls.push('syncBindings');
      return (await hooks.syncBindings?.()) ?? [];
    },
    async cancelRenewal() {
      calls.push('cancelRenewal');
    },
    async notify() {
      calls.push('notify');
      return { sent: true, invalidRecipients: [] };
    },
  };
  return { acts: acts as Activities, calls, version: () => version };
}

type LifecycleHandle = WorkflowHandle<typeof certificateLifecycle>;

/** Runs `fn` against a lifecycle of kv/site (workflow id per test) on a worker of its own, then terminates it. */
async function withLifecycle(
  acts: Activities,
  name: string,
  fn: (h: LifecycleHandle) => Promise<void>,
): Promise<void> {
  const taskQueue = `tq-${name}-${Date.now()}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowsPath: require.resolve('../../workflows/index.ts'),
    activities: acts,
  });
  await worker.runUntil(async () => {
    const handle = await env.client.workflow.start(certificateLifecycle, {
      taskQueue,
      workflowId: workflowIdFor(`kv/${name}`),
      args: [{ certificateId: 'kv/site', issuer: 'test', searchAttributes: false }],
    });
    await fn(handle);
    await handle.terminate('test done');
  });
}

describe('certificate lifecycle (time-skipping)', () => {
  it('waits until 80 % of lifetime, renews, and continues as new, several cycles in a row', async () => {
    const fake = fakeActivities(90);
    await withLifecycle(fake.acts, 'site', async (handle) => {
      const first = await waitFor('the first observation', async () => {
        const st = await handle.query(statusQuery);
        return st.nextRenewalAt ? st : undefined;
      });
      expect(first.phase).toBe('Waiting');
      expect(first.thumbprint).toBe('THUMB1');
      // 72 days after issuance (80 % of 90), not before
      expect(Date.parse(first.nextRenewalAt!) - Date.parse(first.notBefore!)).toBe(72 * DAY);
      await env.sleep(71 * DAY);
      expect(fake.version()).toBe(1);
      await env.sleep(2 * DAY);
      expect(fake.version()).toBe(2);
      await env.sleep(2 * 72 * DAY);
      expect(fake.version()).toBe(4);
      const st = await handle.query(statusQuery);
      expect(st.cycle).toBe(3);
      expect(st.thumbprint).toBe('THUMB4');
      expect(st.previousThumbprint).toBe('THUMB3');
    });
  });

  it('renews at once on a manual update and answers with the outcome', async () => {
    const fake = fakeActivities(90);
    await withLifecycle(fake.acts, 'manual', async (handle) => {
      const outcome = await handle.executeUpdate(renewNowUpdate, { args: [{ reason: 'test' }] });
      expect(outcome.status).toBe('renewed');
      expect(outcome.trigger).toBe('Manual');
      expect(outcome.oldThumbprint).toBe('THUMB1');
      expect(outcome.newThumbprint).toBe('THUMB2');
      expect(fake.calls).toEqual(
        expect.arrayContaining(['beginRenewal', 'issue', 'verify', 'merge', 'syncBindings', 'notify']),
      );
    });
  });

  it('pausing past renewal time waits quietly (no timer spin) and resumes into a renewal', async () => {
    const fake = fakeActivities(10);
    await withLifecycle(fake.acts, 'paused', async (handle) => {
      await waitFor(
        'first observation',
        async () => (await handle.query(statusQuery)).nextRenewalAt ?? undefined,
      );
      await handle.signal(pauseSignal, { reason: 'change freeze' });
      await waitFor('paused', async () => (await handle.query(statusQuery)).phase === 'Paused');
      await env.sleep(9 * DAY); // past the 8-day renewal time, paused
      expect(fake.version()).toBe(1);
      const { events } = await handle.fetchHistory();
      expect(events!.length).toBeLessThan(60);
      await handle.signal(resumeSignal);
      await waitFor('the renewal after resume', async () => fake.version() === 2, { timeoutMs: 20_000 });
    });
  });

  it('serves a renew update that arrives after a renewal and before continue-as-new', async () => {
    let slowObserve = false;
    let observeCalls = 0;
    const fake = fakeActivities(90, {
      observe: async () => {
        observeCalls++;
        if (slowObserve) await new Promise((r) => setTimeout(r, 1_500));
      },
    });
    await withLifecycle(fake.acts, 'race', async (handle) => {
      await waitFor(
        'first observation',
        async () => (await handle.query(statusQuery)).nextRenewalAt ?? undefined,
      );
      slowObserve = true; // the observe right after the renewal takes 1.5 s: the update lands in that window
      const first = handle.executeUpdate(renewNowUpdate, { args: [{ reason: 'one' }] });
      await waitFor('the renewal to merge', async () => fake.version() === 2);
      const before = observeCalls;
      await waitFor('the post-renewal observe to start', async () => observeCalls > before || undefined);
      const second = handle.executeUpdate(renewNowUpdate, { args: [{ reason: 'two' }] });
      const [a, b] = await Promise.all([first, second]);
      expect(a.newThumbprint).toBe('THUMB2');
      expect(b.status).toBe('renewed');
      expect(b.newThumbprint).toBe('THUMB3');
    });
  });

  it('survives a vault it cannot read and a CA that refuses, and recovers', async () => {
    let vaultDown = true;
    let caDown = true;
    const fake = fakeActivities(90, {
      observe: async () => {
        if (vaultDown)
          throw ApplicationFailure.nonRetryable('caller lacks certificates/get', 'VaultForbidden');
      },
      issue: async () => {
        if (caDown) throw ApplicationFailure.nonRetryable('the CA refused the account', 'AcmeUnauthorized');
      },
    });
    await withLifecycle(fake.acts, 'failing', async (handle) => {
      const failing = await waitFor('Failing on the vault', async () => {
        const st = await handle.query(statusQuery);
        return st.phase === 'Failing' && st.lastError ? st : undefined;
      });
      expect(failing.lastError?.type).toBe('VaultForbidden');
      vaultDown = false;
      await env.sleep('10 minutes');
      const waiting = await waitFor('the vault read again', async () => {
        const st = await handle.query(statusQuery);
        return st.phase === 'Waiting' ? st : undefined;
      });
      expect(waiting.thumbprint).toBe('THUMB1');

      // a manual renew with the CA refusing: the attempt fails, the stale CSR is dropped, retried later
      const failed = await handle.executeUpdate(renewNowUpdate, { args: [{}] });
      expect(failed.status).toBe('failed');
      expect(failed.error?.type).toBe('AcmeUnauthorized');
      expect(fake.calls).toContain('cancelRenewal');
      const st = await handle.query(statusQuery);
      expect(st.phase).toBe('Failing');
      caDown = false;
      await env.sleep('6 minutes'); // first retry after 5 minutes
      await waitFor('the retried renewal', async () => fake.version() === 2, { timeoutMs: 20_000 });
    });
  });

  it('re-syncs bindings that failed after a renewal until they are bound', async () => {
    let syncs = 0;
    const fake = fakeActivities(90, {
      syncBindings: async () => {
        syncs++;
        const status = syncs < 3 ? 'rolled-back' : 'bound';
        return [
          { target: 'nginx', binding: 'cert.pem', before: 'THUMB1', after: null, status, detail: 'test' },
        ];
      },
    });
    await withLifecycle(fake.acts, 'sync', async (handle) => {
      const outcome = await handle.executeUpdate(renewNowUpdate, { args: [{}] });
      expect(outcome.status).toBe('renewed');
      expect(outcome.bindings[0]?.status).toBe('rolled-back');
      await waitFor(
        'Failing with bindings pending',
        async () => (await handle.query(statusQuery)).phase === 'Failing',
      );
      await env.sleep('6 minutes');
      await env.sleep('11 minutes');
      const st = await waitFor('bindings re-synced', async () => {
        const q = await handle.query(statusQuery);
        return q.phase === 'Waiting' ? q : undefined;
      });
      expect(syncs).toBe(3);
      expect(st.lastAttempt?.bindings[0]?.status).toBe('bound');
      expect(fake.version()).toBe(2);
    });
  });
});
