/**
 * The one client of certificate lifecycles over Temporal: start (enrol), handle, status, list, and renew or sync
 * with a request id. The CLI, the Event Grid endpoint, the worker (enrolment at start) and fleet discovery's
 * activities all use it, so a lifecycle is started, found and asked the same way everywhere. It sits with the
 * activities because fleet discovery's activities need it; client/ and worker/ import it from here.
 */
import {
  type Client,
  WorkflowExecutionAlreadyStartedError,
  type WorkflowHandle,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import { randomUUID } from 'node:crypto';
import type { certificateLifecycle, LifecycleInput } from '../workflows/lifecycle';
import {
  type CertificateStatus,
  issuerTaskQueueFor,
  type Phase,
  vaultTaskQueueFor,
  type PolicyOverride,
  type RenewalOutcome,
  type RenewRequest,
  renewNowUpdate,
  SA,
  statusQuery,
  type SyncRequest,
  syncNowUpdate,
  workflowIdFor,
} from '../workflows/messages';
import type { BindingOutcome } from './types';

export const LIFECYCLE_WORKFLOW_TYPE = 'certificateLifecycle';
/** The workers' default task queue (the worker's config and the CLI's default). */
export const DEFAULT_TASK_QUEUE = 'certflow';
const ID_PREFIX = workflowIdFor('');

export type LifecycleHandle = WorkflowHandle<typeof certificateLifecycle>;

export function lifecycleHandle(client: Client, certificateId: string): LifecycleHandle {
  return client.workflow.getHandle<typeof certificateLifecycle>(workflowIdFor(certificateId));
}

/**
 * What a lifecycle carries from the workers' configuration (worker/lifecycle-settings.ts reads it): the same for
 * the worker's own enrolment, fleet discovery's and `certflow enroll`'s.
 */
export interface LifecycleSettings {
  /** A Certflow-level renewal policy to start with, and the fleet's jitter default. */
  policy?: PolicyOverride;
  jitterMinutes?: number;
  /** Forces the mode (config `mode`); default: what the vault's policy implies. */
  mode?: LifecycleInput['mode'];
  /** Change windows, freezes, approval and staged rollout (config `changeControl`). */
  changeControl?: LifecycleInput['changeControl'];
  /** Drift watch schedule (config `driftWatch`); default daily. */
  driftWatch?: LifecycleInput['driftWatch'];
}

export interface StartLifecycleOptions extends LifecycleSettings {
  certificateId: string;
  issuer: string;
  /** The workers' task queue; the issuer's and the vault's calls go to their rate-limited queues next to it. */
  taskQueue: string;
}

/**
 * Starts the lifecycle of one certificate (workflow id `certificate:<id>`), its issuer's calls routed to the
 * issuer's own task queue and its key and CSR creation to its vault's (worker/vault-workers.ts). Idempotent: when a lifecycle of that certificate already runs (another enrol, fleet
 * discovery), nothing changes and `started` is false.
 */
export async function startLifecycle(
  client: Client,
  {
    certificateId: id,
    issuer,
    taskQueue,
    policy,
    jitterMinutes,
    mode,
    changeControl,
    driftWatch,
  }: StartLifecycleOptions,
): Promise<{ workflowId: string; started: boolean }> {
  const workflowId = workflowIdFor(id);
  try {
    await client.workflow.start<typeof certificateLifecycle>(LIFECYCLE_WORKFLOW_TYPE, {
      taskQueue,
      workflowId,
      args: [
        {
          certificateId: id,
          issuer,
          issuerTaskQueue: issuerTaskQueueFor(taskQueue, issuer),
          vaultTaskQueue: vaultTaskQueueFor(taskQueue, id.split('/')[0]!),
          ...(policy ? { policy } : {}),
          ...(jitterMinutes !== undefined ? { jitterMinutes } : {}),
          ...(mode ? { mode } : {}),
          ...(changeControl ? { changeControl } : {}),
          ...(driftWatch ? { driftWatch } : {}),
        },
      ],
      staticSummary: `Certificate ${id} (issuer ${issuer})`,
      staticDetails: `Keeps ${id} valid: renews it with ${issuer} (or watches its vault renew it), re-binds its consumers and tells its people.`,
      typedSearchAttributes: [
        { key: SA.id, value: id },
        { key: SA.vault, value: id.split('/')[0]! },
        { key: SA.issuer, value: issuer },
      ],
    });
    return { workflowId, started: true };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return { workflowId, started: false };
    throw err;
  }
}

/** The running lifecycle of a certificate and its issuer, or null when none runs. */
export async function runningLifecycle(
  client: Client,
  certificateId: string,
): Promise<{ issuer: string | null } | null> {
  try {
    const d = await lifecycleHandle(client, certificateId).describe();
    return d.status.name === 'RUNNING' ? { issuer: d.typedSearchAttributes.get(SA.issuer) ?? null } : null;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}

export interface LifecycleRow {
  certificateId: string;
  workflowId: string;
  vault: string;
  issuer: string | null;
  phase: Phase | null;
  expiresAt: string | null;
  renewAt: string | null;
  thumbprint: string | null;
}

export interface FleetFilter {
  vault?: string;
  phase?: Phase;
  /** Only certificates expiring at or before this instant. */
  expiresBefore?: Date;
}

/** Visibility query; every value placed in it was validated (names are letters, digits and dashes). */
export function lifecycleQuery(f: FleetFilter = {}): string {
  const q = [`WorkflowType = '${LIFECYCLE_WORKFLOW_TYPE}'`, `ExecutionStatus = 'Running'`];
  if (f.vault) q.push(`${SA.vault.name} = '${f.vault}'`);
  if (f.phase) q.push(`${SA.phase.name} = '${f.phase}'`);
  if (f.expiresBefore) q.push(`${SA.expiresAt.name} <= '${f.expiresBefore.toISOString()}'`);
  return q.join(' AND ');
}

/** Running lifecycles, from their search attributes (no worker needed), sorted by certificate id. */
export async function listLifecycles(client: Client, f: FleetFilter = {}): Promise<LifecycleRow[]> {
  const rows: LifecycleRow[] = [];
  for await (const w of client.workflow.list({ query: lifecycleQuery(f) })) {
    const sa = w.typedSearchAttributes;
    const id = sa.get(SA.id) ?? w.workflowId.replace(ID_PREFIX, '');
    rows.push({
      certificateId: id,
      workflowId: w.workflowId,
      vault: sa.get(SA.vault) ?? id.split('/')[0] ?? '',
      issuer: sa.get(SA.issuer) ?? null,
      phase: (sa.get(SA.phase) as Phase | undefined) ?? null,
      expiresAt: sa.get(SA.expiresAt)?.toISOString() ?? null,
      renewAt: sa.get(SA.renewAt)?.toISOString() ?? null,
      thumbprint: sa.get(SA.thumbprint) ?? null,
    });
  }
  return rows.sort((a, b) => a.certificateId.localeCompare(b.certificateId));
}

/** The certificate ids of running lifecycles (fleet discovery compares them with the vault's listing). */
export async function runningIds(
  client: Client,
  f: FleetFilter = {},
  onEach?: () => void,
): Promise<string[]> {
  const ids: string[] = [];
  for await (const w of client.workflow.list({ query: lifecycleQuery(f) })) {
    onEach?.();
    ids.push(w.typedSearchAttributes.get(SA.id) ?? w.workflowId.replace(ID_PREFIX, ''));
  }
  return ids;
}

/** One lifecycle's status, with a deadline (a lifecycle no worker answers for fails instead of hanging). */
export async function lifecycleStatus(
  client: Client,
  certificateId: string,
  timeoutMs = 5_000,
): Promise<CertificateStatus> {
  return client.withDeadline(Date.now() + timeoutMs, () =>
    lifecycleHandle(client, certificateId).query(statusQuery),
  );
}

/**
 * Each lifecycle's status, `concurrency` at a time, `timeoutMs` each; a lifecycle that does not answer
 * (no worker polling, older code) maps to its error message instead.
 */
export async function statusesOf(
  client: Client,
  workflowIds: string[],
  { concurrency = 8, timeoutMs = 5_000 } = {},
): Promise<Map<string, CertificateStatus | Error>> {
  const out = new Map<string, CertificateStatus | Error>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < workflowIds.length) {
      const id = workflowIds[next++]!;
      try {
        const st = await client.withDeadline(Date.now() + timeoutMs, () =>
          client.workflow.getHandle(id).query(statusQuery),
        );
        out.set(id, st);
      } catch (err) {
        out.set(id, err as Error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, workflowIds.length) }, worker));
  return out;
}

/** How many times a request is sent again when the run that took it ended before its answer could be read. */
const RESENDS = 3;

/**
 * Sends an update with a request id and waits for its answer. When the server fails or the lifecycle continues as
 * new between the request and its answer, the same request (same id) is sent again: the lifecycle answers a known
 * id from its records, across continue-as-new, so a retried `renew` never renews twice.
 */
async function requestOnce<Ret, Req extends { requestId?: string }>(
  client: Client,
  certificateId: string,
  def: UpdateDefinition<Ret, [Req]>,
  req: Req,
): Promise<Ret> {
  const requestId = req.requestId ?? randomUUID();
  const sent = { ...req, requestId };
  for (let i = 0; ; i++) {
    try {
      // a fresh update id per send: the server dedupes update ids within one run only; the request id is ours
      return await lifecycleHandle(client, certificateId).executeUpdate(def, {
        args: [sent],
        updateId: i === 0 ? requestId : `${requestId}:${i}`,
      });
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError || i >= RESENDS || !resendable(err)) throw err;
    }
  }
}

/** A lost answer (the run closed, the server restarted), not a refusal. */
function resendable(err: unknown): boolean {
  if (err instanceof WorkflowNotFoundError) return true;
  const code = (err as { code?: number })?.code;
  // gRPC UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED, NOT_FOUND
  return code === 14 || code === 4 || code === 10 || code === 5;
}

/** Renews now (or joins the running attempt) and answers with the outcome; safe to retry with the same id. */
export function renewLifecycle(
  client: Client,
  certificateId: string,
  req: RenewRequest,
): Promise<RenewalOutcome> {
  return requestOnce(client, certificateId, renewNowUpdate, req);
}

/** Re-binds every consumer to the current version and answers with each binding's outcome. */
export function syncLifecycle(
  client: Client,
  certificateId: string,
  req: SyncRequest,
): Promise<BindingOutcome[]> {
  return requestOnce(client, certificateId, syncNowUpdate, req);
}
