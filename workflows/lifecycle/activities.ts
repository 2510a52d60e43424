/**
 * The activities the lifecycle calls, with their time limits and retries: one place to read how long any step may
 * wait to start, run, or go without a heartbeat. Every step has a schedule-to-start bound (nothing waits forever
 * for a worker that is not there) and the long ones heartbeat, so a killed worker's step is retried on another
 * within the 30-second heartbeat timeout.
 */
import type { Priority } from '@temporalio/common';
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../../activities/index';

/** Main-queue steps wait at most this long for a worker (a restart or deploy is shorter). */
const MAIN_QUEUE_START = '30 minutes';
/**
 * The issuer's queue is rate-limited (Temporal's task-queue rate limit per CA): in a large wave a step may wait
 * hours for its turn. A missing issuer is caught at once by prepareRenewal (main or vault queue); an issuer whose
 * workers are all gone fails the attempt (NoWorkerPolling) after this long (LifecycleInput.issuerQueueWait).
 */
export const ISSUER_QUEUE_WAIT = '6 hours';
const HEARTBEAT = '30 seconds';

const vault = proxyActivities<Activities>({
  scheduleToStartTimeout: MAIN_QUEUE_START,
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 6 },
});

export const { observe, prepareRenewal, verifyAndMerge, cancelRenewal, renewInVault } = vault;

/**
 * The key and CSR are made on the vault's task queue when the lifecycle has one: rate-limited by Temporal to the
 * vault's key-create quota, so a wave may wait its turn there (as long as on the issuer's queue).
 */
export const vaultSteps = (taskQueue: string | undefined, priority?: Priority) =>
  taskQueue
    ? proxyActivities<Activities>({
        taskQueue,
        scheduleToStartTimeout: ISSUER_QUEUE_WAIT,
        startToCloseTimeout: '2 minutes',
        retry: {
          initialInterval: '2s',
          backoffCoefficient: 2,
          maximumInterval: '1 minute',
          maximumAttempts: 6,
        },
        ...(priority ? { priority } : {}),
      })
    : vault;

/**
 * Issue and poll run on the issuer's task queue (set per call); they heartbeat while the CA works. A CA that drops
 * connections or is down for a while is waited out within one attempt: 12 tries 5 s, 10 s, ... 2 minutes apart
 * (about 15 minutes in all; the chaos suite's CA is down 2 minutes and fails 30 % of calls on top). Polling is
 * safe to repeat (the order is found again by its URL; nothing is finalized twice); a repeated placeOrder whose first
 * answer was lost leaves an unused order that expires at the CA. Refusals are non-retryable and fail at once.
 */
export const issuerSteps = (
  taskQueue: string | undefined,
  queueWait: string = ISSUER_QUEUE_WAIT,
  priority?: Priority,
) =>
  proxyActivities<Activities>({
    ...(taskQueue ? { taskQueue } : {}),
    ...(priority ? { priority } : {}),
    scheduleToStartTimeout: queueWait,
    startToCloseTimeout: '10 minutes',
    heartbeatTimeout: HEARTBEAT,
    retry: {
      initialInterval: '5s',
      backoffCoefficient: 2,
      maximumInterval: '2 minutes',
      maximumAttempts: 12,
    },
  });

export const { syncBindings, bindingTargets } = proxyActivities<Activities>({
  scheduleToStartTimeout: MAIN_QUEUE_START,
  startToCloseTimeout: '15 minutes',
  heartbeatTimeout: HEARTBEAT,
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 3 },
});

/** Short: an SMTP outage must not hold the lifecycle up; a notice not sent is tried again at the next wake. */
export const { notify } = proxyActivities<Activities>({
  scheduleToStartTimeout: MAIN_QUEUE_START,
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumAttempts: 3 },
});

/** Drift watch: cheap and optional; a probe that cannot run is an answer in status, never a held-up lifecycle. */
export const { probeBindings } = proxyActivities<Activities>({
  scheduleToStartTimeout: MAIN_QUEUE_START,
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: HEARTBEAT,
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumAttempts: 2 },
});

/** Optional and cheap: a CA without ARI (or unreachable) must never hold the lifecycle up. */
export const { renewalWindow } = proxyActivities<Activities>({
  scheduleToStartTimeout: MAIN_QUEUE_START,
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '5s', maximumAttempts: 2 },
});
