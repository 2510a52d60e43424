/**
 * A Key Vault REST-compatible HTTPS server for tests. OURS, not Microsoft's and not an emulator we
 * downloaded: it follows Key Vault's wire format as Microsoft's recorded sessions show it (Azure/azure-sdk-assets,
 * js/sdk/keyvault/keyvault-certificates/recordings/node, api-version 2025-07-01; test/conformance holds the
 * same sequences against this server) closely enough for @azure/keyvault-certificates and
 * @azure/keyvault-secrets, with real keys, real PKCS#10 requests and a real public-key check on merge.
 *
 * Auth is Key Vault's: a request without a token gets the 401 Bearer challenge; tokens are RS256 JWTs checked
 * against the JWKS we are given (signature, aud, exp, nbf); access policies per caller object id (default: all).
 *
 * Issuers: Unknown (CSR + merge), Self, and integrated CAs (`DigiCert`, `GlobalSign`, more through `issuers`)
 * signed by a test CA this server makes. A Self or integrated-CA create answers 202 inProgress and completes
 * `issuanceDelayMs` later (then `completed` with a `target`), as on the real service. Auto-renew runs on the
 * server's own schedule: for a policy whose lifetime action is AutoRenew, a new version is made at the trigger
 * (lifetime percentage or days before expiry) by the server's clock (`now`, checked on every request and every
 * `tickMs`), or at once with `autoRenewNow(name)`. Every new version (merge, issuance, auto-renew) can be POSTed
 * as an Event Grid `CertificateNewVersionCreated` to `eventGrid.url`. `createQuota` answers 429 Throttled with
 * Retry-After beyond N creates per window (Key Vault: 20 per 10 s), off by default; settable later
 * (`setCreateQuota`), with counts of creates accepted and refused (`createStats`). A throttle burst
 * (`setThrottle`) answers a share of every authorized request 429 Throttled with Retry-After, whatever its kind,
 * until it is ended (a vault under load from other clients of the subscription), counted by `throttleStats`.
 *
 * Known differences from the real service, and why they are kept:
 * - Not in the recordings, so chosen and switchable: what "latest" is while a renewal of an existing certificate
 *   is pending (`latestWhilePending`: the pending version by default, or the newest completed one); whether the
 *   versions listing shows the pending version (it does); what a merge into a cancelled or vault-issued
 *   operation does (allowed / refused 400); that an integrated CA's cancelled operation ends `cancelled`.
 * - Not needed by Certflow: no keys/issuers/contacts/import/backup/delete endpoints and no soft-delete; access
 *   policies only (no RBAC, no firewall); HSM key types are accepted and kept non-exportable, but their keys are
 *   software keys; a plain secret may not take a certificate's name (409, a guess: not recorded).
 * - Test knobs: `issuedValiditySeconds` makes vault-issued certificates short-lived (real: at least a month;
 *   a days_before_expiry trigger then keeps its share of the policy's months);
 *   tokens are checked against the real clock, not `now`; auto-renew copies the current version's tags to the new
 *   one (not recorded); Event Grid deliveries are retried 3 times a second apart (real: for 24 h), and carry
 *   `aeg-sas-key` only when configured (real Event Grid sends it when publishing to a topic, not to webhooks).
 * - PKCS#12 secrets are openssl 3's password-less default encoding; throttling and outages happen only when a
 *   test injects them or sets a quota. Tests of real-service answers it cannot give (RBAC and firewall 403s,
 *   soft-delete 409s) replay recorded answers at the HTTP layer instead (test/unit).
 */
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import crypto from 'node:crypto';
import { freePort } from '../../support/proc';
import { createTokenValidator } from './auth';
import { createCertificateService, type LatestWhilePending, type Reply } from './certificates';
import { createEventPublisher, type Delivery, type EventGridTarget } from './events';
import { createOperations } from './operations';
import { createSecretService } from './secrets';
import type { Jwks } from './entra';
import { createStore } from './store';
import { KvError, badParameter, issuerTable } from './wire';

export interface KeyVaultServerOptions {
  jwks: Jwks;
  /** Accepted token audience(s); default https://vault.azure.net. */
  audience?: string | string[];
  /** When set, tokens must carry this `iss`. */
  issuer?: string;
  /** Tenant named in the 401 challenge. */
  tenantId?: string;
  /**
   * `resource` of the 401 challenge, from which the SDK derives the token scope; default the first audience.
   * A sovereign cloud's vault says e.g. https://vault.azure.cn here.
   */
  resource?: string;
  tls: { certPem: string; keyPem: string };
  /** Persist state as JSON (private keys in separate 0600 files); in memory when absent. */
  dataDir?: string;
  vaultName?: string;
  /**
   * The URL the vault names itself by in ids, Location headers and nextLinks (e.g.
   * https://certflow-test.vault.azure.net, reached through a client that connects it to this server);
   * default https://127.0.0.1:<port>.
   */
  publicUrl?: string;
  /** The server's clock, epoch ms (default Date.now): certificate dates, operation completion, auto-renew. */
  now?: () => number;
  /** How long a Self or integrated-CA operation takes to complete; default 1000 ms. */
  issuanceDelayMs?: number;
  /** Validity of the certificates the vault issues itself, in seconds, instead of the policy's months. */
  issuedValiditySeconds?: number;
  /** How often the server looks at its own schedule (issuance, auto-renew) between requests; default 250 ms, 0: never. */
  tickMs?: number;
  /** Integrated issuers beyond `DigiCert` and `GlobalSign`, by name: their provider. */
  issuers?: Record<string, 'DigiCert' | 'GlobalSign'>;
  /** Where to POST CertificateNewVersionCreated events; none when absent. */
  eventGrid?: EventGridTarget;
  /** Create quota (Key Vault: 20 key creates per 10 s per vault); off when absent. */
  createQuota?: { limit: number; windowSeconds: number };
  /** See LatestWhilePending; default 'pending'. */
  latestWhilePending?: LatestWhilePending;
}

/** A burst of 429s: `share` of the authorized requests (0-1, spread evenly) answered 429 Throttled. */
export interface ThrottleBurst {
  /** 1: every request; 0.5: every second one (the 2nd, 4th, ...). */
  share: number;
  /** Seconds, sent as Retry-After. */
  retryAfterSeconds: number;
  /**
   * Which requests: 'even' (default) spreads the share evenly over the burst's requests in order, so a test
   * knows which ones; 'random' throttles each with probability `share` (a client alone then does not meet the
   * same turn at every retry).
   */
  pick?: 'even' | 'random';
}

export interface Fault {
  status: number;
  /** Seconds, sent as Retry-After. */
  retryAfter?: number;
  /** How many matching requests fail; default 1. */
  count?: number;
  /** How many matching requests pass before the fault applies; default 0. */
  skip?: number;
  /** Substring of "METHOD /path" (e.g. 'merge', 'POST /certificates/web/create') or a RegExp over it. */
  match?: string | RegExp;
  code?: string;
  message?: string;
}

/** Key Vault access-policy permissions, e.g. { certificates: ['get', 'list'], secrets: [] }. */
export interface AccessPolicy {
  certificates?: string[];
  secrets?: string[];
}

export interface RequestRecord {
  method: string;
  path: string;
  status: number;
  authorized: boolean;
}

export interface KeyVaultServer {
  url: string;
  port: number;
  vaultName: string;
  close(): Promise<void>;
  injectFault(fault: Fault): void;
  clearFaults(): void;
  /** Restrict a caller (token `oid`); `undefined` restores full access. */
  setAccessPolicy(objectId: string, policy: AccessPolicy | undefined): void;
  /** Every request seen, in order (no headers, no bodies). */
  readonly requests: RequestRecord[];
  /** Event Grid deliveries made (when `eventGrid` is set). */
  readonly deliveries: Delivery[];
  /**
   * Key Vault's auto-renew of a certificate with a Self or integrated-CA policy, now: starts the operation and
   * returns the version it will create (after the issuance delay).
   */
  autoRenewNow(name: string): Promise<string>;
  /** Completes due operations and starts due auto-renewals now (also done on every request and tick). */
  settle(): Promise<void>;
  /** When Key Vault would renew the certificate by itself (epoch seconds), or undefined. */
  autoRenewAt(name: string): number | undefined;
  /** The CA that signs for the integrated issuers (PEM). */
  issuingCaPem(): Promise<string>;
  /** Sets or removes the create quota (`createQuota`) now, e.g. after seeding; its counts start over. */
  setCreateQuota(quota: { limit: number; windowSeconds: number } | undefined): void;
  /** Starts a throttle burst (or changes it); `undefined` ends it. */
  setThrottle(burst: ThrottleBurst | undefined): void;
  /** Authorized requests seen while a burst was on, and how many of them were answered 429, over all bursts. */
  throttleStats(): { seen: number; throttled: number; on: boolean };
  /**
   * Key creates accepted and refused with 429 since the quota was last set, and the most accepted in any one
   * sliding window (the quota's, else 10 s): a client that keeps within the quota gets no 429s.
   */
  createStats(): {
    accepted: number;
    throttled: number;
    maxInWindow: number;
    limit: number | null;
    windowSeconds: number;
  };
}

interface Route {
  permission: string;
  handle(body: unknown, query: URLSearchParams): Reply | Promise<Reply>;
}

export async function startKeyVaultServer(opts: KeyVaultServerOptions): Promise<KeyVaultServer> {
  const audiences = [opts.audience ?? 'https://vault.azure.net'].flat();
  const tenantId = opts.tenantId ?? 'organizations';
  const vaultName = opts.vaultName ?? 'certflow-test';
  const validate = createTokenValidator({ jwks: opts.jwks, audiences, issuer: opts.issuer });
  const store = createStore(opts.dataDir);
  let url = '';
  const now = opts.now ?? Date.now;
  const issuers = issuerTable(opts.issuers);
  const events = createEventPublisher(opts.eventGrid);
  const ops = createOperations({
    store,
    issuers,
    now,
    issuanceDelayMs: opts.issuanceDelayMs ?? 1000,
    issuedValiditySeconds: opts.issuedValiditySeconds,
    onNewVersion: (cert, v) =>
      events.newVersion({
        vaultUrl: url,
        vaultName,
        name: cert.name,
        version: v.version,
        nbf: v.nbf,
        exp: v.exp,
      }),
  });
  const certs = createCertificateService({
    store,
    ops,
    issuers,
    vaultUrl: () => url,
    now,
    latestWhilePending: opts.latestWhilePending ?? 'pending',
    createQuota: opts.createQuota,
  });
  const secrets = createSecretService(store, () => url, certs.getSecret, now);
  const faults: (Fault & { left: number; toSkip: number })[] = [];
  const policies = new Map<string, AccessPolicy>();
  const requests: RequestRecord[] = [];
  let burst: ThrottleBurst | undefined;
  const throttleStats = { seen: 0, throttled: 0 };
  let seenInBurst = 0;
  /** Whether this request falls in the burst's share: the n-th of the burst is throttled when n·share crosses an integer. */
  function takeThrottle(): boolean {
    if (!burst) return false;
    throttleStats.seen++;
    const n = seenInBurst++;
    if (burst.pick === 'random') {
      if (Math.random() >= burst.share) return false;
      throttleStats.throttled++;
      return true;
    }
    if (Math.floor((n + 1) * burst.share) <= Math.floor(n * burst.share)) return false;
    throttleStats.throttled++;
    return true;
  }
  const challenge = `Bearer authorization="https://login.microsoftonline.com/${tenantId}", resource="${opts.resource ?? audiences[0]}"`;

  function route(method: string, segments: string[]): Route | undefined {
    const [collection, name, a, b] = segments;
    const decoded = name === undefined ? undefined : decodeURIComponent(name);
    if (collection === 'secrets' && decoded && segments.length <= 3 && method === 'GET')
      return { permission: 'secrets/get', handle: () => secrets.get(decoded, a || undefined) };
    if (collection === 'secrets' && decoded && segments.length === 2 && method === 'PUT')
      return { permission: 'secrets/set', handle: (body) => secrets.set(decoded, asObject(body)) };
    if (collection !== 'certificates') return undefined;
    if (!decoded)
      return method === 'GET'
        ? { permission: 'certificates/list', handle: (_b, q) => certs.list(q) }
        : undefined;
    const n = decoded;
    if (a === 'create' && b === undefined && (method === 'POST' || method === 'PUT'))
      return { permission: 'certificates/create', handle: (body, q) => certs.create(n, asObject(body), q) };
    if (a === 'pending' && b === 'merge' && method === 'POST')
      return { permission: 'certificates/create', handle: (body, q) => certs.merge(n, asObject(body), q) };
    if (a === 'pending' && b === undefined) {
      if (method === 'GET') return { permission: 'certificates/get', handle: () => certs.getPending(n) };
      if (method === 'PATCH')
        return {
          permission: 'certificates/update',
          handle: (body) => certs.updatePending(n, asObject(body)),
        };
      if (method === 'DELETE')
        return { permission: 'certificates/delete', handle: () => certs.deletePending(n) };
    }
    if (a === 'policy' && b === undefined) {
      if (method === 'GET') return { permission: 'certificates/get', handle: () => certs.getPolicy(n) };
      if (method === 'PATCH')
        return { permission: 'certificates/update', handle: (body) => certs.updatePolicy(n, asObject(body)) };
    }
    if (a === 'versions' && b === undefined && method === 'GET')
      return { permission: 'certificates/list', handle: (_b, q) => certs.listVersions(n, q) };
    if (b === undefined) {
      const version = a || undefined;
      if (method === 'GET') return { permission: 'certificates/get', handle: () => certs.get(n, version) };
      if (method === 'PATCH')
        return {
          permission: 'certificates/update',
          handle: (body) => certs.update(n, version, asObject(body)),
        };
    }
    return undefined;
  }

  function takeFault(what: string): Fault | undefined {
    const f = faults.find((x) =>
      x.match === undefined
        ? true
        : typeof x.match === 'string'
          ? what.includes(x.match)
          : x.match.test(what),
    );
    if (!f) return undefined;
    if (f.toSkip > 0) {
      f.toSkip--;
      return undefined;
    }
    if (--f.left <= 0) faults.splice(faults.indexOf(f), 1);
    return f;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const parsed = new URL(req.url ?? '/', 'https://vault.invalid');
    const record: RequestRecord = { method, path: parsed.pathname, status: 0, authorized: false };
    requests.push(record);
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      const text = body === undefined ? '' : JSON.stringify(body);
      res.writeHead(status, {
        'Content-Type': 'application/json; charset=utf-8',
        'x-ms-request-id': crypto.randomUUID(),
        'x-ms-keyvault-service-version': 'certflow-test-keyvault',
        ...headers,
      });
      res.end(text);
    };
    try {
      const raw = await readBody(req);
      await ops.settle();
      const authorization = req.headers.authorization;
      if (!authorization)
        return send(
          401,
          new KvError(
            401,
            'Unauthorized',
            'AKV10000: Request is missing a Bearer, PoP, or MTLS_POP token.',
          ).body(),
          {
            'WWW-Authenticate': challenge,
          },
        );
      const auth = validate(authorization);
      if (!auth.ok)
        return send(401, new KvError(401, 'Unauthorized', auth.message).body(), {
          'WWW-Authenticate': `${challenge}, error="invalid_token"`,
        });
      record.authorized = true;
      if (!parsed.searchParams.get('api-version'))
        throw badParameter('The api-version query parameter (?api-version) is required for all requests.');

      const segments = parsed.pathname.split('/').slice(1);
      if (segments.at(-1) === '') segments.pop(); // the SDK asks for '/certificates/{name}/' for "latest"
      // an empty name ('/certificates//create'): Key Vault answers 405 (recording_cannot_create_a_certificate_with_an_empty_name)
      if (segments.includes('')) throw new KvError(405, 'MethodNotAllowed', `HTTP ${method} not allowed`);
      const r = route(method, segments);
      if (!r)
        throw new KvError(
          404,
          'NotFound',
          `${method} ${parsed.pathname} is not an operation this test Key Vault implements.`,
        );

      if (takeThrottle())
        return send(
          429,
          new KvError(
            429,
            'Throttled',
            'Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached',
          ).body(),
          { 'Retry-After': String(burst?.retryAfterSeconds ?? 1) },
        );

      const fault = takeFault(`${method} ${parsed.pathname}`);
      if (fault)
        return send(
          fault.status,
          new KvError(
            fault.status,
            fault.code ?? (fault.status === 429 ? 'Throttled' : 'InternalServerError'),
            fault.message ?? 'Injected fault (test).',
          ).body(),
          fault.retryAfter !== undefined ? { 'Retry-After': String(fault.retryAfter) } : {},
        );

      const policy = policies.get(auth.caller.objectId);
      const [kind = '', perm = ''] = r.permission.split('/');
      if (policy && !(policy[kind as keyof AccessPolicy] ?? []).includes(perm))
        throw new KvError(
          403,
          'Forbidden',
          `The user, group or application 'appid=${auth.caller.appId ?? ''};oid=${auth.caller.objectId}' does not have ${kind} ${perm} permission on key vault '${vaultName};location=local'.`,
          'AccessDenied',
        );

      let body: unknown = undefined;
      if (raw.length) {
        try {
          body = JSON.parse(raw.toString('utf8'));
        } catch {
          throw badParameter('The request body is not valid JSON.');
        }
      }
      const reply = await r.handle(body, parsed.searchParams);
      return send(reply.status, reply.body, reply.headers);
    } catch (err) {
      if (err instanceof KvError) return send(err.status, err.body(), err.headers);
      // an unexpected bug in this test server: say so without echoing anything from the request
      return send(
        500,
        new KvError(500, 'InternalServerError', `test Key Vault failed: ${(err as Error).message}`).body(),
      );
    }
  }

  const server = https.createServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, (req, res) => {
    void handle(req, res);
  });
  const port = await listen(server);
  url = opts.publicUrl?.replace(/\/+$/, '') ?? `https://127.0.0.1:${port}`;
  const tickMs = opts.tickMs ?? 250;
  // the vault's own schedule between requests; a failure here shows in the next request's answer instead
  const ticker = tickMs > 0 ? setInterval(() => void ops.settle().catch(() => undefined), tickMs) : undefined;
  ticker?.unref();

  return {
    url,
    port,
    vaultName,
    requests,
    deliveries: events.deliveries,
    autoRenewNow: (name) => ops.renewNow(name),
    settle: () => ops.settle(),
    autoRenewAt(name) {
      const cert = store.certificates.get(name.toLowerCase());
      return cert ? ops.autoRenewAt(cert) : undefined;
    },
    issuingCaPem: () => ops.issuingCaPem(),
    setCreateQuota: (q) => certs.setCreateQuota(q),
    createStats: () => certs.createStats(),
    setThrottle(b) {
      if (b && !(b.share >= 0 && b.share <= 1)) throw new Error('setThrottle: share must be in [0, 1]');
      burst = b;
      seenInBurst = 0;
    },
    throttleStats: () => ({ ...throttleStats, on: !!burst }),
    injectFault(f) {
      faults.push({ ...f, left: f.count ?? 1, toSkip: f.skip ?? 0 });
    },
    clearFaults() {
      faults.length = 0;
    },
    setAccessPolicy(objectId, policy) {
      if (policy) policies.set(objectId, policy);
      else policies.delete(objectId);
    },
    close() {
      if (ticker) clearInterval(ticker);
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

async function listen(server: https.Server): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      });
      return port;
    } catch (err) {
      // another test file took the port between freePort() and listen(): pick again
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 5) throw err;
    }
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 1 << 20) {
        reject(badParameter('The request body exceeds 1 MiB.'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function asObject<T extends object>(body: unknown): T {
  if (body === undefined || body === null) return {} as T;
  if (typeof body !== 'object' || Array.isArray(body))
    throw badParameter('The request body must be a JSON object.');
  return body as T;
}
