/**
 * Chat notifier: posts each event to a Slack or Teams incoming webhook (payloads in chat-payloads.ts).
 * One POST per send; retrying belongs to the activity: a network error, 408, 429 or 5xx throws the
 * retryable ChatUnavailable (with the server's Retry-After as nextRetryDelay), any other answer the
 * non-retryable ChatRejected. Incoming webhooks have no idempotency key, so an event id that already went
 * out is skipped through the same sent-log as e-mail (use a different file).
 * The webhook URL is a credential (the token is its path): errors name only its scheme and host.
 */
import { ApplicationFailure } from '@temporalio/common';
import {
  NoAnswerError,
  checkWebhookUrl,
  describeUrl,
  isRetryableStatus,
  isSuccess,
  postJson,
  type FetchLike,
} from '../http';
import { chatPayload, type ChatFlavor } from './chat-payloads';
import { createSentLog } from './sent-log';
import type { NotificationEvent } from './templates';

export interface ChatNotifierOptions {
  url: string;
  flavor: ChatFlavor;
  fetchImpl?: FetchLike;
  /** Default 10 s. */
  timeoutMs?: number;
  /** Append-only file of sent event ids; in memory when absent. Not the e-mail notifier's file. */
  sentLogPath?: string;
}

export interface ChatSendResult {
  /** The HTTP status of the webhook's answer; absent for a duplicate. */
  status?: number;
  duplicate?: boolean;
}

export interface ChatNotifier {
  readonly flavor: ChatFlavor;
  send(event: NotificationEvent): Promise<ChatSendResult>;
}

export function createChatNotifier(opts: ChatNotifierOptions): ChatNotifier {
  if (opts.flavor !== 'slack' && opts.flavor !== 'teams') {
    throw new Error(`chat notifier: flavor must be "slack" or "teams", got ${JSON.stringify(opts.flavor)}`);
  }
  checkWebhookUrl(opts.url, `chat notifier (${opts.flavor}): url`);
  const where = `${opts.flavor} webhook ${describeUrl(opts.url)}`;
  const sentLog = createSentLog(opts.sentLogPath);

  return {
    flavor: opts.flavor,
    async send(event) {
      if (await sentLog.has(event.eventId)) return { duplicate: true };
      const about = `chat message for ${event.certificateId} (${event.kind})`;
      let answer;
      try {
        answer = await postJson({
          fetchImpl: opts.fetchImpl,
          url: opts.url,
          body: JSON.stringify(chatPayload(opts.flavor, event)),
          timeoutMs: opts.timeoutMs ?? 10_000,
        });
      } catch (err) {
        if (!(err instanceof NoAnswerError)) throw err;
        throw ApplicationFailure.create({
          type: 'ChatUnavailable',
          message: `${about} not sent yet: ${where} did not answer (${err.reason}); it will be retried`,
          cause: err,
        });
      }
      if (isSuccess(answer.status)) {
        // the message is posted: failing now would post it again on retry
        await sentLog.add(event.eventId).catch(() => undefined);
        return { status: answer.status };
      }
      const said = `HTTP ${answer.status}${answer.snippet ? ` "${answer.snippet}"` : ''}`;
      if (isRetryableStatus(answer.status)) {
        throw ApplicationFailure.create({
          type: 'ChatUnavailable',
          message: `${about} not sent yet: ${where} answered ${said}; it will be retried`,
          nextRetryDelay: answer.retryAfterMs,
        });
      }
      throw ApplicationFailure.create({
        type: 'ChatRejected',
        nonRetryable: true,
        message: `${about} refused by ${where}: ${said}; check the webhook URL and that the ${opts.flavor} app still accepts it`,
      });
    },
  };
}
