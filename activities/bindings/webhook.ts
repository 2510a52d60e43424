/**
 * Webhook binding target: tells a consumer that pulls certificates from the vault itself (its own Key Vault
 * reference, a sidecar, a CDN) that a new version exists, by POSTing a signed JSON event. The event holds
 * references and public facts only (ids, thumbprints, the secret id): the key is never fetched, so
 * `ctx.material()` is never called here.
 *
 * Wire format (docs/webhook.md has a consumer's verification snippet):
 *   POST <url>, content-type application/json, body = the event (see WebhookEvent)
 *   Certflow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, `${t}.${raw body}`)>
 *   Certflow-Event-Id: <event id>   (stable per certificate + version: consumers dedupe with it)
 * A consumer verifies by recomputing the HMAC over `t`, a dot and the raw body bytes exactly as received
 * (before any JSON parsing), comparing in constant time, and refusing a `t` older than a few minutes
 * (replays). Every retry is signed again with a fresh `t`; the body stays byte-identical.
 *
 * Delivery: network errors, 408, 429 (honouring Retry-After) and 5xx are retried with exponential backoff
 * up to `maxAttempts`; any other non-2xx is final. A failure is an outcome with status 'failed', never a throw.
 */
import { createHmac } from 'node:crypto';
import type { BindingContext, BindingOutcome, BindingTarget } from '../types';
import {
  NoAnswerError,
  checkWebhookUrl,
  describeUrl,
  isRetryableStatus,
  isSuccess,
  postJson,
  type FetchLike,
} from '../http';

export const WEBHOOK_EVENT_TYPE = 'certflow.certificate.renewed';

export interface WebhookEvent {
  type: typeof WEBHOOK_EVENT_TYPE;
  /** Stable per certificateId + version: a re-sent (retried, re-synced) event has the same id. */
  id: string;
  certificateId: string;
  version: string;
  /** SHA-1, uppercase hex. */
  thumbprint: string;
  previousThumbprint: string | null;
  /** Key Vault secret id of the new version: where the consumer pulls key and chain from. */
  secretId: string;
  notAfter: string | null;
  sentAt: string;
}

export interface WebhookTargetOptions {
  name: string;
  url: string;
  /** HMAC-SHA256 key shared with the consumer (from the environment, never from config files). */
  secret: string;
  /** Per attempt; default 10 s. */
  timeoutMs?: number;
  /** Default 5. */
  maxAttempts?: number;
  /** First wait between attempts, doubled each time (plus up to 20% jitter); default 1 s. */
  backoffMs?: number;
  /** Longest single wait, Retry-After included; a server asking for more gets 'failed' now. Default 30 s. */
  maxDelayMs?: number;
  /** Allow plain http to a non-loopback host (the event is not secret, but it can be replayed). */
  allowHttp?: boolean;
  fetchImpl?: FetchLike;
  now?: () => Date;
  sleep?: (ms: number) => Promise<void>;
}

const MIN_SECRET = 16;

export const webhookEventId = (certificateId: string, version: string): string =>
  `certflow:${certificateId}:${version}`;

/** The Certflow-Signature header value for `body` sent at `unixSeconds`. */
export function signWebhook(secret: string, unixSeconds: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

export function createWebhookTarget(opts: WebhookTargetOptions): BindingTarget {
  checkWebhookUrl(opts.url, `webhook target "${opts.name}": url`, opts.allowHttp);
  if (typeof opts.secret !== 'string' || opts.secret.length < MIN_SECRET) {
    throw new Error(
      `webhook target "${opts.name}": secret must be at least ${MIN_SECRET} characters (an HMAC key, from the environment)`,
    );
  }
  const maxAttempts = opts.maxAttempts ?? 5;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new Error(
      `webhook target "${opts.name}": maxAttempts must be a whole number >= 1, got ${maxAttempts}`,
    );
  }
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const backoffMs = opts.backoffMs ?? 1_000;
  const maxDelayMs = opts.maxDelayMs ?? 30_000;
  const now = opts.now ?? (() => new Date());
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const where = describeUrl(opts.url);

  /** 'ok' with the answer, or why it failed. */
  async function deliver(id: string, body: string): Promise<{ ok: boolean; detail: string }> {
    for (let attempt = 1; ; attempt++) {
      let why: string;
      let askedMs: number | undefined;
      try {
        const answer = await postJson({
          fetchImpl: opts.fetchImpl,
          url: opts.url,
          body,
          timeoutMs,
          headers: {
            'certflow-signature': signWebhook(opts.secret, Math.floor(now().getTime() / 1000), body),
            'certflow-event-id': id,
            'certflow-event-type': WEBHOOK_EVENT_TYPE,
          },
        });
        const said = `HTTP ${answer.status}${answer.snippet ? ` "${answer.snippet}"` : ''}`;
        if (isSuccess(answer.status))
          return { ok: true, detail: `${where} answered ${said} (attempt ${attempt})` };
        if (!isRetryableStatus(answer.status))
          return { ok: false, detail: `${where} answered ${said}, not retried` };
        why = `${where} answered ${said}`;
        askedMs = answer.retryAfterMs;
      } catch (err) {
        if (!(err instanceof NoAnswerError)) throw err;
        why = err.message;
      }
      if (attempt >= maxAttempts) return { ok: false, detail: `${why}, after ${attempt} attempts` };
      const delay = askedMs ?? backoffMs * 2 ** (attempt - 1) * (1 + Math.random() * 0.2);
      if (delay > maxDelayMs) {
        return {
          ok: false,
          detail: `${why}; asked to retry after ${Math.ceil(delay / 1000)} s (more than maxDelayMs), attempt ${attempt}`,
        };
      }
      await sleep(delay);
    }
  }

  return {
    kind: 'webhook',
    name: opts.name,
    async sync(ctx: BindingContext): Promise<BindingOutcome[]> {
      const event: WebhookEvent = {
        type: WEBHOOK_EVENT_TYPE,
        id: webhookEventId(ctx.certificateId, ctx.version),
        certificateId: ctx.certificateId,
        version: ctx.version,
        thumbprint: ctx.thumbprint,
        previousThumbprint: ctx.previousThumbprint,
        secretId: ctx.secretId,
        notAfter: ctx.notAfter,
        sentAt: now().toISOString(),
      };
      const { ok, detail } = await deliver(event.id, JSON.stringify(event));
      return [
        {
          target: opts.name,
          binding: where,
          before: ctx.previousThumbprint,
          after: ok ? ctx.thumbprint : null,
          status: ok ? 'bound' : 'failed',
          detail,
        },
      ];
    },
  };
}
