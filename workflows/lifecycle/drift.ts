/**
 * Drift watch: a certificate renewed but not served is the failure users report most (certbot #2676, win-acme
 * #2728). Each lifecycle probes its bindings' live endpoints on a schedule (daily by default, jittered per
 * certificate so a fleet does not probe at once) and whenever it wakes (at most once per `wakeGap`); a binding
 * serving another certificate than the vault's current one is re-synced (the rule `BindingDrift`, in decide.ts's
 * sync chain), and a binding that cannot be probed says so in status instead of looking healthy.
 * Pure: the lifecycle, the display and tests share it.
 */
import type { BindingOutcome, BindingProbe } from '../../activities/types';
import { unitHash } from '../policy';

const MINUTE_MS = 60_000;

/** How often the bindings are probed. `everyMinutes: 0` turns the watch off for this lifecycle. */
export interface DriftWatchConfig {
  /** Between scheduled probes (default 1440: daily). */
  everyMinutes?: number;
  /** Each scheduled probe moves by up to this much, earlier or later (default 60; at most half of `every`). */
  jitterMinutes?: number;
  /** A lifecycle that wakes for anything else probes too when its last probe is older than this (default 60). */
  onWakeMinutes?: number;
}

export const DEFAULT_DRIFT_WATCH: Required<DriftWatchConfig> = {
  everyMinutes: 24 * 60,
  jitterMinutes: 60,
  onWakeMinutes: 60,
};

/** The largest interval the configuration may ask for (30 days). */
export const MAX_DRIFT_EVERY_MINUTES = 30 * 24 * 60;

/** Checks a drift-watch configuration; the message names the field. Undefined when it is fine. */
export function validateDriftWatch(c: unknown, where = 'driftWatch'): string | undefined {
  if (typeof c !== 'object' || c === null || Array.isArray(c)) return `${where}: expected an object`;
  const p = c as Record<string, unknown>;
  const known = ['everyMinutes', 'jitterMinutes', 'onWakeMinutes'];
  const unknown = Object.keys(p).filter((k) => !known.includes(k));
  if (unknown.length) return `${where}.${unknown[0]}: unknown field (expected one of ${known.join(', ')})`;
  const bad = (k: string, lo: number, hi: number) =>
    p[k] !== undefined &&
    !(typeof p[k] === 'number' && Number.isInteger(p[k]) && (p[k] as number) >= lo && (p[k] as number) <= hi);
  if (bad('everyMinutes', 0, MAX_DRIFT_EVERY_MINUTES))
    return `${where}.everyMinutes: expected a whole number of minutes from 0 (off) to ${MAX_DRIFT_EVERY_MINUTES}`;
  if (bad('jitterMinutes', 0, MAX_DRIFT_EVERY_MINUTES / 2))
    return `${where}.jitterMinutes: expected a whole number of minutes from 0 to ${MAX_DRIFT_EVERY_MINUTES / 2}`;
  if (bad('onWakeMinutes', 1, MAX_DRIFT_EVERY_MINUTES))
    return `${where}.onWakeMinutes: expected a whole number of minutes from 1 to ${MAX_DRIFT_EVERY_MINUTES}`;
  return undefined;
}

/** What the lifecycle keeps of its probes (carried across continue-as-new). */
export interface DriftState {
  /** The thumbprint the last probe expected (the vault's current one then). */
  thumbprint: string | null;
  /** When the last probe (or a sync, which probes too) finished; null: never. */
  checkedAt: string | null;
  /** Probes so far: seeds the jitter, so every interval gets its own offset. */
  checks: number;
  /** Every binding's answer to the last probe. */
  bindings: BindingProbe[];
  /** The last time drift was found and re-synced (reason BindingDrift), for status and history. */
  lastDrift: { at: string; bindings: string[]; resynced: boolean } | null;
}

export function initialDrift(now: Date): DriftState {
  // the first scheduled probe comes one interval after the watch starts (a new lifecycle binds first)
  return { thumbprint: null, checkedAt: now.toISOString(), checks: 0, bindings: [], lastDrift: null };
}

export function driftConfig(c: DriftWatchConfig | undefined): Required<DriftWatchConfig> {
  const every = c?.everyMinutes ?? DEFAULT_DRIFT_WATCH.everyMinutes;
  return {
    everyMinutes: every,
    jitterMinutes: Math.min(c?.jitterMinutes ?? DEFAULT_DRIFT_WATCH.jitterMinutes, every / 2),
    onWakeMinutes: c?.onWakeMinutes ?? DEFAULT_DRIFT_WATCH.onWakeMinutes,
  };
}

/** The next scheduled probe: one interval after the last, moved by a stable jitter in [-jitter, +jitter]. */
export function nextProbeAt(d: DriftState, c: Required<DriftWatchConfig>, key: string): Date | null {
  if (c.everyMinutes <= 0) return null;
  const last = d.checkedAt ? Date.parse(d.checkedAt) : 0;
  const jitter = (unitHash(`${key}#drift#${d.checks}`) * 2 - 1) * c.jitterMinutes * MINUTE_MS;
  return new Date(last + c.everyMinutes * MINUTE_MS + jitter);
}

export interface ProbeFacts {
  d: DriftState;
  config: Required<DriftWatchConfig>;
  key: string;
  now: Date;
  /** The lifecycle woke (a timer or a message) since the last probe. */
  woke: boolean;
}

/** Why a probe is due now ('schedule' or 'wake'), or undefined. */
export function probeDue(f: ProbeFacts): 'schedule' | 'wake' | undefined {
  if (f.config.everyMinutes <= 0) return undefined;
  const at = nextProbeAt(f.d, f.config, f.key);
  if (at && at <= f.now) return 'schedule';
  const last = f.d.checkedAt ? Date.parse(f.d.checkedAt) : 0;
  if (f.woke && f.now.getTime() - last >= f.config.onWakeMinutes * MINUTE_MS) return 'wake';
  return undefined;
}

/** The bindings the last probe found serving another certificate than `thumbprint` (the vault's current one). */
export function drifted(d: DriftState | undefined, thumbprint: string | null | undefined): BindingProbe[] {
  if (!d || !thumbprint || d.thumbprint?.toUpperCase() !== thumbprint.toUpperCase()) return [];
  return d.bindings.filter((b) => b.state === 'drift');
}

/** The rule's message, or undefined: one of decide.ts's sync rules (`BindingDrift`). */
export function bindingDrift(
  d: DriftState | undefined,
  thumbprint: string | null | undefined,
): string | undefined {
  const found = drifted(d, thumbprint);
  if (!found.length) return undefined;
  const list = found.map((b) => `${b.target} (${b.binding}) serves ${b.served ?? 'nothing'}`).join('; ');
  return `BindingDrift: ${found.length} binding${found.length === 1 ? '' : 's'} not on ${thumbprint}: ${list}`;
}

/** Records a probe's answers. */
export function probed(d: DriftState, thumbprint: string, answers: BindingProbe[], now: Date): DriftState {
  return { ...d, thumbprint, checkedAt: now.toISOString(), checks: d.checks + 1, bindings: answers };
}

/**
 * After a re-sync for drift: the drifted bindings are recorded as re-synced (or not), and the sync's own live
 * verification stands for the next probe's answers of the bindings it covered.
 */
export function resynced(d: DriftState, outcomes: BindingOutcome[], now: Date): DriftState {
  const found = d.bindings.filter((b) => b.state === 'drift');
  const failed = outcomes.some((o) => o.status === 'failed' || o.status === 'rolled-back');
  const fixed = (b: BindingProbe): BindingProbe => {
    const o = outcomes.find(
      (x) => x.target === b.target && (x.binding === b.binding || outcomes.length === 1),
    );
    if (b.state !== 'drift') return b;
    if (o && (o.status === 'bound' || o.status === 'unchanged'))
      return { ...b, state: 'serving', served: o.after, detail: `re-synced (BindingDrift): ${o.detail}` };
    return {
      ...b,
      state: 'resync-failed',
      detail: `re-sync failed (BindingDrift): ${o?.detail ?? b.detail}`,
    };
  };
  return {
    ...d,
    bindings: d.bindings.map(fixed),
    lastDrift: {
      at: now.toISOString(),
      bindings: found.map((b) => `${b.target} (${b.binding})`),
      resynced: !failed,
    },
  };
}

/**
 * What status shows about the watch: bindings that could not be probed or did not answer (never shown as healthy),
 * and the last drift found.
 */
export function driftNotes(d: DriftState | undefined): string[] {
  if (!d) return [];
  const out: string[] = [];
  for (const b of d.bindings) {
    if (b.state === 'unprobeable')
      out.push(`binding ${b.target} (${b.binding}) cannot be probed: ${b.detail}`);
    if (b.state === 'unreachable')
      out.push(`binding ${b.target} (${b.binding}) did not answer the probe at ${d.checkedAt}: ${b.detail}`);
    if (b.state === 'invalid')
      out.push(`binding ${b.target} (${b.binding}) serves the certificate badly: ${b.detail}`);
    if (b.state === 'resync-failed') out.push(`binding ${b.target} (${b.binding}) drifted and ${b.detail}`);
  }
  if (d.lastDrift)
    out.push(
      `BindingDrift at ${d.lastDrift.at}: ${d.lastDrift.bindings.join(', ')} served another certificate; ${d.lastDrift.resynced ? 're-synced' : 're-sync failed'}`,
    );
  return out;
}

/** For status: the watch as data (the next probe, the last answers). */
export function driftView(
  d: DriftState | undefined,
  c: Required<DriftWatchConfig>,
  key: string,
): DriftView | null {
  if (!d) return null;
  return {
    checkedAt: d.thumbprint ? d.checkedAt : null,
    nextAt: nextProbeAt(d, c, key)?.toISOString() ?? null,
    bindings: d.bindings,
    lastDrift: d.lastDrift,
  };
}

export interface DriftView {
  /** When the bindings were last probed (null: not yet). */
  checkedAt: string | null;
  /** The next scheduled probe (null: the watch is off). */
  nextAt: string | null;
  bindings: BindingProbe[];
  lastDrift: DriftState['lastDrift'];
}
