/**
 * A stand-in for Microsoft Entra ID in tests: an RSA signing key published as a JWKS, and a TokenCredential
 * that mints RS256 access tokens with it. Ours, for tests only; it talks to no real identity service.
 */
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';
import crypto, { type KeyObject } from 'node:crypto';
import https from 'node:https';
import { freePort } from '../../support/proc';

export interface Jwks {
  keys: (crypto.JsonWebKey & { kid: string; alg?: string; use?: string })[];
}

export interface TokenOverrides {
  /** `aud` claim; default: the requested scope without `/.default` (what Entra puts in a Key Vault token). */
  audience?: string;
  /** Seconds from now; negative gives an expired token. Default 3600. */
  expiresInSeconds?: number;
  /** `nbf` relative to now in seconds (positive = not yet valid). Default -60. */
  notBeforeInSeconds?: number;
  /** The caller's object id (`oid`), which the server's access policies are keyed by. */
  objectId?: string;
  /** Sign with a key that is not in the JWKS (a forged token). */
  untrustedKey?: boolean;
}

export interface TestEntra {
  tenantId: string;
  issuer: string;
  jwks: Jwks;
  mintToken(scope?: string, overrides?: TokenOverrides): { token: string; expiresOnTimestamp: number };
  /** A TokenCredential for the Azure SDK clients; `overrides` apply to every token it mints. */
  credential(overrides?: TokenOverrides): TokenCredential;
}

export const KEY_VAULT_SCOPE = 'https://vault.azure.net/.default';

export function createTestEntra(opts: { tenantId?: string } = {}): TestEntra {
  const tenantId = opts.tenantId ?? crypto.randomUUID();
  const issuer = `https://login.microsoftonline.com/${tenantId}/v2.0`;
  const kid = crypto.randomBytes(8).toString('hex');
  const signing = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  let forger: KeyObject | undefined;
  const jwk = signing.publicKey.export({ format: 'jwk' });
  const jwks: Jwks = { keys: [{ ...jwk, kid, alg: 'RS256', use: 'sig' }] };

  const mintToken = (scope = KEY_VAULT_SCOPE, o: TokenOverrides = {}) => {
    const now = Math.floor(Date.now() / 1000);
    const exp = now + (o.expiresInSeconds ?? 3600);
    const claims = {
      aud: o.audience ?? scope.replace(/\/\.default$/, ''),
      iss: issuer,
      tid: tenantId,
      oid: o.objectId ?? '00000000-0000-0000-0000-00000000c0de',
      appid: 'certflow-tests',
      iat: now,
      nbf: now + (o.notBeforeInSeconds ?? -60),
      exp,
    };
    const head = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid }));
    const body = b64url(JSON.stringify(claims));
    const key = o.untrustedKey
      ? (forger ??= crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey)
      : signing.privateKey;
    const sig = crypto.sign('sha256', Buffer.from(`${head}.${body}`), key).toString('base64url');
    // The SDK caches tokens until shortly before expiresOnTimestamp: report a future expiry even for an
    // expired token so the server, not the client, is the one that rejects it.
    return { token: `${head}.${body}.${sig}`, expiresOnTimestamp: Math.max(exp, now + 3600) * 1000 };
  };

  return {
    tenantId,
    issuer,
    jwks,
    mintToken,
    credential(overrides = {}) {
      return {
        async getToken(scopes: string | string[], _options?: GetTokenOptions): Promise<AccessToken> {
          const scope = Array.isArray(scopes) ? (scopes[0] ?? KEY_VAULT_SCOPE) : scopes;
          return mintToken(scope, overrides);
        },
      };
    },
  };
}

function b64url(s: string): string {
  return Buffer.from(s).toString('base64url');
}

export interface EntraServerOptions {
  entra: TestEntra;
  /** The server's TLS certificate (it must name login.microsoftonline.com, where the credential connects). */
  tls: { certPem: string; keyPem: string };
  /** The service principals it knows: client id to client secret. */
  clients: Record<string, string>;
  /** The host the credentials use (the authority host of their cloud); default login.microsoftonline.com. */
  host?: string;
}

export interface EntraServer {
  port: number;
  /** Tokens issued, and token requests refused (a wrong client id or secret). */
  stats(): { issued: number; refused: number };
  /** The signatures of the tokens it issued (to look for them in logs; no token leaves this object otherwise). */
  issuedSignatures(): string[];
  close(): Promise<void>;
}

/**
 * Entra ID's endpoints as MSAL (ClientSecretCredential of @azure/identity) calls them over HTTPS: instance
 * discovery, the tenant's OpenID configuration and the v2.0 token endpoint, for the client-credentials grant
 * only. Tokens are `entra`'s (RS256, checked by the test Key Vault against its JWKS). For a process that reads
 * its identity from configuration (the worker service), with its connections to the authority host brought here
 * (test/support/redirect-hosts.ts). A wrong secret is answered as Entra does (401 invalid_client, AADSTS7000215),
 * without echoing it.
 */
export async function startEntraServer(opts: EntraServerOptions): Promise<EntraServer> {
  const host = opts.host ?? 'login.microsoftonline.com';
  const counts = { issued: 0, refused: 0 };
  const signatures: string[] = [];
  const server = https.createServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', `https://${host}`);
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify(body));
      };
      const tenant = url.pathname.split('/')[1] ?? 'common';
      if (url.pathname.endsWith('/discovery/instance'))
        return send(200, {
          tenant_discovery_endpoint: `https://${host}/${tenant}/v2.0/.well-known/openid-configuration`,
          'api-version': '1.1',
          metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
        });
      if (url.pathname.endsWith('/openid-configuration'))
        return send(200, {
          token_endpoint: `https://${host}/${tenant}/oauth2/v2.0/token`,
          authorization_endpoint: `https://${host}/${tenant}/oauth2/v2.0/authorize`,
          end_session_endpoint: `https://${host}/${tenant}/oauth2/v2.0/logout`,
          issuer: `https://${host}/${tenant}/v2.0`,
          jwks_uri: `https://${host}/${tenant}/discovery/v2.0/keys`,
          response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
        });
      if (url.pathname.endsWith('/discovery/v2.0/keys')) return send(200, opts.entra.jwks);
      if (req.method === 'POST' && url.pathname === `/${opts.entra.tenantId}/oauth2/v2.0/token`) {
        const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        const clientId = form.get('client_id') ?? '';
        const known = Object.hasOwn(opts.clients, clientId) ? opts.clients[clientId] : undefined;
        if (
          form.get('grant_type') !== 'client_credentials' ||
          known === undefined ||
          form.get('client_secret') !== known
        ) {
          counts.refused++;
          return send(401, {
            error: 'invalid_client',
            error_description: `AADSTS7000215: Invalid client secret provided for application '${clientId}' (test Entra).`,
            error_codes: [7000215],
          });
        }
        const scope = (form.get('scope') ?? KEY_VAULT_SCOPE).split(' ').find((s) => s.endsWith('/.default'));
        const { token } = opts.entra.mintToken(scope ?? KEY_VAULT_SCOPE);
        counts.issued++;
        signatures.push(token.split('.')[2] ?? '');
        return send(200, {
          token_type: 'Bearer',
          expires_in: 3599,
          ext_expires_in: 3599,
          access_token: token,
        });
      }
      return send(404, {
        error: 'not_found',
        error_description: `${req.method ?? ''} ${url.pathname}: not served by the test Entra`,
      });
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    port,
    stats: () => ({ ...counts }),
    issuedSignatures: () => [...signatures],
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
