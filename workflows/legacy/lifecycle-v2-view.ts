/**
 * What the lifecycle shows people: the carried state, the `status` answer and the markdown of
 * `setCurrentDetails`. Pure, shared by the workflow and its tests.
 */
import type { BindingOutcome, CertificateState } from '../../activities/types';
import type {
  CertificateStatus,
  EffectivePolicy,
  Phase,
  PolicyOverride,
  RenewalOutcome,
  RenewRequest,
} from '../messages';

/** State that survives continue-as-new. Fields added later are optional so older runs carry on. */
export interface Carried {
  cycle: number;
  attempts: number;
  consecutiveFailures: number;
  previousThumbprint: string | null;
  lastAttempt: RenewalOutcome | null;
  paused: { reason: string; since: string; reported?: boolean } | null;
  pendingManual: RenewRequest | null;
  /** The last observation, so status answers at once after continue-as-new. */
  observed: CertificateState | null;
  /** Bindings left on an old certificate after a renewal: re-synced with backoff until all are bound. */
  pendingSync: {
    version: string;
    thumbprint: string;
    failures: number;
    nextAt: string;
    /** Expiry of the certificate the failed bindings still serve, and the ladder steps already sent for it. */
    oldNotAfter?: string | null;
    escalated?: number[];
  } | null;
  /** The last attempts, newest first (at most RECENT_MAX). */
  recent?: RenewalOutcome[];
  override?: PolicyOverride | null;
  /** Every binding's last known outcome. */
  bindings?: BindingOutcome[];
  /** Escalation steps sent for the certificate with this thumbprint. */
  escalation?: { thumbprint: string | null; sent: number[] };
  notifyError?: { type: string; message: string } | null;
  /** The CA's renewal window (ARI) for the certificate with this thumbprint; `offered` false: the CA has none. */
  ari?: {
    thumbprint: string;
    offered: boolean;
    window: { start: string; end: string } | null;
    checkAt: string;
  } | null;
}

export const RECENT_MAX = 10;

export function initialCarried(carried?: Partial<Carried>): Required<Carried> {
  const c = {
    cycle: 0,
    attempts: 0,
    consecutiveFailures: 0,
    previousThumbprint: null,
    lastAttempt: null,
    paused: null,
    pendingManual: null,
    observed: null,
    pendingSync: null,
    override: null,
    bindings: [],
    escalation: { thumbprint: null, sent: [] },
    notifyError: null,
    ari: null,
    ...carried,
  };
  return { ...c, recent: c.recent ?? (c.lastAttempt ? [c.lastAttempt] : []) };
}

export function statusOf(
  id: string,
  issuer: string,
  s: Required<Carried>,
  view: {
    phase: Phase;
    nextAt: Date | null;
    nextReason: string | null;
    observeError: { type: string; message: string } | null;
    policy: EffectivePolicy;
  },
): CertificateStatus {
  return {
    certificateId: id,
    issuer,
    // a pause shows at once, not when the loop next wakes (a running renewal still finishes and shows its phase)
    phase: s.paused && (view.phase === 'Waiting' || view.phase === 'Failing') ? 'Paused' : view.phase,
    paused: s.paused ? { reason: s.paused.reason, since: s.paused.since } : null,
    thumbprint: s.observed?.thumbprint ?? null,
    previousThumbprint: s.previousThumbprint,
    version: s.observed?.version ?? null,
    notBefore: s.observed?.notBefore ?? null,
    notAfter: s.observed?.notAfter ?? null,
    nextRenewalAt: view.nextAt?.toISOString() ?? null,
    nextRenewalReason: view.nextReason,
    attempts: s.attempts,
    lastAttempt: s.lastAttempt,
    lastError: view.observeError ?? (s.consecutiveFailures > 0 ? (s.lastAttempt?.error ?? null) : null),
    cycle: s.cycle,
    bindings: s.bindings,
    policy: view.policy,
    escalationsSent: s.escalation.sent,
    notifyError: s.notifyError,
  };
}

/** The short markdown status shown in the Web UI (`setCurrentDetails`). */
export function detailsMarkdown(
  st: CertificateStatus,
  detail: string,
  pendingSync: Carried['pendingSync'],
): string {
  const last = st.lastAttempt;
  const bound = st.bindings.filter((b) => b.status === 'bound' || b.status === 'unchanged').length;
  return [
    `**${st.certificateId}** — ${st.phase}: ${detail}`,
    `- thumbprint: \`${st.thumbprint ?? 'none'}\``,
    `- expires: ${st.notAfter ?? 'n/a'}`,
    `- next: ${st.nextRenewalAt ?? 'n/a'} (${st.nextRenewalReason ?? 'n/a'})`,
    `- policy: ${policyText(st.policy)}`,
    last
      ? `- last attempt #${last.attempt}: ${last.status}${last.error ? ` (${last.error.type}: ${last.error.message})` : ''}`
      : '- last attempt: none',
    st.bindings.length ? `- bindings: ${bound}/${st.bindings.length} on the current certificate` : '',
    pendingSync
      ? `- bindings to re-sync to \`${pendingSync.thumbprint}\` (${pendingSync.failures} failed tries)`
      : '',
    st.escalationsSent.length ? `- escalations sent: ${st.escalationsSent.join(', ')} days left` : '',
    st.notifyError ? `- mail not sent: ${st.notifyError.type}: ${st.notifyError.message}` : '',
    st.paused ? `- paused since ${st.paused.since}: ${st.paused.reason}` : '',
  ]
    .filter(Boolean)
    .join('\n');
}

export function policyText(p: EffectivePolicy): string {
  const rule =
    p.daysBeforeExpiry !== undefined
      ? `${p.daysBeforeExpiry} days before expiry`
      : `at ${p.lifetimePercentage}% of lifetime`;
  return `${rule} (${p.source})${p.jitterMinutes ? `, jitter ${p.jitterMinutes} min` : ''}`;
}
