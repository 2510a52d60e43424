/**
 * The Entra (AAD) bearer token check of the Event Grid endpoint, end to end over loopback HTTP: tokens signed
 * locally by the test Entra of test/servers/keyvault/entra.ts, its keys served as a JWKS by a local server, the
 * real endpoint (createEventGridHandler) with the real verifier (jose). Only the signature, issuer, audience and
 * lifetime decide; a JWKS that cannot be read is a 503 (Event Grid retries), never a pass.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventGridHandler } from '../../client/event-grid';
import { createEntraTokenVerifier } from '../../client/event-grid-entra';
import { createTestEntra } from '../servers/keyvault/entra';

const AUDIENCE = 'api://certflow-event-grid';
const entra = createTestEntra();
const otherTenant = createTestEntra();
const servers: http.Server[] = [];
const refused: string[] = [];
const logged: string[] = [];

async function listen(handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

let endpoint: string;
let deadEndpoint: string;

beforeAll(async () => {
  // both tenants' keys are published: a token of the other tenant fails on its issuer, not on its key
  const jwks = await listen((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [...entra.jwks.keys, ...otherTenant.jwks.keys] }));
  });
  const log = {
    info: () => undefined,
    warn: (m: string, f?: Record<string, unknown>) => void logged.push(m + JSON.stringify(f ?? {})),
    error: (m: string, f?: Record<string, unknown>) => void logged.push(m + JSON.stringify(f ?? {})),
  };
  const handler = (jwksUri: string) =>
    createEventGridHandler({
      lifecycles: {
        currentVersion: async () => null,
        renew: async () => undefined,
        observe: async () => undefined,
      },
      verifyToken: createEntraTokenVerifier({
        tenantId: entra.tenantId,
        audience: AUDIENCE,
        jwksUri,
        onRefused: (reason) => void refused.push(reason),
      }),
      log,
    });
  const serve = (h: ReturnType<typeof handler>) =>
    listen((req, res) => {
      void h(req, res).then((done) => {
        if (!done) res.writeHead(404).end();
      });
    });
  endpoint = await serve(handler(`${jwks}/keys`));
  // a JWKS address where nothing listens
  const gone = await listen(() => undefined);
  await new Promise((r) => servers.pop()!.close(r));
  deadEndpoint = await serve(handler(`${gone}/keys`));
});

afterAll(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
});

const validation = [
  {
    id: 'v-1',
    topic: '/subscriptions/x/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv',
    subject: '',
    eventType: 'Microsoft.EventGrid.SubscriptionValidationEvent',
    data: { validationCode: 'code-1' },
    eventTime: '2025-06-01T08:00:00Z',
    dataVersion: '1',
  },
];
const deliver = (to: string, token?: string) =>
  fetch(`${to}/eventgrid`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(validation),
  });

describe('Event Grid endpoint with Entra tokens', () => {
  it('accepts a token of the tenant, for the audience, signed with a published key, within its lifetime', async () => {
    const res = await deliver(endpoint, entra.mintToken(`${AUDIENCE}/.default`).token);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ validationResponse: 'code-1' });
  });

  it('refuses an expired token, another audience, another tenant, a forged signature, or none', async () => {
    const cases: Array<[string | undefined, RegExp | null]> = [
      [entra.mintToken(AUDIENCE, { expiresInSeconds: -600 }).token, /expired/],
      [entra.mintToken(AUDIENCE, { notBeforeInSeconds: 600 }).token, /nbf/],
      [entra.mintToken('https://management.azure.com/.default').token, /claim aud/],
      [otherTenant.mintToken(AUDIENCE).token, /claim iss/],
      [entra.mintToken(AUDIENCE, { untrustedKey: true }).token, /signature|key/],
      ['not-a-jwt', /./],
      [undefined, null],
    ];
    for (const [token, reason] of cases) {
      const before = refused.length;
      const res = await deliver(endpoint, token);
      expect(res.status, String(reason)).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      if (reason) expect(refused.slice(before).join(' ')).toMatch(reason);
    }
    const tokens = cases.map(([t]) => t).filter((t): t is string => !!t && t.length > 20);
    for (const t of tokens) expect(logged.join('\n')).not.toContain(t);
  });

  it('answers 503 when the signing keys cannot be read, so Event Grid retries', async () => {
    const res = await deliver(deadEndpoint, entra.mintToken(AUDIENCE).token);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: string }).error).toMatch(/cannot read the signing keys/);
  });
});
