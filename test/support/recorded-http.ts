/**
 * An Azure SDK HttpClient (clientOptions.httpClient / credential options) that answers from a table instead of
 * the network, for tests of answers no local server gives: real Key Vault's 403 RBAC/firewall bodies, soft-delete
 * 409s, Entra ID token endpoint errors. The SDK pipeline above it (auth challenge, deserialization, errors) is
 * the real one; only the socket is replaced.
 */
import type { CertificateClientOptions } from '@azure/keyvault-certificates';

type HttpClient = NonNullable<CertificateClientOptions['httpClient']>;
type PipelineRequest = Parameters<HttpClient['sendRequest']>[0];
type HttpHeaders = PipelineRequest['headers'];

export interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface SeenRequest {
  method: string;
  url: URL;
  /** The request body as sent (form or JSON text). */
  body: string;
  authorization: string | undefined;
}

/** A route's answers: one for every call, a list consumed in order (the last repeats), or a function. */
export type Route = Answer | Answer[] | ((req: SeenRequest) => Answer);

export interface RecordedHttpClient extends HttpClient {
  readonly seen: SeenRequest[];
  /** Requests no route answered ("METHOD /path"); a test asserts this is empty. */
  readonly unanswered: string[];
}

/**
 * `routes` keyed by "METHOD /path" (no query). `before` may answer a request ahead of the routes (a service's
 * authentication challenge); `fallback` answers what no route does.
 */
export function recordedHttpClient(
  routes: Record<string, Route>,
  opts: {
    before?: (req: SeenRequest) => Answer | undefined;
    fallback?: (req: SeenRequest) => Answer | undefined;
  } = {},
): RecordedHttpClient {
  const { before, fallback } = opts;
  const seen: SeenRequest[] = [];
  const unanswered: string[] = [];
  const calls = new Map<string, number>();

  function answer(req: SeenRequest): Answer {
    const early = before?.(req);
    if (early) return early;
    const key = `${req.method} ${req.url.pathname}`;
    const route = routes[key];
    if (route === undefined) {
      const fb = fallback?.(req);
      if (fb) return fb;
      unanswered.push(key);
      return {
        status: 501,
        body: { error: { code: 'NotRecorded', message: `no recorded answer for ${key}` } },
      };
    }
    if (typeof route === 'function') return route(req);
    if (!Array.isArray(route)) return route;
    const n = calls.get(key) ?? 0;
    calls.set(key, n + 1);
    return route[Math.min(n, route.length - 1)] as Answer;
  }

  return {
    seen,
    unanswered,
    async sendRequest(request: PipelineRequest) {
      const req: SeenRequest = {
        method: request.method,
        url: new URL(request.url),
        body: typeof request.body === 'string' ? request.body : '',
        authorization: request.headers.get('authorization'),
      };
      seen.push(req);
      const a = answer(req);
      const text = a.body === undefined ? '' : typeof a.body === 'string' ? a.body : JSON.stringify(a.body);
      return {
        request,
        status: a.status,
        headers: headersOf({ 'content-type': 'application/json; charset=utf-8', ...a.headers }),
        bodyAsText: text,
      };
    },
  };
}

/** The pipeline's HttpHeaders over a plain record (names case-insensitive). */
function headersOf(raw: Record<string, string>): HttpHeaders {
  const map = new Map(Object.entries(raw).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    get: (name) => map.get(name.toLowerCase()),
    has: (name) => map.has(name.toLowerCase()),
    set: (name, value) => void map.set(name.toLowerCase(), String(value)),
    delete: (name) => void map.delete(name.toLowerCase()),
    toJSON: () => Object.fromEntries(map),
    [Symbol.iterator]: () => map.entries(),
  };
}
