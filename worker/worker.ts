/** Builds Certflow's Temporal Worker over a connection and a set of activities. */
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createRequire } from 'node:module';
import type { Activities } from '../activities/index';
import { DEFAULT_MAX_CONCURRENT_ACTIVITIES } from './activity-slots';

const require = createRequire(import.meta.url);

import { DEFAULT_TASK_QUEUE } from '../activities/lifecycles';

export { DEFAULT_TASK_QUEUE };

export interface CertflowWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue?: string;
  activities: Activities;
  /** A prebuilt bundle (bundleWorkflowCode) for production start-up; else the workflows are bundled now. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  shutdownGraceTime?: WorkerOptions['shutdownGraceTime'];
  identity?: string;
  /** Lifecycles kept in memory between wake-ups (config `maxCachedWorkflows`); the SDK's default when absent. */
  maxCachedWorkflows?: number;
  /** Activities run at once (config `maxConcurrentActivities`; worker/activity-slots.ts). */
  maxConcurrentActivities?: number;
  /** Payload encryption (client/payload-codec.ts); the clients must use the same. */
  dataConverter?: WorkerOptions['dataConverter'];
  /** Tracing (worker/tracing.ts); with a prebuilt workflowBundle, bundle it with the same plugins. */
  plugins?: WorkerOptions['plugins'];
}

export async function createCertflowWorker(opts: CertflowWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue ?? DEFAULT_TASK_QUEUE,
    activities: opts.activities,
    ...(opts.workflowBundle
      ? { workflowBundle: opts.workflowBundle }
      : { workflowsPath: require.resolve('../workflows/index.ts') }),
    shutdownGraceTime: opts.shutdownGraceTime ?? '30 seconds',
    ...(opts.identity ? { identity: opts.identity } : {}),
    ...(opts.maxCachedWorkflows !== undefined ? { maxCachedWorkflows: opts.maxCachedWorkflows } : {}),
    maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivities ?? DEFAULT_MAX_CONCURRENT_ACTIVITIES,
    // up to this many heartbeats of one activity are coalesced: keep it short, so progress reaches the server soon
    maxHeartbeatThrottleInterval: '5 seconds',
    ...(opts.dataConverter ? { dataConverter: opts.dataConverter } : {}),
    ...(opts.plugins ? { plugins: opts.plugins } : {}),
  });
}
