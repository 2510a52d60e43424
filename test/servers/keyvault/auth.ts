/**
 * Bearer-token checks the way Key Vault does them: RS256 signature against the issuer's JWKS, then
 * audience, expiry and not-before. Messages name the failed check and never echo the token.
 */
import crypto from 'node:crypto';
import type { Jwks } from './entra';

export interface Caller {
  objectId: string;
  tenantId?: string;
  appId?: string;
}

export type AuthResult = { ok: true; caller: Caller } | { ok: false; message: string };

export interface TokenValidatorOptions {
  jwks: Jwks;
  /** Accepted `aud` values. */
  audiences: string[];
  /** When set, `iss` must equal it. */
  issuer?: string;
  clockSkewSeconds?: number;
}

export function createTokenValidator(
  opts: TokenValidatorOptions,
): (authorization: string | undefined) => AuthResult {
  const skew = opts.clockSkewSeconds ?? 60;
  const keys = new Map(opts.jwks.keys.map((k) => [k.kid, crypto.createPublicKey({ key: k, format: 'jwk' })]));
  const audiences = new Set(
    opts.audiences.flatMap((a) => [a, a.replace(/\/$/, ''), `${a.replace(/\/$/, '')}/`]),
  );

  return (authorization) => {
    const m = /^Bearer\s+([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)$/.exec(authorization ?? '');
    if (!m) return fail('AKV10000: Request is missing a Bearer token or the token is not a JWT.');
    const [, head = '', body = '', sig = ''] = m;
    let header: { alg?: string; kid?: string };
    let claims: Record<string, unknown>;
    try {
      header = JSON.parse(Buffer.from(head, 'base64url').toString('utf8'));
      claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      return fail('AKV10000: The bearer token is not valid JSON Web Token syntax.');
    }
    if (header.alg !== 'RS256')
      return fail(`Token signature algorithm must be RS256, got '${String(header.alg)}'.`);
    const key = header.kid ? keys.get(header.kid) : undefined;
    if (!key) return fail('Token is signed with a key (kid) that the issuer does not publish.');
    const valid = crypto.verify('sha256', Buffer.from(`${head}.${body}`), key, Buffer.from(sig, 'base64url'));
    if (!valid) return fail('Token signature is invalid.');
    const aud = Array.isArray(claims.aud) ? claims.aud.map(String) : [String(claims.aud)];
    if (!aud.some((a) => audiences.has(a)))
      return fail(`AKV10022: Invalid audience. Expected ${opts.audiences[0]}, found: ${aud.join(', ')}.`);
    if (opts.issuer && claims.iss !== opts.issuer) return fail('AKV10032: Invalid issuer.');
    const now = Date.now() / 1000;
    if (typeof claims.exp !== 'number' || claims.exp + skew < now) return fail('Token has expired (exp).');
    if (typeof claims.nbf === 'number' && claims.nbf - skew > now)
      return fail('Token is not valid yet (nbf).');
    return {
      ok: true,
      caller: {
        objectId: String(claims.oid ?? claims.sub ?? 'unknown'),
        tenantId: claims.tid === undefined ? undefined : String(claims.tid),
        appId: claims.appid === undefined ? undefined : String(claims.appid),
      },
    };
  };
}

function fail(message: string): AuthResult {
  return { ok: false, message };
}
