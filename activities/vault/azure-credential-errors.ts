/**
 * Failures to get a token from @azure/identity 4.13.1, classified as Temporal should see them.
 *
 * The library's error classes say less than their names suggest:
 * - CredentialUnavailableError is raised both when a credential is not set up at all and for passing trouble
 *   (IMDS or Entra ID unreachable), so only the messages it uses for "not configured" are final.
 * - Every failure of an MSAL-based credential (client secret, certificate, workload identity) arrives as
 *   AuthenticationRequiredError, whatever happened: a wrong secret ("invalid_client: ... AADSTS7000215"), an
 *   unknown tenant, Entra ID answering 500 ("temporarily_unavailable") or no network at all ("network_error").
 *   The MSAL error code that starts its message tells them apart.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { ServiceError } from './azure-key-vault-errors';

type Verdict =
  | { kind: 'missing'; hint: string }
  | { kind: 'refused'; detail: string; hint: string }
  | { kind: 'transient'; detail: string };

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

/** MSAL error codes (the start of an AuthenticationRequiredError's message) for passing trouble. */
const MSAL_TRANSIENT = new Set([
  'network_error',
  'temporarily_unavailable',
  'server_error',
  'endpoints_resolution_error',
  'openid_config_error',
  'untrusted_authority', // metadata discovery failed (network) for a non-public authority
]);
/** OAuth 2.0 error codes with which Entra ID refuses a token request: retrying cannot help. */
const OAUTH_REFUSED = new Set([
  'invalid_client',
  'unauthorized_client',
  'invalid_request',
  'invalid_grant',
  'invalid_scope',
  'invalid_resource',
  'access_denied',
]);

/** Entra ID error numbers worth a precise hint. */
const AADSTS_HINTS: Record<string, string> = {
  '7000215': "the client secret is wrong: give the secret's value, not its id",
  '7000222': 'the client secret has expired: create a new one on the app registration',
  '700016':
    'the application (client id) does not exist in this tenant: check the client id and the tenant id',
  '90002': 'the tenant does not exist in this cloud: check the tenant id and the cloud setting',
  '500011':
    "the vault's resource is unknown to this cloud's Entra ID: the vault URL and the credential's cloud must match",
  '70021':
    "no federated identity credential matches the workload's token: check the issuer and the subject " +
    '(system:serviceaccount:<namespace>:<service account>) configured on the identity',
  '700024':
    'the client assertion is outside its validity period: the projected service account token may be stale',
  '700027':
    'the certificate is not registered on the application: upload its public part to the app registration',
};

const GENERIC_REFUSAL =
  'check the tenant id, the client id and the client secret or certificate (not expired; the secret value, not its id)';

function notConfiguredHint(message: string): string | undefined {
  for (const [re, hint] of NOT_CONFIGURED) {
    const m = re.exec(message);
    if (m) return hint(m);
  }
  return undefined;
}

/** The error and its causes, outermost first. */
function causes(err: unknown): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (let e = err, i = 0; i < 5 && e && typeof e === 'object'; i++) {
    out.push(e as Record<string, unknown>);
    e = (e as { cause?: unknown }).cause;
  }
  return out;
}

const networkCaused = (err: unknown) =>
  causes(err).some((e) => NETWORK_CODES.has(String(e.code ?? e.errorCode ?? '')));

const causeStatus = (err: unknown) =>
  causes(err)
    .slice(1)
    .map((e) => e.statusCode ?? e.status)
    .find((s): s is number => typeof s === 'number');

const transientStatus = (s: number | undefined) => !s || s >= 500 || s === 408 || s === 429;

/** "invalid_client: Error(s): ... - Description: AADSTS7000215: Invalid client secret ... - Correlation ID: ..." */
function msalFailure(message: string): Verdict | undefined {
  const code = /^([a-z_]+):/.exec(message)?.[1];
  if (!code) return undefined;
  const detail = short(/Description: (.*?)(?: - Correlation ID|$)/.exec(message)?.[1] ?? message);
  if (MSAL_TRANSIENT.has(code)) return { kind: 'transient', detail: `${code}: ${detail}` };
  if (!OAUTH_REFUSED.has(code)) return undefined;
  const aadsts = /AADSTS(\d+)/.exec(detail)?.[1];
  return {
    kind: 'refused',
    detail: `${code}: ${detail}`,
    hint: AADSTS_HINTS[aadsts ?? ''] ?? GENERIC_REFUSAL,
  };
}

const short = (s: string) => (s.length > 300 ? `${s.slice(0, 300)}...` : s);

function verdictOf(err: unknown): Verdict | undefined {
  const e = (err ?? {}) as { name?: string; message?: string; statusCode?: number };
  const message = e.message ?? '';
  switch (e.name) {
    case 'CredentialUnavailableError': {
      const hint = notConfiguredHint(message);
      if (hint) return { kind: 'missing', hint };
      const status = causeStatus(err);
      if (!networkCaused(err) && !transientStatus(status))
        return {
          kind: 'refused',
          detail: `the identity endpoint answered ${status}: ${short(message)}`,
          hint:
            'check that a managed identity is assigned to this host and, for a user-assigned one, that ' +
            'AZURE_CLIENT_ID (or managedIdentityClientId) names it',
        };
      return { kind: 'transient', detail: short(message) };
    }
    case 'AuthenticationRequiredError':
      return (
        msalFailure(message) ?? {
          kind: 'missing',
          hint: 'sign in interactively first (a service should use a service principal or a managed identity)',
        }
      );
    case 'AuthenticationError':
      if (networkCaused(err) || transientStatus(e.statusCode))
        return { kind: 'transient', detail: `${e.statusCode || 'no answer'}: ${short(message)}` };
      return { kind: 'refused', detail: `${e.statusCode}: ${short(message)}`, hint: GENERIC_REFUSAL };
  }
  return undefined;
}

function failure(type: string, message: string, nonRetryable: boolean, se: ServiceError): ApplicationFailure {
  return ApplicationFailure.create({
    type,
    message,
    nonRetryable,
    details: [{ status: se.status ?? null, code: se.code }],
  });
}

/**
 * The classification of a failure to get a token, or undefined when `err` is not one. `where` says what we
 * were doing ("Key Vault 'kv': read the certificate for certificate 'api'"); `se` is the error as read by
 * serviceError (its message is already clipped).
 */
export function credentialFailure(
  err: unknown,
  where: string,
  se: ServiceError,
): ApplicationFailure | undefined {
  const name = (err as { name?: string } | undefined)?.name;
  let verdicts: Verdict[];
  if (name === 'AggregateAuthenticationError') {
    // DefaultAzureCredential / ChainedTokenCredential: final when no credential in the chain is set up, or
    // when one of them was refused; otherwise some credential may work on a later attempt
    const errors = (err as { errors?: unknown[] }).errors ?? [];
    verdicts = errors.map((e) => verdictOf(e) ?? { kind: 'transient', detail: '' });
    if (verdicts.length === 0) verdicts = [{ kind: 'transient', detail: se.message }];
  } else {
    const v = verdictOf(err);
    if (!v) return undefined;
    verdicts = [v];
  }

  const refused = verdicts.find((v) => v.kind === 'refused');
  if (refused)
    return failure(
      'VaultUnauthorized',
      `${where}: the token request was refused (${refused.detail}). To fix: ${refused.hint}.`,
      true,
      se,
    );
  if (verdicts.every((v) => v.kind === 'missing')) {
    const hints = [...new Set(verdicts.map((v) => (v.kind === 'missing' ? v.hint : '')))];
    return failure(
      'VaultCredentialMissing',
      `${where}: no credential is configured (${se.message}). To fix${hints.length > 1 ? ', one of' : ''}: ${hints.join('; ')}.`,
      true,
      se,
    );
  }
  const transient =
    verdicts.length === 1 && verdicts[0]?.kind === 'transient' ? verdicts[0].detail : se.message;
  return failure(
    'VaultCredentialUnavailable',
    `${where}: no token could be had for now (${transient})`,
    false,
    se,
  );
}
