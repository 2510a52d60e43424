/** Certificate ids are `<vault>/<name>`; Key Vault names are 1-127 of [0-9a-zA-Z-]. */
export interface ParsedId {
  vault: string;
  name: string;
}

const NAME = /^[0-9A-Za-z-]{1,127}$/;
const VAULT = /^[0-9A-Za-z][0-9A-Za-z-]{0,62}$/;

export function parseCertificateId(id: string, field = 'certificate id'): ParsedId {
  const parts = typeof id === 'string' ? id.split('/') : [];
  if (parts.length !== 2) {
    throw new Error(`${field}: expected "<vault>/<name>", got ${JSON.stringify(id)}`);
  }
  const [vault, name] = parts as [string, string];
  if (!VAULT.test(vault))
    throw new Error(`${field}: vault name ${JSON.stringify(vault)} must be letters, digits and dashes`);
  if (!NAME.test(name)) {
    throw new Error(
      `${field}: certificate name ${JSON.stringify(name)} must be 1-127 letters, digits and dashes`,
    );
  }
  return { vault, name };
}
