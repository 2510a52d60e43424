/** Order statistics for benchmark samples: nearest-rank percentiles, so every figure is a measured sample. */

export interface Summary {
  n: number;
  min: number;
  median: number;
  p95: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentile of samples already sorted ascending (NaN when there are none). */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

const round = (x: number, digits = 1): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

export function summarize(samples: readonly number[], digits = 1): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = sorted.reduce((s, x) => s + x, 0) / (sorted.length || 1);
  return {
    n: sorted.length,
    min: round(sorted[0] ?? NaN, digits),
    median: round(percentile(sorted, 50), digits),
    p95: round(percentile(sorted, 95), digits),
    max: round(sorted.at(-1) ?? NaN, digits),
    mean: round(mean, digits),
  };
}

export { round };

/** Milliseconds as people read them: "850 ms", "12.3 s", "4.2 min". */
export function human(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 1_000) return `${round(ms, 1)} ms`;
  if (ms < 120_000) return `${round(ms / 1_000, 2)} s`;
  return `${round(ms / 60_000, 1)} min`;
}

export const MiB = (bytes: number): number => round(bytes / 1024 / 1024, 1);
