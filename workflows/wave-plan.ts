/**
 * The pure parts of an emergency re-issue wave, each a small rule with unit tests (test/unit/wave-plan.test.ts):
 * which certificates a selection takes, which one starts next and when (pacing by each vault's key-create rate
 * and a bound on those under way), whether a certificate was already re-issued since the wave began, and the
 * progress (counts, rate, ETA) the UI and the CLI show. No I/O, no clock: `now` is passed in.
 */
import type { RenewalOutcome } from './messages';
import type {
  EntryStatus,
  WaveCarried,
  WaveEntry,
  WaveProgress,
  WaveSelection,
  WaveState,
} from './wave-messages';

export const DEFAULT_CONCURRENCY = 20;
export const MAX_CONCURRENCY = 500;
const NAME = /^[A-Za-z0-9-]{1,127}$/;

/** What is wrong with a selection, naming the field, or undefined. A wave never selects by accident. */
export function selectionProblem(sel: WaveSelection | undefined): string | undefined {
  if (!sel || typeof sel !== 'object')
    return 'selection: expected --all or at least one of --issuer, --vault, --tag, --expiring-within';
  const filters = [sel.issuer, sel.vault, sel.tag, sel.expiringWithinSeconds].filter((f) => f !== undefined);
  if (sel.all && filters.length)
    return 'selection: --all selects every certificate; leave it out to narrow by --issuer, --vault, --tag or --expiring-within';
  if (!sel.all && !filters.length)
    return 'selection: expected --all or at least one of --issuer, --vault, --tag, --expiring-within';
  if (sel.issuer !== undefined && !NAME.test(sel.issuer))
    return 'issuer: expected letters, digits and dashes';
  if (sel.vault !== undefined && !NAME.test(sel.vault)) return 'vault: expected letters, digits and dashes';
  if (sel.tag !== undefined && !(sel.tag.name && typeof sel.tag.value === 'string'))
    return 'tag: expected NAME=VALUE';
  if (
    sel.expiringWithinSeconds !== undefined &&
    !(Number.isFinite(sel.expiringWithinSeconds) && sel.expiringWithinSeconds > 0)
  )
    return 'expiringWithin: expected a positive duration like 30d';
  if (
    sel.part !== undefined &&
    !(
      sel.part &&
      Number.isInteger(sel.part.of) &&
      sel.part.of >= 1 &&
      sel.part.of <= MAX_PARTS &&
      Number.isInteger(sel.part.index) &&
      sel.part.index >= 1 &&
      sel.part.index <= sel.part.of
    )
  )
    return `part: expected a part index from 1 to its count, and a count from 1 to ${MAX_PARTS}`;
  return undefined;
}

/** The most waves one selection is split into (`certflow reissue --parts`). */
export const MAX_PARTS = 100;

/**
 * The part (1-based, of `of`) a certificate falls in: FNV-1a (32-bit) of its id, modulo `of`. Stable across runs,
 * workers and releases, and spread evenly enough that parts differ by a few per cent; its own hash because
 * workflow code has no node:crypto and the parts must come out the same in the CLI, the activity and the tests.
 */
export function partOfId(id: string, of: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return (h % of) + 1;
}

/** A lifecycle as visibility shows it (activities/lifecycles.ts LifecycleRow, the fields a wave needs). */
export interface CandidateRow {
  certificateId: string;
  vault: string;
  issuer: string | null;
  expiresAt: string | null;
}

/**
 * The certificates a selection takes, soonest expiry first (then by id): those closest to expiring are
 * re-issued first. `tagged` holds the ids carrying the selection's tag (read from the vaults), when it has one.
 */
export function selectCandidates(
  rows: readonly CandidateRow[],
  sel: WaveSelection,
  now: Date,
  tagged?: ReadonlySet<string>,
): WaveEntry[] {
  const before =
    sel.expiringWithinSeconds !== undefined ? now.getTime() + sel.expiringWithinSeconds * 1000 : undefined;
  const seen = new Set<string>();
  return rows
    .filter((r) => {
      if (seen.has(r.certificateId)) return false;
      seen.add(r.certificateId);
      if (sel.issuer !== undefined && r.issuer !== sel.issuer) return false;
      if (sel.vault !== undefined && r.vault !== sel.vault) return false;
      if (sel.tag !== undefined && !tagged?.has(r.certificateId)) return false;
      if (before !== undefined && !(r.expiresAt && Date.parse(r.expiresAt) <= before)) return false;
      if (sel.part !== undefined && partOfId(r.certificateId, sel.part.of) !== sel.part.index) return false;
      return true;
    })
    .sort(
      (a, b) =>
        (a.expiresAt ? Date.parse(a.expiresAt) : Infinity) -
          (b.expiresAt ? Date.parse(b.expiresAt) : Infinity) ||
        a.certificateId.localeCompare(b.certificateId),
    )
    .map((r) => ({
      id: r.certificateId,
      vault: r.vault,
      issuer: r.issuer,
      expiresAt: r.expiresAt,
      status: 'pending' as const,
    }));
}

/** When each vault (and the wave as a whole) may start its next certificate, epoch ms. */
export interface Pacer {
  vaultNextAt: Record<string, number>;
  globalNextAt: number;
}

export const newPacer = (): Pacer => ({ vaultNextAt: {}, globalNextAt: 0 });

export type NextStart = { start: number } | { waitMs: number } | { idle: true };

/**
 * The next entry to start (its index), or how long to wait for a vault's or the wave's rate, or `idle` (nothing
 * pending, or the bound on certificates under way is reached: wait for one to finish). The first pending entry
 * whose vault may start wins, so urgency (the list's order) holds within each vault while every vault keeps busy.
 */
export function nextStart(
  entries: readonly WaveEntry[],
  pacer: Pacer,
  rates: Readonly<Record<string, number | null>>,
  o: { now: number; running: number; concurrency: number; ratePerSecond?: number },
): NextStart {
  if (o.running >= o.concurrency) return { idle: true };
  if (!entries.some((e) => e.status === 'pending')) return { idle: true };
  if (o.ratePerSecond && pacer.globalNextAt > o.now) return { waitMs: Math.ceil(pacer.globalNextAt - o.now) };
  let soonest = Infinity;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (e.status !== 'pending') continue;
    const at = pacer.vaultNextAt[e.vault] ?? 0;
    if (at <= o.now) return { start: i };
    soonest = Math.min(soonest, at);
  }
  return { waitMs: Math.max(1, Math.ceil(soonest - o.now)) };
}

/** Records a start: the vault's next slot is one interval later (at its rate), and the wave's (at its own). */
export function paced(
  pacer: Pacer,
  vault: string,
  rates: Readonly<Record<string, number | null>>,
  now: number,
  ratePerSecond?: number,
): Pacer {
  const rate = rates[vault];
  const vaultNextAt = { ...pacer.vaultNextAt };
  if (rate) vaultNextAt[vault] = Math.max(now, vaultNextAt[vault] ?? 0) + 1000 / rate;
  const globalNextAt = ratePerSecond
    ? Math.max(now, pacer.globalNextAt) + 1000 / ratePerSecond
    : pacer.globalNextAt;
  return { vaultNextAt, globalNextAt };
}

/**
 * Gives a start's slot back to its vault: a certificate skipped (already re-issued) made no key, so the next one
 * of its vault may start at once (never earlier than now).
 */
export function refunded(
  pacer: Pacer,
  vault: string,
  rates: Readonly<Record<string, number | null>>,
  now: number,
): Pacer {
  const rate = rates[vault];
  if (!rate || pacer.vaultNextAt[vault] === undefined) return pacer;
  return {
    ...pacer,
    vaultNextAt: { ...pacer.vaultNextAt, [vault]: Math.max(now, pacer.vaultNextAt[vault]! - 1000 / rate) },
  };
}

/**
 * Re-running a wave is safe: a certificate whose current version came from a renewal that started at or after the
 * wave began (this wave's earlier run, another wave, a person) is not re-issued again. The attempt's start counts,
 * not its end: its key and CSR were made after the wave began.
 */
export function reissuedSince(
  attempts: readonly Pick<RenewalOutcome, 'status' | 'startedAt' | 'newThumbprint'>[],
  currentThumbprint: string | null,
  since: string,
): RenewalOutcome['startedAt'] | null {
  if (!currentThumbprint) return null;
  const t = Date.parse(since);
  const hit = attempts.find(
    (a) =>
      a.status === 'renewed' &&
      Date.parse(a.startedAt) >= t &&
      (a.newThumbprint ?? '').toUpperCase() === currentThumbprint.toUpperCase(),
  );
  return hit?.startedAt ?? null;
}

const count = (entries: readonly WaveEntry[], s: EntryStatus) => entries.filter((e) => e.status === s).length;

/** Counts, rate and ETA of a wave at `now` (pauses left out of the rate). */
export function progressOf(
  waveId: string,
  reason: WaveProgress['reason'],
  state: WaveState,
  c: Pick<WaveCarried, 'startedAt' | 'entries' | 'vaultRates' | 'paused' | 'pausedMs'>,
  now: number,
): WaveProgress {
  const e = c.entries;
  const reissued = count(e, 'reissued');
  const skipped = count(e, 'skipped');
  const failed = count(e, 'failed');
  const running = count(e, 'running');
  const pending = count(e, 'pending');
  const finished = reissued + skipped + failed;
  const pausedNow = c.paused ? Math.max(0, now - Date.parse(c.paused.since)) : 0;
  const activeMs = Math.max(0, now - Date.parse(c.startedAt) - c.pausedMs - pausedNow);
  const perMinute = finished > 0 && activeMs > 0 ? (finished * 60_000) / activeMs : null;
  const left = pending + running;
  const etaSeconds =
    left === 0 ? 0 : perMinute && state !== 'Cancelling' ? Math.round((left * 60) / perMinute) : null;
  return {
    waveId,
    reason,
    state,
    startedAt: c.startedAt,
    paused: c.paused,
    total: e.length,
    reissued,
    skipped,
    failed,
    running,
    pending,
    cancelled: count(e, 'cancelled'),
    perMinute: perMinute === null ? null : Math.round(perMinute * 10) / 10,
    etaSeconds,
    vaultRates: c.vaultRates,
  };
}

/** A text progress bar, `width` characters: done (#), failed (!), under way (>), left (.). */
export function progressBar(
  p: Pick<WaveProgress, 'total' | 'reissued' | 'skipped' | 'failed' | 'running'>,
  width = 30,
): string {
  if (p.total === 0) return `[${'#'.repeat(width)}]`;
  const cells = (n: number) => Math.round((n / p.total) * width);
  const done = cells(p.reissued + p.skipped);
  const failed = Math.min(width - done, cells(p.failed));
  const running = Math.min(width - done - failed, cells(p.running));
  return `[${'#'.repeat(done)}${'!'.repeat(failed)}${'>'.repeat(running)}${'.'.repeat(width - done - failed - running)}]`;
}

/** "1h 02m", "3m 05s", "12s". */
export function formatDuration(seconds: number | null): string {
  if (seconds === null) return '?';
  const s = Math.max(0, Math.round(seconds));
  if (s >= 3600) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

/** What a progress line and bar show: one wave's progress, or the parts' of a split one together. */
export type ProgressCounts = Pick<
  WaveProgress,
  | 'state'
  | 'total'
  | 'reissued'
  | 'skipped'
  | 'failed'
  | 'running'
  | 'pending'
  | 'cancelled'
  | 'perMinute'
  | 'etaSeconds'
>;

/** A split wave's state, from its parts': the most active one any part is in (all at rest: Done unless cancelled). */
const STATE_ORDER: readonly WaveProgress['state'][] = [
  'Running',
  'Selecting',
  'Cancelling',
  'Paused',
  'Cancelled',
  'Done',
];

/**
 * The parts of a split wave as one (the CLI follows them at once): counts added up; the parts run side by side,
 * so their rates add up and the whole ends with its slowest part (the largest ETA of the parts still going).
 */
export function combinedProgress(parts: readonly ProgressCounts[]): ProgressCounts {
  const sum = (k: 'total' | 'reissued' | 'skipped' | 'failed' | 'running' | 'pending' | 'cancelled') =>
    parts.reduce((n, p) => n + p[k], 0);
  const going = parts.filter((p) => p.state !== 'Done' && p.state !== 'Cancelled');
  // while parts still go, the rate is theirs (an ended part adds nothing now); at the end, every part's
  const rates = (going.length ? going : parts).map((p) => p.perMinute).filter((r): r is number => r !== null);
  const etas = going.map((p) => p.etaSeconds);
  return {
    state: STATE_ORDER.find((s) => parts.some((p) => p.state === s)) ?? 'Done',
    total: sum('total'),
    reissued: sum('reissued'),
    skipped: sum('skipped'),
    failed: sum('failed'),
    running: sum('running'),
    pending: sum('pending'),
    cancelled: sum('cancelled'),
    perMinute: rates.length ? Math.round(rates.reduce((a, b) => a + b, 0) * 10) / 10 : null,
    // unknown while a part still going has no rate yet
    etaSeconds: etas.length && etas.every((e) => e !== null) ? Math.max(...(etas as number[])) : null,
  };
}

/** One line of progress, for the CLI (plain mode) and the UI's details. */
export function progressLine(p: ProgressCounts): string {
  return (
    `${p.state.toLowerCase()}: ${p.reissued} re-issued, ${p.skipped} skipped, ${p.failed} failed, ` +
    `${p.running} under way, ${p.pending} left of ${p.total}` +
    (p.cancelled ? `, ${p.cancelled} cancelled` : '') +
    (p.perMinute !== null ? ` · ${p.perMinute}/min` : '') +
    (p.state === 'Running' && p.etaSeconds !== null ? ` · ETA ${formatDuration(p.etaSeconds)}` : '')
  );
}

/** The revocation reason for a wave's reason (RFC 5280 CRLReason codes that ACME CAs accept). */
export function revocationReasonOf(reason: WaveProgress['reason']): { code: number; name: string } {
  return reason === 'key-compromise' ? { code: 1, name: 'keyCompromise' } : { code: 4, name: 'superseded' };
}

/**
 * How large a wave may be. A wave carries every entry with its result in single Temporal payloads (the
 * selection's answer, each run's continue-as-new input, the report it returns), and Temporal refuses a payload
 * over 2 MiB: a run that could not continue as new would stop mid-wave. So a selection is taken only when its
 * entries fit once every one has finished with its thumbprints, times, flags, an error type and a pointer to the
 * lifecycle (the shortest form fitEntries falls back to when messages and notes do not fit in full): 3,204
 * certificates at 50-character ids, 2,096 at the longest names Key Vault allows (test/unit/wave-plan.test.ts);
 * larger selections are split into parts (`--parts`, partsNeeded), one wave each.
 */
export const WAVE_PAYLOAD_LIMIT_BYTES = 2 * 1024 * 1024;
/** What the entries may take of a payload: the rest is kept for the wave's input, progress and encoding. */
export const WAVE_ENTRIES_BUDGET_BYTES = WAVE_PAYLOAD_LIMIT_BYTES - 64 * 1024;
/** What an entry grows by at most when it finishes, in its shortest form, besides its id once more. */
const ENTRY_GROWTH_BYTES = 420;
/** Error types are our own short names: in the shortest form, their word characters, at most this many. */
const ERROR_TYPE_CHARS = 80;

type Selected = Pick<WaveEntry, 'id' | 'vault' | 'issuer' | 'expiresAt'>;

/** The most a selection's entries weigh once every one has finished, in the shortest form (UTF-8 JSON bytes). */
export function waveOutcomeBytes(entries: readonly Selected[]): number {
  let bytes = 2;
  for (const e of entries) {
    const { id, vault, issuer, expiresAt } = e;
    bytes += utf8Length(JSON.stringify({ id, vault, issuer, expiresAt, status: 'cancelled' }));
    bytes += ENTRY_GROWTH_BYTES + utf8Length(JSON.stringify(id));
  }
  return bytes;
}

/**
 * Why a selection is too large for one wave, naming what to do, or undefined. `part` says the entries are one part
 * of a split selection (then more parts are the remedy, counted by the whole selection's --dry-run).
 */
export function waveSizeProblem(
  entries: readonly Selected[],
  part?: WaveSelection['part'],
): string | undefined {
  const bytes = waveOutcomeBytes(entries);
  if (bytes <= WAVE_ENTRIES_BUDGET_BYTES) return undefined;
  const fits = Math.floor((entries.length * WAVE_ENTRIES_BUDGET_BYTES) / bytes);
  const parts = part ? undefined : partsNeeded(entries);
  const remedy = part
    ? `part ${part.index} of ${part.of} is too large: split the selection into more parts (its --dry-run without --parts names how many)`
    : parts === undefined
      ? `even ${MAX_PARTS} parts would be too large: narrow it with --vault, --issuer, --tag or --expiring-within`
      : `split it with --parts ${parts} (one wave per part, all running at once; each certificate in exactly one)`;
  return (
    `selection: ${entries.length} certificates are more than one wave carries (about ${fits} of these: a wave ` +
    `keeps every certificate and its result in one Temporal payload of at most 2 MiB); ${remedy}`
  );
}

/**
 * The fewest parts (`--parts`) that split these entries into waves that each fit (1 when they fit as they are), or
 * undefined when even MAX_PARTS would not. The entries must be a whole selection (not already one part of one).
 */
export function partsNeeded(entries: readonly Selected[]): number | undefined {
  const first = Math.max(1, Math.ceil(waveOutcomeBytes(entries) / WAVE_ENTRIES_BUDGET_BYTES));
  for (let of = first; of <= MAX_PARTS; of++) {
    const parts = Array.from({ length: of }, (): Selected[] => []);
    for (const e of entries) parts[partOfId(e.id, of) - 1]!.push(e);
    if (parts.every((p) => waveOutcomeBytes(p) <= WAVE_ENTRIES_BUDGET_BYTES)) return of;
  }
  return undefined;
}

/**
 * The entries as a payload carries them: in full when they fit the budget, else with error messages and notes cut
 * (to 300 characters, then 60), at last with each error's type and where to read the rest (`certflow status`).
 * A selection that passed waveSizeProblem always fits in that last form.
 */
export function fitEntries(entries: WaveEntry[], budget = WAVE_ENTRIES_BUDGET_BYTES): WaveEntry[] {
  let fitted = entries;
  for (const limit of [300, 60, 0]) {
    if (utf8Length(JSON.stringify(fitted)) <= budget) return fitted;
    fitted = entries.map((e) => shortened(e, limit));
  }
  return fitted;
}

function shortened(e: WaveEntry, limit: number): WaveEntry {
  const cut = (s: string) => (s.length <= limit ? s : limit ? `${s.slice(0, limit - 1)}…` : '');
  const out: WaveEntry = { ...e };
  if (e.note !== undefined) out.note = cut(e.note);
  if (e.error)
    out.error = {
      type: limit ? e.error.type : e.error.type.replace(/[^\w.-]/g, '').slice(0, ERROR_TYPE_CHARS),
      message: limit ? cut(e.error.message) : `see certflow status ${e.id}`,
    };
  return out;
}

/** UTF-8 length without Buffer (workflow code has none). */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}
