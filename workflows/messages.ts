/**
 * The vocabulary shared by workflows, the client (CLI, HTTP) and tests: signals, updates, queries,
 * search-attribute keys and the shapes they carry. Imported by workflow code: keep it free of I/O.
 */
import type { SafetyBuffer } from './buffer';
import type { DriftView } from './lifecycle/drift';
import { defineQuery, defineSignal, defineUpdate } from './definitions';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { BindingOutcome } from '../activities/types';

export const Phases = [
  'Waiting',
  'Renewing',
  'Issuing',
  'Merging',
  'Syncing',
  'Notifying',
  'Paused',
  'Failing',
] as const;
export type Phase = (typeof Phases)[number];

export const SA = {
  id: defineSearchAttributeKey('CertificateId', SearchAttributeType.KEYWORD),
  vault: defineSearchAttributeKey('CertificateVault', SearchAttributeType.KEYWORD),
  expiresAt: defineSearchAttributeKey('CertificateExpiresAt', SearchAttributeType.DATETIME),
  renewAt: defineSearchAttributeKey('CertificateRenewAt', SearchAttributeType.DATETIME),
  phase: defineSearchAttributeKey('CertificatePhase', SearchAttributeType.KEYWORD),
  thumbprint: defineSearchAttributeKey('CertificateThumbprint', SearchAttributeType.KEYWORD),
  issuer: defineSearchAttributeKey('CertificateIssuer', SearchAttributeType.KEYWORD),
} as const;

export const workflowIdFor = (certificateId: string): string => `certificate:${certificateId}`;

/** The task queue of an issuer's rate-limited workers: issue and poll run there, so a CA's limit holds fleet-wide. */
export const issuerTaskQueueFor = (taskQueue: string, issuer: string): string =>
  `${taskQueue}-issuer-${issuer}`;

/**
 * The task queue of a vault's rate-limited workers: the step that makes a key and CSR in the vault
 * (prepareRenewal) runs there, so the vault's key-create quota holds across all workers.
 */
export const vaultTaskQueueFor = (taskQueue: string, vault: string): string => `${taskQueue}-vault-${vault}`;

export interface RenewRequest {
  reason?: string;
  requestedBy?: string;
  /**
   * Stable per request (the CLI's update id, an Event Grid event id): a repeat of the same request, e.g. a client
   * retrying after a server failure, is answered with the first one's outcome and never renews twice, also across
   * continue-as-new.
   */
  requestId?: string;
  /**
   * Renew even within the renewal-loop guard (a key compromise, an emergency re-issue). Recorded in history with
   * `requestedBy`. Never set by Event Grid.
   */
  force?: boolean;
  /**
   * Re-bind the new version now even outside its change windows and freezes (an emergency re-issue wave). Approval
   * and staged rollout still apply. Recorded in history with `requestedBy`.
   */
  ignoreWindows?: boolean;
}

export interface RenewalOutcome {
  attempt: number;
  /**
   * renewed: a new version is merged (or, observe mode, the vault's new version is bound); failed: see `error`;
   * requested: observe mode, the vault was asked to renew and its new version will be bound when it appears.
   */
  status: 'renewed' | 'failed' | 'requested';
  trigger: string;
  startedAt: string;
  finishedAt: string;
  oldThumbprint: string | null;
  newThumbprint: string | null;
  newVersion: string | null;
  notAfter: string | null;
  bindings: BindingOutcome[];
  /** Stable error class (e.g. KeyMismatch) and a human message; never secret material. */
  error?: { type: string; message: string };
  notified: boolean;
  /** Why the mail about this attempt could not be sent (null when it went out). */
  notifyError?: { type: string; message: string } | null;
}

/**
 * A Certflow-level override of the certificate's own renewal policy (set with `setPolicy`, carried across
 * continue-as-new). Exactly one of lifetimePercentage / daysBeforeExpiry, or `clear` to go back to the vault's.
 */
export interface PolicyOverride {
  lifetimePercentage?: number;
  daysBeforeExpiry?: number;
  /** Spread renewals of a fleet issued together over this many minutes (default 0 = none; max MAX_JITTER_MINUTES of policy.ts). */
  jitterMinutes?: number;
  clear?: boolean;
}

/** The renewal policy in force, with where each part came from. */
export interface EffectivePolicy {
  source: 'vault' | 'override' | 'default';
  lifetimePercentage?: number;
  daysBeforeExpiry?: number;
  jitterMinutes: number;
}

export interface CertificateStatus {
  certificateId: string;
  issuer: string;
  phase: Phase;
  paused: { reason: string; since: string } | null;
  thumbprint: string | null;
  previousThumbprint: string | null;
  version: string | null;
  notBefore: string | null;
  notAfter: string | null;
  nextRenewalAt: string | null;
  nextRenewalReason: string | null;
  attempts: number;
  lastAttempt: RenewalOutcome | null;
  lastError: { type: string; message: string } | null;
  cycle: number;
  /** Every binding's last known outcome (from the last renewal or sync). */
  bindings: BindingOutcome[];
  policy: EffectivePolicy;
  /** Escalation steps already sent for the current certificate, in days left (0 = at expiry). */
  escalationsSent: number[];
  /** The last notification that could not be sent (SMTP outage...), cleared when one goes out. */
  notifyError: { type: string; message: string } | null;
  /** Mails that could not be sent yet and will be sent again (the outbox), with when the next try is. */
  unsentMails?: { count: number; nextAt: string | null; kinds: string[] };
  /** issue: Certflow renews it with its CA; observe: the vault renews it itself (release 3+). */
  mode?: 'issue' | 'observe';
  /** Things people should know that are not errors (a policy that does not fit, an override ignored). */
  notes?: string[];
  /** Observe mode: the vault was asked to renew and its new version is awaited. */
  vaultRenewal?: { requestedAt: string; status: string } | null;
  /** Drift watch: the last probe of the bindings, the next one, and the last drift re-synced (null: not watched). */
  drift?: DriftView | null;
  /**
   * Issue mode: time left at renewal against the worst case the retry schedule needs through a reference CA
   * outage (workflows/buffer.ts), with a line for people. Null without a current version or in observe mode.
   */
  safetyBuffer?: (SafetyBuffer & { text: string }) | null;
  /**
   * Change control: a re-binding held back (waiting for a window, approval or the next rollout stage, or stopped),
   * and an approval before issuance. Absent when nothing is held.
   */
  changeControl?: ChangeControlStatus | null;
}

export interface ChangeControlStatus {
  /** One line, e.g. "waiting for window at 2026-12-03T22:00:00.000Z (change window "nights")". */
  text: string;
  /** When the re-binding may go ahead (a window's opening or the deadline), if known. */
  waitingUntil: string | null;
  rebind: {
    version: string;
    thumbprint: string;
    previousThumbprint: string | null;
    since: string;
    stages: string[][] | null;
    done: number;
    stopped: { at: string; why: string; stage?: number; detail: string } | null;
  } | null;
  approval: {
    before: 'rebind' | 'issue';
    status: 'pending' | 'approved' | 'denied';
    requestedAt: string;
    subject: string;
    by?: string;
    at?: string;
    reason?: string;
  } | null;
}

/** `certflow approve` / `certflow deny`: who decides (the client states it) and, to deny, why. */
export interface ApprovalDecision {
  by?: string;
  reason?: string;
}

export interface SyncRequest {
  requestedBy?: string;
  /** Stable per request: a repeat is answered with the first one's outcome (see RenewRequest.requestId). */
  requestId?: string;
}

/** Fire-and-forget renew (webhooks, Event Grid). */
export const renewNowSignal = defineSignal<[RenewRequest]>('renewNow');
/** Renew and answer with the attempt's outcome (CLI). Joins a renewal that is already running. */
export const renewNowUpdate = defineUpdate<RenewalOutcome, [RenewRequest]>('renewNow');
export const pauseSignal = defineSignal<[{ reason: string; by?: string }]>('pause');
/** The certificate is gone from its vault (fleet discovery): finish the lifecycle cleanly. */
export const retireSignal = defineSignal<[{ reason: string }]>('retire');
export const resumeSignal = defineSignal<[]>('resume');
export const statusQuery = defineQuery<CertificateStatus>('status');
/** The last renewal attempts, newest first (bounded), across continue-as-new. */
export const historyQuery = defineQuery<RenewalOutcome[]>('history');
/** Re-bind every consumer to the current version without renewing (App Service's "Sync"). */
export const syncNowUpdate = defineUpdate<BindingOutcome[], [SyncRequest]>('syncNow');
export const syncNowSignal = defineSignal<[SyncRequest]>('syncNow');
/** Approve the change waiting for approval (re-binding, or issuance per rule); validated: refused when none waits. */
export const approveUpdate = defineUpdate<ChangeControlStatus | null, [ApprovalDecision]>('approve');
/** Deny it (a reason is required): the new version stays merged but unbound, and people are told. */
export const denyUpdate = defineUpdate<ChangeControlStatus | null, [ApprovalDecision]>('deny');
/** Override the renewal policy; answers with the status under the new policy. */
export const setPolicyUpdate = defineUpdate<CertificateStatus, [PolicyOverride]>('setPolicy');

/**
 * The vault changed (Event Grid `CertificateNewVersionCreated`, a person who renewed it by hand): look at it now
 * instead of at the next planned time.
 */
export const observeNowSignal = defineSignal<[{ reason?: string }]>('observeNow');
/**
 * Continue as new at the next quiet moment, so the lifecycle runs the worker's current workflow code (used after
 * an upgrade: `certflow upgrade` sends it to every lifecycle still running older code).
 */
export const upgradeSignal = defineSignal<[]>('upgrade');

/** Sent by a running renewal (child) to its lifecycle so status and the UI show the current step (release 2). */
export const renewalProgressSignal = defineSignal<[{ phase: Phase; detail: string }]>('renewalProgress');
