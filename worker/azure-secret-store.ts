/**
 * A SecretStore over Key Vault secrets, for the small secrets that live with a vault (the ACME account key).
 * Errors carry the vault URL, the secret name and the service's status, never a value.
 */
import type { TokenCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import type { SecretStore } from '../activities/types';

export function createKeyVaultSecretStore(opts: { url: string; credential: TokenCredential }): SecretStore {
  const client = new SecretClient(opts.url, opts.credential, { retryOptions: { maxRetries: 0 } });
  const failed = (what: string, name: string, err: unknown) => {
    const e = err as { statusCode?: number; code?: string; message?: string };
    const status = e.statusCode
      ? `HTTP ${e.statusCode}${e.code ? ` ${e.code}` : ''}`
      : (e.message ?? 'failed');
    return new Error(`Key Vault ${opts.url}: ${what} secret '${name}': ${status}`, { cause: err });
  };
  return {
    async getSecret(name) {
      try {
        return (await client.getSecret(name)).value ?? null;
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) return null;
        throw failed('read', name, err);
      }
    },
    async setSecret(name, value) {
      try {
        await client.setSecret(name, value, { contentType: 'application/x-pem-file' });
      } catch (err) {
        throw failed('write', name, err);
      }
    },
  };
}
