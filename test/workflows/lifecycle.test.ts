/**
 * The lifecycle on the time-skipping test server with in-memory activities (test/workflows/harness.ts):
 * cycles, manual renew, pause, races around continue-as-new, failures and binding re-sync.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index';
import {
  pauseSignal,
  renewNowUpdate,
  resumeSignal,
  retireSignal,
  statusQuery,
} from '../../workflows/messages';
import { waitFor } from '../support/proc';
import {
  DAY,
  acceptedUpdates,
  type FakeHooks,
  type LifecycleHandle,
  fakeActivities as fakeOn,
  startTestEnv,
  withLifecycle as runOn,
  update,
} from './harness';

let env: TestWorkflowEnvironment;
beforeEach(async () => {
  env = await startTestEnv();
});
afterEach(async () => {
  await env?.teardown();
});

const fakeActivities = (lifetimeDays: number, hooks: FakeHooks = {}) =>
  fakeOn(env, { lifetimeMs: lifetimeDays * DAY, hooks });
const withLifecycle = (acts: Activities, name: string, fn: (h: LifecycleHandle) => Promise<void>) =>
  runOn(env, acts, name, fn);

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
      const outcome = await update(handle, renewNowUpdate, [{ reason: 'test' }]);
      expect(outcome.status).toBe('renewed');
      expect(outcome.trigger).toBe('Manual');
      expect(outcome.oldThumbprint).toBe('THUMB1');
      expect(outcome.newThumbprint).toBe('THUMB2');
      expect(fake.calls).toEqual(
        expect.arrayContaining([
          'beginRenewal',
          'issue',
          'verify',
          'merge',
          'syncBindings',
          'notify:renewed',
        ]),
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
      // wakes only for the escalation ladder and the pause report: a handful of timers, no spin
      const timers = events!.filter((e) => e.timerStartedEventAttributes).length;
      expect(timers).toBeLessThan(10);
      // paused for 9 days: told once that the pause is long, and the ladder while paused: at the renewal time
      // (day 8, 2 days left) the 3-day step, then the 1-day step
      expect(fake.calls.filter((c) => c === 'notify:paused-too-long')).toHaveLength(1);
      expect(fake.notifies.filter((n) => n.kind === 'escalation').map((n) => n.daysLeft)).toEqual([3, 1]);
      await handle.signal(resumeSignal);
      await waitFor('the renewal after resume', async () => fake.version() === 2, { timeoutMs: 20_000 });
    });
  });

  it('a renew update that lands while the attempt re-binds joins it; a later forced one renews again', async () => {
    let slowSync = false;
    let releaseSync!: () => void;
    const syncGate = new Promise<void>((r) => (releaseSync = r));
    const fake = fakeActivities(90, {
      syncBindings: async () => {
        if (slowSync) await syncGate;
        return [];
      },
    });
    await withLifecycle(fake.acts, 'race', async (handle) => {
      await waitFor(
        'first observation',
        async () => (await handle.query(statusQuery)).nextRenewalAt ?? undefined,
      );
      slowSync = true; // re-binding waits until the second update has landed in that window
      const first = update(handle, renewNowUpdate, [{ reason: 'one' }]);
      await waitFor('the renewal to merge', async () => fake.version() === 2);
      const second = update(handle, renewNowUpdate, [{ reason: 'two' }]);
      await waitFor('the second request accepted', async () => (await acceptedUpdates(handle)) >= 2);
      releaseSync();
      const [a, b] = await Promise.all([first, second]);
      expect(a.newThumbprint).toBe('THUMB2');
      expect(b).toEqual(a); // joined, not a second renewal
      expect(fake.issues()).toBe(1);
      // right after a renewal the loop guard holds renewals back: a forced request passes it
      const third = await update(handle, renewNowUpdate, [{ reason: 'three', force: true }]);
      expect(third.newThumbprint).toBe('THUMB3');
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
        if (caDown)
          throw ApplicationFailure.create({
            message: 'the CA refused the account',
            type: 'AcmeUnauthorized',
            nonRetryable: true,
            details: [{ discardCsr: true }], // the adapter's mark: this CSR must not be reused
          });
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
      const failed = await update(handle, renewNowUpdate, [{}]);
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
      const outcome = await update(handle, renewNowUpdate, [{}]);
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
      expect(st.bindings[0]?.status).toBe('bound');
      expect(fake.version()).toBe(2);
    });
  });
});

describe('retiring (the certificate was deleted from its vault)', () => {
  it('a waiting lifecycle finishes cleanly on the retire signal', async () => {
    const fake = fakeActivities(90);
    await withLifecycle(fake.acts, 'retire', async (handle) => {
      await waitFor(
        'first observation',
        async () => (await handle.query(statusQuery)).nextRenewalAt ?? undefined,
      );
      await handle.signal(retireSignal, { reason: 'deleted from kv' });
      expect(await handle.result()).toEqual({ retired: 'deleted from kv' });
      expect(fake.version()).toBe(1);
    });
  });
});

describe('bindings that stay on the old certificate', () => {
  it('are retried with backoff and escalate on the ladder to the old certificate expiry, each step once', async () => {
    const fake = fakeActivities(10, {
      syncBindings: async () => [
        {
          target: 'app',
          binding: 'www.site.test',
          before: 'THUMB1',
          after: 'THUMB1',
          status: 'failed',
          detail: '403',
        },
      ],
    });
    await withLifecycle(fake.acts, 'stuck', async (handle) => {
      const outcome = await update(handle, renewNowUpdate, [{}]);
      expect(outcome.status).toBe('renewed');
      await env.sleep(11 * DAY); // the old certificate (10 days) has expired by now
      const steps = await waitFor('the expiry step', async () => {
        // one ladder to THUMB1's expiry, also across the next renewal (day 8) whose bindings fail too
        const s = fake.notifies.filter(
          (n) => n.kind === 'partially-synced' && n.eventId.includes(':bindings:'),
        );
        return s.some((n) => n.daysLeft === 0) ? s.map((n) => n.daysLeft) : undefined;
      });
      expect(steps).toEqual([14, 7, 3, 1, 0]);
      expect(fake.notifies.find((n) => n.daysLeft === 3)?.syncTrigger).toMatch(/old certificate/);
      const syncs = fake.calls.filter((c) => c === 'syncBindings').length;
      expect(syncs).toBeGreaterThan(5); // retried all along, with backoff (capped at 6 h)
      expect(syncs).toBeLessThan(60);
      expect((await handle.query(statusQuery)).phase).toBe('Failing');
    });
  });
});
