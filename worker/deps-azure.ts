/**
 * Azure identities from the configuration, one per (credential settings, cloud), shared by the vaults, DNS
 * zones and App Service targets that use the same settings; and each cloud's Resource Manager endpoint.
 * @azure/identity is loaded at the first identity asked for: a worker with no Azure resource never loads it.
 */
import type { AzureCredential, AzureCredentialConfig } from '../activities/vault/azure-credential';
import type { CertflowConfig } from './config';
import type { Collector } from './deps-collector';

type AzureVaultConfig = Extract<CertflowConfig['vaults'][number], { kind: 'azure' }>;
export type CredentialConfig = AzureVaultConfig['credential'];
export type Cloud = AzureVaultConfig['cloud'];

/** Resource Manager per cloud: DNS zones and App Service live there, not at the vault. */
export const ARM = {
  public: { endpoint: 'https://management.azure.com', appServiceCloud: 'AZURE_PUBLIC_CLOUD' },
  china: { endpoint: 'https://management.chinacloudapi.cn', appServiceCloud: 'AZURE_CHINA_CLOUD' },
  usgov: { endpoint: 'https://management.usgovcloudapi.net', appServiceCloud: 'AZURE_US_GOVERNMENT' },
} as const;

/** Our configuration's credential (secrets as references) as the adapter's (secrets as values). */
function adapterConfig(
  cred: CredentialConfig,
  cloud: Cloud,
  path: string,
  c: Collector,
): AzureCredentialConfig {
  switch (cred.kind) {
    case 'default':
    case 'managed-identity':
      return { ...cred, cloud };
    case 'client-secret':
      return { ...cred, clientSecret: c.secret(cred.clientSecret, `${path}.clientSecret`), cloud };
    case 'client-certificate':
    case 'workload-identity':
      return { ...cred, cloud };
  }
}

export interface Credentials {
  /** The identity for these settings (`path` names the credential field for errors). */
  get(cred: CredentialConfig, cloud: Cloud, path: string): Promise<AzureCredential | undefined>;
}

export function createCredentials(c: Collector): Credentials {
  const made = new Map<string, Promise<AzureCredential | undefined>>();
  const make = async (cred: CredentialConfig, cloud: Cloud, path: string) => {
    const before = c.issues.length;
    const config = adapterConfig(cred, cloud, path, c);
    // an unset secret was reported already: do not report the empty value again
    if (c.issues.length > before) return undefined;
    const { createAzureCredential } = await import('../activities/vault/azure-credential');
    return c.build(path, () => createAzureCredential(config));
  };
  return {
    get(cred, cloud, path) {
      // references, not values: the key holds no secret
      const key = JSON.stringify([cred, cloud]);
      if (!made.has(key)) made.set(key, make(cred, cloud, path));
      return made.get(key)!;
    },
  };
}
