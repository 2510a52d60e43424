/**
 * The configured vaults as adapters: Azure Key Vault (with its identity) or the local vault (a directory sealed
 * with a key from a secret reference). Both are also the SecretStore for small secrets such as an ACME account key.
 * Each kind's adapter is loaded when a vault of that kind is configured (the Azure SDK only for an Azure vault).
 */
import type { SecretStore, Vault } from '../activities/types';
import { loadEncryptionKey } from '../activities/vault/local-crypto';
import type { SecretRef, VaultConfig } from './config';
import type { Credentials } from './deps-azure';
import type { Collector } from './deps-collector';

export type BuiltVault = Vault & SecretStore;

/** A 32-byte key from a secret reference, checked like CERTFLOW_LOCAL_VAULT_KEY (base64 or hex). */
export function encryptionKeyFrom(ref: SecretRef, path: string, c: Collector): Buffer | undefined {
  const value = c.secret(ref, path);
  if (!value) return undefined;
  // the error names the variable (or file) and the expected format, never the value
  const label = 'env' in ref ? ref.env : `the file ${ref.file}`;
  return c.build(path, () => loadEncryptionKey({ [label]: value }, label));
}

export async function buildVault(
  v: VaultConfig,
  path: string,
  c: Collector,
  credentials: Credentials,
): Promise<BuiltVault | undefined> {
  if (v.kind === 'local') {
    const encryptionKey = encryptionKeyFrom(v.encryptionKey, `${path}.encryptionKey`, c);
    if (!encryptionKey) return undefined;
    const { createLocalVault } = await import('../activities/vault/local');
    return c.build(path, () => createLocalVault({ name: v.name, dir: v.dir, encryptionKey }));
  }
  const credential = await credentials.get(v.credential, v.cloud, `${path}.credential`);
  if (!credential) return undefined;
  const { createAzureKeyVault } = await import('../activities/vault/azure-key-vault');
  return c.build(`${path}.url`, () => createAzureKeyVault({ name: v.name, url: v.url, credential }));
}

/** Every configured vault by name; what failed to build is in the collector. */
export async function buildVaults(
  vaults: VaultConfig[],
  c: Collector,
  credentials: Credentials,
): Promise<Map<string, BuiltVault>> {
  const built = new Map<string, BuiltVault>();
  // one at a time: the problems are reported in the configuration's order
  for (const [i, v] of vaults.entries()) {
    const vault = await buildVault(v, `vaults[${i}]`, c, credentials);
    if (vault) built.set(v.name, vault);
  }
  return built;
}
