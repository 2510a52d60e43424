/**
 * A stand-in for Microsoft Entra ID in tests: an RSA signing key published as a JWKS, and a TokenCredential
 * that mints RS256 access tokens with it. Ours, for tests only; it talks to no real identity service.
 */
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';
import crypto, { type KeyObject } from 'node:crypto';

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
