/**
 * Mails that could not be sent (SMTP down longer than the notify activity's short retries): kept in the state and
 * sent again on a backoff until they go, so an outage delays a mail about an attempt, a new version or a change
 * but never loses it. The notify activity dedupes by eventId, so a mail whose first send reached the server but
 * whose completion was lost is not sent twice. Inputs hold references and public facts only (no key material).
 * Pure.
 */
import type { NotifyInput } from '../../activities/notify/events';

/** At most this many mails wait; beyond it the oldest is dropped (and the drop is logged by the caller). */
export const OUTBOX_MAX = 10;
const FIRST_RETRY_MS = 60_000;
const MAX_RETRY_MS = 30 * 60_000;
/** A mail older than this is given up (its event is old news; status still shows the last mail error). */
export const OUTBOX_GIVE_UP_MS = 7 * 24 * 60 * 60_000;

export interface UnsentMail {
  input: NotifyInput;
  /** When it first failed to go. */
  since: string;
  failures: number;
  /** When to try it again. */
  nextAt: string;
}

const backoffMs = (failures: number) =>
  Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** Math.max(0, failures - 1));

/** A mail that failed to go, queued for a retry (a mail already waiting, by eventId, is not queued twice). */
export function queueMail(
  outbox: readonly UnsentMail[],
  input: NotifyInput,
  now: Date,
): { outbox: UnsentMail[]; dropped: UnsentMail[] } {
  if (outbox.some((m) => m.input.eventId === input.eventId)) return { outbox: [...outbox], dropped: [] };
  const next = [
    ...outbox,
    {
      input,
      since: now.toISOString(),
      failures: 1,
      nextAt: new Date(now.getTime() + backoffMs(1)).toISOString(),
    },
  ];
  const dropped = next.length > OUTBOX_MAX ? next.splice(0, next.length - OUTBOX_MAX) : [];
  return { outbox: next, dropped };
}

/** The mail to send now: the oldest due one. */
export function dueMail(outbox: readonly UnsentMail[] | undefined, now: Date): UnsentMail | undefined {
  return (outbox ?? []).find((m) => Date.parse(m.nextAt) <= now.getTime());
}

/** When the next waiting mail is due (null: none waits). */
export function nextMailAt(outbox: readonly UnsentMail[] | undefined): Date | null {
  const times = (outbox ?? []).map((m) => Date.parse(m.nextAt));
  return times.length ? new Date(Math.min(...times)) : null;
}

/** After a retry: sent (gone), failed again (later, on a longer backoff) or too old (given up). */
export function afterRetry(
  outbox: readonly UnsentMail[],
  eventId: string,
  sent: boolean,
  now: Date,
): { outbox: UnsentMail[]; givenUp: UnsentMail | null } {
  const mail = outbox.find((m) => m.input.eventId === eventId);
  const rest = outbox.filter((m) => m.input.eventId !== eventId);
  if (!mail || sent) return { outbox: rest, givenUp: null };
  if (now.getTime() - Date.parse(mail.since) > OUTBOX_GIVE_UP_MS) return { outbox: rest, givenUp: mail };
  const failures = mail.failures + 1;
  return {
    outbox: [
      ...rest,
      { ...mail, failures, nextAt: new Date(now.getTime() + backoffMs(failures)).toISOString() },
    ],
    givenUp: null,
  };
}
