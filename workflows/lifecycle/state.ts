/**
 * The lifecycle's state as one typed value: everything that survives continue-as-new, and nothing else. Handlers
 * and the loop change it; the pure rules (decide.ts, notices.ts) only read it. Older runs' carried state (v2,
 * `workflows/legacy/lifecycle-v2-view.ts` `Carried`) is migrated on load, so a v2 lifecycle continues as new into
 * this code without losing anything.
 */
import type { BindingOutcome, CertificateState, IssueRequest, PendingIssue } from '../../activities/types';
import type { FailureInfo } from '../failures';
import type { Carried as CarriedV2 } from '../legacy/lifecycle-v2-view';
import type { PolicyOverride, RenewalOutcome, RenewRequest } from '../messages';
import type { ApprovalState } from './approval';
import type { RebindState } from './change-control';
import type { DriftState } from './drift';
import type { UnsentMail } from './outbox';

export const STATE_VERSION = 3;
/** Attempts kept for `history`, newest first. */
export const RECENT_MAX = 10;
/** Request ids kept to answer a repeated renew or sync (a client retrying after a server failure). */
export const REQUESTS_MAX = 20;

export interface PauseState {
  reason: string;
  since: string;
  /** Who paused, when the client said (CLI: the OS user). */
  by?: string;
  /** The long-pause notice went out. */
  reported?: boolean;
}

/** Bindings left on an older certificate after a renewal or sync: re-synced with backoff until all are bound. */
export interface PendingSync {
  version: string;
  thumbprint: string;
  failures: number;
  nextAt: string;
  /** Expiry of the certificate the failed bindings still serve, and the ladder steps already sent for it. */
  oldNotAfter?: string | null;
  escalated?: number[];
}

/** The CA's renewal window (ARI) for the certificate with this thumbprint; `offered` false: the CA has none. */
export interface AriState {
  thumbprint: string;
  offered: boolean;
  window: { start: string; end: string } | null;
  checkAt: string;
}

/** A renew or sync request a person (or Event Grid) made, and what came of it. */
export interface RequestRecord {
  id: string;
  kind: 'renew' | 'sync';
  at: string;
  outcome?: RenewalOutcome;
  bindings?: BindingOutcome[];
}

/** An attempt waiting at the CA ("pending": approval, vetting), carried across continue-as-new. */
export interface InFlightAttempt {
  attempt: number;
  trigger: string;
  startedAt: string;
  before: CertificateState;
  request: IssueRequest & { issuer: string };
  pending: PendingIssue;
  pendingSince: string;
  polls: number;
  requestIds: string[];
}

export interface KnownVersion {
  version: string;
  thumbprint: string | null;
  notAfter: string | null;
}

export interface LifecycleState {
  v: typeof STATE_VERSION;
  cycle: number;
  attempts: number;
  consecutiveFailures: number;
  previousThumbprint: string | null;
  lastAttempt: RenewalOutcome | null;
  /** The last attempts, newest first (at most RECENT_MAX). */
  recent: RenewalOutcome[];
  paused: PauseState | null;
  /** A person's renew request waiting to run. */
  manual: RenewRequest | null;
  /** The last observation of the vault, so status answers at once after continue-as-new. */
  observed: CertificateState | null;
  observedAt: string | null;
  /**
   * The version the consumers were last brought to (or the first version seen). A newer version observed (the
   * vault renewed it, or someone renewed it by hand) is re-bound and announced.
   */
  known: KnownVersion | null;
  pendingSync: PendingSync | null;
  override: PolicyOverride | null;
  /** Every binding's last known outcome. */
  bindings: BindingOutcome[];
  /** Escalation steps sent for the certificate with this thumbprint (`late`: its VaultRenewalLate notice). */
  escalation: { thumbprint: string | null; sent: number[]; late?: boolean };
  notifyError: FailureInfo | null;
  ari: AriState | null;
  /** When Certflow (or the vault, observed) last produced a new version: the renewal-loop guard counts from it. */
  lastRenewedAt: string | null;
  requests: RequestRecord[];
  inFlight: InFlightAttempt | null;
  /** Observe mode: the vault was asked to renew (`certflow renew`), and the new version is awaited. */
  vaultRenewal: { requestedAt: string; status: string } | null;
  /**
   * Change control (change-control.ts): a merged or new version whose re-binding waits for its change window,
   * approval or next rollout stage. Absent in state carried from before change control (read as null).
   */
  rebind?: RebindState | null;
  /** Approval before issuance (rule `before: issue`): asked once per renewal, cleared when it renews. */
  issueApproval?: ApprovalState | null;
  /**
   * Drift watch (drift.ts). Absent in runs whose history began before the watch existed (no `drift-watch`
   * marker): they replay as they ran, and the next run starts watching.
   */
  drift?: DriftState;
  /**
   * Mails that could not be sent, waiting for a retry (outbox.ts). Absent in runs whose history began before the
   * outbox existed (no `mail-outbox` marker) and in state carried from them (read as empty).
   */
  outbox?: UnsentMail[];
}

export function initialState(): LifecycleState {
  return {
    v: STATE_VERSION,
    cycle: 0,
    attempts: 0,
    consecutiveFailures: 0,
    previousThumbprint: null,
    lastAttempt: null,
    recent: [],
    paused: null,
    manual: null,
    observed: null,
    observedAt: null,
    known: null,
    pendingSync: null,
    override: null,
    bindings: [],
    escalation: { thumbprint: null, sent: [] },
    notifyError: null,
    ari: null,
    lastRenewedAt: null,
    requests: [],
    inFlight: null,
    vaultRenewal: null,
  };
}

/** The state a run starts with: carried from the previous run (this release's or v2's), or a fresh one. */
export function loadState(carried: LifecycleState | CarriedV2 | undefined | null): LifecycleState {
  if (!carried) return initialState();
  if ((carried as LifecycleState).v === STATE_VERSION) return { ...initialState(), ...carried };
  return fromV2(carried as CarriedV2);
}

/** A v2 run's carried state, as this release keeps it. */
export function fromV2(c: Partial<CarriedV2>): LifecycleState {
  const last = c.lastAttempt ?? null;
  return {
    ...initialState(),
    cycle: c.cycle ?? 0,
    attempts: c.attempts ?? 0,
    consecutiveFailures: c.consecutiveFailures ?? 0,
    previousThumbprint: c.previousThumbprint ?? null,
    lastAttempt: last,
    recent: c.recent ?? (last ? [last] : []),
    paused: c.paused ?? null,
    manual: c.pendingManual ?? null,
    observed: c.observed ?? null,
    known: c.observed?.version
      ? { version: c.observed.version, thumbprint: c.observed.thumbprint, notAfter: c.observed.notAfter }
      : null,
    pendingSync: c.pendingSync ?? null,
    override: c.override ?? null,
    bindings: c.bindings ?? [],
    escalation: c.escalation ?? { thumbprint: null, sent: [] },
    notifyError: c.notifyError ?? null,
    ari: c.ari ?? null,
    lastRenewedAt: last?.status === 'renewed' ? last.finishedAt : null,
  };
}

/** Records a finished attempt: history, bindings and mail error (a repeat of the same request is answered later). */
export function recordAttempt(s: LifecycleState, o: RenewalOutcome): void {
  s.lastAttempt = o;
  s.recent = [o, ...s.recent].slice(0, RECENT_MAX);
  if (o.bindings.length) s.bindings = o.bindings;
  if (o.notifyError !== undefined) s.notifyError = o.notifyError;
}

/** The record of a request id, if this lifecycle has seen it (in this run or, carried, in an earlier one). */
export function requestRecord(s: LifecycleState, id: string | undefined): RequestRecord | undefined {
  return id ? s.requests.find((r) => r.id === id) : undefined;
}

/** Remembers a request id (newest first, bounded) or completes its record. */
export function rememberRequest(s: LifecycleState, r: RequestRecord): void {
  s.requests = [r, ...s.requests.filter((x) => x.id !== r.id)].slice(0, REQUESTS_MAX);
}

/** The current observation as the version consumers are on (or should be). */
export function knownOf(o: LifecycleState['observed']): KnownVersion | null {
  return o?.version ? { version: o.version, thumbprint: o.thumbprint, notAfter: o.notAfter } : null;
}
