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
  AzureAuthorityHosts,
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
import { z } from 'zod';

export interface CloudEndpoints {
  /** Entra ID authority host, e.g. https://login.microsoftonline.com. */
  authorityHost: string;
  /** Key Vault's resource in that cloud, e.g. https://vault.azure.net; tokens are for `${audience}/.default`. */
  keyVaultAudience: string;
}

export const CLOUDS: Record<'public' | 'china' | 'usgov', CloudEndpoints> = {
  public: {
    authorityHost: AzureAuthorityHosts.AzurePublicCloud,
    keyVaultAudience: 'https://vault.azure.net',
  },
  china: { authorityHost: AzureAuthorityHosts.AzureChina, keyVaultAudience: 'https://vault.azure.cn' },
  usgov: {
    authorityHost: AzureAuthorityHosts.AzureGovernment,
    keyVaultAudience: 'https://vault.usgovcloudapi.net',
  },
};

const httpsUrl = (field: string) =>
  z.string({ error: `${field} must be an https URL` }).refine((s) => isHttpsOrigin(s), {
    error: `${field} must be an https URL without a path (e.g. https://login.microsoftonline.com)`,
  });

const cloudSchema = z.union(
  [
    z.enum(['public', 'china', 'usgov']),
    z.strictObject({
      authorityHost: httpsUrl('cloud.authorityHost'),
      keyVaultAudience: httpsUrl('cloud.keyVaultAudience'),
    }),
  ],
  { error: "cloud must be 'public', 'china', 'usgov' or { authorityHost, keyVaultAudience }" },
);

// tenant ids are GUIDs or verified domain names (the SDK refuses anything else)
const required = (field: string, type: string) => (issue: { input?: unknown }) =>
  issue.input === undefined ? `${field} is required` : `${field} must be ${type}`;
const tenantId = z.string({ error: required('tenantId', 'a string') }).regex(/^[0-9a-zA-Z.-]+$/, {
  error: 'tenantId must be a tenant GUID or domain (letters, digits, dots, dashes)',
});
const text = (field: string) => z.string({ error: required(field, 'a string') }).min(1, `${field} is empty`);

export const azureCredentialConfigSchema = z.discriminatedUnion(
  'kind',
  [
    z.strictObject({
      kind: z.literal('default'),
      managedIdentityClientId: text('managedIdentityClientId').optional(),
      tenantId: tenantId.optional(),
      cloud: cloudSchema.optional(),
    }),
    z.strictObject({
      kind: z.literal('managed-identity'),
      clientId: text('clientId').optional(),
      cloud: cloudSchema.optional(),
    }),
    z.strictObject({
      kind: z.literal('client-secret'),
      tenantId,
      clientId: text('clientId'),
      clientSecret: text('clientSecret'),
      cloud: cloudSchema.optional(),
    }),
    z.strictObject({
      kind: z.literal('client-certificate'),
      tenantId,
      clientId: text('clientId'),
      /** PEM file with the private key and the certificate. */
      certificateFile: text('certificateFile'),
      /** Send the x5c chain (subject name + issuer authentication, SNI). */
      sendCertificateChain: z.boolean({ error: 'sendCertificateChain must be true or false' }).optional(),
      cloud: cloudSchema.optional(),
    }),
    z.strictObject({
      kind: z.literal('workload-identity'),
      /** Default AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE (set by the AKS webhook). */
      tenantId: tenantId.optional(),
      clientId: text('clientId').optional(),
      tokenFile: text('tokenFile').optional(),
      cloud: cloudSchema.optional(),
    }),
  ],
  {
    error:
      "kind must be 'default', 'managed-identity', 'client-secret', 'client-certificate' or 'workload-identity'",
  },
);

export type AzureCredentialConfig = z.input<typeof azureCredentialConfigSchema>;
export type AzureCloud = NonNullable<AzureCredentialConfig['cloud']>;

/** A TokenCredential that also tells its kind and cloud (and nothing secret). */
export interface AzureCredential extends TokenCredential {
  readonly kind: AzureCredentialConfig['kind'];
  readonly cloud: CloudEndpoints;
}

export function cloudEndpoints(cloud: AzureCloud = 'public'): CloudEndpoints {
  if (typeof cloud === 'string') return CLOUDS[cloud];
  return {
    authorityHost: cloud.authorityHost.replace(/\/+$/, ''),
    keyVaultAudience: cloud.keyVaultAudience.replace(/\/+$/, ''),
  };
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

/** Throws when `url` is not an https URL of a vault in `cloud` (host `<name>.<audience host>`). */
export function checkVaultUrl(url: string, cloud: CloudEndpoints): void {
  const suffix = `.${new URL(cloud.keyVaultAudience).host}`;
  let host: string;
  try {
    const u = new URL(url);
    if (u.protocol !== 'https:') throw new Error('not https');
    host = u.host;
  } catch {
    throw new Error(`vault url '${url}' is not an https URL (expected https://<name>${suffix}).`);
  }
  if (!host.endsWith(suffix) || host.length === suffix.length)
    throw new Error(
      `vault url '${url}' is not a Key Vault of the credential's cloud (expected https://<name>${suffix}); ` +
        `set the credential's cloud to the vault's cloud.`,
    );
}

function isHttpsOrigin(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === 'https:' && (u.pathname === '/' || u.pathname === '') && !u.search && !u.hash;
  } catch {
    return false;
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
