/**
 * E-mail notifier over real SMTP (nodemailer, pooled). Each event becomes one message whose Message-ID
 * is derived from the event id. Duplicates under activity retry are suppressed twice over: the sent-log
 * (sent-log.ts) skips an event id that already went out, also after a worker restart when it is a file;
 * and should a crash fall between the server's "250 OK" and the log append, the retry carries the same
 * Message-ID, so mail clients still show one message.
 * TLS is always verified: trust a private CA through `tls.ca`, never by turning verification off.
 * Failures: SmtpUnavailable (retryable: outage, timeout, TLS, 4xx), SmtpAuthFailed and SmtpRejected
 * (not retryable), see smtp-errors.ts.
 */
import { ApplicationFailure } from '@temporalio/common';
import nodemailer from 'nodemailer';
import { isLoopbackHost } from '../loopback';
import { createSentLog } from './sent-log';
import { classifySmtpError } from './smtp-errors';
import { parseRecipients, renderEmail, type NotificationEvent } from './templates';

export interface EmailTransportOptions {
  host: string;
  port: number;
  /** true: TLS from the first byte (port 465); false: plain, upgraded with STARTTLS when offered. */
  secure: boolean;
  /**
   * Refuse to send unless STARTTLS succeeds (with secure: false). Default: on when a password is set and the
   * host is not loopback, so a stripped STARTTLS never gets the password in clear.
   */
  requireTLS?: boolean;
  /** Connect to this address instead of resolving `host`; TLS is still checked for `host`. */
  address?: string;
  auth?: { user: string; pass: string };
  tls?: { ca?: string | string[]; servername?: string };
  connectionTimeoutMs?: number;
}

export interface EmailNotifierOptions {
  transport: EmailTransportOptions;
  /** e.g. 'certflow <certflow@example.com>' */
  from: string;
  /** Told about every event besides its own recipients; the only ones when it has none. */
  defaultRecipients?: string[];
  /** Transport is always pooled; kept for callers that say so. */
  pool?: true;
  /** Connections the pool may open; default 2. */
  maxConnections?: number;
  /** Append-only file of sent event ids (sha256), shared by workers on a host; in memory when absent. */
  sentLogPath?: string;
}

export interface SendResult {
  messageId: string;
  accepted: string[];
  rejected: string[];
  /** Recipient entries that were not addresses and were skipped. */
  invalid: string[];
  /** This event id was already sent (this process or the sent-log): nothing went out now. */
  duplicate?: boolean;
  /** Nothing sent: no valid recipient and no default (the invalid entries are in `invalid`). */
  noRecipients?: boolean;
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

/** STARTTLS is required unless said otherwise whenever a password would cross a network (not loopback). */
export function requiresTls(t: EmailTransportOptions): boolean {
  return t.requireTLS ?? (!t.secure && !!t.auth?.pass && !isLoopbackHost(t.host));
}

export function createEmailNotifier(opts: EmailNotifierOptions): EmailNotifier {
  const t = opts.transport;
  const server = `${t.host}:${t.port}`;
  const transporter = nodemailer.createTransport({
    pool: true,
    maxConnections: opts.maxConnections ?? 2,
    host: t.address ?? t.host,
    port: t.port,
    secure: t.secure,
    requireTLS: requiresTls(t),
    auth: t.auth,
    connectionTimeout: t.connectionTimeoutMs ?? 10_000,
    greetingTimeout: t.connectionTimeoutMs ?? 10_000,
    socketTimeout: 30_000,
    // rejectUnauthorized stays at its default (true) on purpose
    tls: {
      ca: t.tls?.ca,
      servername: t.tls?.servername ?? (t.address ? t.host : undefined),
      minVersion: 'TLSv1.2',
    },
  });
  const defaults = parseRecipients((opts.defaultRecipients ?? []).join(','));
  const sentLog = createSentLog(opts.sentLogPath);
  const results = new Map<string, SendResult>();
  const inFlight = new Map<string, Promise<SendResult>>();

  async function deliver(event: NotificationEvent): Promise<SendResult> {
    const own = parseRecipients(event.recipients.join(','));
    const invalid = [...(event.invalidRecipients ?? []), ...own.invalid];
    const messageId = messageIdFor(event.eventId);
    const known = await sentLog.has(event.eventId).catch((err: Error) => {
      throw ApplicationFailure.create({
        type: 'SentLogUnreadable',
        nonRetryable: true,
        message: err.message,
      });
    });
    if (known) return { messageId, accepted: [], rejected: [], invalid, duplicate: true };
    const to = parseRecipients([...own.valid, ...defaults.valid].join(',')).valid;
    if (to.length === 0) return { messageId, accepted: [], rejected: [], invalid, noRecipients: true };

    const mail = renderEmail({ ...event, recipients: to, invalidRecipients: invalid });
    let info;
    try {
      info = await transporter.sendMail({
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
    } catch (err) {
      throw classifySmtpError(err, { event, server, user: t.auth?.user, secret: t.auth?.pass });
    }
    // the mail is out: failing now would send it again on retry; `results` below still covers this process
    await sentLog.add(event.eventId).catch(() => undefined);
    return {
      messageId: info.messageId ?? messageId,
      accepted: (info.accepted ?? []).map(addressOf),
      rejected: (info.rejected ?? []).map(addressOf),
      invalid,
    };
  }

  return {
    async send(event) {
      const earlier = results.get(event.eventId);
      if (earlier) return { ...earlier, duplicate: true };
      const running = inFlight.get(event.eventId);
      if (running) return { ...(await running), duplicate: true };

      const attempt = deliver(event);
      inFlight.set(event.eventId, attempt);
      try {
        const result = await attempt;
        if (!result.duplicate && !result.noRecipients) {
          results.set(event.eventId, result);
          if (results.size > REMEMBERED) results.delete(results.keys().next().value as string);
        }
        return result;
      } finally {
        inFlight.delete(event.eventId);
      }
    },
    close() {
      transporter.close();
    },
  };
}

const addressOf = (a: string | { address: string }) => (typeof a === 'string' ? a : a.address);
