/**
 * SecretStore over Key Vault secrets (@azure/keyvault-secrets): small named values that belong with the
 * vault, such as the ACME account key. Values never reach an error message: failures quote only the
 * service's error text.
 *
 * A certificate's own secret (same name, `managed: true`: its private key and chain) is refused in both
 * directions: read, it would hand a TLS key to whoever asked for a plain secret (e.g. as the ACME account key);
 * written, it would fight the certificate for the name.
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
    let secret;
    try {
      secret = await secrets.getSecret(name);
    } catch (err) {
      if (serviceError(err).status === 404) return null;
      throw vaultFailure(err, ctx(name, 'read the secret', 'secrets/get'));
    }
    if (secret.properties.managed)
      throw nonRetryable(
        'SecretIsCertificate',
        `Key Vault '${vault}': '${name}' is the secret of a certificate of that name (managed by Key Vault), not a ` +
          `plain secret; it is never used as one. Give this secret another name.`,
      );
    return secret.value ?? null;
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
