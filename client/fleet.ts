/**
 * The fleet as Temporal sees it: running lifecycles found by a visibility query over Certflow's search
 * attributes, and their `status` answers fetched a few at a time with a deadline each.
 */
import type { Client } from '@temporalio/client';
import { type CertificateStatus, type Phase, SA, statusQuery, workflowIdFor } from '../workflows/messages';

export const LIFECYCLE_WORKFLOW_TYPE = 'certificateLifecycle';
const ID_PREFIX = workflowIdFor('');

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
