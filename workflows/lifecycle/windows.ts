/**
 * Change windows, pure and deterministic (safe in the workflow sandbox): when a certificate's consumers may be
 * re-bound. Issuance runs any time; re-binding waits until every window that applies is open and no freeze covers
 * the moment, unless the hard deadline before expiry has come (then it goes ahead, and people are told why).
 *
 * A window is a cron-like start (5 fields: minute hour day-of-month month day-of-week, read in an IANA time zone)
 * and a duration. Local times are converted with `Intl.DateTimeFormat` and an explicit `timeZone` (the tz data of
 * the runtime, the same on every replay of one worker build). Across DST changes:
 *   - a start that does not exist (clocks jump forward over it) opens at the first instant after the gap
 *     (02:30 on a spring-forward night in Europe/Berlin opens at 03:00 CEST + 30 min = the same instant as
 *     03:30 CEST, like Temporal's and most cron's "compatible" reading);
 *   - a start that exists twice (clocks fall back) opens once, at its first occurrence;
 *   - the duration is elapsed time (a 4 h window across a 1 h fall-back ends at local start + 3 h).
 * Written by hand (about 150 lines) because the cron libraries on npm either need `Date` local time (the worker's,
 * not the window's zone) or pull in a tz database that would not be the same across builds of the bundle.
 */

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
/** How far ahead a window's next opening is searched (Feb 29 comes at least once in 8 years). */
const HORIZON_DAYS = 366 * 8 + 2;
/** Longest window: a week. */
export const MAX_WINDOW_MINUTES = 7 * 24 * 60;
/** Default hard deadline before expiry: re-binding goes ahead regardless of windows and freezes. */
export const DEFAULT_DEADLINE_HOURS = 72;

export interface WindowSpec {
  name: string;
  /** `minute hour day-of-month month day-of-week`, e.g. `0 22 * * 1-4` (22:00 Monday to Thursday). */
  cron: string;
  /** IANA zone, e.g. `Europe/Berlin`; default UTC. */
  timeZone?: string;
  durationMinutes: number;
}

export interface FreezeSpec {
  name: string;
  /** ISO 8601 instants with an offset or Z. */
  start: string;
  end: string;
  reason?: string;
}

interface CronFields {
  minutes: number[];
  hours: number[];
  days: Set<number>;
  months: Set<number>;
  weekdays: Set<number>;
  /** Both day fields restricted: a day matches either (Vixie cron). */
  dayOr: boolean;
  daysAny: boolean;
  weekdaysAny: boolean;
}

const FIELDS: Array<{ what: string; min: number; max: number }> = [
  { what: 'minute', min: 0, max: 59 },
  { what: 'hour', min: 0, max: 23 },
  { what: 'day of month', min: 1, max: 31 },
  { what: 'month', min: 1, max: 12 },
  { what: 'day of week', min: 0, max: 7 },
];
const NAMES: Record<number, string[]> = {
  3: ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'],
  4: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'],
};

/** Parses a 5-field cron expression; throws an Error naming the field and what was expected. */
export function parseCron(expr: string): CronFields {
  const parts = String(expr ?? '')
    .trim()
    .split(/\s+/);
  if (parts.length !== 5 || parts[0] === '')
    throw new Error(
      `expected 5 fields "minute hour day-of-month month day-of-week" like "0 22 * * 1-4", got "${expr}"`,
    );
  const sets = parts.map((p, i) => parseField(p, i));
  const weekdays = new Set([...sets[4]!].map((d) => (d === 7 ? 0 : d)));
  const daysAny = parts[2] === '*' || parts[2] === '?';
  const weekdaysAny = parts[4] === '*' || parts[4] === '?';
  return {
    minutes: [...sets[0]!].sort((a, b) => a - b),
    hours: [...sets[1]!].sort((a, b) => a - b),
    days: sets[2]!,
    months: sets[3]!,
    weekdays,
    dayOr: !daysAny && !weekdaysAny,
    daysAny,
    weekdaysAny,
  };
}

function parseField(field: string, i: number): Set<number> {
  const { what, min, max } = FIELDS[i]!;
  const bad = () =>
    new Error(
      `${what}: expected *, a number ${min}-${max}${NAMES[i] ? ' or a name' : ''}, a range a-b, a list a,b or a step */n; got "${field}"`,
    );
  const num = (v: string): number => {
    const named = NAMES[i]?.indexOf(v.toLowerCase()) ?? -1;
    if (named >= 0) return named + (i === 3 ? 1 : 0);
    if (!/^\d{1,2}$/.test(v)) throw bad();
    const n = Number(v);
    if (n < min || n > max) throw bad();
    return n;
  };
  const out = new Set<number>();
  for (const item of field.split(',')) {
    const [range, stepText] = item.split('/');
    if (range === undefined || item.split('/').length > 2) throw bad();
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1 || (stepText !== undefined && !/^\d+$/.test(stepText)))
      throw bad();
    let lo: number;
    let hi: number;
    if (range === '*' || range === '?') [lo, hi] = [min, max];
    else if (range.includes('-')) {
      const [a, b] = range.split('-');
      lo = num(a ?? '');
      hi = num(b ?? '');
      if (hi < lo) throw bad();
    } else {
      lo = num(range);
      hi = stepText === undefined ? lo : max;
    }
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  if (out.size === 0) throw bad();
  return out;
}

/** Whether `zone` is an IANA time zone this runtime knows; returns the problem, or null. */
export function timeZoneProblem(zone: string): string | null {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return null;
  } catch {
    return `expected an IANA time zone like Europe/Berlin or America/New_York, got "${zone}"`;
  }
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(zone, f);
  }
  return f;
}

/** The wall-clock time in `zone` at instant `t`, expressed as if it were UTC (ms). */
function wallOf(t: number, zone: string): number {
  const p: Record<string, number> = {};
  for (const part of formatter(zone).formatToParts(new Date(t)))
    if (part.type !== 'literal') p[part.type] = Number(part.value);
  return Date.UTC(p.year!, p.month! - 1, p.day!, p.hour! % 24, p.minute!, p.second!);
}

/** The instant of a wall-clock time in `zone` (gap: the instant after it; repeated: the first one). */
export function instantOf(wall: number, zone: string): number {
  const before = wallOf(wall - 12 * HOUR_MS, zone) - (wall - 12 * HOUR_MS);
  const after = wallOf(wall + 12 * HOUR_MS, zone) - (wall + 12 * HOUR_MS);
  const valid = [wall - before, wall - after].filter((t) => wallOf(t, zone) === wall);
  if (valid.length) return Math.min(...valid);
  return wall - before; // in a gap: read with the offset before it, which lands after the gap
}

/** The start instants of a window on one local calendar day (UTC-based day number `dayWall`), ascending. */
function startsOn(c: CronFields, dayWall: number, zone: string): number[] {
  const d = new Date(dayWall);
  const dom = d.getUTCDate();
  const month = d.getUTCMonth() + 1;
  const dow = d.getUTCDay();
  if (!c.months.has(month)) return [];
  const domOk = c.days.has(dom);
  const dowOk = c.weekdays.has(dow);
  const dayOk = c.dayOr ? domOk || dowOk : (c.daysAny || domOk) && (c.weekdaysAny || dowOk);
  if (!dayOk) return [];
  const out: number[] = [];
  for (const h of c.hours)
    for (const m of c.minutes) out.push(instantOf(dayWall + h * HOUR_MS + m * MINUTE_MS, zone));
  return [...new Set(out)].sort((a, b) => a - b);
}

export interface Opening {
  start: Date;
  end: Date;
}

/**
 * The window occurrence open at `from` or the next one to open: `start <= from < end` means open now. Null when
 * the expression never matches within the horizon (e.g. 30 February).
 */
export function nextOpening(
  w: WindowSpec,
  from: Date,
  parsed: CronFields = parseCron(w.cron),
): Opening | null {
  const zone = w.timeZone ?? 'UTC';
  const dur = w.durationMinutes * MINUTE_MS;
  const t = from.getTime();
  // an occurrence that started up to `dur` ago may still be open: start the scan a day before that
  const firstWall = wallOf(t - dur, zone);
  let day = firstWall - (firstWall % DAY_MS) - DAY_MS;
  for (let i = 0; i < HORIZON_DAYS; i++, day += DAY_MS)
    for (const s of startsOn(parsed, day, zone))
      if (s + dur > t) return { start: new Date(s), end: new Date(s + dur) };
  return null;
}

export interface RebindGate {
  /** Re-binding may run now. */
  open: boolean;
  /** Closed: when it opens (the next window, a freeze's end, or the deadline). Open: null. */
  at: Date | null;
  /** Why: `window`/`freeze` (closed), `deadline` (the deadline overrides both), `open` (in a window or none). */
  why: 'open' | 'window' | 'freeze' | 'deadline';
  /** The hard deadline (expiry of the certificate the consumers are on, minus deadlineHours). */
  deadline: Date | null;
  /** The window or freeze that holds it (closed), for people. */
  holder?: string;
}

/**
 * When re-binding may run, from `now`: the earliest instant at which every window in `windows` is open and no
 * freeze covers it, capped by the deadline. `notAfter`: expiry of the certificate the consumers still serve.
 */
export function rebindGate(input: {
  now: Date;
  windows: readonly WindowSpec[];
  freezes: readonly FreezeSpec[];
  notAfter: string | null;
  deadlineHours?: number;
}): RebindGate {
  const { now, windows, freezes } = input;
  const hours = input.deadlineHours ?? DEFAULT_DEADLINE_HOURS;
  const deadline = input.notAfter ? new Date(Date.parse(input.notAfter) - hours * HOUR_MS) : null;
  if (deadline && deadline <= now) return { open: true, at: null, why: 'deadline', deadline };
  const parsed = windows.map((w) => parseCron(w.cron));
  let t = now.getTime();
  let holder: { why: 'window' | 'freeze'; name: string } | undefined;
  let found = false;
  // each step only moves t forward to a window's opening or a freeze's end: the first t that passes all is it
  for (let i = 0; i < 10_000 && !found; i++) {
    found = true;
    const freeze = freezes.find((f) => Date.parse(f.start) <= t && t < Date.parse(f.end));
    if (freeze) {
      holder ??= { why: 'freeze', name: freeze.name };
      t = Date.parse(freeze.end);
      found = false;
      continue;
    }
    for (let k = 0; k < windows.length; k++) {
      const o = nextOpening(windows[k]!, new Date(t), parsed[k]);
      if (!o) {
        // never opens: only the deadline lets it through
        return deadline
          ? { open: false, at: deadline, why: 'window', deadline, holder: windows[k]!.name }
          : { open: false, at: null, why: 'window', deadline, holder: windows[k]!.name };
      }
      if (o.start.getTime() > t) {
        holder ??= { why: 'window', name: windows[k]!.name };
        t = o.start.getTime();
        found = false;
        break;
      }
    }
  }
  if (t === now.getTime()) return { open: true, at: null, why: 'open', deadline };
  const at = deadline && deadline.getTime() < t ? deadline : new Date(t);
  return {
    open: false,
    at,
    why: holder?.why ?? 'window',
    deadline,
    ...(holder ? { holder: holder.name } : {}),
  };
}

/** "waiting for window at T" and friends, for status, the UI and mail. */
export function gateText(g: RebindGate): string {
  if (g.why === 'deadline')
    return `the re-binding deadline passed at ${g.deadline?.toISOString()}: re-binding now, outside any change window or freeze`;
  if (g.open) return 'in a change window';
  const what =
    g.why === 'freeze' ? `freeze "${g.holder}"` : `change window${g.holder ? ` "${g.holder}"` : ''}`;
  const capped = g.at && g.deadline && g.at.getTime() === g.deadline.getTime();
  return `waiting for window at ${g.at?.toISOString() ?? 'never'} (${what}${capped ? '; the deadline before expiry comes first' : ''})`;
}
