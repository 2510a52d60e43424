/**
 * What a failed SMTP send means for the activity that tried it:
 * - SmtpAuthFailed (not retryable): the server refused our credentials (535/534/530) or needs some we
 *   do not have. Names the user, never the password.
 * - SmtpRejected (not retryable): a permanent 5xx for the sender, the recipients or the message.
 * - SmtpUnavailable (retryable): no connection, timeout, TLS failure, or a temporary 4xx: the mail waits
 *   for the next attempt. Carries the underlying error as `cause`.
 * Every message is scrubbed of the password (plain and base64, as AUTH PLAIN/LOGIN send it) in case a
 * server echoes what it received.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { NotificationEvent } from './templates';

export interface SmtpErrorContext {
  event: Pick<NotificationEvent, 'certificateId' | 'kind'>;
  /** host:port */
  server: string;
  user?: string;
  secret?: string;
}

interface NodemailerError {
  code?: string;
  responseCode?: number;
  response?: string;
  message?: string;
}

const AUTH_REFUSED = new Set([530, 534, 535]);

export function classifySmtpError(err: unknown, ctx: SmtpErrorContext): ApplicationFailure {
  const e = (err ?? {}) as NodemailerError;
  const code = e.code ?? 'EUNKNOWN';
  const rc = e.responseCode;
  const said = scrub(e.message ?? String(err), ctx).slice(0, 400);
  const about = `e-mail for ${ctx.event.certificateId} (${ctx.event.kind})`;

  if ((code === 'EAUTH' && (rc === undefined || AUTH_REFUSED.has(rc))) || code === 'ENOAUTH') {
    return ApplicationFailure.create({
      type: 'SmtpAuthFailed',
      nonRetryable: true,
      message: `${about} not sent: the SMTP server ${ctx.server} refused the login of user "${ctx.user ?? '(none configured)'}" (${code}: ${said}); check the SMTP user and password in the configuration`,
    });
  }
  if (rc !== undefined && rc >= 500) {
    return ApplicationFailure.create({
      type: 'SmtpRejected',
      nonRetryable: true,
      message: `${about} not sent: the SMTP server ${ctx.server} refused it permanently (${code} ${rc}: ${said})`,
    });
  }
  const original = err instanceof Error && scrub(err.message, ctx) === err.message ? err : new Error(said);
  return ApplicationFailure.create({
    type: 'SmtpUnavailable',
    nonRetryable: false,
    message: `${about} not sent yet: SMTP server ${ctx.server} unavailable (${code}${rc ? ` ${rc}` : ''}: ${said}); it will be retried`,
    cause: original,
  });
}

function scrub(text: string, ctx: SmtpErrorContext): string {
  const secret = ctx.secret;
  if (!secret) return text;
  const forms = [
    secret,
    Buffer.from(secret).toString('base64'),
    Buffer.from(`\u0000${ctx.user ?? ''}\u0000${secret}`).toString('base64'),
  ];
  return forms.reduce((out, f) => out.split(f).join('[redacted]'), text);
}
