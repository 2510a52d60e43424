/**
 * Key Vault failures as Temporal sees them. Authorization and "this cannot work" answers are non-retryable
 * with a stable `type`; throttling and outages are retryable, with the service's Retry-After as
 * `nextRetryDelay`. Messages quote the service's error text (which carries no secrets) and never the SDK's
 * error object, which holds the request.
 *
 * The SDK's RestError keeps only `error.code` and `error.message` of Key Vault's answer (not its
 * `innererror`, where ForbiddenByRbac / ForbiddenByPolicy / ForbiddenByFirewall live), so 403s are told
 * apart by the message text Key Vault writes for each.
 */
import type { CertificateClientOptions } from '@azure/keyvault-certificates';
import { ApplicationFailure } from '@temporalio/common';
import { credentialFailure } from './azure-credential-errors';

type PipelinePolicy = NonNullable<CertificateClientOptions['additionalPolicies']>[number]['policy'];

/** Key Vault's error answers by request, kept by keepErrorBodies (weakly: they go with their request). */
const errorBodies = new WeakMap<object, string>();

/**
 * A pipeline policy for both SDK clients that keeps the body of every error answer. The SDK's paging replaces
 * Key Vault's message with "Pagination failed with unexpected statusCode 403" and drops the body, which is
 * what tells an RBAC denial from a firewall; serviceError reads it back through the error's request.
 * Error bodies carry no secret values.
 */
export const keepErrorBodies: PipelinePolicy = {
  name: 'certflowKeepErrorBodies',
  async sendRequest(request, next) {
    const response = await next(request);
    if (response.status >= 400 && response.bodyAsText)
      errorBodies.set(request, response.bodyAsText.slice(0, 8000));
    return response;
  },
};

function keptError(request: unknown): { code?: string; message?: string } | undefined {
  const text = request && typeof request === 'object' ? errorBodies.get(request) : undefined;
  if (!text) return undefined;
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    const { code, message } = body.error ?? {};
    return {
      ...(typeof code === 'string' ? { code } : {}),
      ...(typeof message === 'string' ? { message } : {}),
    };
  } catch {
    return undefined;
  }
}

export interface CallContext {
  vault: string;
  /** What we were doing, for people: "create a renewal CSR". */
  action: string;
  /** The certificate or secret the call was about; absent for calls on the whole vault (list). */
  certName?: string;
  /** Default 'certificate'. */
  objectKind?: 'certificate' | 'secret';
  /** The Key Vault access-policy permission this call needs, e.g. 'certificates/create'. */
  permission: string;
}

export interface ServiceError {
  status: number | undefined;
  /** Key Vault's error code ('Conflict', 'BadParameter', ...) or a network code ('ECONNREFUSED'). */
  code: string;
  /** The service's message on one line, clipped for display. */
  message: string;
  /** The whole message on one line, for reading facts out of it (an RBAC denial names its action late). */
  full: string;
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
    request?: unknown;
    response?: { headers?: { get(name: string): string | undefined } };
  };
  const kv = e.details?.error ?? keptError(e.request);
  const headers = e.response?.headers;
  const full = (kv?.message ?? e.message ?? String(err)).replace(/\s+/g, ' ').trim().slice(0, 4000);
  return {
    status: typeof e.statusCode === 'number' ? e.statusCode : undefined,
    code: kv?.code ?? e.code ?? 'Unknown',
    message: full.length > 400 ? `${full.slice(0, 400)}...` : full,
    full,
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

export function nonRetryable(type: string, message: string, se?: ServiceError): ApplicationFailure {
  return ApplicationFailure.create({
    type,
    message,
    nonRetryable: true,
    ...(se ? { details: [{ status: se.status ?? null, code: se.code }] } : {}),
  });
}

function retryable(type: string, message: string, se: ServiceError): ApplicationFailure {
  return ApplicationFailure.create({
    type,
    message,
    nonRetryable: false,
    details: [{ status: se.status ?? null, code: se.code }],
    ...(se.retryAfterMs !== undefined ? { nextRetryDelay: se.retryAfterMs } : {}),
  });
}

/**
 * The default classification of a failed Key Vault call. Callers handle the answers that mean something
 * specific for their operation (404 on describe, 409 on create) before falling back to this.
 */
export function vaultFailure(err: unknown, ctx: CallContext): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const se = serviceError(err);
  const kind = ctx.objectKind ?? 'certificate';
  const where = ctx.certName
    ? `Key Vault '${ctx.vault}': ${ctx.action} for ${kind} '${ctx.certName}'`
    : `Key Vault '${ctx.vault}': ${ctx.action}`;

  const credential = credentialFailure(err, where, se);
  if (credential) return credential;

  switch (se.status) {
    case 401:
      return nonRetryable(
        'VaultUnauthorized',
        `${where} was rejected as unauthenticated (401): ${se.message}. Check that the identity's token is issued ` +
          `for the vault's tenant and cloud (audience https://vault.azure.net in the public cloud, ` +
          `https://vault.azure.cn in China, https://vault.usgovcloudapi.net in US Government) and is not expired.`,
        se,
      );
    case 403:
      return forbidden(where, se, ctx);
    case 409:
      if (/deleted but recoverable|ObjectIsDeletedButRecoverable/i.test(se.full))
        return nonRetryable(
          'VaultObjectDeleted',
          `${where}: a deleted ${kind} of that name is kept by soft-delete (409): ${se.message}. Recover it, or purge ` +
            `it (needs the '${kind}s/purge' permission), before using the name again.`,
          se,
        );
      return retryable(
        'VaultConflict',
        `${where} conflicted with another operation (409): ${se.message}`,
        se,
      );
    case 429:
      return retryable('VaultThrottled', `${where} was throttled (429): ${se.message}`, se);
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
    return retryable(
      'VaultUnavailable',
      `${where} failed on the service side (${se.status} ${se.code}): ${se.message}`,
      se,
    );
  if (TLS_CODES.has(se.code))
    return nonRetryable(
      'VaultTlsUntrusted',
      `${where}: the vault's TLS certificate is not trusted (${se.code}); check the vault URL and the trusted CAs.`,
      se,
    );
  if (/challenge resource .* does not match the requested domain/i.test(se.full))
    return nonRetryable(
      'VaultCloudMismatch',
      `${where}: the vault asked for a token for another cloud's Key Vault (${se.message}). Check the vault URL.`,
      se,
    );
  if (se.status === undefined)
    return retryable(
      'VaultUnreachable',
      `${where}: the vault could not be reached (${se.code}): ${se.message}`,
      se,
    );
  return retryable('VaultError', `${where} failed (${se.status} ${se.code}): ${se.message}`, se);
}

/**
 * Key Vault's 403s, by the text it writes for each:
 * - access policy: "The user, group or application '...' does not have certificates create permission on key vault '...'"
 * - RBAC: "Caller is not authorized to perform action on resource. ... Action: 'Microsoft.KeyVault/vaults/certificates/create/action' ..."
 * - firewall: "Client address is not authorized and caller is not a trusted service. Client address: ..."
 * - a disabled object: "Operation get is not allowed on a disabled secret."
 */
function forbidden(where: string, se: ServiceError, ctx: CallContext): ApplicationFailure {
  const fail = (type: string, message: string, permission?: string) =>
    ApplicationFailure.create({
      type,
      message,
      nonRetryable: true,
      details: [{ status: 403, code: se.code, ...(permission ? { permission } : {}) }],
    });

  if (/Client address is not authorized|public network access|private link/i.test(se.full))
    return fail(
      'VaultNetworkForbidden',
      `${where} was refused by the vault's network rules (403): ${se.message}. Allow this worker's outbound address ` +
        `in the vault's firewall, or reach the vault through a private endpoint.`,
    );
  if (/is not allowed on a disabled/i.test(se.full))
    return fail('VaultObjectDisabled', `${where}: it is disabled (403): ${se.message}. Enable it first.`);

  const rbacAction = /Action: '([^']+)'/.exec(se.full)?.[1];
  if (rbacAction || /Caller is not authorized to perform action/i.test(se.full)) {
    const action = rbacAction ?? `the data action for '${ctx.permission}'`;
    return fail(
      'VaultForbidden',
      `${where} was refused by Azure RBAC (403): the identity lacks '${action}'. Assign it a role that grants it ` +
        `(e.g. '${roleFor(rbacAction ?? ctx.permission)}') on the vault; new role assignments take a few minutes to apply.`,
      rbacAction ?? ctx.permission,
    );
  }
  const named = /does not have (\w+) (\w+) permission/i.exec(se.full);
  const permission = named ? `${named[1]?.toLowerCase()}/${named[2]?.toLowerCase()}` : ctx.permission;
  return fail(
    'VaultForbidden',
    `${where} was refused (403): the identity needs the '${permission}' permission in the vault's access policy ` +
      `(or, on an RBAC vault, a role such as '${roleFor(permission)}'). Service said: ${se.message}`,
    permission,
  );
}

/** The built-in Key Vault role that grants a permission or RBAC data action. */
function roleFor(permission: string): string {
  const p = permission.toLowerCase();
  if (p.includes('secrets'))
    return /get|read/.test(p) ? 'Key Vault Secrets User' : 'Key Vault Secrets Officer';
  return 'Key Vault Certificates Officer';
}
