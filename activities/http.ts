/**
 * One JSON POST to a webhook (consumers of certificates, Slack, Teams) and how to read its answer:
 * which statuses are worth a retry and what the server's Retry-After asks for.
 * Webhook URLs are often capabilities (a token in the path), so nothing here puts a URL's path or
 * query into a message: callers name a webhook by `describeUrl` (scheme, host and port only).
 */

export type FetchLike = typeof fetch;

export interface PostAnswer {
  status: number;
  /** Milliseconds the server asked us to wait (Retry-After), when it did. */
  retryAfterMs?: number;
  /** The start of the response body, control characters removed, for error messages. */
  snippet: string;
}

export interface PostJsonOptions {
  fetchImpl?: FetchLike;
  url: string;
  body: string;
  headers?: Record<string, string>;
  timeoutMs: number;
}

/** Thrown when no HTTP answer came (refused, reset, DNS, TLS, timeout): always worth a retry. */
export class NoAnswerError extends Error {
  override readonly name = 'NoAnswerError';
  constructor(
    /** What happened instead of an answer, without the URL. */
    readonly reason: string,
    url: string,
    options?: ErrorOptions,
  ) {
    super(`${describeUrl(url)} did not answer (${reason})`, options);
  }
}

const SNIPPET = 200;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]+/g;

export async function postJson(opts: PostJsonOptions): Promise<PostAnswer> {
  const doFetch = opts.fetchImpl ?? fetch;
  let res: Response;
  try {
    res = await doFetch(opts.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'certflow', ...opts.headers },
      body: opts.body,
      // a redirect would re-send the signed body to a host nobody configured: report it instead
      redirect: 'manual',
      signal: AbortSignal.timeout(opts.timeoutMs),
    });
  } catch (err) {
    throw new NoAnswerError(networkCause(err, opts.timeoutMs), opts.url, { cause: err });
  }
  const text = await res.text().catch(() => '');
  return {
    status: res.status,
    retryAfterMs: parseRetryAfter(res.headers.get('retry-after')),
    snippet: text.slice(0, SNIPPET).replace(CONTROL, ' ').trim(),
  };
}

export const isSuccess = (status: number): boolean => status >= 200 && status < 300;

/** Timeout, throttling and server errors may pass; any other 4xx (and 3xx) will not. */
export const isRetryableStatus = (status: number): boolean =>
  status === 408 || status === 429 || status >= 500;

/** Retry-After as delta-seconds or an HTTP date (RFC 9110 10.2.3); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // an HTTP date always names its day and month; Date.parse alone would read '-5' as a year
  const at = /^[A-Za-z]{3}, /.test(trimmed) ? Date.parse(trimmed) : NaN;
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** `https://host:port`, never the path or query (they may hold a token). */
export function describeUrl(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(unparseable URL)';
  }
}

/** Checks a webhook URL at configuration time; `field` names it in the error. */
export function checkWebhookUrl(url: string, field: string, allowHttp = false): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`${field}: expected an absolute http(s) URL`);
  }
  const loopback = ['127.0.0.1', '[::1]', 'localhost'].includes(parsed.hostname);
  if (parsed.protocol === 'https:' || (parsed.protocol === 'http:' && (allowHttp || loopback))) return parsed;
  throw new Error(
    `${field}: expected an https URL (plain http only for loopback or with allowHttp), got ${parsed.protocol}//${parsed.host}`,
  );
}

function networkCause(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return `timeout after ${timeoutMs} ms`;
  const cause = e.cause;
  if (cause?.message)
    return cause.code && !cause.message.includes(cause.code)
      ? `${cause.code} ${cause.message}`
      : cause.message;
  return e.message ?? String(err);
}
