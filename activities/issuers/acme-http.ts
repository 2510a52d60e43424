/**
 * The HTTP side of acme-client, made honest. acme-client talks through one shared axios instance whose
 * response interceptor (a) retries refused connections and 5xx/429 for ~75 s, (b) then loses the real
 * cause (`TypeError: Cannot read properties of undefined (reading 'config')`), and (c) turns ACME problem
 * documents into `Error(detail)` without type, status or Retry-After.
 *
 * Every call we make runs inside an AsyncLocalStorage context. For requests in such a context only (other
 * users of acme-client in the process are untouched) we: set the TLS trust and a timeout, fail transport
 * errors at once with their cause, skip acme-client's own retries (Temporal retries, with backoff and the
 * CA's Retry-After), and record the last problem document so errors can be classified.
 * acme-client's separate badNonce retry (in its HttpClient, up to 5 times per request) still applies.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createPrivateKey } from 'node:crypto';
import type https from 'node:https';
import * as acme from 'acme-client';
import type { AxiosError, AxiosResponse } from 'axios';

export interface AcmeProblem {
  type: string;
  detail: string;
  status: number;
  /** Seconds, from the Retry-After header (delta or HTTP date), when the server sent one. */
  retryAfterSeconds?: number;
  url: string;
}

export interface AcmeCallContext {
  directoryUrl: string;
  agent: https.Agent;
  timeoutMs: number;
  /** What we were doing, for messages ("create order", "finalize order"). */
  step: string;
  /** Problem document of the latest response; cleared by every successful response. */
  lastProblem?: AcmeProblem;
  /** Fresh nonces from the CA's answers (Replay-Nonce), shared by the issuer's calls: see `reuseNonces`. */
  nonces?: string[];
}

/** How many unused nonces an issuer keeps (the freshest; older ones are dropped). */
const MAX_NONCES = 64;

/**
 * RFC 8555 §7.2: every answer carries a fresh nonce in Replay-Nonce for the next request. acme-client instead asks
 * newNonce (a HEAD request) before every signed request, doubling the round trips of an order. This makes the
 * client take a nonce from the CA's earlier answers when there is one (freshest first) and ask newNonce only when
 * there is none. A nonce the CA no longer accepts is answered with badNonce and a fresh nonce, which acme-client
 * retries with by itself. Nonces are collected only from answers acme-client does not use itself (not newNonce's
 * HEAD, not a badNonce answer).
 */
export function reuseNonces(client: acme.Client, nonces: string[]): void {
  const http = (client as unknown as { http?: { getNonce?: () => Promise<string> } }).http;
  if (!http?.getNonce) {
    throw new Error('acme-client internals changed: its HttpClient.getNonce was not found (acme-http.ts)');
  }
  const fetchNonce = http.getNonce.bind(http);
  http.getNonce = async () => nonces.pop() ?? fetchNonce();
}

/**
 * acme-client keeps the account key as PEM and hands it to `sign` for every request, so every JWS parses the PEM
 * again (a third of a millisecond to a millisecond of synchronous work per request, on the event loop that all
 * activities share: ~1.2 s of the worker's CPU in a wave of 100 orders). This parses it once: the JWK is computed
 * from the PEM as before (acme-client caches it), then the key is kept as a KeyObject, which `sign` takes as is.
 * The signatures are the same; only the parsing is done once.
 */
export function signWithParsedKey(client: acme.Client): void {
  const http = (client as unknown as { http?: { accountKey?: unknown; getJwk?: () => unknown } }).http;
  if (!http?.getJwk || !(Buffer.isBuffer(http.accountKey) || typeof http.accountKey === 'string')) {
    throw new Error('acme-client internals changed: its HttpClient.accountKey was not found (acme-http.ts)');
  }
  http.getJwk(); // computed from the PEM and cached by acme-client before the key changes form
  http.accountKey = createPrivateKey(http.accountKey);
}

/** A request that never got an HTTP answer: refused, reset, timed out, TLS rejected, DNS failed. */
export class AcmeTransportError extends Error {
  constructor(
    readonly url: string,
    readonly code: string | undefined,
    cause: unknown,
  ) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`${reason}${code && !reason.includes(code) ? ` (${code})` : ''}`, { cause });
    this.name = 'AcmeTransportError';
  }
}

const storage = new AsyncLocalStorage<AcmeCallContext>();
let installed = false;

export function runWithAcmeContext<T>(ctx: AcmeCallContext, fn: () => Promise<T>): Promise<T> {
  install();
  return storage.run(ctx, fn);
}

type Rejected = (error: unknown) => unknown;

function install(): void {
  if (installed) return;
  const ax = acme.axios;
  ax.interceptors.request.use((config) => {
    const ctx = storage.getStore();
    if (ctx) {
      config.httpsAgent = ctx.agent;
      config.timeout = ctx.timeoutMs;
    }
    return config;
  });
  ax.interceptors.response.use((res) => {
    const nonces = storage.getStore()?.nonces;
    const nonce: unknown = res.headers?.['replay-nonce'];
    const usedByAcmeClient =
      res.config?.method?.toLowerCase() === 'head' ||
      (res.status === 400 &&
        (res.data as { type?: unknown } | null)?.type === 'urn:ietf:params:acme:error:badNonce');
    if (nonces && typeof nonce === 'string' && nonce && !usedByAcmeClient) {
      nonces.push(nonce);
      if (nonces.length > MAX_NONCES) nonces.splice(0, nonces.length - MAX_NONCES);
    }
    return res;
  });
  // acme-client registers exactly one response interceptor, with only a rejection handler
  const theirs = (ax.interceptors.response.handlers ?? []).find((h) => h && !h.fulfilled && h.rejected);
  if (!theirs?.rejected) {
    throw new Error(
      'acme-client internals changed: its axios response interceptor was not found (acme-http.ts)',
    );
  }
  const original = theirs.rejected as Rejected;
  theirs.rejected = ((error: unknown) => {
    const ctx = storage.getStore();
    if (!ctx) return original(error);
    const { response, config, code } = error as AxiosError;
    if (!response) {
      return Promise.reject(new AcmeTransportError(config?.url ?? ctx.directoryUrl, code, error));
    }
    ctx.lastProblem = response.status >= 400 ? problemOf(response) : undefined;
    // acme-client asks for every status back (validateStatus null) and judges them itself
    return response;
  }) as typeof theirs.rejected;
  installed = true;
}

function problemOf(res: AxiosResponse): AcmeProblem {
  const data: unknown = res.data;
  const doc = (typeof data === 'object' && data !== null ? data : {}) as { type?: unknown; detail?: unknown };
  const retryAfter = parseRetryAfter(res.headers['retry-after']);
  return {
    type: typeof doc.type === 'string' ? doc.type : `http:${res.status}`,
    detail: typeof doc.detail === 'string' ? doc.detail : typeof data === 'string' ? data.slice(0, 300) : '',
    status: res.status,
    ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}),
    url: res.config?.url ?? '',
  };
}

export function parseRetryAfter(header: unknown, now = Date.now()): number | undefined {
  if (typeof header !== 'string' || header.trim() === '') return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim());
  const at = Date.parse(header);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - now) / 1000));
}
