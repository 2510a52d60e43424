/**
 * A Key Vault REST-compatible HTTPS server for tests. OURS, not Microsoft's and not an emulator we
 * downloaded: it follows Key Vault's documented wire format closely enough for @azure/keyvault-certificates
 * and @azure/keyvault-secrets, with real keys, real PKCS#10 requests and a real public-key check on merge.
 *
 * Auth is Key Vault's: a request without a token gets the 401 Bearer challenge; tokens are RS256 JWTs checked
 * against the JWKS we are given (signature, aud, exp, nbf); access policies per caller object id (default: all).
 *
 * Known differences from the real service: issuers 'Self' and 'Unknown' only; no keys/issuers/contacts/import/
 * backup/delete endpoints and no soft-delete; access policies only (no RBAC, no firewall); HSM key types
 * (RSA-HSM, EC-HSM) are accepted and kept non-exportable, but their keys are software keys; a cancel turns the
 * operation 'cancelled' at once; a merged operation stays readable as 'completed'; PKCS#12 secrets are openssl
 * 3's password-less default encoding; a plain secret may not take a certificate's name (409); throttling and
 * outages happen only when a test injects them. Tests of real-service answers it cannot give (RBAC and
 * firewall 403s, soft-delete 409s) replay recorded answers at the HTTP layer instead (test/unit).
 */
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import crypto from 'node:crypto';
import { freePort } from '../../support/proc';
import { createTokenValidator } from './auth';
import { createCertificateService, type Reply } from './certificates';
import { createSecretService } from './secrets';
import type { Jwks } from './entra';
import { createStore } from './store';
import { KvError, badParameter } from './wire';

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
  const certs = createCertificateService(store, () => url);
  const secrets = createSecretService(store, () => url, certs.getSecret);
  const faults: (Fault & { left: number; toSkip: number })[] = [];
  const policies = new Map<string, AccessPolicy>();
  const requests: RequestRecord[] = [];
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
      return { permission: 'certificates/create', handle: (body) => certs.create(n, asObject(body)) };
    if (a === 'pending' && b === 'merge' && method === 'POST')
      return { permission: 'certificates/create', handle: (body) => certs.merge(n, asObject(body)) };
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
      const authorization = req.headers.authorization;
      if (!authorization)
        return send(
          401,
          new KvError(401, 'Unauthorized', 'AKV10000: Request is missing a Bearer or PoP token.').body(),
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
      const r = route(method, segments);
      if (!r)
        throw new KvError(
          404,
          'NotFound',
          `${method} ${parsed.pathname} is not an operation this test Key Vault implements.`,
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
      if (err instanceof KvError) return send(err.status, err.body());
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
  url = `https://127.0.0.1:${port}`;

  return {
    url,
    port,
    vaultName,
    requests,
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
