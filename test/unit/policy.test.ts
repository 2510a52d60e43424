import { describe, expect, it } from 'vitest';
import {
  DAY_MS,
  effectivePolicy,
  mergeOverride,
  renewalTime,
  retryDelayMs,
  unitHash,
  validatePolicyOverride,
  type ObservedCertificate,
} from '../../workflows/policy';
import { dueTrigger } from '../../workflows/legacy/due-trigger';
import { escalationDue, nextEscalationAt } from '../../workflows/lifecycle/notices';

const MIN = 60_000;
const cert = (
  notBefore: string,
  lifetimeMs: number,
  extra: Omit<Partial<ObservedCertificate>, 'version' | 'notBefore' | 'notAfter'> = {},
) => ({
  version: 'v1',
  notBefore,
  notAfter: new Date(Date.parse(notBefore) + lifetimeMs).toISOString(),
  ...extra,
});
const base = cert('2026-01-01T00:00:00Z', 10 * DAY_MS);
const iso = (d: Date | null) => d?.toISOString();

describe('renewalTime: Key Vault semantics', () => {
  it('defaults to 80 % of lifetime, like Key Vault', () => {
    expect(iso(renewalTime(base))).toBe('2026-01-09T00:00:00.000Z');
  });
  it('honours days before expiry', () => {
    expect(iso(renewalTime({ ...base, daysBeforeExpiry: 3 }))).toBe('2026-01-08T00:00:00.000Z');
  });
  it('never goes before notBefore when days-before exceeds the lifetime', () => {
    expect(iso(renewalTime({ ...base, daysBeforeExpiry: 30 }))).toBe('2026-01-01T00:00:00.000Z');
  });
  it('is null for a certificate never issued', () => {
    expect(renewalTime({ version: null, notBefore: null, notAfter: null })).toBeNull();
  });

  it.each([
    // lifetime, percentage, expected offset from notBefore
    ['398-day', 398 * DAY_MS, 80, 318.4 * DAY_MS],
    ['90-day', 90 * DAY_MS, 80, 72 * DAY_MS],
    ['47-day', 47 * DAY_MS, 80, 37.6 * DAY_MS],
    ['7-day', 7 * DAY_MS, 80, 5.6 * DAY_MS],
    ['5-minute', 5 * MIN, 80, 4 * MIN],
    ['90-day at 50 %', 90 * DAY_MS, 50, 45 * DAY_MS],
    ['30-second at 50 %', 30_000, 50, 15_000],
  ])('%s certificate renews at the policy percentage', (_n, lifetime, pct, offset) => {
    const c = cert('2026-03-01T00:00:00Z', lifetime, { lifetimePercentage: pct });
    expect(renewalTime(c)!.getTime() - Date.parse(c.notBefore)).toBeCloseTo(offset, -1);
  });

  it.each([
    // a policy that renews too late is pulled back to the floor: 10 % of lifetime, at most 7 days, before expiry
    ['365-day at 99 %', 365 * DAY_MS, 99, 7 * DAY_MS],
    ['47-day at 99 %', 47 * DAY_MS, 99, 4.7 * DAY_MS],
    ['7-day at 99 %', 7 * DAY_MS, 99, 0.7 * DAY_MS],
    ['10-minute at 99 %', 10 * MIN, 99, 1 * MIN],
  ])('%s is floored before expiry', (_n, lifetime, pct, floorBeforeExpiry) => {
    const c = cert('2026-03-01T00:00:00Z', lifetime, { lifetimePercentage: pct });
    expect(Date.parse(c.notAfter) - renewalTime(c)!.getTime()).toBeCloseTo(floorBeforeExpiry, -1);
  });

  it('a days-before rule of 1 day on a 90-day certificate is floored at 7 days', () => {
    const c = cert('2026-03-01T00:00:00Z', 90 * DAY_MS, { daysBeforeExpiry: 1 });
    expect(Date.parse(c.notAfter) - renewalTime(c)!.getTime()).toBe(7 * DAY_MS);
  });

  it('an override wins over the vault policy, which wins over the default', () => {
    const c = cert('2026-03-01T00:00:00Z', 100 * DAY_MS, { lifetimePercentage: 60 });
    expect(effectivePolicy(c)).toEqual({ source: 'vault', lifetimePercentage: 60, jitterMinutes: 0 });
    expect(effectivePolicy(c, { daysBeforeExpiry: 30 })).toEqual({
      source: 'override',
      daysBeforeExpiry: 30,
      jitterMinutes: 0,
    });
    expect(effectivePolicy(null)).toEqual({ source: 'default', lifetimePercentage: 80, jitterMinutes: 0 });
    const at = renewalTime(c, { policy: effectivePolicy(c, { daysBeforeExpiry: 30 }) });
    expect(Date.parse(c.notAfter) - at!.getTime()).toBe(30 * DAY_MS);
  });
});

describe('jitter', () => {
  const c = cert('2026-03-01T00:00:00Z', 90 * DAY_MS);
  const policy = effectivePolicy(c, { jitterMinutes: 120 });
  const plain = renewalTime(c)!.getTime();

  it('moves renewal earlier, never later, by at most the jitter', () => {
    for (let i = 0; i < 200; i++) {
      const at = renewalTime(c, { policy, jitterKey: `kv/cert-${i}` })!.getTime();
      expect(at).toBeLessThanOrEqual(plain);
      expect(plain - at).toBeLessThanOrEqual(120 * MIN);
    }
  });
  it('spreads a fleet issued together over the window (not all in the same minute)', () => {
    const minutes = new Set(
      Array.from({ length: 200 }, (_, i) =>
        Math.floor(renewalTime(c, { policy, jitterKey: `kv/cert-${i}` })!.getTime() / MIN),
      ),
    );
    expect(minutes.size).toBeGreaterThan(80);
  });
  it('is stable for a certificate (replays and restarts agree)', () => {
    expect(renewalTime(c, { policy, jitterKey: 'kv/a' })).toEqual(
      renewalTime(c, { policy, jitterKey: 'kv/a' }),
    );
    expect(unitHash('kv/a')).toBeGreaterThanOrEqual(0);
    expect(unitHash('kv/a')).toBeLessThan(1);
  });
  it('is limited to 5 % of a short lifetime', () => {
    const short = cert('2026-03-01T00:00:00Z', 10 * MIN);
    const p = effectivePolicy(short, { jitterMinutes: 600 });
    const shift =
      renewalTime(short)!.getTime() - renewalTime(short, { policy: p, jitterKey: 'kv/x' })!.getTime();
    expect(shift).toBeLessThanOrEqual(30_000);
  });
});

describe('dueTrigger: the ordered chain', () => {
  it('says Missing first, even with a manual request', () => {
    const t = dueTrigger({ version: null, notBefore: null, notAfter: null }, new Date(), { manual: {} });
    expect(t?.reason).toBe('Missing');
  });
  it('says Expired after notAfter', () => {
    expect(dueTrigger(base, new Date('2026-02-01T00:00:00Z'))?.reason).toBe('Expired');
  });
  it('says NearingRenewal between renewal time and expiry', () => {
    expect(dueTrigger(base, new Date('2026-01-10T00:00:00Z'))?.reason).toBe('NearingRenewal');
  });
  it('is quiet before renewal time', () => {
    expect(dueTrigger(base, new Date('2026-01-05T00:00:00Z'))).toBeUndefined();
  });
  it('says Manual for a request before renewal time, with the reason given', () => {
    expect(dueTrigger(base, new Date('2026-01-05T00:00:00Z'), { manual: { reason: 'key leak' } })).toEqual({
      reason: 'Manual',
      message: 'key leak',
    });
  });
  it('says PolicyChanged when the names differ (case-insensitively, order ignored)', () => {
    const now = new Date('2026-01-05T00:00:00Z');
    const same = { ...base, dnsNames: ['A.test', 'b.test'], policyDnsNames: ['b.test', 'a.test'] };
    expect(dueTrigger(same, now)).toBeUndefined();
    const changed = { ...base, dnsNames: ['a.test'], policyDnsNames: ['a.test', 'b.test'] };
    expect(dueTrigger(changed, now)).toMatchObject({
      reason: 'PolicyChanged',
      message: expect.stringContaining('b.test'),
    });
  });
  it.each([
    [{ type: 'RSA', size: 2048 }, { type: 'RSA', size: 4096 }, true],
    [{ type: 'RSA', size: 2048 }, { type: 'RSA-HSM', size: 2048 }, false],
    [{ type: 'RSA', size: 2048 }, { type: 'EC', curve: 'P-256' }, true],
    [{ type: 'EC', curve: 'P-256' }, { type: 'EC-HSM', curve: 'P-384' }, true],
    [{ type: 'EC', curve: 'P-256' }, { type: 'EC', curve: 'P-256' }, false],
  ])('key %o vs policy %o → PolicyChanged: %s', (key, policyKey, fires) => {
    const t = dueTrigger({ ...base, key, policyKey }, new Date('2026-01-05T00:00:00Z'));
    expect(t?.reason === 'PolicyChanged').toBe(fires);
  });
  it('handles a certificate not yet valid (clock skew): waits, does not call it expired', () => {
    const future = cert('2026-01-10T00:00:00Z', 90 * DAY_MS);
    expect(dueTrigger(future, new Date('2026-01-09T23:58:00Z'))).toBeUndefined();
    expect(renewalTime(future)!.getTime()).toBeGreaterThan(Date.parse(future.notBefore));
  });
  it('a clock a few minutes behind renews a few minutes late, never skips', () => {
    const at = renewalTime(base)!;
    expect(dueTrigger(base, new Date(at.getTime() - 5 * MIN))).toBeUndefined();
    expect(dueTrigger(base, new Date(at.getTime() + 1))?.reason).toBe('NearingRenewal');
  });
});

describe('retry backoff between attempts', () => {
  it('doubles from 5 minutes and caps at 6 hours', () => {
    expect([1, 2, 3, 4, 10].map((n) => retryDelayMs(n) / MIN)).toEqual([5, 10, 20, 40, 360]);
  });
  it('shrinks to a quarter of the time left near expiry, at least a minute', () => {
    expect(retryDelayMs(10, 8 * 3_600_000)).toBe(2 * 3_600_000);
    expect(retryDelayMs(10, 2 * MIN)).toBe(MIN);
    expect(retryDelayMs(10, -1)).toBe(360 * MIN); // expired: keep trying every 6 h
  });
});

describe('setPolicy validation names the field', () => {
  it.each([
    [{ lifetimePercentage: 0 }, 'lifetimePercentage: expected a whole number from 11 to 99'],
    [{ lifetimePercentage: 10 }, 'would be renewed right after issuance'],
    [{ lifetimePercentage: 50.5 }, 'lifetimePercentage: expected a whole number from 11 to 99'],
    [{ daysBeforeExpiry: -1 }, 'daysBeforeExpiry: expected a whole number of days from 1 to 3650'],
    [{ jitterMinutes: 20000 }, 'jitterMinutes: expected a whole number of minutes from 0 to 10080'],
    [
      { lifetimePercentage: 50, daysBeforeExpiry: 3 },
      'lifetimePercentage, daysBeforeExpiry: expected only one of them',
    ],
    [{ percent: 50 }, 'percent: unknown field'],
    [{}, 'policy: expected lifetimePercentage, daysBeforeExpiry, jitterMinutes or clear'],
    [null, 'policy: expected an object'],
    [{ clear: true, daysBeforeExpiry: 3 }, 'clear: cannot be combined'],
  ])('%o → %s', (input, message) => {
    expect(validatePolicyOverride(input)).toContain(message);
  });
  it('refuses a days-before rule that would renew the current certificate right after issuance (loop guard)', () => {
    const fiveMinutes = { lifetimeMs: 5 * MIN };
    expect(validatePolicyOverride({ daysBeforeExpiry: 1 }, fiveMinutes)).toMatch(
      /daysBeforeExpiry: 1 days would renew this certificate \(it lives 5 minutes\) right after issuance/,
    );
    expect(validatePolicyOverride({ daysBeforeExpiry: 30 }, { lifetimeMs: 90 * DAY_MS })).toBeUndefined();
    expect(validatePolicyOverride({ daysBeforeExpiry: 81 }, { lifetimeMs: 90 * DAY_MS })).toMatch(
      /fewer than 81 days/,
    );
  });
  it('accepts good input', () => {
    expect(validatePolicyOverride({ lifetimePercentage: 70, jitterMinutes: 30 })).toBeUndefined();
    expect(validatePolicyOverride({ clear: true })).toBeUndefined();
  });
  it('merges: a new rule replaces the old, jitter is kept, clear drops the rule', () => {
    const a = mergeOverride(null, { lifetimePercentage: 70, jitterMinutes: 30 });
    expect(mergeOverride(a, { daysBeforeExpiry: 10 })).toEqual({ daysBeforeExpiry: 10, jitterMinutes: 30 });
    expect(mergeOverride(a, { jitterMinutes: 5 })).toEqual({ lifetimePercentage: 70, jitterMinutes: 5 });
    expect(mergeOverride(a, { clear: true })).toBeNull();
  });
});

describe('escalation ladder', () => {
  const notAfter = '2026-02-01T00:00:00Z';
  const daysLeft = (d: number) => new Date(Date.parse(notAfter) - d * DAY_MS);

  it('is quiet with more than 14 days left', () => {
    expect(escalationDue(notAfter, daysLeft(20), [])).toBeUndefined();
  });
  it('sends each step once', () => {
    expect(escalationDue(notAfter, daysLeft(13), [])).toEqual({ step: 14, fold: [14] });
    expect(escalationDue(notAfter, daysLeft(13), [14])).toBeUndefined();
    expect(escalationDue(notAfter, daysLeft(6.5), [14])).toEqual({ step: 7, fold: [7] });
    expect(escalationDue(notAfter, daysLeft(0), [14, 7, 3, 1])).toEqual({ step: 0, fold: [0] });
  });
  it('folds steps crossed together into the most urgent one', () => {
    expect(escalationDue(notAfter, daysLeft(2), [])).toEqual({ step: 3, fold: [14, 7, 3] });
  });
  it('knows when the next step comes', () => {
    expect(nextEscalationAt(notAfter, daysLeft(20), [])?.toISOString()).toBe(daysLeft(14).toISOString());
    expect(nextEscalationAt(notAfter, daysLeft(5), [14, 7])?.toISOString()).toBe(daysLeft(3).toISOString());
    expect(nextEscalationAt(notAfter, daysLeft(-1), [])).toBeNull();
  });
});

describe("the CA's renewal window (ARI)", () => {
  const c = cert('2026-03-01T00:00:00Z', 90 * DAY_MS);
  const win = (fromDay: number, toDay: number) => ({
    start: new Date(Date.parse(c.notBefore) + fromDay * DAY_MS).toISOString(),
    end: new Date(Date.parse(c.notBefore) + toDay * DAY_MS).toISOString(),
  });
  it('renews inside a window that comes before our own time, at a stable point', () => {
    const at = renewalTime(c, { window: win(10, 11), jitterKey: 'kv/a' })!.getTime();
    expect(at).toBeGreaterThanOrEqual(Date.parse(win(10, 11).start));
    expect(at).toBeLessThanOrEqual(Date.parse(win(10, 11).end));
    expect(renewalTime(c, { window: win(10, 11), jitterKey: 'kv/a' })!.getTime()).toBe(at);
    const t = dueTrigger(c, new Date(at + 1), { window: win(10, 11), jitterKey: 'kv/a' });
    expect(t?.message).toMatch(/ARI/);
  });
  it('never later than our own time', () => {
    expect(renewalTime(c, { window: win(80, 85) })).toEqual(renewalTime(c));
  });
  it('ignores a window that began before the certificate existed, or is malformed', () => {
    expect(renewalTime(c, { window: win(-5, 1) })).toEqual(renewalTime(c));
    expect(renewalTime(c, { window: { start: 'x', end: 'y' } })).toEqual(renewalTime(c));
  });
});
