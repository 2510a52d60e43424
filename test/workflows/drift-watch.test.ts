/**
 * Drift watch on the time-skipping test server with in-memory activities: a binding found serving another
 * certificate is re-synced (reason BindingDrift) and reported in status; a probe that cannot run, or a binding that
 * cannot be probed, says so in status instead of looking healthy; and the safety buffer shows.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BindingProbe } from '../../activities/types';
import { statusQuery } from '../../workflows/messages';
import { waitFor } from '../support/proc';
import { DAY, HOUR, fakeActivities, startTestEnv, withLifecycle, type LifecycleHandle } from './harness';

let env: TestWorkflowEnvironment;
beforeEach(async () => {
  env = await startTestEnv();
});
afterEach(async () => {
  await env?.teardown();
});

const firstObservation = (h: LifecycleHandle) =>
  waitFor('the first observation', async () => {
    const st = await h.query(statusQuery);
    return st.thumbprint && st.nextRenewalAt ? st : undefined;
  });

const answer = (state: BindingProbe['state'], served: string | null, detail = 'probed'): BindingProbe => ({
  target: 'web',
  binding: '/etc/nginx/site.pem',
  state,
  served,
  detail,
});

describe('drift watch', () => {
  it('a binding found serving another certificate is re-synced with reason BindingDrift and reported', async () => {
    let serving = 'THUMB1';
    const probes: string[] = [];
    const syncs: Array<{ thumbprint: string }> = [];
    const fake = fakeActivities(env, {
      hooks: {
        probeBindings: async ({ thumbprint }) => {
          probes.push(thumbprint);
          return [answer(serving === thumbprint ? 'serving' : 'drift', serving)];
        },
        syncBindings: async ({ thumbprint }) => {
          syncs.push({ thumbprint });
          serving = thumbprint;
          return [
            {
              target: 'web',
              binding: '/etc/nginx/site.pem',
              before: 'OTHER',
              after: thumbprint,
              status: 'bound',
              detail: `wrote ${thumbprint}`,
            },
          ];
        },
      },
    });
    await withLifecycle(
      env,
      fake.acts,
      'drift',
      async (h) => {
        const first = await firstObservation(h);
        expect(first.drift?.checkedAt).toBeNull(); // not probed yet: the first probe comes one interval in
        const nextAt = Date.parse(first.drift!.nextAt!);
        // scheduled daily with up to an hour of jitter either way
        expect(nextAt - (await fake.now())).toBeGreaterThan(22 * HOUR);
        expect(nextAt - (await fake.now())).toBeLessThan(26 * HOUR);

        await env.sleep(26 * HOUR);
        const healthy = await waitFor('the first probe', async () => {
          const st = await h.query(statusQuery);
          return st.drift?.checkedAt ? st : undefined;
        });
        expect(healthy.drift!.bindings.map((b) => b.state)).toEqual(['serving']);
        expect(syncs).toEqual([]);

        // someone deploys another certificate onto the site
        serving = 'OTHER';
        await env.sleep(26 * HOUR);
        const fixed = await waitFor('the drift re-synced', async () => {
          const st = await h.query(statusQuery);
          return st.drift?.lastDrift ? st : undefined;
        });
        expect(syncs).toEqual([{ thumbprint: 'THUMB1' }]);
        expect(serving).toBe('THUMB1');
        expect(fixed.drift!.lastDrift).toMatchObject({
          bindings: ['web (/etc/nginx/site.pem)'],
          resynced: true,
        });
        expect(fixed.drift!.bindings[0]).toMatchObject({ state: 'serving', served: 'THUMB1' });
        expect(fixed.drift!.bindings[0]!.detail).toMatch(/re-synced \(BindingDrift\)/);
        expect(fixed.notes!.join('\n')).toMatch(/BindingDrift at .*served another certificate; re-synced/);
        expect(fixed.bindings[0]).toMatchObject({ status: 'bound', after: 'THUMB1' });
        // no renewal for it: the certificate stays the same
        expect(fake.issues()).toBe(0);
        expect(fixed.thumbprint).toBe('THUMB1');

        // the next probes find it serving again: no second sync
        await env.sleep(2 * DAY);
        await waitFor('more probes', async () => (probes.length >= 4 ? true : undefined));
        expect(syncs).toHaveLength(1);
      },
      { driftWatch: { everyMinutes: 24 * 60, jitterMinutes: 60 } },
    );
  });

  it('a probe that cannot run, and a binding that cannot be probed, say so in status', async () => {
    let fail = true;
    const fake = fakeActivities(env, {
      hooks: {
        probeBindings: async () => {
          if (fail)
            throw ApplicationFailure.create({
              message: 'vault unreachable',
              type: 'VaultUnavailable',
              nonRetryable: true,
            });
          return [
            answer('unprobeable', null, 'a app-service target is not probed between syncs'),
            answer('unreachable', null, 'TLS probe of 127.0.0.1:1 failed: ECONNREFUSED'),
          ];
        },
      },
    });
    await withLifecycle(
      env,
      fake.acts,
      'drift-unprobed',
      async (h) => {
        await firstObservation(h);
        await env.sleep(7 * HOUR);
        const failed = await waitFor('the failed probe in status', async () => {
          const st = await h.query(statusQuery);
          return st.drift?.checkedAt ? st : undefined;
        });
        expect(failed.drift!.bindings).toEqual([
          expect.objectContaining({
            state: 'unreachable',
            detail: expect.stringMatching(/could not run: VaultUnavailable/),
          }),
        ]);
        expect(failed.notes!.join('\n')).toMatch(
          /did not answer the probe at .*VaultUnavailable: vault unreachable/,
        );

        fail = false;
        await env.sleep(7 * HOUR);
        const st = await waitFor('the next probe in status', async () => {
          const s = await h.query(statusQuery);
          return s.drift?.bindings.length === 2 ? s : undefined;
        });
        const notes = st.notes!.join('\n');
        expect(notes).toMatch(/cannot be probed: a app-service target is not probed between syncs/);
        expect(notes).toMatch(/did not answer the probe .*ECONNREFUSED/);
        // nothing to re-sync: neither answer is drift
        expect(fake.calls).not.toContain('syncBindings');
        expect(st.phase).toBe('Waiting');
      },
      { driftWatch: { everyMinutes: 6 * 60, jitterMinutes: 0 } },
    );
  });

  it('the history cost of the watch: a probe a day adds a bounded number of events', async () => {
    const fake = fakeActivities(env);
    await withLifecycle(
      env,
      fake.acts,
      'drift-cost',
      async (h) => {
        await firstObservation(h);
        const before = (await h.fetchHistory()).events!.length;
        await env.sleep(10 * DAY + HOUR);
        const probes = await waitFor('ten daily probes', async () => {
          const n = fake.calls.filter((c) => c === 'probeBindings').length;
          return n >= 10 ? n : undefined;
        });
        const events = (await h.fetchHistory()).events!.length - before;
        console.log(
          `[drift-watch] ${probes} probes added ${events} history events (${(events / probes).toFixed(1)} each)`,
        );
        expect(probes).toBeLessThanOrEqual(11); // daily, not more
        expect(events / probes).toBeLessThanOrEqual(20);
      },
      { driftWatch: { everyMinutes: 24 * 60, jitterMinutes: 60 } },
    );
  });

  it('shows the safety buffer; a short-lived certificate renewed late has a small one, noted', async () => {
    const fake = fakeActivities(env, { lifetimeMs: 160 * HOUR });
    await withLifecycle(
      env,
      fake.acts,
      'buffer',
      async (h) => {
        const st = await firstObservation(h);
        // 160 hours at 80 %: 32 hours left at renewal; a one-day outage leaves about 6
        expect(st.safetyBuffer).toMatchObject({ state: 'small', leftAtRenewalMs: 32 * HOUR });
        expect(st.safetyBuffer!.bufferMs).toBeGreaterThan(4 * HOUR);
        expect(st.safetyBuffer!.bufferMs).toBeLessThan(8 * HOUR);
        expect(st.notes!.join('\n')).toMatch(
          /safety buffer small: 6 hours left after a CA outage of 24 hours/,
        );
      },
      { driftWatch: { everyMinutes: 0 } },
    );
  });
});
