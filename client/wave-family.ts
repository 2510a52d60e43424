/**
 * The waves one name ran as: `<name>` itself and the parts of every split of it (`<name>-part-<k>-of-<N>`, see
 * `certflow reissue --parts`), each run as Temporal's visibility lists it (running and closed, within the namespace's
 * retention). A re-run of the name uses them to refuse running beside waves split another way (two waves would
 * force two renewals of one certificate) and to skip what any of them re-issued (the earliest `since`).
 */
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import { mapLimit } from '../activities/bindings/concurrency';
import {
  WAVE_PART_WORKFLOW_TYPE,
  WAVE_WORKFLOW_TYPE,
  waveProgressQuery,
  waveWorkflowId,
} from '../workflows/wave-messages';
import { MAX_PARTS } from '../workflows/wave-plan';

/** A wave's name: what its workflow id carries after `wave:`. */
export const WAVE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export const partName = (name: string, index: number, of: number): string => `${name}-part-${index}-of-${of}`;

export interface WaveRun {
  wave: string;
  running: boolean;
  startedAt: string;
}

/** Every run of `<name>` and of each split's parts (each split has a part 1: found by it, then its other parts). */
export async function wavesOfName(client: Client, name: string): Promise<WaveRun[]> {
  const counts = Array.from({ length: MAX_PARTS - 1 }, (_, i) => i + 2);
  const runs = await runsOf(client, [name, ...counts.map((n) => partName(name, 1, n))]);
  const rest = splitsIn(name, runs).flatMap((n) =>
    Array.from({ length: n - 1 }, (_, i) => partName(name, i + 2, n)),
  );
  return [...runs, ...(await runsOf(client, rest))];
}

/** The part counts the name ran split in, ascending. */
export function splitsIn(name: string, runs: readonly WaveRun[]): number[] {
  const prefix = `${name}-part-`;
  const counts = runs
    .filter((r) => r.wave.startsWith(prefix))
    .map((r) => Number(/-of-(\d+)$/.exec(r.wave)?.[1]))
    .filter((n) => Number.isInteger(n) && n >= 2);
  return [...new Set(counts)].sort((a, b) => a - b);
}

/**
 * What a re-run of the name skips from: the earliest of every run's start and every wave's own `since` (a re-run's
 * since reaches back to the name's first wave, also once visibility has dropped that wave's runs). Undefined when
 * the name never ran.
 */
export async function earliestSince(client: Client, runs: readonly WaveRun[]): Promise<string | undefined> {
  const times = runs.map((r) => r.startedAt);
  await mapLimit([...new Set(runs.map((r) => r.wave))], 16, async (wave) => {
    const p = await client
      .withDeadline(Date.now() + 10_000, () =>
        client.workflow.getHandle(waveWorkflowId(wave)).query(waveProgressQuery),
      )
      .catch(() => null); // no worker answering (or an older one without `since`): its runs' starts still count
    for (const t of [p?.since, p?.startedAt]) if (t) times.push(t);
  });
  return times.sort()[0];
}

/**
 * Those of these waves that run now, asked of each (visibility is eventually consistent: a wave that just ended
 * may still be listed as running for a moment), in name order.
 */
export async function stillRunning(client: Client, waves: readonly string[]): Promise<string[]> {
  const running: string[] = [];
  await mapLimit([...new Set(waves)], 16, async (wave) => {
    const d = await client.workflow
      .getHandle(waveWorkflowId(wave))
      .describe()
      .catch((err: unknown) => {
        if (err instanceof WorkflowNotFoundError) return null; // listed, but gone since (retention)
        throw err;
      });
    if (d?.status.name === 'RUNNING') running.push(wave);
  });
  return running.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}

/** Runs of these waves, 100 ids a visibility query (names are letters, digits and ._-: nothing to escape). */
async function runsOf(client: Client, waves: readonly string[]): Promise<WaveRun[]> {
  const valid = waves.filter((w) => WAVE_NAME.test(w));
  const runs: WaveRun[] = [];
  for (let i = 0; i < valid.length; i += 100) {
    const ids = valid
      .slice(i, i + 100)
      .map((w) => `'${waveWorkflowId(w)}'`)
      .join(', ');
    const query = `WorkflowType IN ('${WAVE_WORKFLOW_TYPE}', '${WAVE_PART_WORKFLOW_TYPE}') AND WorkflowId IN (${ids})`;
    for await (const w of client.workflow.list({ query }))
      runs.push({
        wave: w.workflowId.replace(/^wave:/, ''),
        running: w.status.name === 'RUNNING',
        startedAt: w.startTime.toISOString(),
      });
  }
  return runs;
}
