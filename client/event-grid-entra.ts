/**
 * The Entra ID (AAD) bearer token check of the Event Grid endpoint: Event Grid's "Microsoft Entra authentication"
 * of webhook deliveries sends an access token for the Entra application the subscription names. A token passes
 * when its RS256 signature verifies against the tenant's published keys (JWKS, fetched and cached by `jose`),
 * its issuer is the tenant's (v2.0 or v1 form), its audience is the configured application, and it is within its
 * validity (exp required, nbf honoured, a small clock tolerance). The token itself is never logged or returned.
 */
import { createRemoteJWKSet, errors, jwtVerify } from 'jose';

export interface EntraTokenOptions {
  /** The directory (tenant) id whose tokens are accepted. */
  tenantId: string;
  /** The Entra application the subscription gets tokens for: its application id URI or client id. */
  audience: string | string[];
  /** Default: the tenant's v2.0 and v1 issuers (login.microsoftonline.com/<tenant>/v2.0, sts.windows.net/<tenant>/). */
  issuer?: string | string[];
  /** Default: https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys (another cloud: its own). */
  jwksUri?: string;
  /** Seconds of clock skew tolerated on exp and nbf (default 60). */
  clockToleranceSeconds?: number;
  /** Told why a token was refused (never the token). */
  onRefused?: (reason: string) => void;
}

/** Thrown when the keys cannot be fetched: a reason to answer 503 (Event Grid retries), not 401. */
export class TokenCheckUnavailable extends Error {
  override name = 'TokenCheckUnavailable';
}

export function entraIssuers(tenantId: string): string[] {
  return [`https://login.microsoftonline.com/${tenantId}/v2.0`, `https://sts.windows.net/${tenantId}/`];
}

/** A verifier for createEventGridHandler's `verifyToken`: true for a valid token, false for any other. */
export function createEntraTokenVerifier(o: EntraTokenOptions): (bearer: string) => Promise<boolean> {
  const jwksUri = o.jwksUri ?? `https://login.microsoftonline.com/${o.tenantId}/discovery/v2.0/keys`;
  const keys = createRemoteJWKSet(new URL(jwksUri), { timeoutDuration: 10_000, cooldownDuration: 30_000 });
  const issuer = o.issuer ?? entraIssuers(o.tenantId);
  return async (bearer) => {
    try {
      await jwtVerify(bearer, keys, {
        issuer,
        audience: o.audience,
        algorithms: ['RS256'],
        requiredClaims: ['exp', 'iss', 'aud'],
        clockTolerance: o.clockToleranceSeconds ?? 60,
      });
      return true;
    } catch (err) {
      if (err instanceof errors.JWKSTimeout || isFetchFailure(err))
        throw new TokenCheckUnavailable(
          `cannot read the signing keys at ${jwksUri}: ${(err as Error).message}`,
        );
      o.onRefused?.(reasonOf(err));
      return false;
    }
  };
}

function isFetchFailure(err: unknown): boolean {
  // jose's remote JWKS fails with JWKSInvalid on a non-JSON answer, and with fetch's TypeError when unreachable
  return err instanceof TypeError || (err instanceof errors.JOSEError && err.code === 'ERR_JWKS_INVALID');
}

function reasonOf(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'token expired';
  if (err instanceof errors.JWTClaimValidationFailed) return `claim ${err.claim}: ${err.reason}`;
  if (err instanceof errors.JWKSNoMatchingKey) return 'signed with a key the tenant does not publish';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'signature does not verify';
  if (err instanceof errors.JOSEError) return err.code;
  return 'not a JWT';
}
