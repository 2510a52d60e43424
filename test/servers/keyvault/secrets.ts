/**
 * The secret operations of the test Key Vault: plain secrets (PUT to set a new version, GET latest or a
 * version), and the secrets certificates are backed by, which the certificate service derives.
 * Wire format: SecretBundle {value, id, contentType, attributes, tags, kid?, managed?}.
 */
import crypto from 'node:crypto';
import type { Reply } from './certificates';
import type { SecretVersion, Store } from './store';
import { KvError, badParameter, checkName, type WireAttributes } from './wire';

const RECOVERY = { recoveryLevel: 'Recoverable+Purgeable', recoverableDays: 90 };
/** Key Vault's limit on a secret value. */
const MAX_VALUE = 25 * 1024;

export function createSecretService(
  store: Store,
  vaultUrl: () => string,
  certificateSecret: (name: string, version: string | undefined) => Promise<Reply>,
  now: () => number = Date.now,
) {
  const nowSec = () => Math.floor(now() / 1000);
  const notFound = (name: string) =>
    new KvError(404, 'SecretNotFound', `A secret with (name/id) ${name} was not found in this key vault.`);

  const bundle = (name: string, v: SecretVersion) => ({
    value: v.value,
    id: `${vaultUrl()}/secrets/${name}/${v.version}`,
    ...(v.contentType ? { contentType: v.contentType } : {}),
    attributes: { enabled: v.enabled, created: v.created, updated: v.updated, ...RECOVERY },
    ...(Object.keys(v.tags).length ? { tags: v.tags } : {}),
  });

  return {
    async get(name: string, version: string | undefined): Promise<Reply> {
      if (store.certificates.has(name.toLowerCase())) return certificateSecret(name, version);
      const record = store.secrets.get(name.toLowerCase());
      const v = version ? record?.versions.find((x) => x.version === version) : record?.versions.at(-1);
      if (!record || !v) throw notFound(version ? `${name}/${version}` : name);
      if (!v.enabled)
        throw new KvError(
          403,
          'Forbidden',
          'Operation get is not allowed on a disabled secret.',
          'SecretDisabled',
        );
      return { status: 200, body: bundle(record.name, v) };
    },

    set(
      name: string,
      body: {
        value?: unknown;
        contentType?: string;
        tags?: Record<string, string>;
        attributes?: WireAttributes;
      },
    ): Reply {
      checkName(name);
      if (typeof body.value !== 'string') throw badParameter('Property value (string) is required.');
      if (Buffer.byteLength(body.value) > MAX_VALUE)
        throw badParameter(`The secret value exceeds the maximum size of ${MAX_VALUE} bytes.`);
      // real Key Vault also keeps a certificate's secret under the certificate's name; this server refuses the
      // clash rather than guess the real service's exact answer
      if (store.certificates.has(name.toLowerCase()))
        throw new KvError(
          409,
          'Conflict',
          `Secret ${name} is the secret of a certificate of the same name and is managed through the certificate.`,
        );
      const record = store.secrets.get(name.toLowerCase()) ?? { name, versions: [] };
      const now = nowSec();
      const v: SecretVersion = {
        version: crypto.randomBytes(16).toString('hex'),
        value: body.value,
        ...(body.contentType ? { contentType: body.contentType } : {}),
        tags: { ...(body.tags ?? {}) },
        enabled: body.attributes?.enabled ?? true,
        created: now,
        updated: now,
      };
      record.versions.push(v);
      store.secrets.set(name.toLowerCase(), record);
      store.save();
      return { status: 200, body: bundle(record.name, v) };
    },
  };
}
