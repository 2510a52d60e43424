/**
 * What the lifecycle tells people without being asked, and when: the escalation ladder while a certificate is not
 * renewed in time (Certflow's renewal failing or paused, or, in observe mode, the vault's own renewal late:
 * `VaultRenewalLate`), bindings left on an old certificate, and a long pause. Each notice has a stable event id, so
 * the mail is sent once whatever retries, replays or restarts happen (the notify activity dedupes by it). Pure.
 */
import type { NotifyInput } from '../../activities/notify/events';
import type { FailureInfo } from '../failures';
import type { CertificateMode } from './mode';
import { DAY_MS, nextAttemptAt, type RenewalPlan } from '../policy';
import type { LifecycleState } from './state';

/** Escalation before expiry while a certificate is not renewed: days left, each step sent once. */
export const ESCALATION_LADDER_DAYS = [14, 7, 3, 1, 0] as const;

/** A pause longer than this is reported once to the certificate's people. */
export const PAUSED_TOO_LONG_MS = 7 * DAY_MS;

/**
 * The ladder step to send now: the most urgent threshold crossed that was not sent yet. Steps crossed at the same
 * time are folded into that one (a certificate found with 2 days left gets the 3-day mail, not three mails).
 */
export function escalationDue(
  notAfter: string,
  now: Date,
  sent: readonly number[],
  ladder: readonly number[] = ESCALATION_LADDER_DAYS,
): { step: number; fold: number[] } | undefined {
  const left = (Date.parse(notAfter) - now.getTime()) / DAY_MS;
  const crossed = ladder.filter((d) => left <= d && !sent.includes(d));
  if (!crossed.length) return undefined;
  return { step: Math.min(...crossed), fold: crossed };
}

/** When the next ladder step comes, or null when every step is sent or passed. */
export function nextEscalationAt(
  notAfter: string,
  now: Date,
  sent: readonly number[],
  ladder: readonly number[] = ESCALATION_LADDER_DAYS,
): Date | null {
  const times = ladder
    .filter((d) => !sent.includes(d))
    .map((d) => Date.parse(notAfter) - d * DAY_MS)
    .filter((t) => t > now.getTime());
  return times.length ? new Date(Math.min(...times)) : null;
}

export interface NoticeFacts {
  workflowId: string;
  certificateId: string;
  now: Date;
  mode: CertificateMode;
  s: Readonly<LifecycleState>;
  /** The current certificate's renewal time under the policy in force. */
  plan: RenewalPlan | null;
  /** Observe mode: from when the vault's renewal counts as late (null in issue mode). */
  vaultLateAt: Date | null;
}

export interface Notice {
  /** certificate: the ladder to the current certificate's expiry; bindings: to the old one's; pause: a long pause. */
  about: 'certificate' | 'bindings' | 'pause';
  kind: NotifyInput['kind'];
  eventId: string;
  /** The ladder step (days left) and every step folded into it. */
  step?: number;
  fold: number[];
  /** Why the certificate is not renewed (the last failure, the pause, the vault's lateness). */
  failure?: FailureInfo;
  /** The first VaultRenewalLate notice of the current certificate. */
  vaultLate?: boolean;
}

/** The certificate is due for renewal and still not renewed: the ladder runs. */
function overdue(f: NoticeFacts): boolean {
  if (f.mode === 'observe') return f.vaultLateAt !== null && f.vaultLateAt <= f.now;
  return f.plan !== null && f.plan.at <= f.now;
}

/** Why the current certificate is not renewed yet, for the escalation mail. */
export function notRenewedBecause(f: NoticeFacts): FailureInfo {
  const { s } = f;
  if (f.mode === 'observe')
    return {
      type: 'VaultRenewalLate',
      message: `the vault has not renewed the certificate: a new version was expected at ${f.plan?.at.toISOString() ?? 'its renewal time'}${s.vaultRenewal ? ` (renewal asked of the vault at ${s.vaultRenewal.requestedAt}: ${s.vaultRenewal.status})` : ''}`,
    };
  if (s.paused) return { type: 'Paused', message: `the lifecycle is paused: ${s.paused.reason}` };
  if (s.consecutiveFailures > 0 && s.lastAttempt?.error) return s.lastAttempt.error;
  return { type: 'NotRenewed', message: 'the renewal has not completed yet' };
}

function certificateNotice(f: NoticeFacts): Notice | undefined {
  const o = f.s.observed;
  if (!o?.notAfter || !overdue(f)) return undefined;
  const sent = f.s.escalation.thumbprint === o.thumbprint ? f.s.escalation.sent : [];
  const late = f.mode === 'observe' && !(f.s.escalation.thumbprint === o.thumbprint && f.s.escalation.late);
  const due = escalationDue(o.notAfter, f.now, sent);
  if (!due && !late) return undefined;
  const step = due?.step;
  return {
    about: 'certificate',
    kind: 'escalation',
    eventId: `${f.workflowId}:${o.thumbprint}:escalation:${step ?? 'late'}`,
    ...(step !== undefined ? { step } : {}),
    fold: due?.fold ?? [],
    failure: notRenewedBecause(f),
    ...(late ? { vaultLate: true } : {}),
  };
}

function bindingsNotice(f: NoticeFacts): Notice | undefined {
  const ps = f.s.pendingSync;
  const due = ps?.oldNotAfter ? escalationDue(ps.oldNotAfter, f.now, ps.escalated ?? []) : undefined;
  if (!ps || !due) return undefined;
  return {
    about: 'bindings',
    kind: 'partially-synced',
    eventId: `${f.workflowId}:bindings:${ps.oldNotAfter}:${due.step}`,
    step: due.step,
    fold: due.fold,
  };
}

function pausedReportAt(s: Readonly<LifecycleState>): Date | null {
  return s.paused && !s.paused.reported ? new Date(Date.parse(s.paused.since) + PAUSED_TOO_LONG_MS) : null;
}

function pauseNotice(f: NoticeFacts): Notice | undefined {
  const at = pausedReportAt(f.s);
  if (!at || at > f.now || !f.s.paused) return undefined;
  return {
    about: 'pause',
    kind: 'paused-too-long',
    eventId: `${f.workflowId}:paused:${f.s.paused.since}`,
    fold: [],
  };
}

/** The next notice to send now, most important first. */
export function dueNotice(f: NoticeFacts): Notice | undefined {
  return certificateNotice(f) ?? bindingsNotice(f) ?? pauseNotice(f);
}

/** When a notice may next become due (the loop wakes then), or null. */
export function nextNoticeAt(f: NoticeFacts): Date | null {
  const o = f.s.observed;
  const ps = f.s.pendingSync;
  const sent = f.s.escalation.thumbprint === o?.thumbprint ? f.s.escalation.sent : [];
  const ladderAt = o?.notAfter ? nextEscalationAt(o.notAfter, f.now, sent) : null;
  // the ladder only runs once the certificate is overdue: wake at whichever comes later
  const dueFrom = f.mode === 'observe' ? f.vaultLateAt : (f.plan?.at ?? null);
  const certAt = dueFrom && dueFrom > f.now ? dueFrom : ladderAt;
  return earliest(
    certAt,
    ps?.oldNotAfter ? nextEscalationAt(ps.oldNotAfter, f.now, ps.escalated ?? []) : null,
    pausedReportAt(f.s),
  );
}

/** Records a notice as sent, so it never goes out again. */
export function markSent(s: LifecycleState, n: Notice): void {
  if (n.about === 'certificate') {
    const thumbprint = s.observed?.thumbprint ?? null;
    const same = s.escalation.thumbprint === thumbprint;
    s.escalation = {
      thumbprint,
      sent: [...(same ? s.escalation.sent : []), ...n.fold],
      ...((same && s.escalation.late) || n.vaultLate ? { late: true } : {}),
    };
  } else if (n.about === 'bindings' && s.pendingSync) {
    s.pendingSync = { ...s.pendingSync, escalated: [...(s.pendingSync.escalated ?? []), ...n.fold] };
  } else if (n.about === 'pause' && s.paused) {
    s.paused = { ...s.paused, reported: true };
  }
}

/** What the notify activity gets for a notice: references and public facts only. */
export function noticeInput(f: NoticeFacts, n: Notice): NotifyInput {
  const { s } = f;
  const o = s.observed;
  const failures = s.recent.slice(0, s.consecutiveFailures);
  return {
    kind: n.kind,
    eventId: n.eventId,
    certificateId: f.certificateId,
    mode: f.mode,
    ...(n.step !== undefined ? { daysLeft: n.step } : {}),
    ...(n.failure ? { failure: n.failure } : {}),
    ...(n.about === 'bindings'
      ? {
          syncTrigger: `Escalation: bindings still serve the old certificate, which expires in ${n.step} days or less`,
          bindings: s.bindings,
        }
      : {}),
    failingSince: failures.at(-1)?.startedAt ?? null,
    attempts: s.consecutiveFailures,
    renewalDueAt: f.plan?.at.toISOString() ?? null,
    outcome: s.lastAttempt ?? undefined,
    recipientTag: o?.tags.Recipient,
    current: { thumbprint: o?.thumbprint ?? null, notAfter: o?.notAfter ?? null },
    nextAttemptAt:
      s.consecutiveFailures > 0 && s.lastAttempt
        ? nextAttemptAt(s.consecutiveFailures, s.lastAttempt.finishedAt, o?.notAfter).toISOString()
        : null,
    ...(s.paused ? { paused: { reason: s.paused.reason, since: s.paused.since } } : {}),
  };
}

export function earliest(...ds: Array<Date | null | undefined>): Date | null {
  const xs = ds.filter((d): d is Date => d instanceof Date);
  return xs.length ? new Date(Math.min(...xs.map((d) => d.getTime()))) : null;
}
