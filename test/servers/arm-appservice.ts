/**
 * A FAKE of the Azure Resource Manager App Service REST API (Microsoft.Web), in process, HTTPS on 127.0.0.1.
 * It is a fake because ARM cannot run outside Azure and no emulator of it exists. It follows the documented
 * wire format that the real `@azure/arm-appservice` client speaks, for the operations Certflow uses:
 * - GET  /subscriptions/{s}[/resourceGroups/{rg}]/providers/Microsoft.Web/sites                (paged: nextLink)
 * - GET  …/sites/{app}, …/sites/{app}/slots (paged), …/sites/{app}/slots/{slot}
 * - GET  …/sites/{app}[/slots/{slot}]/hostNameBindings (paged), GET|PUT …/hostNameBindings/{hostName}
 * - GET  /subscriptions/{s}[/resourceGroups/{rg}]/providers/Microsoft.Web/certificates         (paged)
 * - GET|PUT …/certificates/{name}   (Key Vault import: keyVaultId + keyVaultSecretName + serverFarmId)
 * - GET  …/serverfarms, …/serverfarms/{name}
 * Bearer token required; `api-version` must be the one the SDK sends; ARM's error envelope
 * `{ error: { code, message } }`. Like App Service it refuses a binding to a thumbprint that has no certificate
 * in the app's webspace (resource group + region) or whose certificate does not cover the host name, and a
 * second certificate with the same thumbprint in a webspace (409).
 * Test controls: seeding, Key Vault secret versions, fault injection (429 with Retry-After, 5xx), one-shot
 * hooks (e.g. delete a site when the first PUT arrives), a request log, simulated latency, and an optional
 * TLS front end that serves each host name's bound certificate by SNI (for the live probe).
 * Request handling lives in arm-appservice-routes.ts, state and JSON shapes in arm-appservice-state.ts.
 */
import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import {
  createSecureContext,
  createServer as createTlsServer,
  type SecureContext,
  type Server as TlsServer,
} from 'node:tls';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AccessToken, TokenCredential } from '@azure/identity';
import { freePort } from '../support/proc';
import { createTestCa } from '../support/test-ca';
import { ArmError, ARM_API_VERSION, route } from './arm-appservice-routes';
import {
  createArmState,
  describeX509,
  key,
  planArmId,
  type ArmState,
  type FakeApp,
  type FakeBinding,
  type KeyMaterial,
  type SslState,
} from './arm-appservice-state';

export { ARM_API_VERSION };
const TOKEN = 'fake-arm-access-token';

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

export interface SeedBinding {
  hostName: string;
  thumbprint?: string;
  sslState?: SslState;
}

export interface FakeArm {
  url: string;
  caPem: string;
  /** A TokenCredential that returns the token this fake accepts. */
  credential: TokenCredential;
  /** WebSiteManagementClient options for this fake: endpoint, TLS trust, quick SDK retries. */
  clientOptions: {
    endpoint: string;
    tlsOptions: { ca: string };
    retryOptions: { maxRetries: number; retryDelayInMs: number; maxRetryDelayInMs: number };
  };
  state: ArmState;
  requests: ArmRequest[];
  addPlan(p: { subscriptionId: string; resourceGroup: string; name: string; location: string }): string;
  addSite(s: {
    subscriptionId: string;
    resourceGroup: string;
    name: string;
    serverFarmId: string;
    bindings?: SeedBinding[];
    slots?: Record<string, SeedBinding[]>;
  }): void;
  addCertificate(c: {
    subscriptionId: string;
    resourceGroup: string;
    name: string;
    serverFarmId: string;
    material: KeyMaterial;
    keyVault?: { keyVaultId: string; secretName: string };
  }): string;
  /** Sets the current version of a Key Vault secret (what an import reads); returns its thumbprint. */
  setSecret(keyVaultId: string, secretName: string, m: KeyMaterial): string;
  binding(
    subscriptionId: string,
    resourceGroup: string,
    site: string,
    hostName: string,
    slot?: string,
  ): FakeBinding | undefined;
  deleteSite(subscriptionId: string, resourceGroup: string, site: string): void;
  fault(f: ArmFault): void;
  /** Runs `action` once, before the first request matching "METHOD /path" is handled. */
  once(match: string | RegExp, action: () => void): void;
  /** Added to every response (simulates ARM's round trip). */
  setLatency(ms: number): void;
  /** Page size of every listing (default 3, so that nextLink is exercised). */
  setPageSize(n: number): void;
  /** Clears state, faults, hooks and the request log. */
  reset(): void;
  /** A TLS server that serves, by SNI, the certificate bound to that host name; returns its port. */
  startFrontend(): Promise<number>;
  close(): Promise<void>;
}

export async function startFakeArm(): Promise<FakeArm> {
  const ca = createTestCa({ commonName: 'Certflow fake ARM TLS CA', keyType: 'ec' });
  const tls = ca.issueServerCert(['127.0.0.1', 'localhost']);
  const state = createArmState();
  const requests: ArmRequest[] = [];
  let faults: (ArmFault & { left: number })[] = [];
  let hooks: { match: string | RegExp; action: () => void }[] = [];
  let latencyMs = 0;
  let pageSize = 3;
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;

  const matches = (m: string | RegExp | undefined, line: string) =>
    m === undefined || (typeof m === 'string' ? line.toLowerCase().includes(m.toLowerCase()) : m.test(line));

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const u = new URL(req.url ?? '/', url);
    const method = req.method ?? 'GET';
    const line = `${method} ${u.pathname}`;
    const at = Date.now();
    const body = await readBody(req);
    if (latencyMs) await new Promise((r) => setTimeout(r, latencyMs));
    let status = 200;
    let payload: unknown;
    const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
    try {
      if (req.headers.authorization !== `Bearer ${TOKEN}`) {
        throw new ArmError(
          401,
          'AuthenticationFailed',
          "Authentication failed. The 'Authorization' header is missing or invalid.",
        );
      }
      if (u.searchParams.get('api-version') !== ARM_API_VERSION) {
        throw new ArmError(
          400,
          'InvalidApiVersionParameter',
          `The api-version '${u.searchParams.get('api-version')}' is invalid. This fake serves '${ARM_API_VERSION}'.`,
        );
      }
      const fault = faults.find((f) => f.left > 0 && matches(f.match, line));
      if (fault) {
        fault.left--;
        if (fault.retryAfter !== undefined) headers['retry-after'] = String(fault.retryAfter);
        throw new ArmError(
          fault.status,
          fault.status === 429 ? 'TooManyRequests' : 'InternalServerError',
          fault.status === 429 ? 'The request is being throttled.' : 'An error has occurred.',
        );
      }
      const hook = hooks.findIndex((h) => matches(h.match, line));
      if (hook >= 0) hooks.splice(hook, 1)[0]?.action();
      payload = route(state, { method, url: u, body, pageSize, base: url });
    } catch (err) {
      const e =
        err instanceof ArmError ? err : new ArmError(500, 'InternalServerError', (err as Error).message);
      status = e.status;
      payload = { error: { code: e.code, message: e.message } };
    }
    requests.push({ method, path: u.pathname, status, at });
    res.writeHead(status, headers).end(JSON.stringify(payload));
  };

  const server = https.createServer({ key: tls.keyPem, cert: tls.certPem }, (req, res) => {
    handle(req, res).catch((err: Error) => res.writeHead(500).end(err.message));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });

  let frontend: TlsServer | undefined;
  const credential: TokenCredential = {
    getToken: async (): Promise<AccessToken> => ({
      token: TOKEN,
      expiresOnTimestamp: Date.now() + 3_600_000,
    }),
  };

  return {
    url,
    caPem: ca.caCertPem,
    credential,
    clientOptions: {
      endpoint: url,
      tlsOptions: { ca: ca.caCertPem },
      retryOptions: { maxRetries: 3, retryDelayInMs: 20, maxRetryDelayInMs: 200 },
    },
    state,
    requests,
    addPlan(p) {
      const id = planArmId(p.subscriptionId, p.resourceGroup, p.name);
      state.plans.set(key(id), { id, location: p.location, name: p.name });
      return id;
    },
    addSite(s) {
      const plan = state.plans.get(key(s.serverFarmId));
      if (!plan) throw new Error(`addSite ${s.name}: unknown plan ${s.serverFarmId}`);
      const make = (slot: string | null, seeds: SeedBinding[] = []): FakeApp => ({
        subscriptionId: s.subscriptionId,
        resourceGroup: s.resourceGroup,
        site: s.name,
        slot,
        location: plan.location,
        serverFarmId: plan.id,
        bindings: new Map(
          seeds.map((b) => [
            b.hostName.toLowerCase(),
            {
              hostName: b.hostName,
              sslState: b.sslState ?? (b.thumbprint ? 'SniEnabled' : 'Disabled'),
              thumbprint: b.thumbprint,
            },
          ]),
        ),
      });
      state.addApp(make(null, s.bindings));
      for (const [slot, seeds] of Object.entries(s.slots ?? {})) state.addApp(make(slot, seeds));
    },
    addCertificate(c) {
      const plan = state.plans.get(key(c.serverFarmId));
      if (!plan) throw new Error(`addCertificate ${c.name}: unknown plan ${c.serverFarmId}`);
      const thumbprint = state.rememberMaterial(c.material);
      const x509 = new X509Certificate(c.material.certPem);
      state.certificates.set(key(c.subscriptionId, c.resourceGroup, c.name), {
        subscriptionId: c.subscriptionId,
        resourceGroup: c.resourceGroup,
        name: c.name,
        location: plan.location,
        serverFarmId: plan.id,
        keyVaultId: c.keyVault?.keyVaultId,
        keyVaultSecretName: c.keyVault?.secretName,
        thumbprint,
        ...describeX509(x509),
      });
      return thumbprint;
    },
    setSecret: (kv, name, m) => state.setSecret(kv, name, m),
    binding: (sub, rg, site, host, slot) =>
      state.app(sub, rg, site, slot ?? null)?.bindings.get(host.toLowerCase()),
    deleteSite: (sub, rg, site) => state.deleteSite(sub, rg, site),
    fault: (f) => faults.push({ ...f, left: f.count ?? 1 }),
    once: (match, action) => hooks.push({ match, action }),
    setLatency: (ms) => (latencyMs = ms),
    setPageSize: (n) => (pageSize = n),
    reset() {
      state.clear();
      faults = [];
      hooks = [];
      requests.length = 0;
    },
    async startFrontend() {
      frontend ??= await startFrontend(state, tls);
      const addr = frontend.address();
      return typeof addr === 'object' && addr ? addr.port : 0;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      if (frontend) await new Promise<void>((r) => frontend?.close(() => r()));
    },
  };
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

/** The App Service front end as a client sees it: TLS with SNI, the bound certificate of that host name. */
async function startFrontend(state: ArmState, fallback: { certPem: string; keyPem: string }) {
  const contexts = new Map<string, SecureContext>();
  const server = createTlsServer(
    {
      cert: fallback.certPem,
      key: fallback.keyPem,
      SNICallback: (servername, cb) => {
        const host = servername.toLowerCase();
        const bound = [...state.apps.values()].map((a) => a.bindings.get(host)).find((b) => b?.thumbprint);
        const m = bound?.thumbprint ? state.material.get(bound.thumbprint.toUpperCase()) : undefined;
        if (!m?.keyPem) return cb(null, undefined);
        const k = bound?.thumbprint?.toUpperCase() as string;
        let ctx = contexts.get(k);
        if (!ctx) contexts.set(k, (ctx = createSecureContext({ cert: m.certPem, key: m.keyPem })));
        cb(null, ctx);
      },
    },
    (socket) => socket.end(),
  );
  const port = await freePort();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return server;
}
