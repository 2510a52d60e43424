/**
 * What the lifecycle shows people: the `status` answer, the markdown of `setCurrentDetails` and the search
 * attributes of the Web UI's list. Pure, shared by the workflow, the CLI and tests.
 */
import type { SearchAttributePair } from '@temporalio/common';
import type { FailureInfo } from '../failures';
import {
  type CertificateStatus,
  type ChangeControlStatus,
  type EffectivePolicy,
  type Phase,
  SA,
} from '../messages';
import { ruleText } from '../policy';
import type { Next } from './decide';
import type { DriftView } from './drift';
import type { CertificateMode } from './mode';
import { nextMailAt } from './outbox';
import type { LifecycleState } from './state';

export interface View {
  phase: Phase;
  next: Next | null;
  detail: string;
  observeError: FailureInfo | null;
  policy: EffectivePolicy;
  mode: CertificateMode;
  notes: string[];
  /** Change control's hold, if any (absent in views built before it). */
  changeControl?: ChangeControlStatus | null;
  drift?: DriftView | null;
  safetyBuffer?: CertificateStatus['safetyBuffer'];
}

export function statusOf(
  id: string,
  issuer: string,
  s: Readonly<LifecycleState>,
  v: View,
): CertificateStatus {
  return {
    certificateId: id,
    issuer,
    // a pause shows at once, not when the loop next wakes (a running renewal still finishes and shows its phase)
    phase: s.paused && (v.phase === 'Waiting' || v.phase === 'Failing') ? 'Paused' : v.phase,
    paused: s.paused ? { reason: s.paused.reason, since: s.paused.since } : null,
    thumbprint: s.observed?.thumbprint ?? null,
    previousThumbprint: s.previousThumbprint,
    version: s.observed?.version ?? null,
    notBefore: s.observed?.notBefore ?? null,
    notAfter: s.observed?.notAfter ?? null,
    // while paused nothing is renewed: no "next renewal" to promise
    nextRenewalAt: s.paused ? null : (v.next?.at.toISOString() ?? null),
    nextRenewalReason: s.paused ? `paused: ${s.paused.reason}` : (v.next?.reason ?? null),
    attempts: s.attempts,
    lastAttempt: s.lastAttempt,
    lastError: v.observeError ?? (s.consecutiveFailures > 0 ? (s.lastAttempt?.error ?? null) : null),
    cycle: s.cycle,
    bindings: s.bindings,
    policy: v.policy,
    escalationsSent: s.escalation.sent,
    notifyError: s.notifyError,
    ...(s.outbox?.length
      ? {
          unsentMails: {
            count: s.outbox.length,
            nextAt: nextMailAt(s.outbox)?.toISOString() ?? null,
            kinds: s.outbox.map((m) => m.input.kind),
          },
        }
      : {}),
    mode: v.mode,
    notes: v.notes,
    vaultRenewal: s.vaultRenewal,
    ...(v.changeControl ? { changeControl: v.changeControl } : {}),
    ...(v.drift !== undefined ? { drift: v.drift } : {}),
    ...(v.safetyBuffer !== undefined ? { safetyBuffer: v.safetyBuffer } : {}),
  };
}

/** The short markdown status shown in the Web UI (`setCurrentDetails`). */
export function detailsMarkdown(st: CertificateStatus, detail: string, s: Readonly<LifecycleState>): string {
  const last = st.lastAttempt;
  const bound = st.bindings.filter((b) => b.status === 'bound' || b.status === 'unchanged').length;
  return [
    `**${st.certificateId}** — ${st.phase}: ${detail}`,
    `- mode: ${st.mode === 'observe' ? 'observe (the vault renews it)' : `issue (renewed with ${st.issuer})`}`,
    `- thumbprint: \`${st.thumbprint ?? 'none'}\``,
    `- expires: ${st.notAfter ?? 'n/a'}`,
    `- next: ${st.nextRenewalAt ?? 'n/a'} (${st.nextRenewalReason ?? 'n/a'})`,
    `- policy: ${policyText(st.policy)}`,
    last
      ? `- last attempt #${last.attempt}: ${last.status}${last.error ? ` (${last.error.type}: ${last.error.message})` : ''}`
      : '- last attempt: none',
    st.bindings.length ? `- bindings: ${bound}/${st.bindings.length} on the current certificate` : '',
    s.pendingSync
      ? `- bindings to re-sync to \`${s.pendingSync.thumbprint}\` (${s.pendingSync.failures} failed tries)`
      : '',
    st.escalationsSent.length ? `- escalations sent: ${st.escalationsSent.join(', ')} days left` : '',
    st.notifyError ? `- mail not sent: ${st.notifyError.type}: ${st.notifyError.message}` : '',
    st.unsentMails
      ? `- ${st.unsentMails.count} mail(s) waiting to be sent again (${st.unsentMails.kinds.join(', ')}), next try ${st.unsentMails.nextAt}`
      : '',
    st.paused ? `- paused since ${st.paused.since}: ${st.paused.reason}` : '',
    st.changeControl ? `- change control: ${st.changeControl.text}` : '',
    st.safetyBuffer ? `- safety buffer: ${st.safetyBuffer.text}` : '',
    st.drift
      ? `- bindings probed: ${st.drift.checkedAt ?? 'not yet'}; next probe ${st.drift.nextAt ?? 'off'}`
      : '',
    ...(st.notes ?? []).map((n) => `- note: ${n}`),
  ]
    .filter(Boolean)
    .join('\n');
}

export function policyText(p: EffectivePolicy): string {
  return `${ruleText(p)} (${p.source})${p.jitterMinutes ? `, jitter ${p.jitterMinutes} min` : ''}`;
}

/** The Web UI's columns for this lifecycle (CertificatePhase, ...), given what is known now. */
export function searchAttributesOf(st: CertificateStatus): SearchAttributePair[] {
  return [
    { key: SA.id, value: st.certificateId },
    { key: SA.vault, value: st.certificateId.split('/')[0] ?? st.certificateId },
    { key: SA.issuer, value: st.issuer },
    { key: SA.phase, value: st.phase },
    ...(st.thumbprint ? [{ key: SA.thumbprint, value: st.thumbprint }] : []),
    ...(st.notAfter ? [{ key: SA.expiresAt, value: new Date(st.notAfter) }] : []),
    ...(st.nextRenewalAt ? [{ key: SA.renewAt, value: new Date(st.nextRenewalAt) }] : []),
  ] as SearchAttributePair[];
}
