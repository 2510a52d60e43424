/**
 * The common part of our FAKE Azure Resource Manager services (App Service, Application Gateway, Front Door,
 * API Management, App Service Certificate orders): ARM cannot run outside Azure and no emulator of it exists,
 * so each fake follows the documented REST wire format that the real ARM SDK clients speak. This part does
 * what ARM's front door does for every provider:
 * - HTTPS on 127.0.0.1 (its own test CA), a bearer token, the `api-version` the SDK sends;
 * - resource groups: a request under a resource group that does not exist answers 404 `ResourceGroupNotFound`
 *   (as real ARM does, before the provider sees it);
 * - ARM's error envelope `{ error: { code, message } }`, `x-ms-request-id`, `x-ms-ratelimit-remaining-*`;
 * - paging with `nextLink` (page size settable, default 3 so that every listing pages);
 * - long-running operations: 201/202 with `Azure-AsyncOperation` (status resource: InProgress → Succeeded or
 *   Failed) and/or `Location` (202 until done, then the final body), each taking a settable number of polls;
 * - test controls: injected faults (429 with Retry-After, 5xx), one-shot hooks, simulated latency, a request log;
 * - Key Vault secrets the services read (by vault host, name and version), and a TLS front end that serves, by
 *   SNI, whatever the service says a host name is bound to (so the live probe is a real handshake).
 * Differences from real ARM kept on purpose: tokens are a fixed string (the DNS fake validates JWTs), no RBAC,
 * no throttling of its own, operations finish after a number of polls instead of minutes.
 */
import { randomUUID, X509Certificate } from 'node:crypto';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  createSecureContext,
  createServer as createTlsServer,
  type SecureContext,
  type Server as TlsServer,
} from 'node:tls';
import type { AccessToken, TokenCredential } from '@azure/identity';
import { freePort } from '../support/proc';
import { createTestCa } from '../support/test-ca';

const TOKEN = 'fake-arm-access-token';

export class ArmError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export interface ArmFault {
  status: number;
  /** Seconds, sent as Retry-After. */
  retryAfter?: number;
  /** How many matching requests fail; default 1. */
  count?: number;
  /** Substring of "METHOD /path" (case-insensitive) or a RegExp over it; every request when absent. */
  match?: string | RegExp;
}

export interface ArmRequest {
  method: string;
  path: string;
  status: number;
  /** Date.now() when the request arrived. */
  at: number;
}

export interface KeyMaterial {
  certPem: string;
  keyPem?: string;
}

export interface SecretVersion extends KeyMaterial {
  version: string;
  thumbprint: string;
  enabled: boolean;
}

/** What a provider's handler gets for one request. */
export interface ArmCall {
  method: string;
  url: URL;
  /** Path segments, decoded. */
  seg: string[];
  body: unknown;
  /** A page of `items` with a nextLink when more remain. */
  page(items: unknown[]): { value: unknown[]; nextLink?: string };
  /** Answers with a long-running operation that ends with `done()` (its final body) after the configured polls. */
  lro(opts: LroOptions): ArmReply;
}

export interface LroOptions {
  /** Status code of the first answer: 201 (PUT create/update) or 202 (POST, DELETE, PATCH). */
  status: 200 | 201 | 202;
  /** Sent with the first answer (the resource as it is now, provisioningState Updating), if any. */
  initial?: unknown;
  /** Runs when the operation completes; its result is the final body. Throw an ArmError to fail it. */
  done: () => unknown | Promise<unknown>;
  /** Which headers point at the operation (default both, as Application Gateway and Front Door send). */
  headers?: 'azure-async' | 'location' | 'both';
  /** The URL a poller GETs for the final resource after Azure-AsyncOperation ends (default: the request URL). */
  resourceUrl?: string;
}

export interface ArmReply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export type ArmHandler = (call: ArmCall) => unknown | ArmReply | Promise<unknown | ArmReply>;

export interface FakeArmCore {
  url: string;
  caPem: string;
  credential: TokenCredential;
  /** Client options for this fake: endpoint, TLS trust, quick SDK retries. */
  clientOptions: {
    endpoint: string;
    tlsOptions: { ca: string };
    retryOptions: { maxRetries: number; retryDelayInMs: number; maxRetryDelayInMs: number };
  };
  requests: ArmRequest[];
  /** Resource groups that exist (key `sub/rg`, lower case); `addResourceGroup` adds, the seeders add theirs. */
  addResourceGroup(subscriptionId: string, resourceGroup: string): void;
  deleteResourceGroup(subscriptionId: string, resourceGroup: string): void;
  fault(f: ArmFault): void;
  once(match: string | RegExp, action: () => void): void;
  setLatency(ms: number): void;
  setPageSize(n: number): void;
  /** Polls a long-running operation takes before it ends (default 1). */
  setLroPolls(n: number): void;
  /** Retry-After (seconds) sent with long-running operation answers; none when undefined (the SDK's interval). */
  setLroRetryAfter(s: number | undefined): void;
  /** Key Vault secrets as the services see them. */
  vault: FakeSecrets;
  /** Clears resource groups, faults, hooks, operations, secrets and the request log. */
  reset(): void;
  /** A TLS server serving, by SNI, `lookup(hostName)`'s certificate; returns its port. */
  startFrontend(lookup: (servername: string) => KeyMaterial | undefined): Promise<number>;
  close(): Promise<void>;
}

/**
 * Key Vault secrets, by vault host (`kv-prod.vault.azure.net`) and name, each with versions. What App Gateway,
 * Front Door and API Management read when they (re)load a certificate. `resolver`, when set, reads another
 * store instead (the end-to-end tests point it at the Key Vault test server).
 */
export interface FakeSecrets {
  /** Adds a new current version; returns it (with its thumbprint). */
  put(vaultHost: string, name: string, m: KeyMaterial, version?: string): SecretVersion;
  /** A version, or the current (latest enabled) one when `version` is null. */
  read(vaultHost: string, name: string, version: string | null): Promise<SecretVersion | null>;
  /** Material by thumbprint, for the TLS front ends. */
  material(thumbprint: string): KeyMaterial | undefined;
  resolver?: (vaultHost: string, name: string, version: string | null) => Promise<SecretVersion | null>;
  clear(): void;
}

export const thumbprintOfPem = (pem: string) =>
  new X509Certificate(pem).fingerprint.replace(/:/g, '').toUpperCase();

function createSecrets(): FakeSecrets {
  const versions = new Map<string, SecretVersion[]>();
  const byThumbprint = new Map<string, KeyMaterial>();
  const k = (host: string, name: string) => `${host}/${name}`.toLowerCase();
  const s: FakeSecrets = {
    put(host, name, m, version) {
      const v: SecretVersion = {
        ...m,
        version: version ?? randomUUID().replace(/-/g, ''),
        thumbprint: thumbprintOfPem(m.certPem),
        enabled: true,
      };
      byThumbprint.set(v.thumbprint, m);
      versions.set(k(host, name), [...(versions.get(k(host, name)) ?? []), v]);
      return v;
    },
    async read(host, name, version) {
      if (s.resolver) {
        const got = await s.resolver(host, name, version);
        if (got) byThumbprint.set(got.thumbprint, got);
        return got;
      }
      const all = versions.get(k(host, name)) ?? [];
      if (version) return all.find((v) => v.version === version) ?? null;
      return [...all].reverse().find((v) => v.enabled) ?? null;
    },
    material: (t) => byThumbprint.get(t.toUpperCase()),
    clear() {
      versions.clear();
      byThumbprint.clear();
    },
  };
  return s;
}

export async function startFakeArmCore(opts: {
  /** api-version(s) this provider serves (the SDK's). */
  apiVersions: string[];
  /** The provider's request handler; return a body (200) or an ArmReply. */
  handle: ArmHandler;
  label: string;
}): Promise<FakeArmCore> {
  const ca = createTestCa({ commonName: `Certflow fake ARM (${opts.label}) TLS CA`, keyType: 'ec' });
  const tls = ca.issueServerCert(['127.0.0.1', 'localhost']);
  const requests: ArmRequest[] = [];
  const groups = new Set<string>();
  const operations = new Map<string, { pollsLeft: number; done: LroOptions['done']; result?: ArmReply }>();
  let faults: (ArmFault & { left: number })[] = [];
  let hooks: { match: string | RegExp; action: () => void }[] = [];
  let latencyMs = 0;
  let pageSize = 3;
  let lroPolls = 1;
  let lroRetryAfter: number | undefined;
  let remaining = 11999;
  const vault = createSecrets();
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  const frontends: TlsServer[] = [];

  const matches = (m: string | RegExp | undefined, line: string) =>
    m === undefined || (typeof m === 'string' ? line.toLowerCase().includes(m.toLowerCase()) : m.test(line));
  const withVersion = (path: string, apiVersion: string) => {
    const u = new URL(path, url);
    u.searchParams.set('api-version', apiVersion);
    return u.toString();
  };

  /** Polls of an operation: InProgress until its count runs out, then its outcome (kept for later polls). */
  const poll = async (id: string, asLocation: boolean): Promise<ArmReply> => {
    const op = operations.get(id);
    if (!op) throw new ArmError(404, 'OperationNotFound', `Operation '${id}' was not found.`);
    if (op.pollsLeft > 0) {
      op.pollsLeft--;
      const headers: Record<string, string> =
        lroRetryAfter !== undefined ? { 'retry-after': String(lroRetryAfter) } : {};
      return asLocation ? { status: 202, headers } : { status: 200, body: { status: 'InProgress' }, headers };
    }
    if (!op.result) {
      try {
        op.result = { status: 200, body: await op.done() };
      } catch (err) {
        const e =
          err instanceof ArmError ? err : new ArmError(500, 'InternalServerError', (err as Error).message);
        op.result = { status: e.status, body: { error: { code: e.code, message: e.message } } };
      }
    }
    const failed = op.result.status >= 300;
    if (asLocation) return op.result;
    return {
      status: 200,
      body: failed
        ? { status: 'Failed', error: (op.result.body as { error: unknown }).error }
        : { status: 'Succeeded' },
    };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const u = new URL(req.url ?? '/', url);
    const method = req.method ?? 'GET';
    const line = `${method} ${u.pathname}`;
    const at = Date.now();
    const requestId = randomUUID();
    let reply: ArmReply;
    try {
      const body = await readBody(req);
      if (latencyMs) await new Promise((r) => setTimeout(r, latencyMs));
      if (req.headers.authorization !== `Bearer ${TOKEN}`) {
        throw new ArmError(
          401,
          'AuthenticationFailed',
          "Authentication failed. The 'Authorization' header is missing or invalid.",
        );
      }
      const apiVersion = u.searchParams.get('api-version') ?? '';
      if (!opts.apiVersions.includes(apiVersion)) {
        throw new ArmError(
          400,
          'InvalidApiVersionParameter',
          `The api-version '${apiVersion}' is invalid. This fake serves '${opts.apiVersions.join("', '")}'.`,
        );
      }
      const fault = faults.find((f) => f.left > 0 && matches(f.match, line));
      if (fault) {
        fault.left--;
        throw new ArmError(
          fault.status,
          fault.status === 429 ? 'TooManyRequests' : 'InternalServerError',
          fault.status === 429
            ? 'The request is being throttled as the limit has been reached for operation type.'
            : 'An error has occurred.',
          fault.retryAfter !== undefined ? { 'retry-after': String(fault.retryAfter) } : {},
        );
      }
      const hook = hooks.findIndex((h) => matches(h.match, line));
      if (hook >= 0) hooks.splice(hook, 1)[0]?.action();
      const seg = u.pathname.split('/').filter(Boolean).map(decodeURIComponent);
      const op = /^\/fake-operations\/(azure-async|location)\/([^/]+)$/.exec(u.pathname);
      if (op && method === 'GET') {
        reply = await poll(op[2] as string, op[1] === 'location');
      } else {
        if (
          seg[0]?.toLowerCase() === 'subscriptions' &&
          seg[2]?.toLowerCase() === 'resourcegroups' &&
          seg[3]
        ) {
          if (!groups.has(`${seg[1]}/${seg[3]}`.toLowerCase()))
            throw new ArmError(
              404,
              'ResourceGroupNotFound',
              `Resource group '${seg[3]}' could not be found.`,
            );
        }
        const call: ArmCall = {
          method,
          url: u,
          seg,
          body,
          page(items) {
            const skip = Number(u.searchParams.get('$skiptoken') ?? 0);
            const value = items.slice(skip, skip + pageSize);
            if (skip + pageSize >= items.length) return { value };
            const next = new URL(u.pathname, url);
            next.searchParams.set('api-version', apiVersion);
            next.searchParams.set('$skiptoken', String(skip + pageSize));
            return { value, nextLink: next.toString() };
          },
          lro(o) {
            const id = randomUUID();
            operations.set(id, { pollsLeft: lroPolls, done: o.done });
            const headers: Record<string, string> = {};
            const kind = o.headers ?? 'both';
            if (kind !== 'location')
              headers['azure-asyncoperation'] = withVersion(`/fake-operations/azure-async/${id}`, apiVersion);
            if (kind !== 'azure-async')
              headers.location = withVersion(`/fake-operations/location/${id}`, apiVersion);
            if (lroRetryAfter !== undefined) headers['retry-after'] = String(lroRetryAfter);
            return { status: o.status, body: o.initial, headers };
          },
        };
        const out = await opts.handle(call);
        reply = isReply(out) ? out : { status: 200, body: out };
      }
    } catch (err) {
      const e =
        err instanceof ArmError ? err : new ArmError(500, 'InternalServerError', (err as Error).message);
      reply = { status: e.status, body: { error: { code: e.code, message: e.message } }, headers: e.headers };
    }
    requests.push({ method, path: u.pathname, status: reply.status, at });
    const headers: Record<string, string> = {
      'content-type': 'application/json; charset=utf-8',
      'x-ms-request-id': requestId,
      'x-ms-correlation-request-id': requestId,
      [method === 'GET'
        ? 'x-ms-ratelimit-remaining-subscription-reads'
        : 'x-ms-ratelimit-remaining-subscription-writes']: String(
        (remaining = remaining > 0 ? remaining - 1 : 11999),
      ),
      ...reply.headers,
    };
    res.writeHead(reply.status, headers).end(reply.body === undefined ? '' : JSON.stringify(reply.body));
  };

  const server = https.createServer({ key: tls.keyPem, cert: tls.certPem }, (req, res) => {
    handle(req, res).catch((err: Error) => res.writeHead(500).end(err.message));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });

  return {
    url,
    caPem: ca.caCertPem,
    credential: {
      getToken: async (): Promise<AccessToken> => ({
        token: TOKEN,
        expiresOnTimestamp: Date.now() + 3_600_000,
      }),
    },
    clientOptions: {
      endpoint: url,
      tlsOptions: { ca: ca.caCertPem },
      retryOptions: { maxRetries: 3, retryDelayInMs: 20, maxRetryDelayInMs: 200 },
    },
    requests,
    addResourceGroup: (s, rg) => void groups.add(`${s}/${rg}`.toLowerCase()),
    deleteResourceGroup: (s, rg) => void groups.delete(`${s}/${rg}`.toLowerCase()),
    fault: (f) => void faults.push({ ...f, left: f.count ?? 1 }),
    once: (match, action) => void hooks.push({ match, action }),
    setLatency: (ms) => void (latencyMs = ms),
    setPageSize: (n) => void (pageSize = n),
    setLroPolls: (n) => void (lroPolls = n),
    setLroRetryAfter: (s) => void (lroRetryAfter = s),
    vault,
    reset() {
      groups.clear();
      operations.clear();
      faults = [];
      hooks = [];
      requests.length = 0;
      vault.clear();
    },
    async startFrontend(lookup) {
      const contexts = new Map<string, SecureContext>();
      const fe = createTlsServer(
        {
          cert: tls.certPem,
          key: tls.keyPem,
          SNICallback: (servername, cb) => {
            const m = lookup(servername.toLowerCase());
            if (!m?.keyPem) return cb(null, undefined);
            const t = thumbprintOfPem(m.certPem);
            let ctx = contexts.get(t);
            if (!ctx) contexts.set(t, (ctx = createSecureContext({ cert: m.certPem, key: m.keyPem })));
            cb(null, ctx);
          },
        },
        (socket) => socket.end(),
      );
      const fePort = await freePort();
      await new Promise<void>((resolve, reject) => {
        fe.once('error', reject);
        fe.listen(fePort, '127.0.0.1', resolve);
      });
      frontends.push(fe);
      return fePort;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      for (const fe of frontends) await new Promise<void>((r) => fe.close(() => r()));
    },
  };
}

function isReply(x: unknown): x is ArmReply {
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof (x as ArmReply).status === 'number' &&
    Object.keys(x).every((k) => k === 'status' || k === 'body' || k === 'headers')
  );
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  if (!chunks.length) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new ArmError(
      400,
      'InvalidRequestContent',
      'The request content was invalid and could not be deserialized.',
    );
  }
}

/** `/subscriptions/{s}[/resourceGroups/{rg}]/providers/{namespace}/{type}/{name}/…` split into its parts. */
export function parseArmPath(
  seg: string[],
  namespace: string,
): { sub: string; rg: string | null; types: string; names: string[]; collection: boolean } | null {
  const lower = seg.map((s) => s.toLowerCase());
  let i = 0;
  if (lower[i++] !== 'subscriptions' || !seg[i]) return null;
  const sub = seg[i++] as string;
  let rg: string | null = null;
  if (lower[i] === 'resourcegroups') {
    rg = seg[i + 1] ?? null;
    i += 2;
  }
  if (lower[i] !== 'providers' || lower[i + 1] !== namespace.toLowerCase()) return null;
  const chain = seg.slice(i + 2);
  return {
    sub,
    rg,
    types: chain
      .filter((_, j) => j % 2 === 0)
      .map((t) => t.toLowerCase())
      .join('/'),
    names: chain.filter((_, j) => j % 2 === 1),
    collection: chain.length % 2 === 1,
  };
}

/** ARM's 404 for a resource that does not exist (also what a deleted one answers). */
export function resourceNotFound(type: string, name: string, rg: string): ArmError {
  return new ArmError(
    404,
    'ResourceNotFound',
    `The Resource '${type}/${name}' under resource group '${rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`,
  );
}

export function noRoute(path: string): ArmError {
  return new ArmError(404, 'NotFound', `No HTTP resource was found that matches the request URI '${path}'.`);
}

export type ArmPath = NonNullable<ReturnType<typeof parseArmPath>>;

/**
 * A provider's top-level resource type (`Microsoft.Network/applicationGateways`, …), stored by `sub/rg/name` (lower
 * case): its listing by subscription or resource group (paged), or the one resource the path names (ARM's 404 when
 * it does not exist). Returns `{ listed }` for a listing, `{ path, item }` otherwise, for the provider to go on.
 */
export function topLevel<T extends { subscriptionId: string; resourceGroup: string }>(
  call: ArmCall,
  namespace: string,
  type: string,
  items: Map<string, T>,
  json: (x: T) => unknown,
): { listed: unknown } | { path: ArmPath & { rg: string }; item: T } {
  const p = parseArmPath(call.seg, namespace);
  if (!p || !p.types.startsWith(type.toLowerCase())) throw noRoute(call.url.pathname);
  const k = (...parts: string[]) => parts.join('/').toLowerCase();
  if (p.types === type.toLowerCase() && p.collection && call.method === 'GET') {
    const scoped = [...items.values()].filter(
      (x) => k(x.subscriptionId) === k(p.sub) && (p.rg === null || k(x.resourceGroup) === k(p.rg)),
    );
    return { listed: call.page(scoped.map(json)) };
  }
  const name = p.names[0];
  if (!p.rg || !name) throw noRoute(call.url.pathname);
  const item = items.get(k(p.sub, p.rg, name));
  if (!item) throw resourceNotFound(`${namespace}/${type}`, name, p.rg);
  return { path: { ...p, rg: p.rg }, item };
}
