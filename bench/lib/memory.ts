/**
 * Samples this process's memory (RSS, V8 heap, external) on an interval, plus the RSS of other processes
 * (e.g. the Temporal server), with labelled marks so a report can say what the memory was after each phase.
 */
import { rssOf } from './machine';
import { MiB } from './stats';

export interface MemorySample {
  /** Seconds since the sampler started. */
  t: number;
  rssMiB: number;
  heapUsedMiB: number;
  heapTotalMiB: number;
  externalMiB: number;
  /** RSS of each watched process, by name. */
  others: Record<string, number>;
  mark?: string;
}

export interface MemorySampler {
  /** Takes a sample now and labels it (e.g. 'after settle'). */
  mark(label: string): Promise<MemorySample>;
  stop(): void;
  samples(): MemorySample[];
  /** The highest RSS and heap seen so far. */
  peak(): { rssMiB: number; heapUsedMiB: number };
}

export function startMemorySampler({
  intervalMs = 1_000,
  watch = {} as Record<string, number>,
} = {}): MemorySampler {
  const t0 = performance.now();
  const all: MemorySample[] = [];
  const take = async (mark?: string): Promise<MemorySample> => {
    const m = process.memoryUsage();
    const others: Record<string, number> = {};
    for (const [name, pid] of Object.entries(watch)) others[name] = MiB(await rssOf(pid));
    const s: MemorySample = {
      t: Math.round((performance.now() - t0) / 100) / 10,
      rssMiB: MiB(m.rss),
      heapUsedMiB: MiB(m.heapUsed),
      heapTotalMiB: MiB(m.heapTotal),
      externalMiB: MiB(m.external),
      others,
      ...(mark ? { mark } : {}),
    };
    all.push(s);
    return s;
  };
  const timer = setInterval(() => void take(), intervalMs);
  timer.unref();
  return {
    mark: (label) => take(label),
    stop: () => clearInterval(timer),
    samples: () => [...all],
    peak: () => ({
      rssMiB: Math.max(0, ...all.map((s) => s.rssMiB)),
      heapUsedMiB: Math.max(0, ...all.map((s) => s.heapUsedMiB)),
    }),
  };
}

/** At most `max` samples, evenly spaced, always keeping the marked ones (for a results file of bounded size). */
export function thin(samples: MemorySample[], max = 120): MemorySample[] {
  if (samples.length <= max) return samples;
  const step = samples.length / max;
  return samples.filter(
    (s, i) => s.mark !== undefined || i === 0 || Math.floor(i / step) !== Math.floor((i - 1) / step),
  );
}
