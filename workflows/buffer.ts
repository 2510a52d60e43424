/**
 * The safety buffer of a certificate: how much time is left when the renewal starts, against the worst-case time
 * the lifecycle's own retry schedule (`nextAttemptAt` in policy.ts, the one rule) needs to get a certificate
 * through a CA outage that begins at that moment. What is left over is the time people have to act when the
 * outage lasts longer than the reference one. Short lifetimes (Let's Encrypt `tlsserver` 45 days, `shortlived`
 * 160 hours) make it small: a policy renewing `shortlived` at 80 % leaves 32 hours, and a one-day outage eats most
 * of it. Pure: the status, the audit (`SmallSafetyBuffer`), metrics and tests share it.
 */
import { DAY_MS, nextAttemptAt } from './policy';

const HOUR_MS = 3_600_000;
/**
 * The CA outage every policy must ride out by its retries alone: one day (Let's Encrypt's longest incidents were
 * hours; a day also covers a weekend-sized reaction to an account or network problem on our side).
 */
export const REFERENCE_OUTAGE_MS = DAY_MS;
/**
 * The time one failing attempt takes before the next is scheduled (counted from its end): the issuer activity's
 * own retries against a CA that refuses connections, 5 s doubling over 6 tries, about 2.5 minutes, rounded up.
 */
export const ATTEMPT_MS = 5 * 60_000;
/** The least buffer left after the reference outage: time for a person to act on the escalation mail. */
export const MIN_BUFFER_MS = 12 * HOUR_MS;

export type BufferState = 'ok' | 'small' | 'none';

export interface SafetyBuffer {
  /** Time left before expiry when the renewal starts. */
  leftAtRenewalMs: number;
  /** The CA outage assumed to begin at the renewal time. */
  outageMs: number;
  /** From the renewal time until the first attempt after the outage has a certificate (worst case). */
  retryNeedsMs: number;
  /** Attempts the retry schedule makes through the outage, the successful one included. */
  attempts: number;
  /** leftAtRenewal - retryNeeds: the time left before expiry when the certificate gets through. */
  bufferMs: number;
  /** ok: at least MIN_BUFFER_MS left; small: less; none: the certificate expires before a retry gets through. */
  state: BufferState;
}

/**
 * The buffer for a certificate living `lifetimeMs` that is renewed `leftAtRenewalMs` before it expires. The
 * outage starts at the renewal time; every attempt until it ends fails and takes ATTEMPT_MS; the first attempt
 * starting at or after its end succeeds.
 */
export function safetyBuffer(
  leftAtRenewalMs: number,
  opts: { outageMs?: number; attemptMs?: number; minBufferMs?: number } = {},
): SafetyBuffer {
  const outageMs = opts.outageMs ?? REFERENCE_OUTAGE_MS;
  const attemptMs = opts.attemptMs ?? ATTEMPT_MS;
  const minBufferMs = opts.minBufferMs ?? MIN_BUFFER_MS;
  // relative times on an arbitrary epoch: renewal at 0, expiry at leftAtRenewal
  const iso = (ms: number) => new Date(ms).toISOString();
  const notAfter = iso(leftAtRenewalMs);
  let start = 0;
  let failures = 0;
  // retryDelayMs never goes below a minute, so this ends; the cap is a guard against a bad input
  while (start < outageMs && start < leftAtRenewalMs && failures < 100_000) {
    failures += 1;
    start = nextAttemptAt(failures, iso(start + attemptMs), notAfter).getTime();
  }
  const retryNeedsMs = start + attemptMs;
  const bufferMs = leftAtRenewalMs - retryNeedsMs;
  return {
    leftAtRenewalMs,
    outageMs,
    retryNeedsMs,
    attempts: failures + 1,
    bufferMs,
    state: bufferMs <= 0 ? 'none' : bufferMs < minBufferMs ? 'small' : 'ok',
  };
}

/**
 * The highest lifetime percentage that still leaves an `ok` buffer for this lifetime (what an audit finding
 * suggests), or null when even renewing at MIN_PERCENTAGE does not.
 */
export function safePercentage(lifetimeMs: number, minPercentage: number): number | null {
  for (let pct = 99; pct >= minPercentage; pct--) {
    if (safetyBuffer((lifetimeMs * (100 - pct)) / 100).state === 'ok') return pct;
  }
  return null;
}

/** A duration in hours below three days ("32 hours"), in days with one decimal above ("17.5 days"). */
export function spanText(ms: number): string {
  if (ms < 3 * DAY_MS) {
    const h = Math.round(ms / HOUR_MS);
    if (h >= 1) return `${h} hour${h === 1 ? '' : 's'}`;
    return `${Math.max(0, Math.round(ms / 60_000))} minutes`;
  }
  return `${Math.round((ms / DAY_MS) * 10) / 10} days`;
}

/** One line for people: "6 hours left after a CA outage of 24 hours (32 hours left at renewal, retries need 26 hours)". */
export function bufferText(b: SafetyBuffer): string {
  const head =
    b.state === 'none'
      ? `none: a CA outage of ${spanText(b.outageMs)} at renewal outlasts the ${spanText(b.leftAtRenewalMs)} left`
      : `${spanText(b.bufferMs)} left after a CA outage of ${spanText(b.outageMs)}`;
  return `${head} (${spanText(b.leftAtRenewalMs)} left at renewal, retries need ${spanText(Math.min(b.retryNeedsMs, b.leftAtRenewalMs))})`;
}
