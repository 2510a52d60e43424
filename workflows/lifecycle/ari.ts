/**
 * The CA's renewal window (ACME ARI, RFC 9773) for the current certificate: when to ask, and what an answer (or a
 * failure to get one) means for the next question. Issue mode only; the window itself moves the renewal time
 * earlier in `renewalTime` (workflows/policy.ts), never later. Pure.
 */
import type { RenewalWindow } from '../../activities/types';
import type { AriState, LifecycleState } from './state';

const HOUR_MS = 3_600_000;
/**
 * A CA that offers no window is asked again after this long (a CA may add ARI later; Let's Encrypt did), not once
 * per certificate: a question that has been answered "none" is not worth a history entry every cycle.
 */
export const NO_ARI_RECHECK_MS = 180 * 24 * HOUR_MS;

/** The window that applies to the current certificate, if the CA gave one for it. */
export function currentWindow(s: Readonly<LifecycleState>): { start: string; end: string } | null {
  return s.ari && s.ari.thumbprint === s.observed?.thumbprint ? s.ari.window : null;
}

/** True when the CA should be asked now for the current certificate's window. */
export function windowDue(s: Readonly<LifecycleState>, now: Date): boolean {
  const thumbprint = s.observed?.thumbprint;
  if (!thumbprint) return false;
  const known = s.ari;
  if (!known) return true;
  if (known.thumbprint === thumbprint) return known.offered && Date.parse(known.checkAt) <= now.getTime();
  // a new certificate: ask at once, unless the CA said it has no windows not long ago
  return known.offered || Date.parse(known.checkAt) <= now.getTime();
}

/** When to wake up to ask again (only while the CA offers windows for the current certificate). */
export function windowCheckAt(s: Readonly<LifecycleState>): Date | null {
  return s.ari?.offered && s.ari.thumbprint === s.observed?.thumbprint ? new Date(s.ari.checkAt) : null;
}

/**
 * The state after asking: a window is asked for again after the CA's Retry-After (12 h to 24 h), a CA without
 * windows after NO_ARI_RECHECK_MS, and a failed question after an hour (keeping the window already known).
 */
export function windowAnswered(
  s: Readonly<LifecycleState>,
  thumbprint: string,
  answer: { window: RenewalWindow | null } | { failed: true },
  now: Date,
): AriState {
  if ('failed' in answer) {
    const known = s.ari?.thumbprint === thumbprint ? s.ari : null;
    return {
      thumbprint,
      offered: true,
      window: known?.window ?? null,
      checkAt: new Date(now.getTime() + HOUR_MS).toISOString(),
    };
  }
  const w = answer.window;
  const waitMs = w
    ? Math.min(Math.max((w.retryAfterSeconds ?? 0) * 1000, 12 * HOUR_MS), 24 * HOUR_MS)
    : NO_ARI_RECHECK_MS;
  return {
    thumbprint,
    offered: w !== null,
    window: w ? { start: w.start, end: w.end } : null,
    checkAt: new Date(now.getTime() + waitMs).toISOString(),
  };
}
