/**
 * One activity-only Worker per issuer, on its own task queue, running just the issuer's activities (issue,
 * pollIssuance) with Temporal's server-side task-queue rate limit: however many workers run, the server never
 * dispatches more than `rateLimit.perSecond` issuance calls a second to one CA, nor (an ACME `orderLimit`) more than
 * the account's new-order limit (issueRatePerSecond).
 * The workflows route those activities here by scheduling them on `issuerTaskQueueFor(taskQueue, issuer)`
 * (every lifecycle is started with it as `issuerTaskQueue`).
 */
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import type { Activities } from '../activities/index';
import { DEFAULT_MAX_CONCURRENT_ACTIVITIES } from './activity-slots';
import { issuerTaskQueueFor } from '../workflows/messages';
import type { IssuerConfig } from './config';
import { tighterRate } from './quotas';

export interface IssuerWorkersOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  issuers: IssuerConfig[];
  activities: Pick<Activities, 'issue' | 'pollIssuance'>;
  shutdownGraceTime: string;
  identity?: string;
  /** Payload encryption, the same as the main Worker's. */
  dataConverter?: DataConverter;
  /** Tracing (worker/tracing.ts), the same as the main Worker's. */
  plugins?: WorkerOptions['plugins'];
  /** Activities run at once (config `maxConcurrentActivities`; worker/activity-slots.ts). */
  maxConcurrentActivities?: number;
}

export async function createIssuerWorkers(opts: IssuerWorkersOptions): Promise<Worker[]> {
  return Promise.all(
    opts.issuers.map((issuer) =>
      Worker.create({
        connection: opts.connection,
        namespace: opts.namespace,
        taskQueue: issuerTaskQueueFor(opts.taskQueue, issuer.name),
        activities: { issue: opts.activities.issue, pollIssuance: opts.activities.pollIssuance },
        shutdownGraceTime: opts.shutdownGraceTime,
        maxConcurrentActivityTaskExecutions:
          opts.maxConcurrentActivities ?? DEFAULT_MAX_CONCURRENT_ACTIVITIES,
        ...rateOption(issueRatePerSecond(issuer)),
        ...(opts.identity ? { identity: `${opts.identity}/issuer-${issuer.name}` } : {}),
        ...(opts.dataConverter ? { dataConverter: opts.dataConverter } : {}),
        ...(opts.plugins ? { plugins: opts.plugins } : {}),
      }),
    ),
  );
}

/**
 * The issuer queue's rate: `rateLimit.perSecond` and an ACME account's `orderLimit` (worker/quotas.ts), the
 * tighter. The queue carries issue and poll both, so the order limit is held with room to spare.
 */
export function issueRatePerSecond(issuer: IssuerConfig): number | undefined {
  return tighterRate(issuer.rateLimit?.perSecond, issuer.kind === 'acme' ? issuer.orderLimit : undefined);
}

const rateOption = (perSecond: number | undefined) =>
  perSecond === undefined ? {} : { maxTaskQueueActivitiesPerSecond: perSecond };
