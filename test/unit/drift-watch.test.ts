/** Drift watch's pure parts (workflows/lifecycle/drift.ts): the probe schedule with jitter, the BindingDrift rule. */
import { describe, expect, it } from 'vitest';
import type { BindingProbe } from '../../activities/types';
import { decide, type Facts } from '../../workflows/lifecycle/decide';
import {
  bindingDrift,
  driftConfig,
  driftNotes,
  initialDrift,
  nextProbeAt,
  probeDue,
  probed,
  resynced,
  validateDriftWatch,
  type DriftState,
} from '../../workflows/lifecycle/drift';
import { initialState, type LifecycleState } from '../../workflows/lifecycle/state';
import { effectivePolicy } from '../../workflows/policy';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const T0 = new Date('2026-06-01T00:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const probe = (state: BindingProbe['state'], served: string | null, target = 'web'): BindingProbe => ({
  target,
  binding: `/etc/ssl/${target}.pem`,
  state,
  served,
  detail: 'probed',
});

describe('probe schedule', () => {
  const config = driftConfig({ everyMinutes: 24 * 60, jitterMinutes: 60 });

  it('daily, each interval moved by a stable jitter within ±1 hour, different per certificate', () => {
    let d = initialDrift(T0);
    const gaps: number[] = [];
    for (let i = 0; i < 30; i++) {
      const next = nextProbeAt(d, config, 'kv/a')!;
      gaps.push(next.getTime() - Date.parse(d.checkedAt!));
      expect(nextProbeAt(d, config, 'kv/a')).toEqual(next); // deterministic: replays agree
      d = probed(d, 'T1', [], next);
    }
    for (const g of gaps) {
      expect(g).toBeGreaterThanOrEqual(23 * HOUR);
      expect(g).toBeLessThanOrEqual(25 * HOUR);
    }
    expect(new Set(gaps).size).toBeGreaterThan(20); // jittered, not one fixed offset
    // a fleet spreads out: 100 certificates' first probes are not at one moment
    const firsts = Array.from({ length: 100 }, (_, i) =>
      nextProbeAt(initialDrift(T0), config, `kv/c${i}`)!.getTime(),
    );
    expect(Math.max(...firsts) - Math.min(...firsts)).toBeGreaterThan(90 * MIN);
  });

  it('jitter never exceeds half the interval; 0 turns the watch off', () => {
    expect(driftConfig({ everyMinutes: 60, jitterMinutes: 600 }).jitterMinutes).toBe(30);
    const off = driftConfig({ everyMinutes: 0 });
    expect(nextProbeAt(initialDrift(T0), off, 'kv/a')).toBeNull();
    expect(
      probeDue({ d: initialDrift(T0), config: off, key: 'kv/a', now: at(400 * DAY), woke: true }),
    ).toBeUndefined();
  });

  it('due on schedule, and on a wake once the last probe is older than onWakeMinutes', () => {
    const d = initialDrift(T0);
    const f = { d, config, key: 'kv/a' };
    expect(probeDue({ ...f, now: at(30 * MIN), woke: true })).toBeUndefined(); // probed (started) 30 min ago
    expect(probeDue({ ...f, now: at(2 * HOUR), woke: false })).toBeUndefined();
    expect(probeDue({ ...f, now: at(2 * HOUR), woke: true })).toBe('wake');
    expect(probeDue({ ...f, now: at(25 * HOUR), woke: false })).toBe('schedule');
  });

  it('validates the configuration, naming the field', () => {
    expect(validateDriftWatch({ everyMinutes: 1440, jitterMinutes: 60, onWakeMinutes: 30 })).toBeUndefined();
    expect(validateDriftWatch({ everyMinutes: -1 })).toMatch(
      /^driftWatch\.everyMinutes: expected a whole number/,
    );
    expect(validateDriftWatch({ everyMinutes: 1.5 })).toMatch(/^driftWatch\.everyMinutes/);
    expect(validateDriftWatch({ onWakeMinutes: 0 })).toMatch(/^driftWatch\.onWakeMinutes/);
    expect(validateDriftWatch({ every: 5 })).toMatch(/^driftWatch\.every: unknown field/);
    expect(validateDriftWatch('daily')).toBe('driftWatch: expected an object');
  });
});

describe('BindingDrift', () => {
  const d = probed(initialDrift(T0), 'T1', [probe('serving', 'T1'), probe('drift', 'OLD', 'api')], at(DAY));

  it('fires only for drift against the current thumbprint', () => {
    expect(bindingDrift(d, 'T1')).toBe(
      'BindingDrift: 1 binding not on T1: api (/etc/ssl/api.pem) serves OLD',
    );
    expect(bindingDrift(d, 't1')).toBeDefined(); // thumbprints compare case-insensitively
    expect(bindingDrift(d, 'T2')).toBeUndefined(); // the probe was about an older version
    expect(
      bindingDrift(probed(d, 'T1', [probe('unreachable', null), probe('unprobeable', null)], at(DAY)), 'T1'),
    ).toBeUndefined();
    expect(bindingDrift(undefined, 'T1')).toBeUndefined();
  });

  it('after the re-sync: re-synced bindings serve, a failed one says so; notes never call them healthy', () => {
    const ok = resynced(
      d,
      [
        {
          target: 'api',
          binding: '/etc/ssl/api.pem',
          before: 'OLD',
          after: 'T1',
          status: 'bound',
          detail: 'wrote T1',
        },
      ],
      at(DAY),
    );
    expect(ok.bindings.map((b) => b.state)).toEqual(['serving', 'serving']);
    expect(ok.lastDrift).toEqual({
      at: at(DAY).toISOString(),
      bindings: ['api (/etc/ssl/api.pem)'],
      resynced: true,
    });
    expect(bindingDrift(ok, 'T1')).toBeUndefined(); // no loop
    const bad = resynced(
      d,
      [
        {
          target: 'api',
          binding: '/etc/ssl/api.pem',
          before: 'OLD',
          after: null,
          status: 'failed',
          detail: 'nginx -t failed',
        },
      ],
      at(DAY),
    );
    expect(bad.bindings[1]).toMatchObject({ state: 'resync-failed' });
    expect(driftNotes(bad).join('\n')).toMatch(
      /api \(\/etc\/ssl\/api.pem\) drifted and re-sync failed \(BindingDrift\): nginx -t failed/,
    );
    const unseen = probed(
      d,
      'T1',
      [probe('unprobeable', null, 'gw'), probe('unreachable', null, 'lb')],
      at(2 * DAY),
    );
    const notes = driftNotes(unseen).join('\n');
    expect(notes).toMatch(/binding gw .* cannot be probed/);
    expect(notes).toMatch(/binding lb .* did not answer the probe/);
  });
});

describe('decide: the probe and the BindingDrift rule in the chain', () => {
  const observed = {
    id: 'kv/a',
    vault: 'kv',
    name: 'a',
    version: 'v1',
    thumbprint: 'T1',
    notBefore: T0.toISOString(),
    notAfter: at(90 * DAY).toISOString(),
    subject: 'CN=a',
    dnsNames: ['a.test'],
    tags: {},
    policy: null,
    key: null,
    pendingOperation: false,
  } as unknown as LifecycleState['observed'];
  const state = (drift: DriftState | undefined, over: Partial<LifecycleState> = {}): LifecycleState => ({
    ...initialState(),
    observed,
    observedAt: T0.toISOString(),
    known: { version: 'v1', thumbprint: 'T1', notAfter: at(90 * DAY).toISOString() },
    drift,
    // the CA has no renewal window (ARI): nothing to ask
    ari: { thumbprint: 'T1', offered: false, window: null, checkAt: at(400 * DAY).toISOString() },
    ...over,
  });
  const facts = (s: LifecycleState, now: Date, woke = false, watch = true): Facts => ({
    workflowId: 'certificate:kv/a',
    certificateId: 'kv/a',
    now,
    mode: 'issue',
    s,
    observeError: null,
    policy: effectivePolicy(null),
    syncRequested: false,
    retired: null,
    drift: watch ? { config: driftConfig(undefined), woke } : null,
  });

  it('waits until the next probe, then probes', () => {
    const s = state(initialDrift(T0));
    const waiting = decide(facts(s, at(HOUR)));
    expect(waiting.kind).toBe('wait');
    const until = (waiting as { until: Date }).until.getTime();
    expect(until).toBeGreaterThanOrEqual(at(23 * HOUR).getTime());
    expect(until).toBeLessThanOrEqual(at(25 * HOUR).getTime());
    expect(decide(facts(s, at(25 * HOUR)))).toEqual({ kind: 'probe', thumbprint: 'T1', why: 'schedule' });
    expect(decide(facts(s, at(2 * HOUR), true))).toEqual({ kind: 'probe', thumbprint: 'T1', why: 'wake' });
  });

  it('drift found re-syncs with reason BindingDrift; not while paused, not for bindings already pending', () => {
    const d = probed(initialDrift(T0), 'T1', [probe('drift', 'OLD')], at(DAY));
    expect(decide(facts(state(d), at(DAY)))).toEqual({
      kind: 'sync',
      why: 'BindingDrift',
      version: 'v1',
      thumbprint: 'T1',
    });
    expect(
      decide(facts(state(d, { paused: { reason: 'freeze', since: T0.toISOString() } }), at(DAY))).kind,
    ).toBe('wait');
    const pending = { version: 'v1', thumbprint: 'T1', failures: 1, nextAt: at(2 * DAY).toISOString() };
    expect(decide(facts(state(d, { pendingSync: pending }), at(DAY))).kind).toBe('wait');
    // a newer version in the vault is bound as a new version, not as drift
    const v2 = { ...observed!, version: 'v2', thumbprint: 'T2' };
    expect(decide(facts(state(d, { observed: v2 }), at(DAY)))).toMatchObject({
      kind: 'sync',
      why: 'NewVersion',
    });
  });

  it('never while change control holds a version back (denied here): no probe, no BindingDrift, no wake in the past', () => {
    // the vault's current version v1 was merged, its re-binding denied: the bindings serve OLD on purpose
    const d = probed(initialDrift(T0), 'T1', [probe('drift', 'OLD')], at(DAY));
    const rebind = {
      version: 'v1',
      thumbprint: 'T1',
      previousVersion: 'v0',
      previousThumbprint: 'OLD',
      oldNotAfter: at(30 * DAY).toISOString(),
      why: 'Renewal',
      since: T0.toISOString(),
      stages: null,
      done: 0,
      approval: null,
      stopped: { at: T0.toISOString(), why: 'Denied', detail: 'not now' },
      told: { stopped: true },
    } as const;
    for (const now of [at(DAY), at(3 * DAY)]) {
      const action = decide(facts(state(d, { rebind: { ...rebind } }), now, true));
      expect(action.kind).toBe('wait');
      const until = (action as { until: Date | null }).until;
      if (until) expect(until.getTime()).toBeGreaterThan(now.getTime());
    }
  });

  it('a run without the watch (an older history replaying) never probes nor re-syncs for drift', () => {
    const d = probed(initialDrift(T0), 'T1', [probe('drift', 'OLD')], at(DAY));
    expect(decide(facts(state(d), at(30 * DAY), true, false)).kind).toBe('wait');
    expect(decide(facts(state(undefined), at(30 * DAY), true)).kind).toBe('wait');
  });
});

describe('certflow status shows the watch and the buffer', () => {
  it('one line each, answers per binding', async () => {
    const { statusText } = await import('../../client/render');
    const { safetyBuffer, bufferText } = await import('../../workflows/buffer');
    const b = safetyBuffer(32 * HOUR);
    const text = statusText(
      {
        certificateId: 'kv/a',
        issuer: 'le',
        phase: 'Waiting',
        paused: null,
        thumbprint: 'T1',
        previousThumbprint: null,
        version: 'v1',
        notBefore: null,
        notAfter: null,
        nextRenewalAt: null,
        nextRenewalReason: null,
        attempts: 0,
        lastAttempt: null,
        lastError: null,
        cycle: 0,
        bindings: [],
        policy: { source: 'default', lifetimePercentage: 80, jitterMinutes: 0 },
        escalationsSent: [],
        notifyError: null,
        safetyBuffer: { ...b, text: bufferText(b) },
        drift: {
          checkedAt: at(HOUR).toISOString(),
          nextAt: at(25 * HOUR).toISOString(),
          bindings: [probe('serving', 'T1'), probe('unprobeable', null, 'gw')],
          lastDrift: null,
        },
      },
      at(2 * HOUR),
    );
    expect(text).toMatch(
      /^ {2}buffer: {6}\d hours left after a CA outage of 24 hours \(32 hours left at renewal/m,
    );
    expect(text).toMatch(/^ {2}probed: {6}.*; next .* \(web: serving, gw: unprobeable\)$/m);
  });
});

describe('configuration', () => {
  it('defaults.driftWatch and a certificate’s own; bad values name the field; an ACME profile name is checked', async () => {
    const { parseConfig } = await import('../../worker/config');
    expect(
      parseConfig({ defaults: { driftWatch: { everyMinutes: 720, jitterMinutes: 30 } } }, {}).defaults,
    ).toEqual({
      driftWatch: { everyMinutes: 720, jitterMinutes: 30 },
    });
    expect(() => parseConfig({ defaults: { driftWatch: { everyMinutes: -5 } } }, {})).toThrow(
      /defaults\.driftWatch\.everyMinutes: expected everyMinutes of at least 0/,
    );
    expect(() => parseConfig({ defaults: { driftWatch: { every: 5 } } }, {})).toThrow(/defaults\.driftWatch/);
    const acme = (profile: unknown) => ({
      issuers: [
        {
          kind: 'acme',
          name: 'le',
          directoryUrl: 'https://127.0.0.1:14000/dir',
          contactEmail: 'ops@example.test',
          accountKeySecretName: 'acme-key',
          dns: { kind: 'challtestsrv', managementUrl: 'http://127.0.0.1:8055' },
          profile,
        },
      ],
    });
    expect(() => parseConfig(acme('short lived'), {})).toThrow(
      /issuers\[0\]\.profile: expected a profile name the CA advertises, like classic, tlsserver or shortlived/,
    );
  });
});

describe('metrics', () => {
  it('counts drift, keeps the last answer per binding, and the safety buffer gauge', async () => {
    const { createMetrics } = await import('../../worker/metrics');
    const m = createMetrics({ defaultMetrics: false });
    m.sink.probed!('kv/a', [probe('drift', 'OLD'), probe('unprobeable', null, 'gw')]);
    m.sink.probed!('kv/a', [probe('serving', 'T1'), probe('unprobeable', null, 'gw')]);
    m.sink.safetyBuffer!('kv/a', 6 * 3600);
    const text = await m.render();
    expect(text).toContain('certflow_binding_drift_total{certificate="kv/a",target="web"} 1');
    expect(text).toContain(
      'certflow_binding_probe_state{certificate="kv/a",target="web",binding="/etc/ssl/web.pem",state="serving"} 1',
    );
    expect(text).not.toContain('state="drift"'); // the last answer only
    expect(text).toContain('state="unprobeable"');
    expect(text).toContain('certflow_safety_buffer_seconds{certificate="kv/a"} 21600');
    m.sink.safetyBuffer!('kv/a', null);
    expect(await m.render()).not.toContain('certflow_safety_buffer_seconds{');
  });
});

describe('fleet discovery carries the drift-watch schedule', () => {
  it('defaults.driftWatch reaches the lifecycles discovery starts', async () => {
    const { discoveryPlan } = await import('../../worker/discovery-config');
    const d = { schedule: { every: '1h' }, graceRuns: 2 } as unknown as Parameters<typeof discoveryPlan>[0];
    const known = { vaults: new Set(['kv']), defaultIssuer: 'le' };
    expect(discoveryPlan(d, { ...known, driftWatch: { everyMinutes: 360 } }).input.driftWatch).toEqual({
      everyMinutes: 360,
    });
    expect(discoveryPlan(d, known).input).not.toHaveProperty('driftWatch');
  });
});
