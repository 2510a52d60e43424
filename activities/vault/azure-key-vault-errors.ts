/**
 * Key Vault failures as Temporal sees them. Authorization and "this cannot work" answers are non-retryable
 * with a stable `type`; throttling and outages are retryable, with the service's Retry-After as
 * `nextRetryDelay`. Messages quote the service's error text (which carries no secrets) and never the SDK's
 * error object, which holds the request.
 */
import { ApplicationFailure } from '@temporalio/common';

export interface CallContext {
  vault: string;
  /** What we were doing, for people: "create a renewal CSR". */
  action: string;
  certName: string;
  /** The Key Vault access-policy permission this call needs, e.g. 'certificates/create'. */
  permission: string;
}

export interface ServiceError {
  status: number | undefined;
  /** Key Vault's error code ('Conflict', 'BadParameter', ...) or a network code ('ECONNREFUSED'). */
  code: string;
  message: string;
  retryAfterMs: number | undefined;
}

const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Reads an Azure SDK RestError (or a network error) without keeping a reference to it. */
export function serviceError(err: unknown): ServiceError {
  const e = (err ?? {}) as {
    statusCode?: number;
    code?: string;
    message?: string;
    details?: { error?: { code?: string; message?: string } };
    response?: { headers?: { get(name: string): string | undefined } };
  };
  const kv = e.details?.error;
  const headers = e.response?.headers;
  return {
    status: typeof e.statusCode === 'number' ? e.statusCode : undefined,
    code: kv?.code ?? e.code ?? 'Unknown',
    message: clip(kv?.message ?? e.message ?? String(err)),
    retryAfterMs:
      parseRetryAfter(headers?.get('retry-after-ms') ?? headers?.get('x-ms-retry-after-ms'), 1) ??
      parseRetryAfter(headers?.get('retry-after'), 1000),
  };
}

function parseRetryAfter(value: string | undefined, unitMs: number): number | undefined {
  if (!value) return undefined;
  const n = Number(value);
  if (Number.isFinite(n) && n >= 0) return Math.round(n * unitMs);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function clip(s: string): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > 400 ? `${one.slice(0, 400)}...` : one;
}

export function nonRetryable(type: string, message: string, se?: ServiceError): ApplicationFailure {
  return ApplicationFailure.create({
    type,
    message,
    nonRetryable: true,
    ...(se ? { details: [{ status: se.status ?? null, code: se.code }] } : {}),
  });
}

/**
 * The default classification of a failed Key Vault call. Callers handle the answers that mean something
 * specific for their operation (404 on describe, 409 on create) before falling back to this.
 */
export function vaultFailure(err: unknown, ctx: CallContext): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const se = serviceError(err);
  const where = `Key Vault '${ctx.vault}': ${ctx.action} for certificate '${ctx.certName}'`;
  const name = (err as { name?: string } | undefined)?.name;

  if (name === 'CredentialUnavailableError')
    return nonRetryable('VaultUnauthorized', `${where}: no credential is available (${se.message})`, se);
  if (name === 'AuthenticationError' && (se.status === undefined || se.status < 500))
    return nonRetryable('VaultUnauthorized', `${where}: getting a token failed (${se.message})`, se);

  switch (se.status) {
    case 401:
      return nonRetryable(
        'VaultUnauthorized',
        `${where} was rejected as unauthenticated (401): ${se.message}. Check that the identity's token is issued for ` +
          `the vault's tenant with audience https://vault.azure.net and is not expired.`,
        se,
      );
    case 403: {
      const named = /does not have (\w+) (\w+) permission/i.exec(se.message);
      const permission = named ? `${named[1]?.toLowerCase()}/${named[2]?.toLowerCase()}` : ctx.permission;
      return nonRetryable(
        'VaultForbidden',
        `${where} was refused (403): the identity needs the '${permission}' permission (access policy) or an RBAC ` +
          `role that grants it (e.g. Key Vault Certificates Officer). Service said: ${se.message}`,
        se,
      );
    }
    case 429:
      return ApplicationFailure.create({
        type: 'VaultThrottled',
        message: `${where} was throttled (429): ${se.message}`,
        nonRetryable: false,
        details: [{ status: 429, code: se.code }],
        ...(se.retryAfterMs !== undefined ? { nextRetryDelay: se.retryAfterMs } : {}),
      });
    case 400:
      return nonRetryable(
        'VaultBadRequest',
        `${where} was refused as invalid (400 ${se.code}): ${se.message}`,
        se,
      );
    case 404:
      return nonRetryable('VaultNotFound', `${where}: not found (404 ${se.code}): ${se.message}`, se);
  }
  if (se.status !== undefined && se.status >= 500)
    return ApplicationFailure.create({
      type: 'VaultUnavailable',
      message: `${where} failed on the service side (${se.status} ${se.code}): ${se.message}`,
      nonRetryable: false,
      details: [{ status: se.status, code: se.code }],
      ...(se.retryAfterMs !== undefined ? { nextRetryDelay: se.retryAfterMs } : {}),
    });
  if (TLS_CODES.has(se.code))
    return nonRetryable(
      'VaultTlsUntrusted',
      `${where}: the vault's TLS certificate is not trusted (${se.code}); check the vault URL and the trusted CAs.`,
      se,
    );
  if (se.status === undefined)
    return ApplicationFailure.create({
      type: 'VaultUnreachable',
      message: `${where}: the vault could not be reached (${se.code}): ${se.message}`,
      nonRetryable: false,
    });
  return ApplicationFailure.create({
    type: 'VaultError',
    message: `${where} failed (${se.status} ${se.code}): ${se.message}`,
    nonRetryable: false,
    details: [{ status: se.status, code: se.code }],
  });
}
