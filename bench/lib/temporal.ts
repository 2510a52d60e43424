/** Temporal-side measurements: database files on disk, visibility counts, and what a history is made of. */
import type { Client } from '@temporalio/client';
import { stat } from 'node:fs/promises';

export interface DbSize {
  dbBytes: number;
  walBytes: number;
  shmBytes: number;
  totalBytes: number;
}

const sizeOf = (file: string): Promise<number> =>
  stat(file).then(
    (s) => s.size,
    () => 0,
  );

/** The SQLite database of a dev server: the main file, its write-ahead log and the shared-memory index. */
export async function dbSize(dbFile: string): Promise<DbSize> {
  const [dbBytes, walBytes, shmBytes] = await Promise.all([
    sizeOf(dbFile),
    sizeOf(`${dbFile}-wal`),
    sizeOf(`${dbFile}-shm`),
  ]);
  return { dbBytes, walBytes, shmBytes, totalBytes: dbBytes + walBytes + shmBytes };
}

/** Running lifecycles in a phase, as the Web UI would count them (visibility is eventually consistent). */
export async function countInPhase(client: Client, phase: string, taskQueue: string): Promise<number> {
  const query = `CertificatePhase = "${phase}" AND ExecutionStatus = "Running" AND TaskQueue = "${taskQueue}"`;
  return (await client.workflow.count(query)).count;
}

export interface HistoryCount {
  workflowId: string;
  runId: string;
  events: number;
  byType: Record<string, number>;
  /** Bytes of the history as protobuf JSON (a proxy for what the server stores). */
  jsonBytes: number;
  /** From the first event to the last. */
  durationMs: number;
  /** The slowest gaps between consecutive events, to see where a run waited. */
  slowestGaps: Array<{ ms: number; after: string; before: string }>;
}

const msOf = (t: unknown): number => {
  const ts = t as { seconds?: { toNumber(): number } | number; nanos?: number } | null | undefined;
  const secs = typeof ts?.seconds === 'number' ? ts.seconds : (ts?.seconds?.toNumber() ?? 0);
  return secs * 1000 + (ts?.nanos ?? 0) / 1e6;
};

/** Events of one run, grouped by type (taken from the attributes field each event sets). */
export async function countHistory(
  client: Client,
  workflowId: string,
  runId?: string,
): Promise<HistoryCount> {
  const handle = client.workflow.getHandle(workflowId, runId);
  const history = await handle.fetchHistory();
  const events = history.events ?? [];
  const byType: Record<string, number> = {};
  const types = events.map((e) => {
    const attr = Object.keys(e).find(
      (k) => k.endsWith('EventAttributes') && (e as Record<string, unknown>)[k] != null,
    );
    const type = attr ? attr.replace(/EventAttributes$/, '') : 'unknown';
    byType[type] = (byType[type] ?? 0) + 1;
    return type;
  });
  const times = events.map((e) => msOf(e.eventTime));
  const gaps = times.slice(1).map((t, i) => ({
    ms: Math.round(t - (times[i] as number)),
    after: types[i] as string,
    before: types[i + 1] as string,
  }));
  const runIdOf = runId ?? (await handle.describe()).runId;
  return {
    workflowId,
    runId: runIdOf,
    events: events.length,
    byType,
    jsonBytes: JSON.stringify(history).length,
    durationMs: Math.round((times.at(-1) ?? 0) - (times[0] ?? 0)),
    slowestGaps: gaps.sort((a, b) => b.ms - a.ms).slice(0, 5),
  };
}

/** Polls `probe` every `intervalMs` until it returns true or `timeoutMs` passes; false on timeout. */
export async function pollUntil(
  probe: () => Promise<boolean>,
  { timeoutMs, intervalMs = 1_000 }: { timeoutMs: number; intervalMs?: number },
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe().catch(() => false)) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
