/**
 * Heartbeats for long activities (issue at a CA, binding sync, probes): while the work runs, the activity tells
 * Temporal it is alive every few seconds, so a killed worker's work is retried within the heartbeat timeout instead
 * of the whole start-to-close timeout. Progress that must survive a crash (an ACME order URL) rides along as the
 * heartbeat's details and comes back to the retry as `resumeDetails()`. Outside an activity (benchmarks, tests that
 * call adapters directly) every function here does nothing.
 */
import { Context } from '@temporalio/activity';

/** Interval between heartbeats: well inside the workflows' 30-second heartbeat timeouts. */
export const HEARTBEAT_EVERY_MS = 5_000;

function current(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined; // not inside an activity
  }
}

/**
 * Runs `work` while heartbeating every `everyMs`. `progress()` returns the details sent with each beat (what a
 * retry needs to resume); `record(details)` sends a beat at once with new details (e.g. the moment a CA order
 * exists), so a crash right after still leaves them with Temporal.
 */
export async function withHeartbeat<T>(
  work: (record: (details: unknown) => void) => Promise<T>,
  everyMs: number = HEARTBEAT_EVERY_MS,
): Promise<T> {
  const ctx = current();
  if (!ctx) return work(() => {});
  let details: unknown = ctx.info.heartbeatDetails;
  const beat = () => ctx.heartbeat(details);
  beat();
  const timer = setInterval(beat, everyMs);
  try {
    return await work((d) => {
      details = d;
      beat();
    });
  } finally {
    clearInterval(timer);
  }
}

/** The details of the last heartbeat of an earlier try of this activity (undefined on a first try). */
export function resumeDetails<T>(): T | undefined {
  return current()?.info.heartbeatDetails as T | undefined;
}

/** A single heartbeat between steps of a long loop (a binding target's hosts), with optional details. */
export function heartbeatNow(details?: unknown): void {
  current()?.heartbeat(details);
}
