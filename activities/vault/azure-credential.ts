/**
 * The identity Certflow uses for Key Vault, in any Azure cloud: DefaultAzureCredential (managed identity,
 * workload identity, Azure CLI, environment), a managed identity, or an explicit service principal (client
 * secret or certificate) or workload identity.
 *
 * How the Key Vault token's scope is chosen: not here. CertificateClient and SecretClient send their first
 * request without a token; the vault answers 401 with
 *   WWW-Authenticate: Bearer authorization="https://login.chinacloudapi.cn/<tenant>", resource="https://vault.azure.cn"
 * and the SDK asks the credential for "<resource>/.default" in that tenant (@azure/keyvault-common,
 * keyVaultAuthenticationPolicy), after checking that the vault's host ends with ".<resource host>"
 * (unless disableChallengeResourceVerification). So a sovereign cloud needs only the right authority host
 * here; the Key Vault audience of each cloud serves to check, before any request, that a vault URL belongs to
 * the credential's cloud (otherwise Entra ID refuses the token with AADSTS500011 at the first call).
 *
 * The returned credential holds no secret in any enumerable property: JSON.stringify shows kind and cloud,
 * and a client secret that a token endpoint might echo is scrubbed from errors before they leave getToken.
 */
import {
  ClientCertificateCredential,
  ClientSecretCredential,
  DefaultAzureCredential,
  ManagedIdentityCredential,
  WorkloadIdentityCredential,
  type AccessToken,
  type GetTokenOptions,
  type TokenCredential,
  type TokenCredentialOptions,
} from '@azure/identity';
import type { z } from 'zod';
import {
  azureCredentialConfigSchema,
  cloudEndpoints,
  type AzureCredentialConfig,
  type CloudEndpoints,
} from './azure-cloud';

export {
  CLOUDS,
  azureCredentialConfigSchema,
  checkVaultUrl,
  cloudEndpoints,
  type AzureCloud,
  type AzureCredentialConfig,
  type CloudEndpoints,
} from './azure-cloud';

/** A TokenCredential that also tells its kind and cloud (and nothing secret). */
export interface AzureCredential extends TokenCredential {
  readonly kind: AzureCredentialConfig['kind'];
  readonly cloud: CloudEndpoints;
}

/**
 * `options` is passed to the @azure/identity credential (proxyOptions, retryOptions, httpClient...);
 * the cloud's authority host always wins over an authorityHost in it.
 */
export function createAzureCredential(
  config: AzureCredentialConfig,
  options: TokenCredentialOptions = {},
): AzureCredential {
  const parsed = azureCredentialConfigSchema.safeParse(config);
  if (!parsed.success)
    throw new Error(
      `Azure credential configuration is invalid: ${parsed.error.issues
        .map((i) => {
          const field = i.path.join('.');
          return !field || i.message.startsWith(field) ? i.message : `${field}: ${i.message}`;
        })
        .join('; ')}`,
    );
  const cfg = parsed.data;
  const cloud = cloudEndpoints(cfg.cloud);
  const common = {
    ...options,
    authorityHost: cloud.authorityHost,
    // instance discovery checks an authority against the public cloud's list, which a private cloud (Azure
    // Stack Hub, ADFS) is not on: a configured custom authority is trusted as given
    ...(typeof cfg.cloud === 'object' ? { disableInstanceDiscovery: true } : {}),
  };
  const inner = build(cfg, common);
  const secret = cfg.kind === 'client-secret' ? cfg.clientSecret : undefined;

  const credential: AzureCredential = {
    kind: cfg.kind,
    cloud,
    async getToken(scopes: string | string[], getOptions?: GetTokenOptions): Promise<AccessToken | null> {
      try {
        return await inner.getToken(scopes, getOptions);
      } catch (err) {
        if (secret) scrub(err, secret);
        throw err;
      }
    },
  };
  Object.defineProperty(credential, 'toJSON', {
    enumerable: false,
    value: () => ({ kind: cfg.kind, cloud }),
  });
  return Object.freeze(credential);
}

function build(
  cfg: z.output<typeof azureCredentialConfigSchema>,
  common: TokenCredentialOptions,
): TokenCredential {
  switch (cfg.kind) {
    case 'default':
      return new DefaultAzureCredential({
        ...common,
        ...(cfg.managedIdentityClientId ? { managedIdentityClientId: cfg.managedIdentityClientId } : {}),
        ...(cfg.tenantId ? { tenantId: cfg.tenantId } : {}),
      });
    case 'managed-identity':
      return cfg.clientId
        ? new ManagedIdentityCredential({ ...common, clientId: cfg.clientId })
        : new ManagedIdentityCredential(common);
    case 'client-secret':
      return new ClientSecretCredential(cfg.tenantId, cfg.clientId, cfg.clientSecret, common);
    case 'client-certificate':
      return new ClientCertificateCredential(
        cfg.tenantId,
        cfg.clientId,
        { certificatePath: cfg.certificateFile },
        {
          ...common,
          ...(cfg.sendCertificateChain !== undefined
            ? { sendCertificateChain: cfg.sendCertificateChain }
            : {}),
        },
      );
    case 'workload-identity':
      return new WorkloadIdentityCredential({
        ...common,
        ...(cfg.tenantId ? { tenantId: cfg.tenantId } : {}),
        ...(cfg.clientId ? { clientId: cfg.clientId } : {}),
        ...(cfg.tokenFile ? { tokenFilePath: cfg.tokenFile } : {}),
      });
  }
}

/** Replaces `secret` in the messages, stacks and string fields of an error, its causes and inner errors. */
function scrub(err: unknown, secret: string, depth = 0, seen = new Set<object>()): void {
  if (!err || typeof err !== 'object' || depth > 4 || seen.has(err)) return;
  seen.add(err);
  const encoded = new Set([secret, encodeURIComponent(secret)]);
  const clean = (s: string) => [...encoded].reduce((acc, v) => acc.split(v).join('***'), s);
  const e = err as Record<string, unknown>;
  for (const key of new Set([...Object.getOwnPropertyNames(e), 'message', 'stack'])) {
    const value = e[key];
    if (typeof value === 'string') {
      if ([...encoded].some((v) => value.includes(v))) {
        try {
          e[key] = clean(value);
        } catch {
          // a read-only property: nothing we can do, and nothing the SDK put there on purpose
        }
      }
    } else if (value && typeof value === 'object') scrub(value, secret, depth + 1, seen);
  }
}
