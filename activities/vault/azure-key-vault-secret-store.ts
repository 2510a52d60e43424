/**
 * SecretStore over Key Vault secrets (@azure/keyvault-secrets): small named values that belong with the
 * vault, such as the ACME account key. Values never reach an error message: failures quote only the
 * service's error text.
 */
import type { SecretClient } from '@azure/keyvault-secrets';
import type { SecretStore } from '../types';
import { nonRetryable, serviceError, vaultFailure } from './azure-key-vault-errors';

/** Key Vault's rule for secret names. */
const NAME = /^[0-9a-zA-Z-]{1,127}$/;

export function createKeyVaultSecretStore(vault: string, secrets: SecretClient): SecretStore {
  const ctx = (name: string, action: string, permission: string) => ({
    vault,
    action,
    certName: name,
    objectKind: 'secret' as const,
    permission,
  });

  function checkName(name: string): void {
    if (!NAME.test(name))
      throw nonRetryable(
        'InvalidSecretName',
        `Key Vault '${vault}': '${name}' is not a valid secret name (1-127 letters, digits and dashes).`,
      );
  }

  async function getSecret(name: string): Promise<string | null> {
    checkName(name);
    try {
      return (await secrets.getSecret(name)).value ?? null;
    } catch (err) {
      if (serviceError(err).status === 404) return null;
      throw vaultFailure(err, ctx(name, 'read the secret', 'secrets/get'));
    }
  }

  return {
    getSecret,
    /** Writes only when the value differs, so a retried activity does not pile up versions. */
    async setSecret(name, value) {
      checkName(name);
      if ((await getSecret(name)) === value) return;
      try {
        await secrets.setSecret(name, value);
      } catch (err) {
        throw vaultFailure(err, ctx(name, 'write the secret', 'secrets/set'));
      }
    },
  };
}
