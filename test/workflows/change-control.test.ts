/**
 * Change control in the lifecycle, on the time-skipping test server with in-memory activities: a renewal merged at
 * once and its re-binding held for the change window (and, near expiry, let through by the deadline with a mail
 * saying so); approval (approve, deny, timeout with reminders); a staged rollout whose canary fails (rolled back,
 * escalated, later stages untouched) and one that goes through stage by stage.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Activities, NotifyInput } from '../../activities/index';
import type { BindingOutcome } from '../../activities/types';
import type { ChangeControl } from '../../workflows/lifecycle/change-control';
import type { DriftWatchConfig } from '../../workflows/lifecycle/drift';
import {
  approveUpdate,
  denyUpdate,
  observeNowSignal,
  renewNowUpdate,
  statusQuery,
} from '../../workflows/messages';
import { liveSettingsOf, settingsAnswer } from '../../workflows/lifecycle/settings';
import { waitFor } from '../support/proc';
import {
  DAY,
  HOUR,
  fakeActivities,
  recordRuns,
  refusal,
  runsOf,
  startTestEnv,
  update,
  withLifecycle,
} from './harness';

let env: TestWorkflowEnvironment;
beforeEach(async () => {
  env = await startTestEnv();
});
afterEach(async () => {
  await env?.teardown();
});

interface SyncCall {
  at: number;
  thumbprint: string;
  only?: string[];
}

/** The fake vault and CA, plus binding targets that record every sync (and fail where `fails` says). */
function withTargets(
  targets: string[],
  fails: (target: string, thumbprint: string) => boolean = () => false,
) {
  const fake = fakeActivities(env);
  const syncs: SyncCall[] = [];
  const acts: Activities = {
    ...fake.acts,
    async bindingTargets() {
      return targets;
    },
    async syncBindings(input) {
      const only = input.only;
      syncs.push({ at: await fake.now(), thumbprint: input.thumbprint, ...(only ? { only } : {}) });
      return targets
        .filter((t) => !only || only.includes(t) || only.includes('**'))
        .map((t): BindingOutcome =>
          fails(t, input.thumbprint)
            ? {
                target: t,
                binding: 'site',
                before: input.previousThumbprint ?? null,
                after: input.previousThumbprint ?? null,
                status: 'rolled-back',
                reason: 'ProbeMismatch',
                detail: 'the endpoint served another certificate; restored',
              }
            : {
                target: t,
                binding: 'site',
                before: input.previousThumbprint ?? null,
                after: input.thumbprint,
                status: 'bound',
                detail: 'verified live',
              },
        );
    },
  };
  const topics = () =>
    fake.notifies.filter((n: NotifyInput) => n.kind === 'change-control').map((n) => n.changeControl!.topic);
  return { fake, acts, syncs, topics };
}

const recordHistories = (h: Parameters<Parameters<typeof withLifecycle>[3]>[0], name: string) =>
  recordRuns(env, h, name);

const statusOf = (h: Parameters<Parameters<typeof withLifecycle>[3]>[0]) => h.query(statusQuery);

/**
 * An observe activity that answers as the real one does (activities/index.ts): the workers' current settings
 * (`configured()`) when they differ from the fingerprint the lifecycle sent.
 */
function answeringSettings(
  observe: Activities['observe'],
  configured: () => Parameters<typeof liveSettingsOf>[0],
  looks: Array<string | undefined> = [],
): Activities['observe'] {
  return async (id, opts) => {
    looks.push(opts?.settingsFingerprint);
    const state = await observe(id);
    const settings = settingsAnswer(opts?.settingsFingerprint, liveSettingsOf(configured()));
    return settings ? { ...state, settings } : state;
  };
}

/** Every target bound to the new certificate, verified. */
const allBound = (targets: string[], input: { thumbprint: string; previousThumbprint?: string | null }) =>
  targets.map((target): BindingOutcome => ({
    target,
    binding: 'site',
    before: input.previousThumbprint ?? null,
    after: input.thumbprint,
    status: 'bound',
    detail: 'verified live',
  }));

/**
 * An hour of day in `timeZone` about twelve hours from the test server's clock (which starts at the wall clock), so
 * a one-hour window starting then is closed whenever the suite runs: a fixed hour failed the run that CI started
 * inside it. Hour 2 is skipped (the spring daylight-saving gap has none in Europe).
 */
async function closedHour(timeZone: string): Promise<number> {
  const now = Number(await env.currentTimeMs());
  const fmt = new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', hourCycle: 'h23' });
  const hour = (Number(fmt.format(now)) + 12) % 24;
  return hour === 2 ? 1 : hour;
}

describe('change windows', () => {
  it('issues at once, re-binds only in the next window, and status and mail say "waiting for window at T"', async () => {
    const { fake, acts, syncs, topics } = withTargets(['nginx']);
    const hour = await closedHour('UTC');
    const hh = String(hour).padStart(2, '0');
    const changeControl: ChangeControl = {
      windows: [{ name: 'nightly', cron: `0 ${hour} * * *`, timeZone: 'UTC', durationMinutes: 60 }],
    };
    await withLifecycle(
      env,
      acts,
      'window',
      async (h) => {
        await waitFor('first look', async () => (await statusOf(h)).thumbprint === 'THUMB1');
        const o = await update(h, renewNowUpdate, [{ reason: 'test', requestedBy: 't' }]);
        expect(o.status).toBe('renewed');
        const held = await waitFor('held', async () => {
          const st = await statusOf(h);
          return st.changeControl?.waitingUntil ? st : undefined;
        });
        // merged now, consumers untouched until the window
        expect(held.thumbprint).toBe('THUMB2');
        expect(held.changeControl!.text).toMatch(
          new RegExp(`^waiting for window at \\d{4}-\\d\\d-\\d\\dT${hh}:00:00\\.000Z`),
        );
        expect(held.changeControl!.rebind?.previousThumbprint).toBe('THUMB1');
        expect(syncs).toEqual([]);
        expect(topics()).toEqual(['waiting-for-window']);
        const mail = fake.notifies.find((n) => n.kind === 'change-control')!;
        expect(mail.changeControl!.text).toMatch(
          new RegExp(`re-binding is waiting for window at .*T${hh}:00:00\\.000Z`),
        );
        const opens = Date.parse(held.changeControl!.waitingUntil!);
        await env.sleep(opens - (await fake.now()) + 5 * 60_000);
        await waitFor(
          'bound in the window',
          async () => syncs.length === 1 && !(await statusOf(h)).changeControl,
        );
        expect(syncs[0]!.thumbprint).toBe('THUMB2');
        expect(syncs[0]!.at).toBeGreaterThanOrEqual(opens);
        expect(new Date(syncs[0]!.at).getUTCHours()).toBe(hour);
        const st = await statusOf(h);
        expect(st.bindings.map((b) => b.status)).toEqual(['bound']);
      },
      { changeControl },
    );
  });

  it("a freeze added to the workers' configuration holds a lifecycle enrolled before it; removed, it lets go", async () => {
    const { fake, acts, syncs } = withTargets(['nginx']);
    // the workers' configuration: no change control when the lifecycle was enrolled (its input has none)
    let configured: ChangeControl | undefined;
    const looks: Array<string | undefined> = [];
    const withSettings: Activities = {
      ...acts,
      observe: answeringSettings(acts.observe, () => ({ changeControl: configured }), looks),
    };
    const start = await fake.now();
    await withLifecycle(env, withSettings, 'configured-freeze', async (h) => {
      await waitFor('first look', async () => (await statusOf(h)).thumbprint === 'THUMB1');
      expect((await statusOf(h)).changeControl).toBeFalsy();
      configured = {
        deadlineHours: 1,
        freezes: [
          {
            name: 'holidays',
            start: new Date(start - DAY).toISOString(),
            end: new Date(start + 10 * DAY).toISOString(),
          },
        ],
      };
      expect((await update(h, renewNowUpdate, [{ reason: 'test' }])).status).toBe('renewed');
      const held = await waitFor('held by the configured freeze', async () => {
        const st = await statusOf(h);
        return st.changeControl?.waitingUntil ? st : undefined;
      });
      expect(held.thumbprint).toBe('THUMB2');
      expect(held.changeControl!.text).toMatch(/freeze "holidays"/);
      expect(syncs).toEqual([]);
      // the freeze lifted from the configuration: the next look takes that too, and the version is bound
      configured = undefined;
      await h.signal(observeNowSignal, {});
      await waitFor('bound once the freeze is gone', async () => syncs.length === 1);
      expect(syncs[0]!.thumbprint).toBe('THUMB2');
      expect((await statusOf(h)).changeControl).toBeFalsy();
      // every look sent the fingerprint of what it ran under
      expect(looks.every((f) => typeof f === 'string' && /^[0-9a-f]{16}$/.test(f))).toBe(true);
      await recordHistories(h, 'configured-freeze');
    });
  });

  it('the deadline before expiry overrides a freeze, with an escalation mail saying so', async () => {
    const fake = fakeActivities(env, { lifetimeMs: 6 * DAY });
    const syncs: string[] = [];
    const acts: Activities = {
      ...fake.acts,
      bindingTargets: async () => ['nginx'],
      async syncBindings(input) {
        syncs.push(input.thumbprint);
        return [];
      },
    };
    const start = await fake.now();
    const changeControl: ChangeControl = {
      deadlineHours: 72,
      freezes: [
        {
          name: 'year-end',
          start: new Date(start - DAY).toISOString(),
          end: new Date(start + 60 * DAY).toISOString(),
        },
      ],
    };
    await withLifecycle(
      env,
      acts,
      'deadline',
      async (h) => {
        const first = await waitFor('first look', async () => {
          const st = await statusOf(h);
          return st.thumbprint === 'THUMB1' ? st : undefined;
        });
        await update(h, renewNowUpdate, [{ reason: 'test' }]);
        const held = await waitFor('held by the freeze', async () => {
          const st = await statusOf(h);
          return st.changeControl?.waitingUntil ? st : undefined;
        });
        const deadline = Date.parse(first.notAfter!) - 72 * HOUR;
        expect(Date.parse(held.changeControl!.waitingUntil!)).toBe(deadline);
        expect(held.changeControl!.text).toMatch(/freeze "year-end"; the deadline before expiry comes first/);
        expect(syncs).toEqual([]);
        await env.sleep(deadline - (await fake.now()) + 60_000);
        await waitFor('bound at the deadline', async () => syncs.length === 1);
        const override = fake.notifies.find(
          (n) => n.kind === 'change-control' && n.changeControl?.topic === 'deadline-override',
        );
        expect(override?.changeControl?.text).toMatch(/overriding change windows and freezes/);
        expect(syncs).toEqual(['THUMB2']);
      },
      { changeControl },
    );
  });
});

describe('a version the vault made (observe mode)', () => {
  it('is held for the window like a renewal, then bound and announced', async () => {
    const fake = fakeActivities(env, {
      policy: { issuerName: 'DigiCert', lifetimePercentage: 80, lifetimeAction: 'AutoRenew' },
    });
    const syncs: Array<{ at: number; thumbprint: string }> = [];
    const acts: Activities = {
      ...fake.acts,
      bindingTargets: async () => ['app'],
      async syncBindings(input) {
        syncs.push({ at: await fake.now(), thumbprint: input.thumbprint });
        return allBound(['app'], input);
      },
    };
    const changeControl: ChangeControl = {
      windows: [
        {
          name: 'nightly',
          cron: `30 ${await closedHour('Europe/Berlin')} * * *`,
          timeZone: 'Europe/Berlin',
          durationMinutes: 60,
        },
      ],
    };
    await withLifecycle(
      env,
      acts,
      'observe-window',
      async (h) => {
        await waitFor('first look', async () => (await statusOf(h)).thumbprint === 'THUMB1');
        await fake.vaultRenews();
        await h.signal('observeNow', {});
        const held = await waitFor('held', async () => {
          const st = await statusOf(h);
          return st.changeControl?.waitingUntil ? st : undefined;
        });
        expect(held.changeControl!.rebind).toMatchObject({
          thumbprint: 'THUMB2',
          previousThumbprint: 'THUMB1',
        });
        expect(syncs).toEqual([]);
        const opens = Date.parse(held.changeControl!.waitingUntil!);
        await env.sleep(opens - (await fake.now()) + 60_000);
        await waitFor('bound and announced', async () =>
          fake.notifies.some((n) => n.kind === 'renewed' && n.outcome?.trigger === 'VaultRenewed'),
        );
        expect(syncs.map((c) => c.thumbprint)).toEqual(['THUMB2']);
        expect(syncs[0]!.at).toBeGreaterThanOrEqual(opens);
        const st = await statusOf(h);
        expect(st.previousThumbprint).toBe('THUMB1');
        expect(st.changeControl ?? null).toBeNull();
      },
      { changeControl },
    );
  });
});

describe('rules that change while a re-binding is held', () => {
  it("the vault's version held by a configured window, then the window removed: bound once, announced once", async () => {
    const fake = fakeActivities(env, {
      policy: { issuerName: 'DigiCert', lifetimePercentage: 80, lifetimeAction: 'AutoRenew' },
    });
    const syncs: string[] = [];
    // the workers' configuration, answered at each look as the observe activity does
    let configured: ChangeControl | undefined = {
      windows: [{ name: 'never', cron: '0 0 30 2 *', timeZone: 'UTC', durationMinutes: 60 }],
    };
    const acts: Activities = {
      ...fake.acts,
      bindingTargets: async () => ['app'],
      observe: answeringSettings(fake.acts.observe, () => ({ changeControl: configured })),
      async syncBindings(input) {
        syncs.push(input.thumbprint);
        return allBound(['app'], input);
      },
    };
    await withLifecycle(env, acts, 'held-rules-removed', async (h) => {
      await waitFor('first look', async () => (await statusOf(h)).thumbprint === 'THUMB1');
      await fake.vaultRenews();
      await h.signal(observeNowSignal, {});
      await waitFor('held', async () => !!(await statusOf(h)).changeControl?.waitingUntil);
      expect(syncs).toEqual([]);
      configured = undefined;
      await h.signal(observeNowSignal, {});
      const renewed = () => fake.notifies.filter((n) => n.kind === 'renewed');
      await waitFor(
        'bound and announced',
        async () => renewed().length > 0 && !(await statusOf(h)).changeControl,
      );
      // a few more looks: nothing is bound or announced again
      for (let i = 0; i < 3; i++) {
        await h.signal(observeNowSignal, {});
        await env.sleep(60_000);
      }
      await statusOf(h);
      expect(syncs).toEqual(['THUMB2']);
      expect(renewed()).toHaveLength(1);
      expect((await statusOf(h)).previousThumbprint).toBe('THUMB1');
      await recordHistories(h, 'held-rules-removed');
    });
  });
});

describe('the drift watch from the configuration', () => {
  it('turned off and on again by the workers configuration, in the running lifecycle', async () => {
    const fake = fakeActivities(env);
    let configured: DriftWatchConfig | undefined;
    const acts: Activities = {
      ...fake.acts,
      observe: answeringSettings(fake.acts.observe, () => ({ driftWatch: configured })),
    };
    await withLifecycle(env, acts, 'drift-settings', async (h) => {
      await waitFor('watching (the default, daily)', async () => !!(await statusOf(h)).drift);
      configured = { everyMinutes: 0 };
      await h.signal(observeNowSignal, {});
      await waitFor('the watch off', async () => !(await statusOf(h)).drift);
      configured = { everyMinutes: 60 };
      await h.signal(observeNowSignal, {});
      await waitFor('the watch on again', async () => !!(await statusOf(h)).drift);
    });
  });
});

describe('a second renewal while the first is held', () => {
  it('keeps the deadline and rollback target of the certificate consumers still serve', async () => {
    const fake = fakeActivities(env, { lifetimeMs: 30 * DAY });
    const acts: Activities = { ...fake.acts, bindingTargets: async () => ['nginx'] };
    const changeControl: ChangeControl = {
      // never opens (30 February): the wait ends at the deadline before expiry, whenever the test runs (a leap
      // day would come before it in February 2028)
      windows: [{ name: 'never', cron: '0 0 30 2 *', timeZone: 'UTC', durationMinutes: 60 }],
    };
    await withLifecycle(
      env,
      acts,
      'held-twice',
      async (h) => {
        const first = await waitFor('first look', async () => {
          const st = await statusOf(h);
          return st.thumbprint === 'THUMB1' ? st : undefined;
        });
        await update(h, renewNowUpdate, [{ reason: 'one' }]);
        await waitFor('held', async () => (await statusOf(h)).changeControl?.rebind?.thumbprint === 'THUMB2');
        await update(h, renewNowUpdate, [{ reason: 'two', force: true }]);
        const st = await waitFor('held again', async () => {
          const s = await statusOf(h);
          return s.changeControl?.rebind?.thumbprint === 'THUMB3' && s.changeControl.waitingUntil
            ? s
            : undefined;
        });
        expect(st.changeControl!.rebind!.previousThumbprint).toBe('THUMB1');
        expect(Date.parse(st.changeControl!.waitingUntil!)).toBe(Date.parse(first.notAfter!) - 72 * HOUR);
        expect(fake.calls).not.toContain('syncBindings');
      },
      { changeControl },
    );
  });
});

describe('windows ignored when told to', () => {
  it('a renew with ignoreWindows (an emergency wave) re-binds at once, outside the window', async () => {
    const { acts, syncs, topics } = withTargets(['nginx']);
    const changeControl: ChangeControl = {
      windows: [{ name: 'never-now', cron: '0 0 29 2 *', timeZone: 'UTC', durationMinutes: 1 }],
    };
    await withLifecycle(
      env,
      acts,
      'ignore-windows',
      async (h) => {
        await waitFor('first look', async () => (await statusOf(h)).thumbprint === 'THUMB1');
        await update(h, renewNowUpdate, [{ reason: 'CA distrust', ignoreWindows: true }]);
        await waitFor('bound at once', async () => syncs.length === 1 && !(await statusOf(h)).changeControl);
        expect(syncs[0]!.thumbprint).toBe('THUMB2');
        expect(topics()).toEqual([]);
      },
      { changeControl },
    );
  });
});

describe('approval before issuance', () => {
  it('the renewal waits for approval, then issues once approved; the next renewal asks again', async () => {
    const fake = fakeActivities(env, { lifetimeMs: 10 * DAY });
    const changeControl: ChangeControl = { approval: [{ name: 'issue', before: 'issue' }] };
    await withLifecycle(
      env,
      fake.acts,
      'issue-approval',
      async (h) => {
        const first = await waitFor('first look', async () => {
          const st = await statusOf(h);
          return st.nextRenewalAt ? st : undefined;
        });
        await env.sleep(Date.parse(first.nextRenewalAt!) - (await fake.now()) + HOUR);
        const st = await waitFor('approval asked', async () => {
          const s = await statusOf(h);
          return s.changeControl?.approval?.status === 'pending' ? s : undefined;
        });
        expect(st.changeControl!.approval!.before).toBe('issue');
        expect(fake.issues()).toBe(0);
        expect(fake.notifies.map((n) => n.changeControl?.topic).filter(Boolean)).toEqual([
          'approval-requested',
        ]);
        await update(h, approveUpdate, [{ by: 'bob' }]);
        await waitFor('issued', async () => (await statusOf(h)).thumbprint === 'THUMB2');
        expect(fake.issues()).toBe(1);
        const after = await waitFor('renewed and rested', async () => {
          const s = await statusOf(h);
          return s.thumbprint === 'THUMB2' && s.nextRenewalAt && !s.changeControl ? s : undefined;
        });
        await env.sleep(Date.parse(after.nextRenewalAt!) - (await fake.now()) + HOUR);
        await waitFor(
          'asked again',
          async () => (await statusOf(h)).changeControl?.approval?.status === 'pending',
        );
        expect(fake.notifies.filter((n) => n.changeControl?.topic === 'approval-requested')).toHaveLength(2);
        expect(fake.issues()).toBe(1);
      },
      { changeControl },
    );
  });
});

describe('approval before re-binding', () => {
  const changeControl: ChangeControl = {
    approval: [{ name: 'prod', approvers: ['alice'], reminderHours: 12, timeoutHours: 48 }],
  };

  it('approve: refused for a non-approver, then bound once alice approves; who approved is recorded', async () => {
    const { acts, syncs, topics } = withTargets(['nginx']);
    await withLifecycle(
      env,
      acts,
      'approve',
      async (h) => {
        await waitFor('first look', async () => (await statusOf(h)).thumbprint === 'THUMB1');
        expect(await refusal(update(h, approveUpdate, [{ by: 'alice' }]))).toMatch(
          /nothing waiting for approval/,
        );
        await update(h, renewNowUpdate, [{ reason: 'test' }]);
        const pending = await waitFor('approval asked', async () => {
          const st = await statusOf(h);
          return st.changeControl?.approval?.status === 'pending' ? st : undefined;
        });
        expect(pending.changeControl!.text).toMatch(/^waiting for approval since/);
        expect(topics()).toEqual(['approval-requested']);
        expect(await refusal(update(h, approveUpdate, [{ by: 'mallory' }]))).toMatch(
          /^by: mallory is not an approver of rule "prod"/,
        );
        expect(syncs).toEqual([]);
        const answer = await update(h, approveUpdate, [{ by: 'alice' }]);
        expect(answer?.approval).toMatchObject({ status: 'approved', by: 'alice' });
        await waitFor('bound', async () => syncs.length === 1 && !(await statusOf(h)).changeControl);
        expect(syncs[0]!.thumbprint).toBe('THUMB2');
        // the decision (with its author) is an accepted update in the history: the audit trail
        const events = [];
        for (const runId of await runsOf(env, h))
          events.push(
            ...((await env.client.workflow.getHandle(h.workflowId, runId).fetchHistory()).events ?? []),
          );
        const accepted = events
          .map((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest)
          .filter((r) => r?.input?.name === 'approve');
        const payload = accepted[0]?.input?.args?.payloads?.[0]?.data;
        expect(payload && JSON.parse(Buffer.from(payload).toString())).toEqual({ by: 'alice' });
        expect(accepted).toHaveLength(1);
      },
      { changeControl },
    );
  });

  it('deny: the new version stays merged but unbound, and people are told', async () => {
    const { fake, acts, syncs, topics } = withTargets(['nginx']);
    await withLifecycle(
      env,
      acts,
      'deny',
      async (h) => {
        await waitFor('first look', async () => (await statusOf(h)).thumbprint === 'THUMB1');
        await update(h, renewNowUpdate, [{ reason: 'test' }]);
        await waitFor(
          'approval asked',
          async () => (await statusOf(h)).changeControl?.approval?.status === 'pending',
        );
        expect(await refusal(update(h, denyUpdate, [{ by: 'alice' }]))).toMatch(/^reason: expected why/);
        await update(h, denyUpdate, [{ by: 'alice', reason: 'change freeze for the launch' }]);
        const st = await waitFor('denied and reported', async () => {
          const s = await statusOf(h);
          return s.changeControl?.rebind?.stopped && topics().includes('approval-denied') ? s : undefined;
        });
        expect(st.thumbprint).toBe('THUMB2'); // merged in the vault
        expect(st.changeControl!.rebind!.stopped).toMatchObject({
          why: 'Denied',
          detail: 'change freeze for the launch',
        });
        expect(st.changeControl!.text).toMatch(/denied: change freeze for the launch .*unbound/);
        await env.sleep(3 * DAY);
        expect(syncs).toEqual([]);
        expect(topics().filter((t) => t === 'approval-denied')).toHaveLength(1);
        const mail = fake.notifies.find((n) => n.changeControl?.topic === 'approval-denied')!;
        expect(mail.changeControl!.text).toMatch(/denied by alice: change freeze for the launch/);
      },
      { changeControl },
    );
  });

  it('timeout: reminders on schedule, one escalation, still unbound', async () => {
    const { acts, syncs, topics } = withTargets(['nginx']);
    await withLifecycle(
      env,
      acts,
      'approval-timeout',
      async (h) => {
        await waitFor('first look', async () => (await statusOf(h)).thumbprint === 'THUMB1');
        await update(h, renewNowUpdate, [{ reason: 'test' }]);
        await waitFor(
          'approval asked',
          async () => (await statusOf(h)).changeControl?.approval?.status === 'pending',
        );
        await env.sleep(49 * HOUR);
        await waitFor('escalated', async () => topics().includes('approval-timeout'));
        const t = topics();
        expect(t[0]).toBe('approval-requested');
        expect(t.filter((x) => x === 'approval-reminder').length).toBeGreaterThanOrEqual(3);
        expect(t.filter((x) => x === 'approval-timeout')).toHaveLength(1);
        expect(syncs).toEqual([]);
        const st = await statusOf(h);
        expect(st.changeControl!.text).toMatch(/escalated: no answer in time/);
      },
      { changeControl },
    );
  });
});

describe('staged rollout', () => {
  const changeControl: ChangeControl = {
    rollout: [{ name: 'canary-first', stages: [['canary', 'canary-b'], ['web-1']] }],
  };

  it('a failing canary is rolled back, the rollout stops before the rest, and people are told', async () => {
    const { fake, acts, syncs, topics } = withTargets(
      ['web-2', 'canary', 'web-1', 'canary-b'],
      (t, thumbprint) => t === 'canary' && thumbprint === 'THUMB2',
    );
    await withLifecycle(
      env,
      acts,
      'canary-fails',
      async (h) => {
        await waitFor('first look', async () => (await statusOf(h)).thumbprint === 'THUMB1');
        await update(h, renewNowUpdate, [{ reason: 'test' }]);
        const st = await waitFor('stopped', async () => {
          const s = await statusOf(h);
          return s.changeControl?.rebind?.stopped && topics().includes('rollout-failed') ? s : undefined;
        });
        // the canary stage, then canary-b (which took the new certificate) rolled back to the previous one
        expect(syncs.map((c) => [c.thumbprint, c.only])).toEqual([
          ['THUMB2', ['canary', 'canary-b']],
          ['THUMB1', ['canary-b']],
        ]);
        expect(st.changeControl!.rebind!.stages).toEqual([['canary', 'canary-b'], ['web-1'], ['web-2']]);
        expect(st.changeControl!.rebind!.stopped).toMatchObject({ why: 'StageFailed', stage: 0 });
        expect(st.changeControl!.text).toMatch(/^rollout stopped at stage 1: canary site: ProbeMismatch/);
        expect(st.bindings.map((b) => [b.target, b.status])).toEqual([
          ['canary', 'rolled-back'],
          ['canary-b', 'rolled-back'],
        ]);
        const mail = fake.notifies.find((n) => n.changeControl?.topic === 'rollout-failed')!;
        expect(mail.changeControl!.text).toMatch(/stopped at stage 1/);
        expect(mail.bindings?.length).toBe(2);
        await env.sleep(2 * DAY);
        expect(syncs).toHaveLength(2); // nothing retried by itself, web-1 and web-2 never touched
        await recordHistories(h, 'change-control-canary');
      },
      { changeControl },
    );
  });

  it('stage by stage when every stage verifies: canary, named stage, the rest', async () => {
    const { acts, syncs } = withTargets(['web-2', 'canary', 'web-1', 'canary-b']);
    await withLifecycle(
      env,
      acts,
      'canary-ok',
      async (h) => {
        await waitFor('first look', async () => (await statusOf(h)).thumbprint === 'THUMB1');
        await update(h, renewNowUpdate, [{ reason: 'test' }]);
        await waitFor('all stages', async () => syncs.length === 3 && !(await statusOf(h)).changeControl);
        expect(syncs.map((c) => c.only)).toEqual([['canary', 'canary-b'], ['web-1'], ['web-2']]);
        expect(syncs.every((c) => c.thumbprint === 'THUMB2')).toBe(true);
        const st = await statusOf(h);
        expect(st.bindings.every((b) => b.status === 'bound')).toBe(true);
        expect(st.bindings).toHaveLength(4);
      },
      { changeControl },
    );
  });
});
