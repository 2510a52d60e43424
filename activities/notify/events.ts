/**
 * From what a workflow knows (NotifyInput) to what people are told (NotificationEvent): one mapping per kind.
 * Pure; the notify activity adds recipients and the clock.
 */
import type { BindingOutcome } from '../types';
import type { RenewalOutcome } from '../../workflows/messages';
import type { NotificationEvent } from './templates';

export type NotifyKind = NotificationEvent['kind'];

export interface NotifyInput {
  kind: NotifyKind;
  /** Stable per event: the Message-ID and the sent-log key, so a retried activity never sends twice. */
  eventId: string;
  certificateId: string;
  /** The attempt this is about (renewed, partially-synced, renewal-failed; the last attempt for escalations). */
  outcome?: RenewalOutcome;
  /** When the lifecycle will try again. */
  nextAttemptAt?: string | null;
  /** The certificate's Recipient tag as observed by the workflow (the vault may be down now). */
  recipientTag?: string;
  /** The certificate in use. */
  current?: { thumbprint: string | null; notAfter: string | null };
  /** Escalation: the ladder step (days left; 0 = at expiry). */
  daysLeft?: number;
  /** Escalation: when the failures began, and how many attempts so far. */
  failingSince?: string | null;
  attempts?: number;
  /** Partially synced outside a renewal: what ran the sync ('SyncNow', 'Drift'), and every binding's outcome. */
  syncTrigger?: string;
  bindings?: BindingOutcome[];
  /** issue: Certflow renews it with its CA; observe: the vault renews it itself (shown in the mail). */
  mode?: 'issue' | 'observe';
  /** Escalation: why the certificate is not renewed (default: the last attempt's error). */
  failure?: { type: string; message: string };
  /** Paused too long: since when and why, and when the renewal would be due. */
  paused?: { reason: string; since: string };
  renewalDueAt?: string | null;
  /** Change control (windows, approval, staged rollout): the topic and one line about it. */
  changeControl?: {
    topic: import('./templates').ChangeControlEvent['topic'];
    text: string;
    thumbprint: string | null;
    previousThumbprint: string | null;
    notAfter: string | null;
  };
}

const DAY_MS = 86_400_000;

export function toNotificationEvent(
  input: NotifyInput,
  recipients: string[],
  invalidRecipients: string[],
  current: { thumbprint: string | null; notAfter: string | null },
  now: Date,
): NotificationEvent {
  const o = input.outcome;
  const base = {
    eventId: input.eventId,
    certificateId: input.certificateId,
    recipients,
    invalidRecipients,
    ...(input.mode ? { mode: input.mode } : {}),
  };
  const notAfter = current.notAfter;
  const daysLeft = notAfter ? Math.floor((Date.parse(notAfter) - now.getTime()) / DAY_MS) : null;
  const failure = input.failure ?? o?.error ?? { type: 'Unknown', message: 'no attempt has finished yet' };
  switch (input.kind) {
    case 'renewed':
      return {
        ...base,
        kind: 'renewed',
        reason: o?.trigger ?? 'Unknown',
        oldThumbprint: o?.oldThumbprint ?? null,
        newThumbprint: o?.newThumbprint ?? '',
        notAfter: o?.notAfter ?? '',
        bindings: o?.bindings ?? [],
      };
    case 'partially-synced':
      return {
        ...base,
        kind: 'partially-synced',
        trigger: input.syncTrigger ?? 'Renewal',
        thumbprint: o?.newThumbprint ?? current.thumbprint ?? '',
        previousThumbprint: o?.oldThumbprint ?? null,
        notAfter: o?.notAfter ?? notAfter,
        bindings: input.bindings ?? o?.bindings ?? [],
        nextAttemptAt: input.nextAttemptAt ?? null,
      };
    case 'renewal-failed':
      return {
        ...base,
        kind: 'renewal-failed',
        reason: `${failure.type}: ${failure.message}`,
        oldThumbprint: current.thumbprint,
        notAfter,
        daysLeft,
        nextAttemptAt: input.nextAttemptAt ?? null,
        attempt: o?.attempt ?? 0,
        bindings: o?.bindings ?? [],
      };
    case 'escalation':
      return {
        ...base,
        kind: 'escalation',
        step: input.daysLeft ?? daysLeft ?? 0,
        daysLeft: daysLeft ?? input.daysLeft ?? 0,
        thumbprint: current.thumbprint,
        notAfter,
        failure,
        failingSince: input.failingSince ?? null,
        attempts: input.attempts ?? o?.attempt ?? 0,
        nextAttemptAt: input.nextAttemptAt ?? null,
        ...(o?.bindings.length ? { bindings: o.bindings } : {}),
      };
    case 'change-control': {
      const c = input.changeControl;
      return {
        ...base,
        kind: 'change-control',
        topic: c?.topic ?? 'waiting-for-window',
        text: c?.text ?? 'change control',
        thumbprint: c?.thumbprint ?? current.thumbprint,
        previousThumbprint: c?.previousThumbprint ?? null,
        notAfter: c?.notAfter ?? notAfter,
        ...(input.bindings?.length ? { bindings: input.bindings } : {}),
      };
    }
    case 'paused-too-long': {
      const since = input.paused?.since ?? now.toISOString();
      return {
        ...base,
        kind: 'paused-too-long',
        pausedSince: since,
        pauseReason: input.paused?.reason ?? 'no reason given',
        pausedDays: Math.floor((now.getTime() - Date.parse(since)) / DAY_MS),
        thumbprint: current.thumbprint,
        notAfter,
        daysLeft,
        renewalDueAt: input.renewalDueAt ?? null,
      };
    }
  }
}
