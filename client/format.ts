/** Text output of the CLI: tables, CSV, times and durations, and text made safe for a terminal. Pure. */

/**
 * C0 controls (ESC included), DEL, C1 controls, and the Unicode bidirectional overrides: text from outside
 * (a CA's problem document, a pause reason, a server's error) must not drive the terminal or reorder a line.
 */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
/** The same but line breaks (\n, and \r\n as CSV ends its lines). */
const CONTROL_BUT_NEWLINE =
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  /\r(?!\n)|[\u0000-\u0009\u000b\u000c\u000e-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
const escapeChar = (c: string) => {
  const code = c.charCodeAt(0);
  return code <= 0xff
    ? `\\x${code.toString(16).padStart(2, '0')}`
    : `\\u${code.toString(16).padStart(4, '0')}`;
};

/** One line of foreign text, every control character shown as an escape (`\x1b`, `\x0a`). */
export function printable(text: string): string {
  return String(text).replace(CONTROL, escapeChar);
}

/** Output as printed: line breaks kept, every other control character shown as an escape. */
export function printableLines(text: string): string {
  return String(text).replace(CONTROL_BUT_NEWLINE, escapeChar);
}

/** Columns padded to their widest cell; the last column is not padded. */
export function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows].map((r) => r.map((cell) => printable(cell)));
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all
    .map((r) =>
      r
        .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** RFC 4180: fields with a comma, quote or line break are quoted, quotes doubled. */
export function csv(header: string[], rows: Array<Array<string | number | boolean | null>>): string {
  const cell = (v: string | number | boolean | null): string => {
    const s = v === null ? '' : String(v);
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [header, ...rows].map((r) => r.map(cell).join(',')).join('\r\n') + '\r\n';
}

/** `3d 4h`, `5h 12m`, `12m`, `45s`: the largest unit and the next one when it is not zero. */
export function humanDuration(ms: number): string {
  const units: Array<[string, number]> = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
  ];
  const abs = Math.abs(ms);
  const i = units.findIndex(([, size]) => abs >= size);
  if (i < 0) return '0s';
  const [u, size] = units[i]!;
  const n = Math.floor(abs / size);
  const next = units[i + 1];
  const m = next ? Math.floor((abs - n * size) / next[1]) : 0;
  return m > 0 && next ? `${n}${u} ${m}${next[0]}` : `${n}${u}`;
}

/** `2025-06-01 12:00Z (in 3d 4h)` or `(2h ago)`; `-` when absent. */
export function when(iso: string | Date | null | undefined, now: Date): string {
  if (!iso) return '-';
  const t = typeof iso === 'string' ? new Date(iso) : iso;
  if (Number.isNaN(t.getTime())) return String(iso);
  const delta = t.getTime() - now.getTime();
  const rel = delta >= 0 ? `in ${humanDuration(delta)}` : `${humanDuration(delta)} ago`;
  return `${shortTime(t)} (${rel})`;
}

/** `2025-06-01 12:00Z`. */
export function shortTime(t: Date): string {
  return `${t.toISOString().slice(0, 16).replace('T', ' ')}Z`;
}

/** Whole days from now until `iso` (negative when past), or null. */
export function daysLeft(iso: string | null, now: Date): number | null {
  if (!iso) return null;
  return Math.floor((Date.parse(iso) - now.getTime()) / 86_400_000);
}

export const dash = (v: string | null | undefined): string =>
  v === null || v === undefined || v === '' ? '-' : printable(v);
