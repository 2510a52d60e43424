/**
 * Failures as people and rules see them: a stable type and a human message. Adapters classify their own errors
 * (an `ApplicationFailure` with a type such as `AcmeBadCsr`); this only unwraps Temporal's envelopes and names
 * Temporal's own timeouts. Pure and deterministic: imported by workflow code.
 */
import { ActivityFailure, ApplicationFailure, TimeoutFailure } from '@temporalio/workflow';

export interface FailureInfo {
  type: string;
  message: string;
  /** The adapter said the CSR itself is unusable (refused by the CA, not matching the chain): drop it. */
  discardCsr?: boolean;
}

/** Temporal's timeout kinds, as a stable failure type and what they mean for Certflow. */
const TIMEOUTS: Record<string, FailureInfo> = {
  SCHEDULE_TO_START: {
    type: 'NoWorkerPolling',
    message: 'no worker picked the task up in time: is a worker with this issuer (or vault) running?',
  },
  HEARTBEAT: {
    type: 'WorkerLost',
    message: 'the worker running the step stopped answering (crashed or cut off)',
  },
  START_TO_CLOSE: { type: 'StepTimedOut', message: 'the step ran longer than its time limit' },
  SCHEDULE_TO_CLOSE: { type: 'StepTimedOut', message: 'the step did not finish within its overall limit' },
};

/** The stable error class and message of a failure (activity failures carry the real failure as cause). */
export function describeFailure(err: unknown): FailureInfo {
  let e: unknown = err;
  let activity: string | undefined;
  while (e instanceof ActivityFailure && e.cause) {
    activity ??= e.activityType;
    e = e.cause;
  }
  if (e instanceof TimeoutFailure) {
    const kind = TIMEOUTS[String(e.timeoutType ?? '').replace(/^TIMEOUT_TYPE_/, '')] ?? {
      type: 'StepTimedOut',
      message: e.message,
    };
    return { type: kind.type, message: activity ? `${activity}: ${kind.message}` : kind.message };
  }
  if (e instanceof ApplicationFailure) {
    const mark = (e.details?.[0] as { discardCsr?: unknown } | undefined)?.discardCsr === true;
    return {
      type: e.type ?? 'ApplicationFailure',
      message: e.message,
      ...(mark ? { discardCsr: true } : {}),
    };
  }
  if (e instanceof Error) return { type: e.name, message: e.message };
  return { type: 'Unknown', message: String(e) };
}
