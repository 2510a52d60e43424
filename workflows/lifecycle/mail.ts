/**
 * Mail that did not go: queued in the state's outbox (outbox.ts) when the notify activity's short retries are
 * used up, and sent again by the loop (`resend`) until it goes. Histories that began before the outbox (no
 * `mail-outbox` marker) replay as they ran: their failed mails were only shown in status.
 */
import { log, patched } from '@temporalio/workflow';
import type { NotifyInput } from '../../activities/notify/events';
import { describeFailure } from '../failures';
import { notify } from './activities';
import type { Ctx } from './context';
import { afterRetry, queueMail, type UnsentMail } from './outbox';

export const MAIL_OUTBOX = 'mail-outbox';

/** Keeps a mail that could not be sent for a later retry (runs on this code only). */
export function keepUnsent(ctx: Ctx, input: NotifyInput): void {
  if (!patched(MAIL_OUTBOX)) return;
  const { outbox, dropped } = queueMail(ctx.s.outbox ?? [], input, new Date());
  ctx.s.outbox = outbox;
  for (const d of dropped)
    log.warn('unsent mail dropped: too many waiting', { certificateId: ctx.id, eventId: d.input.eventId });
}

/** Sends a waiting mail again; a failure puts it back on a longer backoff (or gives it up after a week). */
export async function resend(ctx: Ctx, mail: UnsentMail): Promise<void> {
  const { s, id } = ctx;
  let sent = false;
  try {
    await notify.executeWithOptions(
      { summary: `email the people of ${id} again: ${mail.input.kind} (not sent before)` },
      [mail.input],
    );
    sent = true;
    s.notifyError = null;
  } catch (err) {
    s.notifyError = describeFailure(err);
    log.warn('unsent mail still not sent', {
      certificateId: id,
      eventId: mail.input.eventId,
      failures: mail.failures + 1,
      error: s.notifyError.message,
    });
  }
  const { outbox, givenUp } = afterRetry(s.outbox ?? [], mail.input.eventId, sent, new Date());
  s.outbox = outbox;
  if (givenUp)
    log.error('unsent mail given up after a week of failures', {
      certificateId: id,
      eventId: givenUp.input.eventId,
    });
}
