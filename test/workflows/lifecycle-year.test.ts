/**
 * A year and more of simulated time on the time-skipping server: automatic cycles, a renewal joined by manual
 * requests, a CA that answers pending for days, a CA down for a day, a non-retryable failure fixed by a policy
 * change, the escalation ladder, continue-as-new carrying state, and the answers of queries and updates.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  historyQuery,
  pauseSignal,
  renewNowUpdate,
  setPolicyUpdate,
  statusQuery,
  syncNowUpdate,
} from '../../workflows/messages';
import { waitFor } from '../support/proc';
import {
  DAY,
  HOUR,
  acceptedUpdates,
  fakeActivities,
  refusal,
  startTestEnv,
  withLifecycle,
  update,
} from './harness';

let env: TestWorkflowEnvironment;
beforeEach(async () => {
  env = await startTestEnv();
});
afterEach(async () => {
  await env?.teardown();
});

const firstObservation = (h: Parameters<Parameters<typeof withLifecycle>[3]>[0]) =>
  waitFor('the first observation', async () => {
    const st = await h.query(statusQuery);
    return st.nextRenewalAt ? st : undefined;
  });

/** The validator's message of a refused update (the client wraps it as the cause). */

describe('lifecycle over a year (time-skipping)', () => {
  it('renews a 90-day certificate five times in a year, carrying state across continue-as-new', async () => {
    const fake = fakeActivities(env, { lifetimeMs: 90 * DAY });
    await withLifecycle(env, fake.acts, 'year', async (h) => {
      const first = await firstObservation(h);
      const runBefore = (await h.describe()).runId;
      await env.sleep(365 * DAY);
      expect(fake.version()).toBe(6); // days 72, 144, 216, 288, 360
      const st = await h.query(statusQuery);
      expect(st.cycle).toBe(5);
      expect(st.attempts).toBe(5);
      expect(st.previousThumbprint).toBe('THUMB5');
      expect(st.thumbprint).toBe('THUMB6');
      expect(st.policy).toEqual({ source: 'default', lifetimePercentage: 80, jitterMinutes: 0 });
      // each renewal lands a moment after its timer: within a minute of 5 × 72 days
      expect(
        Math.abs(Date.parse(st.nextRenewalAt!) - Date.parse(first.nextRenewalAt!) - 5 * 72 * DAY),
      ).toBeLessThan(60_000);
      expect((await h.describe()).runId).not.toBe(runBefore);
      const history = await h.query(historyQuery);
      expect(history.map((o) => o.newThumbprint)).toEqual(['THUMB6', 'THUMB5', 'THUMB4', 'THUMB3', 'THUMB2']);
      expect(fake.notifies.filter((n) => n.kind === 'escalation')).toHaveLength(0);
    });
  });

  it('manual requests during a renewal join it; status shows the phase while it runs', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const fake = fakeActivities(env, { hooks: { issue: async () => void (await gate) } });
    await withLifecycle(env, fake.acts, 'join', async (h) => {
      await firstObservation(h);
      const a = update(h, renewNowUpdate, [{ reason: 'first' }]);
      await waitFor('the CA call', async () => fake.issues() === 1);
      const during = await waitFor('phase Issuing', async () => {
        const st = await h.query(statusQuery);
        return st.phase === 'Issuing' ? st : undefined;
      });
      expect(during.attempts).toBe(1);
      const b = update(h, renewNowUpdate, [{ reason: 'second' }]);
      const sync = update(h, syncNowUpdate, [{}]);
      // both accepted while the CA call still waits (however slow the machine), then the CA answers
      await waitFor('both requests accepted', async () => (await acceptedUpdates(h)) >= 3);
      release();
      const [oa, ob, bindings] = await Promise.all([a, b, sync]);
      expect(oa).toEqual(ob);
      expect(oa.status).toBe('renewed');
      expect(bindings).toEqual([]);
      expect(fake.issues()).toBe(1);
      expect(fake.version()).toBe(2);
    });
  });

  it('polls a CA that answers pending for three days, then merges', async () => {
    let pendingUntil = 0;
    const now = async () => Number(await env.currentTimeMs());
    const pending = { status: 'pending' as const, ref: 'order-1', retryAfterSeconds: 6 * 3600 };
    const fake = fakeActivities(env, {
      hooks: {
        issue: async () => {
          pendingUntil = (await now()) + 3 * DAY;
          return pending;
        },
        poll: async () => ((await now()) < pendingUntil ? pending : undefined),
      },
    });
    await withLifecycle(env, fake.acts, 'pending', async (h) => {
      await firstObservation(h);
      const out = update(h, renewNowUpdate, [{}]);
      await waitFor('pending', async () => fake.issues() === 1);
      await env.sleep(4 * DAY);
      const o = await out;
      expect(o.status).toBe('renewed');
      const polls = fake.calls.filter((c) => c === 'pollIssuance').length;
      expect(polls).toBeGreaterThanOrEqual(12); // every 6 h for 3 days
      expect(polls).toBeLessThanOrEqual(14);
    });
  });

  it('a CA down for a day: attempts fail and back off, the renewal lands after it recovers', async () => {
    let downUntil = 0;
    const now = async () => Number(await env.currentTimeMs());
    const fake = fakeActivities(env, {
      lifetimeMs: 30 * DAY,
      hooks: {
        issue: async () => {
          if ((await now()) < downUntil)
            throw ApplicationFailure.create({
              message: 'connect ECONNREFUSED',
              type: 'AcmeConnection',
              nonRetryable: true,
            });
        },
      },
    });
    await withLifecycle(env, fake.acts, 'down', async (h) => {
      const first = await firstObservation(h);
      downUntil = Date.parse(first.nextRenewalAt!) + DAY;
      await env.sleep(24 * DAY + 2 * HOUR);
      const failing = await h.query(statusQuery);
      expect(failing.phase).toBe('Failing');
      expect(failing.lastError?.type).toBe('AcmeConnection');
      await env.sleep(2 * DAY);
      await waitFor('renewed after the outage', async () => fake.version() === 2, { timeoutMs: 30_000 });
      const st = await h.query(statusQuery);
      // 5 min, 10, 20, ... capped at 6 h: about 9 attempts in the day, not hundreds
      expect(st.attempts).toBeGreaterThan(5);
      expect(st.attempts).toBeLessThan(15);
      expect(st.lastError).toBeNull();
    });
  });

  it('a non-retryable failure stops the attempt and is retried after the policy is fixed', async () => {
    let badPolicy = true;
    const fake = fakeActivities(env, {
      hooks: {
        issue: async () => {
          if (badPolicy)
            throw ApplicationFailure.create({
              message: 'RSA 1024 is not allowed',
              type: 'AcmeBadCsr',
              details: [{ discardCsr: true }], // the adapter's mark: this CSR must not be reused
              nonRetryable: true,
            });
        },
      },
    });
    await withLifecycle(env, fake.acts, 'fixed', async (h) => {
      await firstObservation(h);
      const failed = await update(h, renewNowUpdate, [{}]);
      expect(failed.status).toBe('failed');
      expect(failed.error).toEqual({
        type: 'AcmeBadCsr',
        message: 'RSA 1024 is not allowed',
        discardCsr: true,
      });
      expect(fake.calls).toContain('cancelRenewal'); // the stale CSR is dropped
      expect(fake.notifies.at(-1)?.kind).toBe('renewal-failed');
      const st = await h.query(statusQuery);
      expect(st.lastError?.type).toBe('AcmeBadCsr');
      expect(st.nextRenewalReason).toBe('retry after failure #1');
      badPolicy = false; // someone fixed the key policy in the vault
      await env.sleep('6 minutes');
      await waitFor('the retry to renew', async () => fake.version() === 2, { timeoutMs: 20_000 });
      expect(fake.issues()).toBe(2);
    });
  });

  it('escalates on the ladder before expiry, each step once, while renewals keep failing', async () => {
    const fake = fakeActivities(env, {
      lifetimeMs: 30 * DAY,
      policy: { daysBeforeExpiry: 20 },
      hooks: {
        issue: async () => {
          throw ApplicationFailure.create({
            message: 'account deactivated',
            type: 'AcmeUnauthorized',
            nonRetryable: true,
          });
        },
      },
    });
    await withLifecycle(env, fake.acts, 'ladder', async (h) => {
      await firstObservation(h);
      await env.sleep(31 * DAY);
      await waitFor('the expiry step', async () => fake.notifies.some((n) => n.daysLeft === 0));
      const steps = fake.notifies.filter((n) => n.kind === 'escalation').map((n) => n.daysLeft);
      expect(steps).toEqual([14, 7, 3, 1, 0]);
      const st = await h.query(statusQuery);
      expect(st.escalationsSent).toEqual([14, 7, 3, 1, 0]);
      expect(st.phase).toBe('Failing');
      expect(new Set(fake.notifies.filter((n) => n.kind === 'escalation').map((n) => n.eventId)).size).toBe(
        5,
      );
    });
  }, 150_000); // about 100 failed attempts in 31 simulated days: 15 s alone, 30 s in a loaded CI run

  it('setPolicy changes the renewal time at once and survives continue-as-new; bad input names the field', async () => {
    const fake = fakeActivities(env, { lifetimeMs: 90 * DAY });
    await withLifecycle(env, fake.acts, 'policy', async (h) => {
      const first = await firstObservation(h);
      expect(
        await refusal(h.executeUpdate(setPolicyUpdate, { args: [{ lifetimePercentage: 120 }] })),
      ).toMatch(/lifetimePercentage: expected a whole number from 11 to 99/);
      expect(
        await refusal(
          h.executeUpdate(setPolicyUpdate, { args: [{ lifetimePercentage: 50, daysBeforeExpiry: 3 }] }),
        ),
      ).toMatch(/only one of them/);
      const st = await update(h, setPolicyUpdate, [{ daysBeforeExpiry: 30 }]);
      expect(st.policy).toEqual({ source: 'override', daysBeforeExpiry: 30, jitterMinutes: 0 });
      expect(Date.parse(st.nextRenewalAt!)).toBe(Date.parse(first.notAfter!) - 30 * DAY);
      await env.sleep(61 * DAY);
      await waitFor('renewed at 60 days', async () => fake.version() === 2);
      const after = await waitFor('the next run', async () => {
        const q = await h.query(statusQuery);
        return q.cycle === 1 && q.nextRenewalAt ? q : undefined;
      });
      expect(after.policy.source).toBe('override');
      expect(Date.parse(after.nextRenewalAt!)).toBe(Date.parse(after.notAfter!) - 30 * DAY);
      const cleared = await update(h, setPolicyUpdate, [{ clear: true }]);
      expect(cleared.policy).toEqual({ source: 'default', lifetimePercentage: 80, jitterMinutes: 0 });
    });
  });

  it('syncNow re-binds without renewing, and is refused while paused', async () => {
    const fake = fakeActivities(env, {
      hooks: {
        syncBindings: async ({ thumbprint }) => [
          {
            target: 'nginx',
            binding: 'site.pem',
            before: 'OLD',
            after: thumbprint,
            status: 'bound',
            detail: 'drift fixed',
          },
        ],
      },
    });
    await withLifecycle(env, fake.acts, 'sync', async (h) => {
      await firstObservation(h);
      const outcomes = await update(h, syncNowUpdate, [{ requestedBy: 'test' }]);
      expect(outcomes).toEqual([expect.objectContaining({ status: 'bound', after: 'THUMB1' })]);
      expect(fake.version()).toBe(1);
      expect((await h.query(statusQuery)).bindings[0]?.detail).toBe('drift fixed');
      await h.signal(pauseSignal, { reason: 'freeze' });
      await waitFor('paused', async () => (await h.query(statusQuery)).phase === 'Paused');
      expect(await refusal(h.executeUpdate(syncNowUpdate, { args: [{}] }))).toMatch(/paused \(freeze\)/);
    });
  });

  it('renews at once when the policy asks for other names (PolicyChanged)', async () => {
    const fake = fakeActivities(env, {
      dnsNames: ['old.test'],
      policy: { dnsNames: ['site.test', 'www.site.test'] },
    });
    await withLifecycle(env, fake.acts, 'changed', async (h) => {
      const [o] = await waitFor('renewed for the new names', async () => {
        const hist = await h.query(historyQuery);
        return hist.length ? hist : undefined;
      });
      expect(fake.version()).toBe(2);
      expect(o?.trigger).toBe('PolicyChanged');
    });
  });
});

describe('the CA renewal window (ACME ARI)', () => {
  it('renews inside a window the CA moved earlier, and asks again after its Retry-After', async () => {
    let windowStart = 0;
    const now = async () => Number(await env.currentTimeMs());
    const fake = fakeActivities(env, {
      lifetimeMs: 90 * DAY,
      hooks: {
        // the CA plans a revocation: renew between day 10 and day 11 instead of day 72
        renewalWindow: async () => {
          if (fake.version() > 1) return null; // the new certificate has no early window
          windowStart ||= (await now()) + 10 * DAY;
          return {
            start: new Date(windowStart).toISOString(),
            end: new Date(windowStart + DAY).toISOString(),
            retryAfterSeconds: 6 * 3600,
          };
        },
      },
    });
    await withLifecycle(env, fake.acts, 'ari', async (h) => {
      await firstObservation(h);
      // the first status may come before the window is read (observe, then ask the CA): wait for the window
      const at = await waitFor('the renewal time inside the CA window', async () => {
        const next = Date.parse((await h.query(statusQuery)).nextRenewalAt!);
        return windowStart && next <= windowStart + DAY ? next : undefined;
      });
      expect(at).toBeGreaterThanOrEqual(windowStart);
      expect(at).toBeLessThanOrEqual(windowStart + DAY);
      await env.sleep(12 * DAY);
      const [o] = await waitFor('renewed in the window', async () => {
        const hist = await h.query(historyQuery);
        return hist.length ? hist : undefined;
      });
      expect(o?.trigger).toBe('NearingRenewal');
      expect(fake.version()).toBe(2);
      // asked again about every 12 h (Retry-After 6 h is raised to the 12 h minimum), not on every wake
      const asks = fake.calls.filter((c) => c === 'renewalWindow').length;
      expect(asks).toBeGreaterThanOrEqual(15);
      expect(asks).toBeLessThanOrEqual(30);
    });
  });

  it('a CA without ARI is asked once per certificate', async () => {
    const fake = fakeActivities(env, { lifetimeMs: 90 * DAY });
    await withLifecycle(env, fake.acts, 'no-ari', async (h) => {
      await firstObservation(h);
      await env.sleep(30 * DAY);
      expect(fake.calls.filter((c) => c === 'renewalWindow')).toHaveLength(1);
    });
  });
});
