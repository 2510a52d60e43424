/**
 * The Temporal Schedule that runs fleet discovery (workflows/fleet.ts). Called at every worker start: creates the
 * schedule when it is missing, updates it when the configuration changed, and leaves it alone otherwise (every
 * worker of a fleet may call it at once). A schedule paused by a person in the UI stays paused.
 */
import { type Client, ScheduleAlreadyRunning, ScheduleNotFoundError } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import { createHash } from 'node:crypto';
import type { fleetDiscovery, FleetInput } from '../workflows/fleet';

export const DEFAULT_DISCOVERY_SCHEDULE_ID = 'certflow-fleet-discovery';
const FLEET_WORKFLOW_TYPE = 'fleetDiscovery';
/** Kept in the action's memo: what the schedule was last written from. */
const FINGERPRINT = 'certflowConfigFingerprint';
const NOTE = 'managed by the Certflow worker (configuration: discovery)';

export type DiscoveryTiming = { every: Duration; cron?: never } | { cron: string; every?: never };

export type DiscoveryScheduleOptions = DiscoveryTiming & {
  scheduleId?: string;
  /** The workers' task queue (the discovery run and the lifecycles it starts run there). */
  taskQueue: string;
  input: FleetInput;
};

const POLICIES = {
  // a run still going when the next is due (a huge vault, a slow listing) is not doubled
  overlap: 'SKIP',
  // after an outage, one late run is enough; missed ones are not replayed
  catchupWindow: '1 minute',
} as const;

export async function ensureDiscoverySchedule(
  client: Client,
  opts: DiscoveryScheduleOptions,
): Promise<{ scheduleId: string; outcome: 'created' | 'updated' | 'unchanged' }> {
  const scheduleId = opts.scheduleId ?? DEFAULT_DISCOVERY_SCHEDULE_ID;
  if ((opts.every === undefined) === (opts.cron === undefined))
    throw new Error(`schedule ${scheduleId}: expected exactly one of every (like "15m") or cron`);
  const spec =
    opts.cron !== undefined ? { cronExpressions: [opts.cron] } : { intervals: [{ every: opts.every }] };
  const fingerprint = createHash('sha256')
    .update(JSON.stringify({ spec, taskQueue: opts.taskQueue, input: opts.input, policies: POLICIES }))
    .digest('hex')
    .slice(0, 32);
  const vaults = opts.input.vaults.join(', ');
  const action = {
    type: 'startWorkflow' as const,
    workflowType: FLEET_WORKFLOW_TYPE,
    workflowId: scheduleId,
    taskQueue: opts.taskQueue,
    args: [opts.input] as Parameters<typeof fleetDiscovery>,
    memo: { [FINGERPRINT]: fingerprint },
    // a stuck run must not hold the schedule (overlap SKIP) forever
    workflowRunTimeout: '1 hour',
    staticSummary: `Fleet discovery: ${vaults}`,
    staticDetails: `Starts a lifecycle for every certificate of ${vaults} that has none (issuer ${opts.input.issuer}), and retires the lifecycles of certificates deleted from the vault.`,
  };

  try {
    await client.schedule.create({
      scheduleId,
      spec,
      action,
      policies: POLICIES,
      state: { note: NOTE },
    });
    return { scheduleId, outcome: 'created' };
  } catch (err) {
    // another worker created it first: fall through to the comparison
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
  const handle = client.schedule.getHandle(scheduleId);
  const current = await handle.describe();
  if (current.action.memo?.[FINGERPRINT] === fingerprint) return { scheduleId, outcome: 'unchanged' };
  await handle.update((prev) => ({
    spec,
    action,
    policies: POLICIES,
    state: { paused: prev.state.paused, note: prev.state.paused ? prev.state.note : NOTE },
  }));
  return { scheduleId, outcome: 'updated' };
}

/** Removes the schedule (discovery switched off in the configuration). Idempotent. */
export async function deleteDiscoverySchedule(
  client: Client,
  scheduleId = DEFAULT_DISCOVERY_SCHEDULE_ID,
): Promise<boolean> {
  try {
    await client.schedule.getHandle(scheduleId).delete();
    return true;
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return false;
    throw err;
  }
}
