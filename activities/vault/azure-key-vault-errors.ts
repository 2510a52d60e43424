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
  const name = (err as { name?: string } | undefined)?.name ?? '';

  const credential = credentialFailure(err, name, where, se);
  if (credential) return credential;

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

function retryable(type: string, message: string, se?: ServiceError): ApplicationFailure {
  return ApplicationFailure.create({
    type,
    message,
    nonRetryable: false,
    ...(se ? { details: [{ status: se.status ?? null, code: se.code }] } : {}),
  });
}

/*
 * Getting a token. @azure/identity 4.13.1 raises CredentialUnavailableError both when a credential is not set
 * up at all and for passing trouble (IMDS or Entra ID unreachable, MSAL unable to resolve the authority
 * endpoints), so only the messages it uses for "not configured" are final; anything else is retried.
 */

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'EPIPE',
  'ECONNABORTED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
  'REQUEST_SEND_ERROR',
  'network_error',
]);

const PARAMETER_ENV: Record<string, string> = {
  tenantId: 'AZURE_TENANT_ID',
  clientId: 'AZURE_CLIENT_ID',
  clientSecret: 'AZURE_CLIENT_SECRET',
  federatedTokenFilePath: 'AZURE_FEDERATED_TOKEN_FILE',
};

/** The messages @azure/identity 4.13.1 uses when a credential is not set up, each with what to do about it. */
const NOT_CONFIGURED: [RegExp, (m: RegExpExecArray) => string][] = [
  [
    /(\w+) is a required parameter/i,
    (m) => {
      const env = PARAMETER_ENV[m[1] ?? ''];
      return `set the credential's ${m[1]}${env ? ` (environment variable ${env})` : ''}`;
    },
  ],
  [
    /EnvironmentCredential is unavailable/i,
    () =>
      'set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH) for a ' +
      'service principal, or run on a host with a managed identity',
  ],
  [
    /must provide one of clientSecret, certificatePath/i,
    () => 'give the credential a client secret or certificate',
  ],
  [
    /Invalid file path provided|No content on the file/i,
    () => 'point AZURE_FEDERATED_TOKEN_FILE at the projected service account token (workload identity)',
  ],
  [/missing system variable/i, () => 'run inside an Azure Pipelines task with a service connection'],
  [
    /Azure CLI could not be found|run 'az login'/i,
    () => "sign in with 'az login' (a service should use a service principal or a managed identity instead)",
  ],
  [/Azure Developer CLI couldn't be found|run 'azd auth login'/i, () => "sign in with 'azd auth login'"],
  [/Az\.Account|Connect-AzAccount/i, () => "sign in with 'Connect-AzAccount' (Az PowerShell module)"],
  [/Visual Studio Code Authentication/i, () => 'sign in to Azure in Visual Studio Code'],
  [/is not supported/i, () => 'change the credential options the message names'],
];

function notConfiguredHint(err: unknown): string | undefined {
  const e = err as { name?: string; message?: string } | undefined;
  if (e?.name === 'AuthenticationRequiredError')
    return 'sign in interactively first (a service should use a service principal or a managed identity)';
  const message = e?.message ?? '';
  for (const [re, hint] of NOT_CONFIGURED) {
    const m = re.exec(message);
    if (m) return hint(m);
  }
  return undefined;
}

/** The error and its causes, outermost first. */
function chain(err: unknown): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (let e = err, i = 0; i < 5 && e && typeof e === 'object'; i++) {
    out.push(e as Record<string, unknown>);
    e = (e as { cause?: unknown }).cause;
  }
  return out;
}

const networkCaused = (err: unknown) =>
  chain(err).some((e) => NETWORK_CODES.has(String(e.code ?? e.errorCode ?? '')));

const causeStatus = (err: unknown) =>
  chain(err)
    .slice(1)
    .map((e) => e.statusCode ?? e.status)
    .find((s): s is number => typeof s === 'number');

const transientStatus = (s: number | undefined) => !s || s >= 500 || s === 408 || s === 429;

function credentialFailure(
  err: unknown,
  name: string,
  where: string,
  se: ServiceError,
): ApplicationFailure | undefined {
  if (name === 'AggregateAuthenticationError') {
    // DefaultAzureCredential / ChainedTokenCredential: final only when no credential in the chain is set up
    const errors = (err as { errors?: unknown[] }).errors ?? [];
    const hints = errors.map(notConfiguredHint);
    if (errors.length && hints.every(Boolean))
      return nonRetryable(
        'VaultCredentialMissing',
        `${where}: no credential is configured (${se.message}). To fix, one of: ${[...new Set(hints)].join('; ')}.`,
        se,
      );
    return retryable(
      'VaultCredentialUnavailable',
      `${where}: no credential could get a token for now (${se.message})`,
      se,
    );
  }
  if (name === 'CredentialUnavailableError') {
    const hint = notConfiguredHint(err);
    if (hint)
      return nonRetryable(
        'VaultCredentialMissing',
        `${where}: no credential is configured (${se.message}). To fix: ${hint}.`,
        se,
      );
    const status = causeStatus(err);
    if (!networkCaused(err) && !transientStatus(status))
      return nonRetryable(
        'VaultUnauthorized',
        `${where}: the identity endpoint refused the token request (${status}): ${se.message}. Check that a managed ` +
          `identity is assigned to this host and, for a user-assigned one, that AZURE_CLIENT_ID names it.`,
        se,
      );
    return retryable(
      'VaultCredentialUnavailable',
      `${where}: the credential could not get a token for now (${se.message})`,
      se,
    );
  }
  if (name === 'AuthenticationError') {
    if (networkCaused(err) || transientStatus(se.status))
      return retryable(
        'VaultCredentialUnavailable',
        `${where}: getting a token from Entra ID failed for now (${se.status || 'no answer'}): ${se.message}`,
        se,
      );
    return nonRetryable(
      'VaultUnauthorized',
      `${where}: Entra ID refused the token request (${se.status}): ${se.message}. Check the tenant id, the client id ` +
        `and the client secret or certificate (not expired; the secret's value, not its id).`,
      se,
    );
  }
  return undefined;
}
