/**
 * The Event Grid webhook (path /eventgrid): Key Vault certificate events become lifecycle messages.
 *   CertificateNearExpiry        → renewNow signal ('Event Grid: near expiry')
 *   CertificateNewVersionCreated → observeNow signal (look now: bind and announce the new version)
 *   CertificateExpired           → renewNow signal, and an error in the log
 * Both delivery schemas and their handshakes: Event Grid's SubscriptionValidationEvent (answered with
 * `{ validationResponse }`) and CloudEvents' OPTIONS request (`WebHook-Allowed-Origin`).
 *
 * Authentication, checked before anything else (handshakes included): the shared key (at least 32 characters)
 * in the `aeg-sas-key` header (an Event Grid delivery property marked secret; `x-certflow-key` also works),
 * compared in constant time; the `?code=KEY` form of the endpoint URL only when `allowKeyInUrl` says so (URLs
 * end up in logs and proxies); and/or an Entra bearer token checked by `verifyToken` (Event Grid's "Microsoft
 * Entra authentication" of webhooks, see event-grid-entra.ts).
 *
 * A leaked key must not be able to make the CA issue again and again: a renew event is acted on only when its
 * version is the certificate's current one (the lifecycle's `status` query), and each certificate gets a
 * cooldown after a renewal request (default 1 h) during which further renew events for it are answered but not
 * acted on. New-version events only make the lifecycle look (no CA is asked): they are always passed on.
 *
 * Answers: 200 done; 202 when an event names a certificate without a lifecycle (Event Grid must not retry);
 * 400 malformed (logged; not retried by Event Grid); 401; 405; 413 over maxBodyBytes; 503 when Temporal or the
 * token keys cannot be reached (Event Grid retries). Duplicates are harmless: signals are idempotent, and event
 * ids already handled are remembered (a small LRU) and skipped.
 */
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { lifecycleHandle } from '../activities/lifecycles';
import { observeNowSignal, renewNowSignal, statusQuery } from '../workflows/messages';
import { TokenCheckUnavailable } from './event-grid-entra';
import {
  type CertificateRef,
  certificateRefOf,
  type DeliveredEvent,
  KV,
  MalformedDelivery,
  parseDelivery,
} from './event-grid-events';

export interface EventGridLog {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/**
 * What the endpoint asks of a certificate's lifecycle, kept this thin so that it can sit on any lifecycles
 * client. Each call throws WorkflowNotFoundError when no lifecycle runs for the certificate.
 */
export interface LifecycleMessages {
  /** The version the lifecycle holds as current (null before the first issuance). */
  currentVersion(certificateId: string): Promise<string | null>;
  /** `requestId`: the event id, so that a redelivery never renews twice, also after a restart. */
  renew(
    certificateId: string,
    args: { reason: string; requestedBy: string; requestId: string },
  ): Promise<void>;
  /** The vault has a new version: look now (it is bound and announced). */
  observe(certificateId: string, args: { reason: string }): Promise<void>;
}

/** LifecycleMessages over a Temporal client: the `status` query and the renewNow / observeNow signals. */
export function lifecycleMessagesOf(client: Client, timeoutMs = 10_000): LifecycleMessages {
  const call = <T>(fn: () => Promise<T>) => client.withDeadline(Date.now() + timeoutMs, fn);
  const handle = (id: string) => lifecycleHandle(client, id);
  return {
    currentVersion: async (id) => (await call(() => handle(id).query(statusQuery))).version,
    renew: (id, args) => call(() => handle(id).signal(renewNowSignal, args)),
    observe: (id, args) => call(() => handle(id).signal(observeNowSignal, args)),
  };
}

export const MIN_KEY_LENGTH = 32;

export interface EventGridHandlerOptions {
  /** The lifecycles' Temporal client (or `lifecycles`). */
  client?: Client;
  /** How to reach the lifecycles; default: lifecycleMessagesOf(client). */
  lifecycles?: LifecycleMessages;
  /** Shared key (at least 32 characters) expected in the `aeg-sas-key` (or `x-certflow-key`) header. */
  key?: string;
  /** Also accept the key as `?code=` in the URL (default false: URLs are logged by proxies and servers). */
  allowKeyInUrl?: boolean;
  /** After a renewal request for a certificate, renew events for it are not acted on this long (default 3600 s; 0: none). */
  cooldownSeconds?: number;
  /** Checks an Entra bearer token (audience, issuer, signature); true when it may deliver. */
  verifyToken?: (bearer: string) => Promise<boolean>;
  maxBodyBytes?: number;
  log: EventGridLog;
  /** Our vault name for a Key Vault URL (https://<name>.vault.azure.net); default: the event's VaultName. */
  vaultNameFromUrl?: (vaultUrl: string) => string | undefined;
  /** Default /eventgrid. */
  path?: string;
  /** How many handled event ids to remember (default 1000). */
  rememberEvents?: number;
  /** Deadline of each Temporal call (default 10 s; Event Grid gives a delivery 30 s before retrying). */
  temporalTimeoutMs?: number;
}

export interface EventResult {
  id: string;
  type: string;
  certificateId: string | null;
  action: 'renew' | 'observe' | 'ignored' | 'duplicate' | 'no-lifecycle' | 'stale' | 'cooldown';
  note?: string;
}

export type EventGridHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

/** renew: ask for a renewal; observe: the vault has a new version, look now (it is bound and announced). */
const ACTIONS: Record<string, { action: 'renew' | 'observe'; reason?: string }> = {
  [KV.nearExpiry]: { action: 'renew', reason: 'Event Grid: near expiry' },
  [KV.expired]: { action: 'renew', reason: 'Event Grid: expired' },
  [KV.newVersion]: { action: 'observe', reason: 'Event Grid: new version created' },
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function createEventGridHandler(opts: EventGridHandlerOptions): EventGridHandler {
  if (!opts.key && !opts.verifyToken)
    throw new Error(
      'createEventGridHandler: key or verifyToken is required (an open endpoint would let anyone renew)',
    );
  if (opts.key !== undefined && opts.key.length < MIN_KEY_LENGTH)
    throw new Error(
      `createEventGridHandler: key: expected at least ${MIN_KEY_LENGTH} characters (e.g. openssl rand -base64 32)`,
    );
  if (!opts.lifecycles && !opts.client)
    throw new Error('createEventGridHandler: client or lifecycles is required');
  const lifecycles = opts.lifecycles ?? lifecycleMessagesOf(opts.client!, opts.temporalTimeoutMs);
  const path = opts.path ?? '/eventgrid';
  const maxBody = opts.maxBodyBytes ?? 1024 * 1024;
  const seen = createLru(opts.rememberEvents ?? 1000);
  const keyDigest = opts.key ? sha256(opts.key) : null;
  const cooldownMs = (opts.cooldownSeconds ?? 3600) * 1000;
  /** When a renewal was last requested for each certificate, for the cooldown (observe events never make the CA issue). */
  const actedAt = new Map<string, number>();

  const authorized = async (req: IncomingMessage, url: URL): Promise<boolean> => {
    const inUrl = url.searchParams.get('code');
    if (inUrl !== null && !opts.allowKeyInUrl)
      throw new HttpError(
        401,
        'the key in the URL (?code=) is refused: send it in the aeg-sas-key header (a delivery property marked secret), or set http.eventGrid.allowKeyInUrl',
      );
    const given = header(req, 'aeg-sas-key') ?? header(req, 'x-certflow-key') ?? inUrl;
    if (keyDigest && given && timingSafeEqual(sha256(given), keyDigest)) return true;
    const bearer = /^Bearer (.+)$/i.exec(header(req, 'authorization') ?? '')?.[1];
    if (opts.verifyToken && bearer) {
      try {
        return await opts.verifyToken(bearer);
      } catch (err) {
        if (err instanceof TokenCheckUnavailable) throw new HttpError(503, err.message);
        opts.log.warn('Event Grid: token check failed', { error: (err as Error).message });
      }
    }
    return false;
  };

  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== path) return false;
    try {
      if (!(await authorized(req, url))) throw new HttpError(401, 'missing or wrong credentials');
      if (req.method === 'OPTIONS') return handshake(req, res);
      if (req.method !== 'POST') {
        res.setHeader('Allow', 'POST, OPTIONS');
        throw new HttpError(405, `method ${req.method} not allowed (POST events, OPTIONS handshake)`);
      }
      const body = await readJson(req, maxBody);
      const delivery = parseDelivery(body);
      if (delivery.kind === 'validation') {
        opts.log.info('Event Grid: subscription validated');
        return send(res, 200, { validationResponse: delivery.code });
      }
      const refs = delivery.events.map((e, i) => (ACTIONS[e.type] ? refOf(e, `[${i}]`) : null));
      const results: EventResult[] = [];
      for (const [i, e] of delivery.events.entries()) results.push(await handle(e, refs[i] ?? null));
      const status = results.some((r) => r.action === 'no-lifecycle') ? 202 : 200;
      return send(res, status, { results });
    } catch (err) {
      return fail(req, res, err);
    }
  };

  function refOf(e: DeliveredEvent, at: string): CertificateRef | null {
    return certificateRefOf(e, at, opts.vaultNameFromUrl);
  }

  async function handle(e: DeliveredEvent, ref: CertificateRef | null): Promise<EventResult> {
    const base = { id: e.id, type: e.type, certificateId: ref?.certificateId ?? null };
    const todo = ACTIONS[e.type];
    if (!todo) return { ...base, action: 'ignored', note: 'not a certificate event Certflow acts on' };
    const dedupeKey = `${e.source}|${e.id}`;
    if (seen.has(dedupeKey)) return { ...base, action: 'duplicate', note: 'already handled' };
    if (!ref) {
      seen.add(dedupeKey);
      return { ...base, action: 'no-lifecycle', note: 'the vault of this event is not configured' };
    }
    const id = ref.certificateId;
    const fields = { certificateId: id, eventId: e.id, eventType: e.type, version: ref.version };
    const requestedBy = `event-grid:${e.id}`;
    const last = actedAt.get(id);
    if (todo.action === 'renew' && last !== undefined && Date.now() - last < cooldownMs) {
      seen.add(dedupeKey);
      opts.log.warn('Event Grid: event for a certificate in its cooldown, not acted on', fields);
      return {
        ...base,
        action: 'cooldown',
        note: `a renewal of ${id} was requested at ${new Date(last).toISOString()}; renew events for it are not acted on before ${new Date(last + cooldownMs).toISOString()}`,
      };
    }
    try {
      if (todo.action === 'renew') {
        const current = await lifecycles.currentVersion(id);
        if (!ref.version || !current || ref.version.toLowerCase() !== current.toLowerCase()) {
          seen.add(dedupeKey);
          opts.log.warn('Event Grid: event about a version that is not the current one, not acted on', {
            ...fields,
            current,
          });
          return {
            ...base,
            action: 'stale',
            note: `the event is about version ${ref.version ?? '(none)'}, the current version of ${id} is ${current ?? '(none)'}: nothing to renew`,
          };
        }
        await lifecycles.renew(id, { reason: todo.reason!, requestedBy, requestId: `eventgrid:${e.id}` });
      } else await lifecycles.observe(id, { reason: todo.reason! });
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError))
        throw new HttpError(503, `Temporal: ${(err as Error).message}`);
      seen.add(dedupeKey);
      opts.log.warn('Event Grid: no lifecycle for the certificate', fields);
      return {
        ...base,
        action: 'no-lifecycle',
        note: `no lifecycle runs for ${id}; enroll it: certflow enroll ${id} --issuer <name>`,
      };
    }
    if (todo.action === 'renew' && cooldownMs > 0) {
      actedAt.set(id, Date.now());
      if (actedAt.size > 10_000)
        for (const [k, t] of actedAt) if (Date.now() - t >= cooldownMs) actedAt.delete(k);
    }
    seen.add(dedupeKey);
    if (e.type === KV.expired) opts.log.error('Event Grid: certificate EXPIRED; renewal requested', fields);
    else opts.log.info(`Event Grid: ${todo.action} requested`, fields);
    return { ...base, action: todo.action };
  }

  function handshake(req: IncomingMessage, res: ServerResponse): boolean {
    const origin = header(req, 'webhook-request-origin');
    if (!origin)
      throw new HttpError(400, 'OPTIONS: expected a WebHook-Request-Origin header (CloudEvents handshake)');
    res.setHeader('WebHook-Allowed-Origin', origin);
    res.setHeader('WebHook-Allowed-Rate', '*');
    res.setHeader('Allow', 'POST, OPTIONS');
    res.statusCode = 200;
    res.end();
    opts.log.info('Event Grid: CloudEvents handshake answered', { origin });
    return true;
  }

  function fail(req: IncomingMessage, res: ServerResponse, err: unknown): boolean {
    const status = err instanceof HttpError ? err.status : err instanceof MalformedDelivery ? 400 : 500;
    const message = (err as Error).message;
    const fields = { status, method: req.method, error: message };
    if (status >= 500) opts.log.error('Event Grid: delivery failed', fields);
    else opts.log.warn('Event Grid: delivery rejected', fields);
    if (status === 401 && opts.verifyToken) res.setHeader('WWW-Authenticate', 'Bearer');
    if (status === 413 || status === 400) res.setHeader('Connection', 'close');
    return send(res, status, { error: message });
  }
}

function send(res: ServerResponse, status: number, body: unknown): boolean {
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify(body));
  return true;
}

const header = (req: IncomingMessage, name: string): string | undefined => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();

async function readJson(req: IncomingMessage, max: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > max) throw new HttpError(413, `body of ${declared} bytes is over the limit of ${max}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw new HttpError(413, `body is over the limit of ${max} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new MalformedDelivery(`body: expected JSON (${(err as Error).message})`);
  }
}

/** Insertion-ordered set that forgets its oldest entries beyond `max`. */
function createLru(max: number): { has(k: string): boolean; add(k: string): void } {
  const keys = new Set<string>();
  return {
    has: (k) => keys.has(k),
    add(k) {
      keys.delete(k);
      keys.add(k);
      while (keys.size > max) keys.delete(keys.values().next().value as string);
    },
  };
}
