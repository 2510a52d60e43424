/**
 * Azure clouds and the configuration of an Azure identity: the endpoints of each cloud, the credential's zod
 * schema (worker/config-schema.ts builds on it) and the vault URL check. No Azure SDK here: validating a
 * configuration does not load @azure/identity (worker start-up time); activities/vault/azure-credential.ts makes
 * the credential and re-exports all of this.
 */
import { z } from 'zod';

export interface CloudEndpoints {
  /** Entra ID authority host, e.g. https://login.microsoftonline.com. */
  authorityHost: string;
  /** Key Vault's resource in that cloud, e.g. https://vault.azure.net; tokens are for `${audience}/.default`. */
  keyVaultAudience: string;
}

export const CLOUDS: Record<'public' | 'china' | 'usgov', CloudEndpoints> = {
  public: {
    authorityHost: 'https://login.microsoftonline.com', // AzureAuthorityHosts.AzurePublicCloud
    keyVaultAudience: 'https://vault.azure.net',
  },
  china: {
    authorityHost: 'https://login.chinacloudapi.cn', // AzureAuthorityHosts.AzureChina
    keyVaultAudience: 'https://vault.azure.cn',
  },
  usgov: {
    authorityHost: 'https://login.microsoftonline.us', // AzureAuthorityHosts.AzureGovernment
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

export function cloudEndpoints(cloud: AzureCloud = 'public'): CloudEndpoints {
  if (typeof cloud === 'string') return CLOUDS[cloud];
  return {
    authorityHost: cloud.authorityHost.replace(/\/+$/, ''),
    keyVaultAudience: cloud.keyVaultAudience.replace(/\/+$/, ''),
  };
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
