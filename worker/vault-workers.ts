/**
 * One activity-only Worker per vault, on its own task queue, running just the step that makes a key and CSR in
 * the vault (prepareRenewal), with Temporal's server-side task-queue rate limit set from the vault's key-create
 * quota (worker/quotas.ts): however many workers and lifecycles run, the vault is never asked for more keys than
 * it allows (Key Vault: 20 per 10 s, 10 for HSM). The same scheme as the issuers' queues (issuer-workers.ts);
 * lifecycles are started with `vaultTaskQueue` = `vaultTaskQueueFor(taskQueue, vault)` (activities/lifecycles.ts).
 */
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import type { Activities } from '../activities/index';
import { DEFAULT_MAX_CONCURRENT_ACTIVITIES } from './activity-slots';
import { vaultTaskQueueFor } from '../workflows/messages';
import { quotaRatePerSecond, type Quota } from './quotas';

export interface VaultQueue {
  vault: string;
  /** None: the queue exists (lifecycles are routed to it) but is not rate-limited (a local vault). */
  keyCreateQuota?: Quota;
}

export interface VaultWorkersOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  vaults: VaultQueue[];
  activities: Pick<Activities, 'prepareRenewal'>;
  shutdownGraceTime: string;
  identity?: string;
  dataConverter?: DataConverter;
  /** Tracing (worker/tracing.ts): the vault's step is traced like every other activity. */
  plugins?: WorkerOptions['plugins'];
  /** Activities run at once (config `maxConcurrentActivities`; worker/activity-slots.ts). */
  maxConcurrentActivities?: number;
}

/** The rate of each vault's queue (per second), or null when it is not limited; logged at start. */
export function vaultRates(vaults: VaultQueue[]): Record<string, number | null> {
  return Object.fromEntries(
    vaults.map((v) => [v.vault, v.keyCreateQuota ? quotaRatePerSecond(v.keyCreateQuota) : null]),
  );
}

export async function createVaultWorkers(opts: VaultWorkersOptions): Promise<Worker[]> {
  const rates = vaultRates(opts.vaults);
  return Promise.all(
    opts.vaults.map((v) =>
      Worker.create({
        connection: opts.connection,
        namespace: opts.namespace,
        taskQueue: vaultTaskQueueFor(opts.taskQueue, v.vault),
        activities: { prepareRenewal: opts.activities.prepareRenewal },
        shutdownGraceTime: opts.shutdownGraceTime,
        maxConcurrentActivityTaskExecutions:
          opts.maxConcurrentActivities ?? DEFAULT_MAX_CONCURRENT_ACTIVITIES,
        ...(rates[v.vault] ? { maxTaskQueueActivitiesPerSecond: rates[v.vault]! } : {}),
        ...(opts.identity ? { identity: `${opts.identity}/vault-${v.vault}` } : {}),
        ...(opts.dataConverter ? { dataConverter: opts.dataConverter } : {}),
        ...(opts.plugins ? { plugins: opts.plugins } : {}),
      }),
    ),
  );
}
