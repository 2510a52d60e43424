/**
 * The safety buffer (workflows/buffer.ts) over Let's Encrypt's lifetimes and several policies, checked against the
 * retry schedule it simulates (policy.ts nextAttemptAt), and the audit finding it gives (SmallSafetyBuffer).
 */
import { describe, expect, it } from 'vitest';
import { auditCertificate, type AuditSubject } from '../../client/audit-rule';
import {
  ATTEMPT_MS,
  MIN_BUFFER_MS,
  REFERENCE_OUTAGE_MS,
  bufferText,
  safePercentage,
  safetyBuffer,
  spanText,
} from '../../workflows/buffer';
import { MIN_LIFETIME_PERCENTAGE, nextAttemptAt } from '../../workflows/policy';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const LIFETIMES = { classic: 90 * DAY, tlsserver: 45 * DAY, shortlived: 160 * HOUR } as const;
const leftAt = (lifetime: number, pct: number) => (lifetime * (100 - pct)) / 100;

describe('safety buffer', () => {
  it.each<[keyof typeof LIFETIMES, number, 'ok' | 'small' | 'none']>([
    ['classic', 80, 'ok'],
    ['classic', 95, 'ok'],
    ['tlsserver', 80, 'ok'],
    ['tlsserver', 97, 'small'], // 32.4 hours left: the outage eats all but a few
    ['shortlived', 50, 'ok'],
    ['shortlived', 66, 'ok'],
    ['shortlived', 80, 'small'], // 32 hours at renewal, about 6 left after a one-day outage
    ['shortlived', 90, 'none'], // 16 hours: a one-day outage outlasts the certificate
  ])('%s renewed at %d percent of its lifetime: %s', (name, pct, state) => {
    const b = safetyBuffer(leftAt(LIFETIMES[name], pct));
    expect(b.state).toBe(state);
    expect(b.leftAtRenewalMs).toBe(leftAt(LIFETIMES[name], pct));
    if (state !== 'none') {
      // the schedule needs at least the outage, and at most one retry gap (6 h, or a quarter of what is left) more
      expect(b.retryNeedsMs).toBeGreaterThanOrEqual(REFERENCE_OUTAGE_MS);
      expect(b.retryNeedsMs).toBeLessThanOrEqual(REFERENCE_OUTAGE_MS + 6 * HOUR + 2 * ATTEMPT_MS);
      expect(b.bufferMs).toBe(b.leftAtRenewalMs - b.retryNeedsMs);
    } else expect(b.bufferMs).toBeLessThanOrEqual(0);
  });

  it('follows the lifecycle’s retry schedule attempt by attempt (one source: nextAttemptAt)', () => {
    const left = 32 * HOUR;
    const b = safetyBuffer(left);
    // replay the schedule by hand: attempts at 0, then nextAttemptAt after each failed one
    const notAfter = new Date(left).toISOString();
    const starts = [0];
    while (starts.at(-1)! < REFERENCE_OUTAGE_MS)
      starts.push(
        nextAttemptAt(starts.length, new Date(starts.at(-1)! + ATTEMPT_MS).toISOString(), notAfter).getTime(),
      );
    expect(b.attempts).toBe(starts.length);
    expect(b.retryNeedsMs).toBe(starts.at(-1)! + ATTEMPT_MS);
    // 5, 10, 20, 40, 80, 160, 320 min, then 6 h gaps (capped by a quarter of the time left)
    expect(starts.slice(1, 4).map((s, i) => s - starts[i]! - ATTEMPT_MS)).toEqual(
      [5, 10, 20].map((m) => m * 60_000),
    );
  });

  it('a longer outage needs longer; no outage needs one attempt', () => {
    expect(safetyBuffer(10 * DAY, { outageMs: 0 })).toMatchObject({ attempts: 1, retryNeedsMs: ATTEMPT_MS });
    const day = safetyBuffer(10 * DAY).retryNeedsMs;
    const three = safetyBuffer(10 * DAY, { outageMs: 3 * DAY }).retryNeedsMs;
    expect(three).toBeGreaterThanOrEqual(3 * DAY);
    expect(three).toBeGreaterThan(day);
  });

  it('the highest safe percentage per lifetime', () => {
    const short = safePercentage(LIFETIMES.shortlived, MIN_LIFETIME_PERCENTAGE)!;
    expect(short).toBeGreaterThanOrEqual(66);
    expect(short).toBeLessThan(80);
    expect(safetyBuffer(leftAt(LIFETIMES.shortlived, short)).state).toBe('ok');
    expect(safetyBuffer(leftAt(LIFETIMES.shortlived, short + 1)).state).not.toBe('ok');
    expect(safePercentage(LIFETIMES.classic, MIN_LIFETIME_PERCENTAGE)).toBeGreaterThanOrEqual(97);
    // a one-day certificate cannot ride out a one-day outage at any percentage
    expect(safePercentage(DAY, MIN_LIFETIME_PERCENTAGE)).toBeNull();
  });

  it('reads well', () => {
    expect(spanText(32 * HOUR)).toBe('32 hours');
    expect(spanText(17.5 * DAY)).toBe('17.5 days');
    expect(bufferText(safetyBuffer(32 * HOUR))).toMatch(
      /^\d hours left after a CA outage of 24 hours \(32 hours left at renewal, retries need 2\d hours\)$/,
    );
    expect(bufferText(safetyBuffer(16 * HOUR))).toMatch(
      /^none: a CA outage of 24 hours at renewal outlasts the 16 hours left/,
    );
    expect(MIN_BUFFER_MS).toBe(12 * HOUR);
  });
});

describe('audit: SmallSafetyBuffer', () => {
  const nb = '2026-01-01T00:00:00Z';
  const subject = (
    lifetime: number,
    policy: AuditSubject['policy'],
    over: Partial<AuditSubject> = {},
  ): AuditSubject => ({
    certificateId: 'kv/short',
    lifecycle: 'running',
    notBefore: nb,
    notAfter: new Date(Date.parse(nb) + lifetime).toISOString(),
    policy,
    ...over,
  });
  const found = (s: AuditSubject) => auditCertificate(s).filter((f) => f.rule === 'SmallSafetyBuffer');

  it('warns for shortlived at 80 %, with the percentage that fits', () => {
    const [f, ...rest] = found(subject(LIFETIMES.shortlived, { lifetimePercentage: 80, source: 'default' }));
    expect(rest).toEqual([]);
    expect(f).toMatchObject({ severity: 'warn', certificateId: 'kv/short' });
    expect(f!.message).toMatch(
      /at 80% of lifetime, default\) leaves too small a safety buffer for a certificate living 6\.7 days/,
    );
    expect(f!.message).toMatch(/fix: certflow policy kv\/short --percent (6\d|7\d) or lower/);
  });

  it('fails when a one-day outage at renewal outlasts the certificate', () => {
    const [f] = found(subject(LIFETIMES.shortlived, { lifetimePercentage: 90 }));
    expect(f?.severity).toBe('fail');
    expect(f!.message).toMatch(/none: a CA outage of 24 hours/);
  });

  it('is quiet for classic and tlsserver at 80 %, shortlived at 66 %, observe mode and the RenewsTooLate cases', () => {
    expect(found(subject(LIFETIMES.classic, { lifetimePercentage: 80 }))).toEqual([]);
    expect(found(subject(LIFETIMES.tlsserver, { lifetimePercentage: 80 }))).toEqual([]);
    expect(found(subject(LIFETIMES.shortlived, { lifetimePercentage: 66 }))).toEqual([]);
    // the vault renews it: Certflow's retry schedule is not what rides out the outage
    expect(
      found(subject(LIFETIMES.shortlived, { lifetimePercentage: 90 }, { lifecycleMode: 'observe' })),
    ).toEqual([]);
    // already a RenewsTooLate failure with its own fix
    const late = auditCertificate(subject(LIFETIMES.tlsserver, { daysBeforeExpiry: 1 })).map((f) => f.rule);
    expect(late).toEqual(['RenewsTooLate']);
  });
});
