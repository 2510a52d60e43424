/**
 * Change control's pure rules: cron-like windows in several time zones and across DST changes, freezes, the hard
 * deadline that overrides both, scoping by certificate / tag / target, rollout stage ordering and the approval
 * wait (reminders, timeout, decisions).
 */
import { describe, expect, it } from 'vitest';
import {
  approvalStep,
  decided,
  decisionProblem,
  type ApprovalState,
} from '../../workflows/lifecycle/approval';
import {
  appliedTo,
  globMatch as ccGlob,
  type ChangeControl,
  planStages,
  type RebindState,
  rebindStep,
} from '../../workflows/lifecycle/change-control';
import {
  gateText,
  instantOf,
  nextOpening,
  parseCron,
  rebindGate,
  timeZoneProblem,
  type WindowSpec,
} from '../../workflows/lifecycle/windows';
import { changeControlSchema } from '../../worker/change-control-config';
import { globMatch } from '../../activities/globs';
import { toNotificationEvent, type NotifyInput } from '../../activities/notify/events';
import { renderEmail } from '../../activities/notify/templates';

const iso = (d: Date | null | undefined) => d?.toISOString();
const at = (s: string) => new Date(s);
const HOUR = 3_600_000;

describe('cron expressions', () => {
  it('parses lists, ranges, steps and names', () => {
    const c = parseCron('0,30 22-23 * * mon-fri');
    expect(c.minutes).toEqual([0, 30]);
    expect(c.hours).toEqual([22, 23]);
    expect([...c.weekdays].sort()).toEqual([1, 2, 3, 4, 5]);
    expect(parseCron('*/15 * * * *').minutes).toEqual([0, 15, 30, 45]);
    expect(parseCron('5/20 * * * *').minutes).toEqual([5, 25, 45]);
    expect([...parseCron('0 0 * * 7').weekdays]).toEqual([0]); // 7 is Sunday too
    expect([...parseCron('0 0 1 jan,dec *').months].sort((a, b) => a - b)).toEqual([1, 12]);
  });

  it('names the field that is wrong', () => {
    expect(() => parseCron('0 22 * *')).toThrow(/expected 5 fields/);
    expect(() => parseCron('60 22 * * *')).toThrow(/^minute: expected/);
    expect(() => parseCron('0 24 * * *')).toThrow(/^hour: expected/);
    expect(() => parseCron('0 0 32 * *')).toThrow(/^day of month: expected/);
    expect(() => parseCron('0 0 * 13 *')).toThrow(/^month: expected/);
    expect(() => parseCron('0 0 * * 8')).toThrow(/^day of week: expected/);
    expect(() => parseCron('0 0 * * 5-1')).toThrow(/^day of week/);
    expect(() => parseCron('*/0 * * * *')).toThrow(/^minute/);
    expect(timeZoneProblem('Europe/Berlin')).toBeNull();
    expect(timeZoneProblem('Mars/Olympus')).toMatch(/IANA time zone/);
  });
});

describe('local time to instant', () => {
  it('reads ordinary, skipped and repeated local times', () => {
    const wall = (s: string) => Date.parse(`${s}Z`);
    // Berlin winter (+01:00) and summer (+02:00)
    expect(new Date(instantOf(wall('2026-01-15T22:00:00'), 'Europe/Berlin')).toISOString()).toBe(
      '2026-01-15T21:00:00.000Z',
    );
    expect(new Date(instantOf(wall('2026-07-15T22:00:00'), 'Europe/Berlin')).toISOString()).toBe(
      '2026-07-15T20:00:00.000Z',
    );
    // 2026-03-29 02:30 does not exist in Berlin (02:00 → 03:00): the instant after the gap, 03:30 CEST
    expect(new Date(instantOf(wall('2026-03-29T02:30:00'), 'Europe/Berlin')).toISOString()).toBe(
      '2026-03-29T01:30:00.000Z',
    );
    // 2026-10-25 02:30 happens twice (03:00 → 02:00): the first, still CEST
    expect(new Date(instantOf(wall('2026-10-25T02:30:00'), 'Europe/Berlin')).toISOString()).toBe(
      '2026-10-25T00:30:00.000Z',
    );
    // India: +05:30, no DST
    expect(new Date(instantOf(wall('2026-03-29T02:30:00'), 'Asia/Kolkata')).toISOString()).toBe(
      '2026-03-28T21:00:00.000Z',
    );
  });
});

describe('next window opening', () => {
  const nights: WindowSpec = {
    name: 'nights',
    cron: '0 22 * * 1-4',
    timeZone: 'Europe/Berlin',
    durationMinutes: 240,
  };

  it('is open inside a window and says when the next one opens outside it', () => {
    // Tuesday 2026-12-01 23:00 Berlin = 22:00Z: inside Tuesday's 22:00-02:00
    const inside = nextOpening(nights, at('2026-12-01T22:00:00Z'))!;
    expect(iso(inside.start)).toBe('2026-12-01T21:00:00.000Z');
    expect(inside.start <= at('2026-12-01T22:00:00Z')).toBe(true);
    // Friday noon: the next is Monday 22:00 Berlin
    expect(iso(nextOpening(nights, at('2026-12-04T11:00:00Z'))!.start)).toBe('2026-12-07T21:00:00.000Z');
    // Thursday's window runs past midnight into Friday 02:00
    expect(iso(nextOpening(nights, at('2026-12-04T00:30:00Z'))!.start)).toBe('2026-12-03T21:00:00.000Z');
  });

  it('follows the zone across DST in Europe, North America and Australia', () => {
    // Berlin: the Monday after the spring change opens at 22:00 CEST = 20:00Z (21:00Z the week before)
    // (Tuesday 01:00 is still inside Monday's window, which opened at 22:00 CET = 21:00Z)
    expect(iso(nextOpening(nights, at('2026-03-24T00:00:00Z'))!.start)).toBe('2026-03-23T21:00:00.000Z');
    expect(iso(nextOpening(nights, at('2026-03-24T02:00:00Z'))!.start)).toBe('2026-03-24T21:00:00.000Z');
    expect(iso(nextOpening(nights, at('2026-03-28T00:00:00Z'))!.start)).toBe('2026-03-30T20:00:00.000Z');
    const ny: WindowSpec = {
      name: 'ny',
      cron: '30 1 * * *',
      timeZone: 'America/New_York',
      durationMinutes: 60,
    };
    // 2026-03-08: 02:00 → 03:00; 01:30 EST = 06:30Z; the next day 01:30 EDT = 05:30Z
    expect(iso(nextOpening(ny, at('2026-03-08T00:00:00Z'))!.start)).toBe('2026-03-08T06:30:00.000Z');
    expect(iso(nextOpening(ny, at('2026-03-08T08:00:00Z'))!.start)).toBe('2026-03-09T05:30:00.000Z');
    // 2026-11-01: 01:30 happens twice; the window opens once, at the first (EDT, 05:30Z)
    expect(iso(nextOpening(ny, at('2026-11-01T00:00:00Z'))!.start)).toBe('2026-11-01T05:30:00.000Z');
    expect(iso(nextOpening(ny, at('2026-11-01T06:31:00Z'))!.start)).toBe('2026-11-02T06:30:00.000Z');
    const nyGap: WindowSpec = { ...ny, cron: '30 2 * * *' };
    // 02:30 does not exist on 2026-03-08: opens at 03:30 EDT = 07:30Z
    expect(iso(nextOpening(nyGap, at('2026-03-08T00:00:00Z'))!.start)).toBe('2026-03-08T07:30:00.000Z');
    // Sydney: DST ends 2026-04-05 (03:00 → 02:00, +11 → +10) and starts 2026-10-04 (02:00 → 03:00)
    const syd: WindowSpec = {
      name: 'syd',
      cron: '0 12 * * *',
      timeZone: 'Australia/Sydney',
      durationMinutes: 60,
    };
    expect(iso(nextOpening(syd, at('2026-04-04T00:00:00Z'))!.start)).toBe('2026-04-04T01:00:00.000Z'); // +11
    expect(iso(nextOpening(syd, at('2026-04-04T03:00:00Z'))!.start)).toBe('2026-04-05T02:00:00.000Z'); // +10
    expect(iso(nextOpening(syd, at('2026-10-03T03:00:00Z'))!.start)).toBe('2026-10-04T01:00:00.000Z'); // +11 again
  });

  it('keeps the duration as elapsed time across a fall-back night', () => {
    const w: WindowSpec = { name: 'w', cron: '0 1 25 10 *', timeZone: 'Europe/Berlin', durationMinutes: 240 };
    const o = nextOpening(w, at('2026-10-20T00:00:00Z'))!;
    expect(iso(o.start)).toBe('2026-10-24T23:00:00.000Z'); // 01:00 CEST
    expect(o.end.getTime() - o.start.getTime()).toBe(4 * HOUR); // ends 04:00 CET = 03:00Z, local 04:00 not 05:00
  });

  it('Vixie cron: restricted day-of-month and day-of-week match either; 29 Feb is found years ahead', () => {
    const either: WindowSpec = { name: 'e', cron: '0 0 1 * 0', durationMinutes: 60 };
    // from Wed 2026-12-02: Sunday 6 December comes before 1 January
    expect(iso(nextOpening(either, at('2026-12-02T00:00:00Z'))!.start)).toBe('2026-12-06T00:00:00.000Z');
    const leap: WindowSpec = { name: 'l', cron: '0 0 29 2 *', durationMinutes: 60 };
    expect(iso(nextOpening(leap, at('2026-12-02T00:00:00Z'))!.start)).toBe('2028-02-29T00:00:00.000Z');
    expect(
      nextOpening({ name: 'n', cron: '0 0 30 2 *', durationMinutes: 60 }, at('2026-12-02T00:00:00Z')),
    ).toBeNull();
  });
});

describe('the re-binding gate', () => {
  const nights: WindowSpec = { name: 'nights', cron: '0 22 * * *', timeZone: 'UTC', durationMinutes: 120 };
  const farExpiry = '2027-06-01T00:00:00Z';

  it('waits for the next window and says so', () => {
    const g = rebindGate({
      now: at('2026-12-02T10:00:00Z'),
      windows: [nights],
      freezes: [],
      notAfter: farExpiry,
    });
    expect(g).toMatchObject({ open: false, why: 'window', holder: 'nights' });
    expect(iso(g.at)).toBe('2026-12-02T22:00:00.000Z');
    expect(gateText(g)).toBe('waiting for window at 2026-12-02T22:00:00.000Z (change window "nights")');
    expect(
      rebindGate({ now: at('2026-12-02T23:00:00Z'), windows: [nights], freezes: [], notAfter: farExpiry })
        .open,
    ).toBe(true);
  });

  it('a freeze pushes past the windows inside it; all windows that apply must be open at once', () => {
    const freeze = { name: 'xmas', start: '2026-12-20T00:00:00Z', end: '2027-01-04T00:00:00Z' };
    const g = rebindGate({
      now: at('2026-12-21T10:00:00Z'),
      windows: [nights],
      freezes: [freeze],
      notAfter: farExpiry,
    });
    expect(g).toMatchObject({ open: false, why: 'freeze', holder: 'xmas' });
    expect(iso(g.at)).toBe('2027-01-04T22:00:00.000Z');
    const weekdays: WindowSpec = {
      name: 'weekdays',
      cron: '0 0 * * 1-5',
      timeZone: 'UTC',
      durationMinutes: 24 * 60,
    };
    // Saturday 2026-12-05 noon: nights opens at 22:00 but weekdays only on Monday: Monday 22:00
    const both = rebindGate({
      now: at('2026-12-05T12:00:00Z'),
      windows: [nights, weekdays],
      freezes: [],
      notAfter: farExpiry,
    });
    expect(iso(both.at)).toBe('2026-12-07T22:00:00.000Z');
  });

  it('the deadline before expiry overrides windows and freezes (default 72 h, configurable)', () => {
    const freeze = { name: 'xmas', start: '2026-12-20T00:00:00Z', end: '2027-01-04T00:00:00Z' };
    const notAfter = '2026-12-28T00:00:00Z';
    // before the deadline, the wait is capped at it
    const early = rebindGate({
      now: at('2026-12-21T00:00:00Z'),
      windows: [nights],
      freezes: [freeze],
      notAfter,
    });
    expect(iso(early.at)).toBe('2026-12-25T00:00:00.000Z');
    expect(gateText(early)).toMatch(/the deadline before expiry comes first/);
    const late = rebindGate({
      now: at('2026-12-25T00:00:01Z'),
      windows: [nights],
      freezes: [freeze],
      notAfter,
    });
    expect(late).toMatchObject({ open: true, why: 'deadline' });
    expect(gateText(late)).toMatch(/deadline passed .* outside any change window or freeze/);
    const custom = rebindGate({
      now: at('2026-12-21T00:00:00Z'),
      windows: [nights],
      freezes: [freeze],
      notAfter,
      deadlineHours: 24 * 7,
    });
    expect(custom.why).toBe('deadline');
  });
});

describe('scoping and stages', () => {
  const cc: ChangeControl = {
    windows: [
      { name: 'prod', cron: '0 22 * * *', durationMinutes: 60, certificates: { pattern: 'kv-prod/*' } },
      {
        name: 'tagged',
        cron: '0 3 * * *',
        durationMinutes: 60,
        certificates: { tag: { name: 'Tier', value: 'gold' } },
      },
      { name: 'lb', cron: '0 4 * * *', durationMinutes: 60, targets: ['lb-*'] },
    ],
    rollout: [
      { name: 'canary', certificates: { pattern: 'kv-prod/*' }, stages: [['canary-nginx'], ['web-*']] },
    ],
  };

  it('picks windows by pattern, tag and target', () => {
    expect(appliedTo(cc, 'kv-prod/api', {}).windows.map((w) => w.name)).toEqual(['prod']);
    expect(appliedTo(cc, 'kv-dev/api', { Tier: 'gold' }).windows.map((w) => w.name)).toEqual(['tagged']);
    expect(appliedTo(cc, 'kv-dev/api', {}, ['lb-1']).windows.map((w) => w.name)).toEqual(['lb']);
    // a target window may concern any certificate: held, targets listed, and the window applies to that stage only
    expect(appliedTo(cc, 'kv-dev/api', {}).gated).toBe(true);
    expect(appliedTo(cc, 'kv-dev/api', {}, ['web-1']).windows).toEqual([]);
    expect(appliedTo({ windows: [cc.windows![0]!] }, 'kv-dev/api', {}).gated).toBe(false);
    expect(appliedTo(cc, 'kv-prod/api', {}).rollout?.name).toBe('canary');
    expect(appliedTo(undefined, 'kv-prod/api', {}).gated).toBe(false);
  });

  it('orders stages: the canary first, then the named stages, the rest last; empty stages dropped', () => {
    const targets = ['web-2', 'lb-1', 'canary-nginx', 'web-1'];
    expect(planStages(cc.rollout![0]!, targets)).toEqual([['canary-nginx'], ['web-2', 'web-1'], ['lb-1']]);
    expect(planStages({ name: 'x', stages: [['missing'], ['web-*']] }, targets)).toEqual([
      ['web-2', 'web-1'],
      ['lb-1', 'canary-nginx'],
    ]);
    expect(planStages(null, targets)).toEqual([targets]);
    expect(planStages(null, [])).toEqual([]);
  });

  it('steps a held re-binding: list, tell once, wait, then stage by stage; deadline told once', () => {
    const r: RebindState = {
      version: 'v2',
      thumbprint: 'T2',
      previousVersion: 'v1',
      previousThumbprint: 'T1',
      oldNotAfter: '2027-06-01T00:00:00Z',
      why: 'Renewal',
      since: '2026-12-02T10:00:00Z',
      stages: null,
      done: 0,
      approval: null,
      stopped: null,
      told: {},
    };
    const step = (now: string, x: Partial<RebindState> = {}) =>
      rebindStep({ r: { ...r, ...x }, now: at(now), cc, certificateId: 'kv-prod/api', tags: {} });
    expect(step('2026-12-02T10:00:00Z').kind).toBe('list');
    const stages = [['canary-nginx'], ['web-1']];
    expect(step('2026-12-02T10:00:00Z', { stages })).toEqual({
      kind: 'tell',
      topic: 'waiting-for-window',
      at: '2026-12-02T22:00:00.000Z',
    });
    const waiting = step('2026-12-02T10:00:00Z', { stages, told: { waiting: '2026-12-02T22:00:00.000Z' } });
    expect(waiting).toMatchObject({ kind: 'wait', until: at('2026-12-02T22:00:00Z') });
    expect((waiting as { text: string }).text).toMatch(
      /^stage 1 of 2: waiting for window at 2026-12-02T22:00/,
    );
    expect(step('2026-12-02T22:10:00Z', { stages })).toEqual({
      kind: 'stage',
      index: 0,
      targets: ['canary-nginx'],
      deadline: false,
    });
    expect(step('2026-12-02T22:10:00Z', { stages, done: 2 }).kind).toBe('done');
    expect(step('2027-05-29T10:00:00Z', { stages }).kind).toBe('tell');
    expect(step('2027-05-29T10:00:00Z', { stages, told: { deadline: true } })).toMatchObject({
      kind: 'stage',
      deadline: true,
    });
    expect(step('2026-12-02T10:00:00Z', { stages, ignoreWindows: true }).kind).toBe('stage');
    const stopped = { at: 'x', why: 'StageFailed' as const, stage: 0, detail: 'canary: ProbeMismatch' };
    expect(step('2026-12-02T22:10:00Z', { stages, stopped })).toEqual({
      kind: 'tell',
      topic: 'rollout-failed',
    });
    expect(step('2026-12-02T22:10:00Z', { stages, stopped, told: { stopped: true } })).toMatchObject({
      kind: 'wait',
      until: null,
    });
  });
});

describe('approval', () => {
  const rule = { name: 'prod', approvers: ['alice', 'bob'], reminderHours: 12, timeoutHours: 48 };
  const pending: ApprovalState = {
    subject: 'bind v2',
    requestedAt: '2026-12-02T00:00:00.000Z',
    status: 'pending',
    reminders: 0,
    escalated: false,
  };

  it('asks, reminds on schedule, escalates once on timeout, then keeps waiting', () => {
    expect(approvalStep(null, rule, at('2026-12-02T00:00:00Z'))).toEqual({ kind: 'request' });
    expect(approvalStep(pending, rule, at('2026-12-02T06:00:00Z'))).toMatchObject({
      kind: 'wait',
      until: at('2026-12-02T12:00:00Z'),
    });
    expect(approvalStep(pending, rule, at('2026-12-02T12:00:00Z'))).toEqual({ kind: 'remind', n: 1 });
    expect(approvalStep({ ...pending, reminders: 3 }, rule, at('2026-12-04T00:00:00Z'))).toEqual({
      kind: 'escalate',
    });
    expect(
      approvalStep({ ...pending, reminders: 4, escalated: true }, rule, at('2026-12-04T01:00:00Z')),
    ).toMatchObject({ kind: 'wait', until: at('2026-12-04T12:00:00Z') });
    expect(approvalStep({ ...pending, status: 'approved' }, rule, at('2026-12-04T01:00:00Z')).kind).toBe(
      'granted',
    );
    expect(approvalStep({ ...pending, status: 'denied' }, rule, at('2026-12-04T01:00:00Z')).kind).toBe(
      'denied',
    );
  });

  it('validates decisions: something pending, an approver, a reason to deny', () => {
    expect(decisionProblem('approve', { by: 'alice' }, pending, rule, 'kv/a')).toBeUndefined();
    expect(decisionProblem('approve', { by: 'mallory' }, pending, rule, 'kv/a')).toMatch(
      /^by: mallory is not an approver/,
    );
    expect(decisionProblem('approve', {}, pending, rule, 'kv/a')).toMatch(
      /^by: \(nobody\) is not an approver/,
    );
    expect(decisionProblem('deny', { by: 'bob' }, pending, rule, 'kv/a')).toMatch(/^reason: expected why/);
    expect(decisionProblem('deny', { by: 'bob', reason: 'not now' }, pending, rule, 'kv/a')).toBeUndefined();
    expect(decisionProblem('approve', { by: 'alice' }, null, rule, 'kv/a')).toMatch(
      /nothing waiting for approval/,
    );
    expect(decisionProblem('approve', {}, pending, { name: 'open' }, 'kv/a')).toBeUndefined();
    const d = decided(pending, 'deny', { by: 'bob', reason: 'freeze' }, at('2026-12-02T01:00:00Z'));
    expect(d).toMatchObject({
      status: 'denied',
      by: 'bob',
      reason: 'freeze',
      at: '2026-12-02T01:00:00.000Z',
    });
  });
});

describe('configuration (changeControl)', () => {
  const parse = (cc: unknown) => changeControlSchema.safeParse(cc);
  const messages = (cc: unknown) => {
    const r = parse(cc);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('accepts windows, freezes, approval and rollout', () => {
    const r = parse({
      deadlineHours: 48,
      windows: [{ name: 'nights', cron: '0 22 * * 1-4', timeZone: 'Europe/Berlin', durationMinutes: 240 }],
      freezes: [{ name: 'xmas', start: '2026-12-20T00:00:00Z', end: '2027-01-04T00:00:00+01:00' }],
      approval: [{ name: 'prod', certificates: { pattern: 'kv-prod/*' }, approvers: ['alice'] }],
      rollout: [{ name: 'canary', stages: [['canary-nginx'], ['web-*']] }],
    });
    expect(r.success).toBe(true);
  });

  it('names the field and what was expected', () => {
    expect(messages({ windows: [{ name: 'w', cron: '0 25 * * *', durationMinutes: 60 }] })).toEqual([
      'windows.0.cron: hour: expected *, a number 0-23, a range a-b, a list a,b or a step */n; got "25"',
    ]);
    expect(
      messages({ windows: [{ name: 'w', cron: '0 1 * * *', timeZone: 'Berlin', durationMinutes: 60 }] }),
    ).toEqual([
      'windows.0.timeZone: expected an IANA time zone like Europe/Berlin or America/New_York, got "Berlin"',
    ]);
    expect(messages({ windows: [{ name: 'w', cron: '0 1 * * *', durationMinutes: 0 }] })[0]).toMatch(
      /^windows.0.durationMinutes: expected durationMinutes of at least 1/,
    );
    expect(
      messages({ freezes: [{ name: 'f', start: '2026-12-20', end: '2026-12-21T00:00:00Z' }] })[0],
    ).toMatch(/^freezes.0.start: expected start with an offset or Z/);
    expect(
      messages({ freezes: [{ name: 'f', start: '2026-12-21T00:00:00Z', end: '2026-12-20T00:00:00Z' }] }),
    ).toEqual(['freezes.0.end: expected end after start']);
    expect(messages({ approval: [{ name: 'a', before: 'merge' }] })[0]).toMatch(
      /^approval.0.before: expected/,
    );
    expect(messages({ rollout: [{ name: 'r', stages: [] }] })).toEqual([
      'rollout.0.stages: expected at least one stage',
    ]);
  });
});

describe('the workflow-side glob', () => {
  it('matches exactly like activities/globs.ts', () => {
    const patterns = ['kv-prod/*', '**', 'kv-*/api-?', 'web-*', 'a.b+c/(x)', 'KV/*'];
    const ids = ['kv-prod/api', 'kv-prod/a/b', 'kv-dev/api-1', 'web-1', 'a.b+c/(x)', 'kv/x', 'ab+c/(x)'];
    for (const p of patterns)
      for (const id of ids) expect(ccGlob(p, id), `${p} ~ ${id}`).toBe(globMatch(p, id));
  });
});

describe('change-control mail', () => {
  const input = (topic: NonNullable<NotifyInput['changeControl']>['topic'], text: string): NotifyInput => ({
    kind: 'change-control',
    eventId: 'certificate:kv/site:change:v2:x',
    certificateId: 'kv/site',
    changeControl: {
      topic,
      text,
      thumbprint: 'T2',
      previousThumbprint: 'T1',
      notAfter: '2027-01-10T00:00:00Z',
    },
  });
  const render = (i: NotifyInput) =>
    renderEmail(
      toNotificationEvent(i, ['ops@example.test'], [], { thumbprint: 'T2', notAfter: null }, new Date()),
    );

  it('says "waiting for window at T", and what to do for approval, denial, deadline and a failed rollout', () => {
    const waiting = render(
      input(
        'waiting-for-window',
        'renewed to T2; re-binding is waiting for window at 2026-12-03T03:00:00.000Z',
      ),
    );
    expect(waiting.subject).toBe('[certflow] kv/site: renewed; re-binding waits for its change window');
    expect(waiting.text).toContain('waiting for window at 2026-12-03T03:00:00.000Z');
    expect(waiting.text).toMatch(/Consumers are on: +T1/);
    expect(render(input('approval-requested', 'approval needed')).text).toContain('certflow approve kv/site');
    expect(render(input('approval-timeout', 'nobody')).subject).toMatch(
      /ESCALATION: approval not given in time/,
    );
    expect(render(input('deadline-override', 'the deadline passed')).text).toMatch(
      /overrides change windows/,
    );
    expect(render(input('rollout-failed', 'stopped at stage 1')).subject).toMatch(
      /ACTION NEEDED: rollout stage failed/,
    );
    expect(render(input('approval-denied', 'denied by alice')).text).toContain('certflow sync kv/site');
    expect(render(input('waiting-for-window', '<b>x</b>')).html).toContain('&lt;b&gt;x&lt;/b&gt;');
  });
});
