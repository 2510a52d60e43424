/**
 * The local vault's on-disk layout and its integrity checks:
 *
 *   <dir>/vault.json                               format and a key check (opens only with the right key)
 *   <dir>/certificates/<name>/certificate.json     policy, versions (chain, tags), current, pending operation
 *   <dir>/certificates/<name>/keys/<version>.key   private key (PKCS#8), sealed, bound to name and version
 *   <dir>/secrets/<name>.secret                    a SecretStore value, sealed, bound to its name
 *
 * certificate.json holds public material only (chains, CSR, tags, policy) and stays readable for operators, but
 * it decides what is requested and where it goes, so each record carries an HMAC-SHA256 (`mac`) over all its
 * fields: a record edited outside Certflow is refused. Sealing and MACs use keys derived from the configured
 * key with HKDF (local-crypto.ts), one per use.
 * Anything that does not read back exactly (bad JSON, unexpected shape, a MAC that does not match, a record or
 * key that belongs to another certificate, a failed GCM check) is a non-retryable VaultCorrupt naming the file;
 * it is never rewritten here.
 *
 * Vaults of the earlier format (vault.json `certflow-local-vault/v1`: records without MAC, blobs sealed with the
 * configured key itself) are migrated the first time they are opened with their key: records get their MAC,
 * blobs are re-sealed with the derived key, and vault.json is rewritten last, so an interrupted migration
 * resumes at the next open. From then on an unauthenticated record or an old-format blob is refused.
 */
import { ApplicationFailure } from '@temporalio/common';
import crypto, { type KeyObject } from 'node:crypto';
import { z } from 'zod';
import type { CertificatePolicySnapshot } from '../types';
import { nonRetryable } from './azure-key-vault-errors';
import {
  aad,
  deriveKey,
  isSealedV1,
  KEY_VARIABLE,
  macMatches,
  recordMac,
  SealBroken,
  seal,
  unseal,
  unsealV1,
} from './local-crypto';
import { createLocalFiles } from './local-files';

const NAME = /^[0-9A-Za-z-]{1,127}$/;
const VERSION = /^[0-9a-f]{32}$/;

const tags = z.record(z.string(), z.string());
const policySchema = z.object({
  subject: z.string(),
  dnsNames: z.array(z.string()),
  issuerName: z.string(),
  key: z.object({
    keyType: z.string(),
    keySize: z.number().int().optional(),
    curve: z.string().optional(),
    reuseKey: z.boolean(),
    exportable: z.boolean(),
  }),
  validityInMonths: z.number().optional(),
  lifetimePercentage: z.number().optional(),
  daysBeforeExpiry: z.number().optional(),
});
const versionSchema = z.object({
  version: z.string().regex(VERSION),
  chainPem: z.array(z.string()).min(1),
  tags,
  createdOn: z.string(),
  exportable: z.boolean(),
});
const recordSchema = z.object({
  format: z.literal('certflow-local-vault/certificate/v2'),
  name: z.string(),
  policy: policySchema,
  current: z.string().regex(VERSION).nullable(),
  versions: z.array(versionSchema),
  pending: z
    .object({ version: z.string().regex(VERSION), csrPem: z.string(), tags, createdOn: z.string() })
    .nullable(),
});

export type CertificateRecord = z.infer<typeof recordSchema>;
export type VersionRecord = z.infer<typeof versionSchema>;

export const RECORD_FORMAT: CertificateRecord['format'] = 'certflow-local-vault/certificate/v2';
const RECORD_FORMAT_V1 = 'certflow-local-vault/certificate/v1';
const VAULT_FORMAT = 'certflow-local-vault/v2';
const VAULT_FORMAT_V1 = 'certflow-local-vault/v1';

export interface LocalStoreOptions {
  vault: string;
  dir: string;
  encryptionKey: Buffer;
}

export interface LocalStore {
  /** Absolute path of the vault directory. */
  readonly dir: string;
  /** Absolute path of a certificate's record file (for error messages). */
  recordFile(name: string): string;
  readCertificate(name: string): Promise<CertificateRecord | null>;
  writeCertificate(record: CertificateRecord): Promise<void>;
  certificateNames(): Promise<string[]>;
  readKey(name: string, version: string): Promise<KeyObject>;
  writeKey(name: string, version: string, key: KeyObject): Promise<void>;
  removeKey(name: string, version: string): Promise<void>;
  readSecret(name: string): Promise<string | null>;
  writeSecret(name: string, value: string): Promise<void>;
}

/** A file that does not read back as written: reported, never repaired or replaced. */
export function vaultCorrupt(vault: string, file: string, reason: string): ApplicationFailure {
  return nonRetryable(
    'VaultCorrupt',
    `local vault '${vault}': ${file} is corrupt or was tampered with (${reason}). ` +
      `It was left untouched: restore it from a backup, or remove the certificate's directory to start it over.`,
  );
}

export function checkName(vault: string, kind: 'certificate' | 'secret', name: string): void {
  if (typeof name !== 'string' || !NAME.test(name))
    throw nonRetryable(
      'InvalidName',
      `local vault '${vault}': ${kind} name ${JSON.stringify(name)} must be 1-127 letters, digits and dashes.`,
    );
}

export function newVersionId(): string {
  return crypto.randomBytes(16).toString('hex');
}

export function createLocalStore(opts: LocalStoreOptions): LocalStore {
  const files = createLocalFiles(opts.dir);
  const { vault, encryptionKey } = opts;
  const sealKey = deriveKey(encryptionKey, 'local-vault/seal');
  const macKey = deriveKey(encryptionKey, 'local-vault/record-mac');
  const recordPath = (name: string) => `certificates/${name}/certificate.json`;
  const keyPath = (name: string, version: string) => `certificates/${name}/keys/${version}.key`;
  const secretPath = (name: string) => `secrets/${name}.secret`;

  const corrupt = (rel: string, reason: string) => vaultCorrupt(vault, files.pathOf(rel), reason);

  /** Opens a sealed file; null when it does not exist. */
  async function readSealed(rel: string, boundTo: Buffer): Promise<Buffer | null> {
    await ready();
    const blob = await files.read(rel);
    if (!blob) return null;
    try {
      return unseal(sealKey, blob, boundTo);
    } catch (err) {
      if (err instanceof SealBroken) throw corrupt(rel, err.message);
      throw err;
    }
  }

  async function writeSealed(rel: string, plaintext: Buffer, boundTo: Buffer): Promise<void> {
    await ready();
    await files.write(rel, seal(sealKey, plaintext, boundTo));
  }

  let opened: Promise<void> | undefined;
  function ready(): Promise<void> {
    opened ??= open().catch((err: unknown) => {
      opened = undefined;
      throw err;
    });
    return opened;
  }

  const writeVaultJson = async () => {
    const keyCheck = seal(sealKey, Buffer.from(VAULT_FORMAT), aad('key-check')).toString('base64');
    await files.write('vault.json', `${JSON.stringify({ format: VAULT_FORMAT, keyCheck }, null, 2)}\n`);
  };

  /** Creates the vault on first use; afterwards checks that the configured key is the vault's key. */
  async function open(): Promise<void> {
    await files.mkdir('certificates');
    await files.mkdir('secrets');
    const check = aad('key-check');
    const raw = await files.read('vault.json');
    if (!raw) {
      const holds = (await files.entries('certificates')).length + (await files.entries('secrets')).length;
      if (holds) throw corrupt('vault.json', 'it is missing while the vault holds certificates or secrets');
      await writeVaultJson();
      return;
    }
    const meta = parseJson(raw, 'vault.json') as { format?: unknown; keyCheck?: unknown };
    const v1 = meta?.format === VAULT_FORMAT_V1;
    if ((!v1 && meta?.format !== VAULT_FORMAT) || typeof meta.keyCheck !== 'string')
      throw corrupt('vault.json', `expected format '${VAULT_FORMAT}' and a keyCheck`);
    try {
      const blob = Buffer.from(meta.keyCheck, 'base64');
      if (v1) unsealV1(encryptionKey, blob, check);
      else unseal(sealKey, blob, check);
    } catch {
      throw nonRetryable(
        'VaultKeyMismatch',
        `local vault '${vault}' at ${files.root}: the configured encryption key (${KEY_VARIABLE} by default) is not ` +
          `the key this vault was created with, so none of its keys or secrets can be opened. Set the vault's own key.`,
      );
    }
    if (v1) await migrate();
  }

  /** Writes a record with its MAC over every field (the record as stored is what the MAC covers). */
  async function writeRecord(record: Record<string, unknown> & { name: unknown }): Promise<void> {
    const stored: Record<string, unknown> = { ...record, format: RECORD_FORMAT };
    delete stored.mac;
    stored.mac = recordMac(macKey, stored);
    await files.write(recordPath(String(record.name)), `${JSON.stringify(stored, null, 2)}\n`);
  }

  /** Re-seals a blob of the earlier format with the derived key; leaves one already migrated as it is. */
  async function resealV1(rel: string, boundTo: Buffer): Promise<void> {
    const blob = await files.read(rel);
    if (!blob || !isSealedV1(blob)) return;
    let plain: Buffer;
    try {
      plain = unsealV1(encryptionKey, blob, boundTo);
    } catch (err) {
      if (err instanceof SealBroken) throw corrupt(rel, `${err.message} (while migrating the vault)`);
      throw err;
    }
    await files.write(rel, seal(sealKey, plain, boundTo));
  }

  /**
   * The one-time migration of a vault of the earlier format: MACs for its records (what is on disk now is
   * trusted once, as it was before), derived-key seals for its blobs, then vault.json. Idempotent, resumable.
   */
  async function migrate(): Promise<void> {
    for (const name of (await files.entries('certificates')).filter((n) => NAME.test(n))) {
      const rel = recordPath(name);
      const raw = await files.read(rel);
      if (raw) {
        const obj = parseJson(raw, rel) as Record<string, unknown>;
        if (obj?.format === RECORD_FORMAT_V1) {
          const parsed = recordSchema.safeParse({ ...obj, format: RECORD_FORMAT });
          if (!parsed.success || obj.name !== name)
            throw corrupt(rel, 'it cannot be migrated: its content is not a certificate record of this name');
          await writeRecord(obj as Record<string, unknown> & { name: string });
        }
      }
      for (const file of await files.entries(`certificates/${name}/keys`)) {
        const version = /^([0-9a-f]{32})\.key$/.exec(file)?.[1];
        if (version) await resealV1(keyPath(name, version), aad('key', name, version));
      }
    }
    for (const file of await files.entries('secrets')) {
      const name = /^(.+)\.secret$/.exec(file)?.[1];
      if (name && NAME.test(name)) await resealV1(secretPath(name), aad('secret', name));
    }
    await writeVaultJson();
  }

  function parseJson(raw: Buffer, rel: string): unknown {
    try {
      return JSON.parse(raw.toString('utf8'));
    } catch {
      // JSON.parse quotes the text it choked on: keep it out of the message
      throw corrupt(rel, 'not valid JSON');
    }
  }

  return {
    dir: files.root,
    recordFile: (name) => files.pathOf(recordPath(name)),

    async readCertificate(name) {
      await ready();
      const rel = recordPath(name);
      const raw = await files.read(rel);
      if (!raw) return null;
      const obj = parseJson(raw, rel) as Record<string, unknown> | null;
      if (typeof obj !== 'object' || obj === null || Array.isArray(obj))
        throw corrupt(rel, 'expected a JSON object');
      if (!macMatches(macKey, obj))
        throw corrupt(
          rel,
          obj.format === RECORD_FORMAT_V1
            ? 'it is a record without MAC (the format before records were authenticated) in a vault already migrated'
            : 'its MAC does not match: the record (policy, names, tags, chains) was changed outside Certflow, or written with another key',
        );
      const parsed = recordSchema.safeParse(obj);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw corrupt(rel, `unexpected content at '${issue?.path.join('.') || '(root)'}': ${issue?.message}`);
      }
      const record = parsed.data;
      if (record.name !== name)
        throw corrupt(rel, `it is the record of certificate '${record.name}', found under '${name}'`);
      const known = new Set(record.versions.map((v) => v.version));
      if (record.current && !known.has(record.current))
        throw corrupt(rel, `its current version ${record.current} is not among its versions`);
      if (record.pending && known.has(record.pending.version))
        throw corrupt(rel, `its pending version ${record.pending.version} is already a merged version`);
      return record;
    },

    async writeCertificate(record) {
      await ready();
      await files.mkdir(`certificates/${record.name}/keys`);
      await writeRecord(record);
    },

    async certificateNames() {
      await ready();
      return (await files.entries('certificates')).filter((n) => NAME.test(n));
    },

    async readKey(name, version) {
      const rel = keyPath(name, version);
      const der = await readSealed(rel, aad('key', name, version));
      if (!der) throw corrupt(rel, 'the private key file of this version is missing');
      try {
        return crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
      } catch {
        throw corrupt(rel, 'it does not hold a PKCS#8 private key');
      }
    },

    async writeKey(name, version, key) {
      await ready();
      await files.mkdir(`certificates/${name}/keys`);
      const der = key.export({ type: 'pkcs8', format: 'der' });
      await writeSealed(keyPath(name, version), der, aad('key', name, version));
    },

    async removeKey(name, version) {
      await ready();
      await files.remove(keyPath(name, version));
    },

    async readSecret(name) {
      const value = await readSealed(secretPath(name), aad('secret', name));
      return value ? value.toString('utf8') : null;
    },

    async writeSecret(name, value) {
      await writeSealed(secretPath(name), Buffer.from(value, 'utf8'), aad('secret', name));
    },
  };
}

/** A fresh record for a certificate that has no versions yet. */
export function newRecord(name: string, policy: CertificatePolicySnapshot): CertificateRecord {
  return { format: RECORD_FORMAT, name, policy, current: null, versions: [], pending: null };
}
