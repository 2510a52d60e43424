/**
 * E-mail notifier over real SMTP (nodemailer, pooled). Each event becomes one message whose Message-ID
 * is derived from the event id, so a retried activity produces the same message and receivers dedupe it;
 * within one worker process a repeat send of the same event id is skipped outright.
 * TLS is always verified: trust a private CA through `tls.ca`, never by turning verification off.
 */
import { ApplicationFailure } from '@temporalio/common';
import nodemailer from 'nodemailer';
import { parseRecipients, renderEmail, type NotificationEvent } from './templates';

export interface EmailTransportOptions {
  host: string;
  port: number;
  /** true: TLS from the first byte (port 465); false: plain, upgraded with STARTTLS when offered. */
  secure: boolean;
  /** Refuse to send unless STARTTLS succeeds (use with secure: false). */
  requireTLS?: boolean;
  auth?: { user: string; pass: string };
  tls?: { ca?: string | string[]; servername?: string };
  connectionTimeoutMs?: number;
}

export interface EmailNotifierOptions {
  transport: EmailTransportOptions;
  /** e.g. 'certflow <certflow@example.com>' */
  from: string;
  /** Used when an event has no valid recipient (no or only invalid Recipient tag). */
  defaultRecipients?: string[];
  pool?: true;
}

export interface SendResult {
  messageId: string;
  accepted: string[];
  rejected: string[];
  /** Recipient entries that were not addresses and were skipped. */
  invalid: string[];
  /** True when this process already sent this event id and did not send again. */
  duplicate?: boolean;
}

export interface EmailNotifier {
  send(event: NotificationEvent): Promise<SendResult>;
  close(): void;
}

/** `<eventId@certflow>`; characters not allowed in a Message-ID are replaced, deterministically. */
export function messageIdFor(eventId: string): string {
  return `<${eventId.replace(/[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]/g, '-')}@certflow>`;
}

const REMEMBERED = 1_000;

export function createEmailNotifier(opts: EmailNotifierOptions): EmailNotifier {
  const t = opts.transport;
  const transporter = nodemailer.createTransport({
    pool: true,
    maxConnections: 2,
    host: t.host,
    port: t.port,
    secure: t.secure,
    requireTLS: t.requireTLS ?? false,
    auth: t.auth,
    connectionTimeout: t.connectionTimeoutMs ?? 10_000,
    greetingTimeout: t.connectionTimeoutMs ?? 10_000,
    socketTimeout: 30_000,
    // rejectUnauthorized stays at its default (true) on purpose
    tls: { ca: t.tls?.ca, servername: t.tls?.servername, minVersion: 'TLSv1.2' },
  });
  const defaults = parseRecipients((opts.defaultRecipients ?? []).join(','));
  const sent = new Map<string, SendResult>();

  return {
    async send(event) {
      const earlier = sent.get(event.eventId);
      if (earlier) return { ...earlier, duplicate: true };

      const own = parseRecipients(event.recipients.join(','));
      const invalid = [...(event.invalidRecipients ?? []), ...own.invalid];
      const to = own.valid.length ? own.valid : defaults.valid;
      if (to.length === 0) {
        throw ApplicationFailure.create({
          type: 'NoRecipients',
          nonRetryable: true,
          message:
            `no e-mail recipient for ${event.certificateId} (${event.kind}): ` +
            (invalid.length
              ? `the Recipient tag holds no valid address (invalid: ${invalid.join(', ')})`
              : 'no Recipient tag') +
            ' and no defaultRecipients are configured',
        });
      }
      const mail = renderEmail({ ...event, recipients: to, invalidRecipients: invalid });
      const messageId = messageIdFor(event.eventId);
      try {
        const info = await transporter.sendMail({
          from: opts.from,
          to,
          subject: mail.subject,
          text: mail.text,
          html: mail.html,
          messageId,
          headers: {
            'Auto-Submitted': 'auto-generated',
            'X-Certflow-Event': event.kind,
            'X-Certflow-Certificate': event.certificateId,
          },
        });
        const result: SendResult = {
          messageId: info.messageId ?? messageId,
          accepted: (info.accepted ?? []).map(addressOf),
          rejected: (info.rejected ?? []).map(addressOf),
          invalid,
        };
        sent.set(event.eventId, result);
        if (sent.size > REMEMBERED) sent.delete(sent.keys().next().value as string);
        return result;
      } catch (err) {
        throw classify(err, event, `${t.host}:${t.port}`);
      }
    },
    close() {
      transporter.close();
    },
  };
}

const addressOf = (a: string | { address: string }) => (typeof a === 'string' ? a : a.address);

/**
 * Permanent (5xx, bad credentials, every recipient refused) vs transient (connection, timeout, 4xx).
 * nodemailer's messages carry the server's reply, never our credentials.
 */
function classify(err: unknown, event: NotificationEvent, server: string): Error {
  const e = err as { code?: string; responseCode?: number; message?: string };
  const code = e.code ?? 'EUNKNOWN';
  const message =
    `e-mail for ${event.certificateId} (${event.kind}) not sent via ${server}: ${code} ${e.message ?? String(err)}`.slice(
      0,
      600,
    );
  const rc = e.responseCode;
  const permanent = rc !== undefined ? rc >= 500 : code === 'EAUTH' || code === 'EENVELOPE';
  return ApplicationFailure.create({
    type: permanent ? (code === 'EAUTH' ? 'EmailAuth' : 'EmailRejected') : 'EmailUnavailable',
    nonRetryable: permanent,
    message,
  });
}
