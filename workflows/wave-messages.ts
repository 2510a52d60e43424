/**
 * The vocabulary of an emergency re-issue wave (workflows/wave.ts), shared with its activities, the CLI and tests:
 * input, progress, report, signals, queries and search attributes. Imported by workflow code: no I/O.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineSignal } from './definitions';

/** Why a wave runs; the revocation reason follows from it (RFC 5280 CRLReason). */
export const WAVE_REASONS = ['key-compromise', 'ca-distrust', 'superseded'] as const;
export type WaveReason = (typeof WAVE_REASONS)[number];

/** Which certificates a wave re-issues; `all` or at least one filter, never none (see selectionProblem). */
export interface WaveSelection {
  all?: boolean;
  issuer?: string;
  vault?: string;
  tag?: { name: string; value: string };
  /** Only certificates expiring within this many seconds of the wave's start. */
  expiringWithinSeconds?: number;
  /**
   * Only the certificates of part `index` (1-based) of `of`: a selection too large for one wave is split into
   * waves by a stable hash of each certificate's id (workflows/wave-plan.ts partOfId), so each certificate falls
   * in exactly one part, whenever and wherever the selection is taken.
   */
  part?: { index: number; of: number };
}

export interface WaveInput {
  reason: WaveReason;
  /** Free text for history, mail and the report (e.g. "CA X distrusted by browsers on 2026-12-01"). */
  note?: string;
  selection: WaveSelection;
  /** Revoke each old certificate at its CA after its replacement is merged, where the issuer can. */
  revokeOld?: boolean;
  /** Re-bind at once, outside change windows (sent to each lifecycle as `ignoreWindows`). */
  ignoreWindows?: boolean;
  /** Certificates being re-issued at once (default 20, at most 500). */
  concurrency?: number;
  /** Overall starts per second across all vaults (default: only the vaults' own rates bound it). */
  ratePerSecond?: number;
  requestedBy?: string;
  /**
   * Certificates re-issued by an attempt that started at or after this time are skipped (default: the wave's
   * start). A re-run of a wave passes its first run's start, so nothing it re-issued is re-issued again.
   */
  since?: string;
  /** Keep the UI's search attributes current (default true; false only on servers without them). */
  searchAttributes?: boolean;
  /** State from the previous run (continue-as-new). */
  carried?: WaveCarried;
}

export type EntryStatus = 'pending' | 'running' | 'reissued' | 'skipped' | 'failed' | 'cancelled';

/** One certificate of the wave, as the report shows it. Thumbprints and references only. */
export interface WaveEntry {
  id: string;
  vault: string;
  issuer: string | null;
  expiresAt: string | null;
  status: EntryStatus;
  oldThumbprint?: string | null;
  newThumbprint?: string | null;
  notAfter?: string | null;
  /** The new certificate's key differs from the old one's (checked on the public keys). */
  newKey?: boolean;
  revoked?: 'revoked' | 'unsupported' | 'failed' | 'not-asked';
  /** skipped: why (already re-issued after the wave started, by this wave or otherwise). */
  note?: string;
  error?: { type: string; message: string };
  finishedAt?: string;
}

export type WaveState = 'Selecting' | 'Running' | 'Paused' | 'Cancelling' | 'Done' | 'Cancelled';

export interface WaveProgress {
  waveId: string;
  reason: WaveReason;
  state: WaveState;
  startedAt: string;
  paused: { reason: string; by?: string; since: string } | null;
  total: number;
  reissued: number;
  skipped: number;
  failed: number;
  running: number;
  pending: number;
  cancelled: number;
  /** Finished per minute so far (reissued + skipped + failed over the time the wave ran, pauses excluded). */
  perMinute: number | null;
  /** Seconds until the last certificate is done at the current rate; null before there is a rate. */
  etaSeconds: number | null;
  /** The rate each vault is paced at (its key-create quota), per second; null: not limited. */
  vaultRates: Record<string, number | null>;
  /**
   * Certificates re-issued since this time are skipped (the wave's `since`, else its start): in the progress query's
   * answer only, for the CLI's re-runs of the name; absent from older workers' answers.
   */
  since?: string;
}

export interface WaveReport extends WaveProgress {
  finishedAt: string | null;
  entries: WaveEntry[];
}

/** What a wave carries into its next run. */
export interface WaveCarried {
  startedAt: string;
  entries: WaveEntry[];
  vaultRates: Record<string, number | null>;
  paused: WaveProgress['paused'];
  cancelled: boolean;
  /** Milliseconds spent paused so far (left out of the rate). */
  pausedMs: number;
}

export const wavePauseSignal = defineSignal<[{ reason: string; by?: string }]>('wavePause');
export const waveResumeSignal = defineSignal<[]>('waveResume');
/** Starts no more certificates; those under way finish and are reported. */
export const waveCancelSignal = defineSignal<[{ reason?: string; by?: string }]>('waveCancel');
export const waveProgressQuery = defineQuery<WaveProgress>('waveProgress');
export const waveReportQuery = defineQuery<WaveReport>('waveReport');

/** The Web UI's columns for waves: find running or paused waves, and how many certificates are left. */
export const WAVE_SA = {
  state: defineSearchAttributeKey('WaveState', SearchAttributeType.KEYWORD),
  remaining: defineSearchAttributeKey('WaveRemaining', SearchAttributeType.INT),
} as const;

export const WAVE_WORKFLOW_TYPE = 'reissueWave';
/**
 * One part of a split selection (`certflow reissue --parts`): the same workflow under a type of its own, which only
 * workers of a release that honours `selection.part` register. A worker of an earlier release would ignore the part
 * and take the whole selection in every part (each certificate re-issued once per part); given this type it fails
 * the workflow task instead ("not registered"), and the part waits, doing nothing, until an upgraded worker takes it.
 */
export const WAVE_PART_WORKFLOW_TYPE = 'reissueWavePart';
export const waveWorkflowId = (name: string): string => `wave:${name}`;
