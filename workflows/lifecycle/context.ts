/**
 * What the parts of the lifecycle share within one run: the input, the state (carried across runs), the inbox of
 * messages (this run only) and the display. Handlers fill the inbox; the loop empties it.
 */
import type { BindingOutcome } from '../../activities/types';
import type { FailureInfo } from '../failures';
import type { Phase, PolicyOverride } from '../messages';
import type { Carried as CarriedV2 } from '../legacy/lifecycle-v2-view';
import type { ChangeControl } from './change-control';
import type { DriftWatchConfig } from './drift';
import type { CertificateMode } from './mode';
import type { LifecycleState } from './state';

export interface LifecycleInput {
  certificateId: string;
  issuer: string;
  /**
   * Keep the UI's search attributes current (default true). Only servers without custom search attributes
   * (the time-skipping test server) need false.
   */
  searchAttributes?: boolean;
  /** Task queue of the issuer's rate-limited workers (issue and poll run there); default: this workflow's. */
  issuerTaskQueue?: string;
  /**
   * Task queue of the vault's rate-limited workers (the key and CSR are made there, within the vault's key-create
   * quota); default: this workflow's (lifecycles started before vault queues existed).
   */
  vaultTaskQueue?: string;
  /** How long an order may wait for the issuer's workers before the attempt fails (default 6 hours). */
  issuerQueueWait?: string;
  /** Fleet-wide jitter default in minutes, when the certificate has no override. */
  jitterMinutes?: number;
  /** A Certflow-level policy to start with (from the worker's configuration); `setPolicy` changes it later. */
  policy?: PolicyOverride;
  /** Forces the mode (config `mode`); default: from the vault's policy (`certificateMode`). */
  mode?: CertificateMode;
  /**
   * Change windows, freezes, approval and staged rollout (worker config `changeControl`, change-control.ts); the
   * rules that apply are picked per certificate (id, pattern, tag) and per binding target.
   */
  changeControl?: ChangeControl;
  /** Drift watch: how often the bindings are probed (default daily, jitter 60 min; `everyMinutes: 0` is off). */
  driftWatch?: DriftWatchConfig;
  /** State from the previous run (this release's, or release 2's). */
  carried?: LifecycleState | CarriedV2;
}

export interface Inbox {
  /** A person asked to re-bind every consumer. */
  syncRequested: boolean;
  retired: string | null;
  /** Bumped by any message a waiting loop must wake for. */
  wakes: number;
  /** Look at the vault before deciding (time passed, or the vault said it changed). */
  stale: boolean;
  /** Continue as new at the next quiet moment (upgrade). */
  upgrade: boolean;
  /** An attempt (or a request to the vault) is running: renew requests join it. */
  renewing: boolean;
  /** Attempts and syncs finished in this run; update handlers wait for these to move. */
  finished: number;
  syncsDone: number;
  lastSync: BindingOutcome[];
  observeError: { failure: FailureInfo; failures: number; at: string } | null;
  /** A notice could not be sent (mail down): notices wait until then, instead of being retried in a loop. */
  noticesAfter: Date | null;
  /** The renewal running now was asked for with ignoreWindows (an emergency wave): its re-binding skips windows. */
  ignoreWindows: boolean;
  /** The lifecycle woke (timer or message) since its bindings were last probed (drift watch). */
  woke: boolean;
}

export function newInbox(): Inbox {
  return {
    syncRequested: false,
    retired: null,
    wakes: 0,
    stale: true,
    upgrade: false,
    renewing: false,
    finished: 0,
    syncsDone: 0,
    lastSync: [],
    observeError: null,
    noticesAfter: null,
    ignoreWindows: false,
    woke: false,
  };
}

export interface Ctx {
  id: string;
  input: LifecycleInput;
  s: LifecycleState;
  inbox: Inbox;
  mode(): CertificateMode;
  /** Shows a phase and a line of detail (status, the UI's details; search attributes when `indexed`). */
  show(phase: Phase, detail: string, indexed?: boolean): void;
}
