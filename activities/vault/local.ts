/**
 * The local vault: the Vault and SecretStore interfaces over a directory, for the embedded default and for
 * on-premises use, with Key Vault's semantics for the Unknown-issuer flow. `create`/`beginRenewal` make a key
 * and a CSR and keep them as the pending operation (a second call reuses it); `merge` checks the leaf's key
 * against the pending key, stores the chain as a new version (random 32-hex id) with the previous version's tags
 * carried over, and treats a chain that is already current (same thumbprint) as done.
 *
 * Private keys and secrets are sealed with AES-256-GCM (local-crypto.ts); files are written atomically with 0600
 * in 0700 directories (local-files.ts); anything unreadable is a VaultCorrupt naming the file (local-store.ts).
 * Calls that change a certificate queue behind each other in this process (local-lock.ts); one worker process
 * owns a vault directory: two processes on the same directory are not coordinated.
 */
import { X509Certificate } from 'node:crypto';
import type {
  CertificatePolicySnapshot,
  CertificateState,
  CertificateSummary,
  PendingCsr,
  SecretStore,
  Vault,
} from '../types';
import { parseX509 } from '../verify/parsed';
import { thumbprintOf } from '../verify/probe';
import { keyShapeOf } from './key-shape';
import { splitPemChain } from '../verify/x509';
import { nonRetryable } from './azure-key-vault-errors';
import { checkEncryptionKey } from './local-crypto';
import { buildCsr, checkPolicy, generateKey, keyFits, spkiOf } from './local-keys';
import { withLock } from './local-lock';
import {
  checkName,
  createLocalStore,
  newRecord,
  newVersionId,
  vaultCorrupt,
  type CertificateRecord,
  type VersionRecord,
} from './local-store';

export { loadEncryptionKey } from './local-crypto';

export interface LocalVaultOptions {
  /** Short name, the first half of certificate ids (`<vault>/<name>`). */
  name: string;
  /** The vault's directory; created (0700) on first use. */
  dir: string;
  /** 32 bytes (AES-256), e.g. from `loadEncryptionKey(process.env)`. */
  encryptionKey: Buffer;
  now?: () => Date;
}

export interface LocalVersionInfo {
  version: string;
  thumbprint: string;
  notBefore: string;
  notAfter: string;
  createdOn: string;
  tags: Record<string, string>;
  current: boolean;
}

export interface LocalVault extends Vault, SecretStore {
  /** Every merged version, newest first. */
  listVersions(certName: string): Promise<LocalVersionInfo[]>;
  /** Replaces the tags of one version (Key Vault's updateCertificateProperties). */
  updateTags(certName: string, version: string, tags: Record<string, string>): Promise<void>;
}

const VAULT_NAME = /^[0-9A-Za-z][0-9A-Za-z-]{0,62}$/;

export function createLocalVault(opts: LocalVaultOptions): LocalVault {
  checkEncryptionKey(opts.encryptionKey);
  if (typeof opts.name !== 'string' || !VAULT_NAME.test(opts.name))
    throw new Error(`local vault name ${JSON.stringify(opts.name)}: expected letters, digits and dashes.`);
  if (typeof opts.dir !== 'string' || !opts.dir)
    throw new Error(`local vault '${opts.name}': dir: expected the path of the vault directory.`);
  const vault = opts.name;
  const now = opts.now ?? (() => new Date());
  const store = createLocalStore({ vault, dir: opts.dir, encryptionKey: opts.encryptionKey });
  const where = (certName: string) => `local vault '${vault}', certificate '${certName}'`;
  const locked = <T>(certName: string, fn: () => Promise<T>) => withLock(`${store.dir}\0${certName}`, fn);

  async function load(certName: string): Promise<CertificateRecord> {
    checkName(vault, 'certificate', certName);
    const record = await store.readCertificate(certName);
    if (!record)
      throw nonRetryable(
        'CertificateNotFound',
        `local vault '${vault}' has no certificate named '${certName}'.`,
      );
    return record;
  }

  /** Makes the key (new, or the current one when the policy says reuseKey and it still fits) and the CSR. */
  async function startOperation(
    record: CertificateRecord,
    tags: Record<string, string>,
  ): Promise<PendingCsr> {
    const { name, policy } = record;
    const current = currentOf(record);
    const previousKey =
      policy.key.reuseKey && current ? await store.readKey(name, current.version) : undefined;
    const key =
      previousKey && keyFits(previousKey, policy.key, where(name))
        ? previousKey
        : await generateKey(policy.key, where(name));
    const csrPem = await buildCsr(key, policy);
    const version = newVersionId();
    // the key first: a record never names a pending key that is not on disk
    await store.writeKey(name, version, key);
    await store.writeCertificate({
      ...record,
      pending: { version, csrPem, tags, createdOn: now().toISOString() },
    });
    return { csrPem, reused: false };
  }

  function toState(record: CertificateRecord): CertificateState {
    const current = currentOf(record);
    const leaf = current ? leafOf(record, current) : undefined;
    return {
      id: `${vault}/${record.name}`,
      vault,
      name: record.name,
      version: current?.version ?? null,
      thumbprint: leaf ? thumbprintOf(leaf) : null,
      notBefore: leaf ? new Date(leaf.validFrom).toISOString() : null,
      notAfter: leaf ? new Date(leaf.validTo).toISOString() : null,
      subject: leaf ? leaf.subject.split('\n').join(', ') : null,
      dnsNames: leaf ? sanDnsNames(leaf) : [],
      tags: { ...(current?.tags ?? record.pending?.tags ?? {}) },
      // Key Vault's Unknown issuer: the vault only reminds at the trigger, Certflow renews (issue mode)
      policy: { ...record.policy, lifetimeAction: 'EmailContacts' },
      key: leaf ? keyShapeOf(leaf) : null,
      pendingOperation: record.pending !== null,
    };
  }

  function leafOf(record: CertificateRecord, version: VersionRecord): X509Certificate {
    try {
      return parseX509(version.chainPem[0] ?? '');
    } catch {
      throw vaultCorrupt(
        vault,
        store.recordFile(record.name),
        `the leaf certificate of version ${version.version} cannot be parsed`,
      );
    }
  }

  return {
    name: vault,

    async describe(certName) {
      return toState(await load(certName));
    },

    async certificatePem(certName) {
      const current = currentOf(await load(certName));
      return current?.chainPem[0] ?? null;
    },

    async *list(): AsyncIterable<CertificateSummary> {
      for (const name of await store.certificateNames()) {
        const record = await store.readCertificate(name);
        // a directory without a record: a create that stopped before writing it
        if (!record) continue;
        const state = toState(record);
        yield {
          id: state.id,
          name,
          version: state.version,
          thumbprint: state.thumbprint,
          notAfter: state.notAfter,
          enabled: true,
          tags: state.tags,
        };
      }
    },

    async create(certName, policy, tags = {}) {
      checkName(vault, 'certificate', certName);
      checkPolicy(policy, where(certName));
      return locked(certName, async () => {
        const existing = await store.readCertificate(certName);
        if (existing?.pending) return { csrPem: existing.pending.csrPem, reused: true };
        const record = existing
          ? { ...existing, policy: copyPolicy(policy) }
          : newRecord(certName, copyPolicy(policy));
        return startOperation(record, { ...(existing ? currentOf(existing)?.tags : {}), ...tags });
      });
    },

    secretIdOf(certName, version) {
      return `local://${vault}/secrets/${certName}/${version}`;
    },

    // every local policy has issuer Unknown (create forces it): Certflow owns them all, takeOver changes nothing.
    // No renewInVault: the local vault cannot renew anything by itself.
    async beginRenewal(certName, _opts) {
      return locked(certName, async () => {
        const record = await load(certName);
        if (record.pending) return { csrPem: record.pending.csrPem, reused: true };
        return startOperation(record, { ...currentOf(record)?.tags });
      });
    },

    async merge(certName, chainPem) {
      const chain = parseChain(where(certName), chainPem);
      const leaf = parseX509(chain[0] as string);
      return locked(certName, async () => {
        const record = await load(certName);
        const current = currentOf(record);
        // merged by an earlier attempt (the record is written in one step, tags included): nothing left to do
        if (current && thumbprintOf(leafOf(record, current)) === thumbprintOf(leaf)) return toState(record);
        const pending = record.pending;
        if (!pending)
          throw nonRetryable(
            'NoPendingOperation',
            `${where(certName)}: no operation is in progress to merge into. Start a renewal first.`,
          );
        const key = await store.readKey(certName, pending.version);
        if (!spkiOf(key).equals(leaf.publicKey.export({ type: 'spki', format: 'der' })))
          throw nonRetryable(
            'KeyMismatch',
            `${where(certName)}: refused to merge: the leaf certificate's public key is not the key of the pending ` +
              `request. The CA issued for another CSR; request a certificate for the current CSR.`,
          );
        const merged: VersionRecord = {
          version: pending.version,
          chainPem: chain,
          // Key Vault semantics: the previous version's tags (e.g. Recipient) win over the operation's
          tags: { ...pending.tags, ...current?.tags },
          createdOn: now().toISOString(),
          exportable: record.policy.key.exportable,
        };
        const next: CertificateRecord = {
          ...record,
          versions: [...record.versions, merged],
          current: merged.version,
          pending: null,
        };
        await store.writeCertificate(next);
        return toState(next);
      });
    },

    async cancelRenewal(certName) {
      checkName(vault, 'certificate', certName);
      await locked(certName, async () => {
        const record = await store.readCertificate(certName);
        if (!record?.pending) return;
        await store.writeCertificate({ ...record, pending: null });
        await store.removeKey(certName, record.pending.version);
      });
    },

    async exportSecret(certName, version) {
      const record = await load(certName);
      const found = record.versions.find((v) => v.version === version);
      if (!found)
        throw nonRetryable('SecretNotFound', `${where(certName)}: there is no merged version '${version}'.`);
      if (!found.exportable)
        throw nonRetryable(
          'KeyNotExportable',
          `${where(certName)}: the private key of version ${version} is not exportable (policy key.exportable is ` +
            `false); a file target cannot be served from it.`,
        );
      const key = await store.readKey(certName, version);
      if (!spkiOf(key).equals(leafOf(record, found).publicKey.export({ type: 'spki', format: 'der' })))
        throw vaultCorrupt(
          vault,
          store.recordFile(certName),
          `the chain of version ${version} does not belong to that version's private key`,
        );
      return {
        keyPem: key.export({ type: 'pkcs8', format: 'pem' }) as string,
        chainPem: [...found.chainPem],
      };
    },

    async listVersions(certName) {
      const record = await load(certName);
      return record.versions
        .map((v) => {
          const leaf = leafOf(record, v);
          return {
            version: v.version,
            thumbprint: thumbprintOf(leaf),
            notBefore: new Date(leaf.validFrom).toISOString(),
            notAfter: new Date(leaf.validTo).toISOString(),
            createdOn: v.createdOn,
            tags: { ...v.tags },
            current: v.version === record.current,
          };
        })
        .reverse();
    },

    async updateTags(certName, version, tags) {
      await locked(certName, async () => {
        const record = await load(certName);
        if (!record.versions.some((v) => v.version === version))
          throw nonRetryable(
            'VersionNotFound',
            `${where(certName)}: there is no merged version '${version}'.`,
          );
        await store.writeCertificate({
          ...record,
          versions: record.versions.map((v) => (v.version === version ? { ...v, tags: { ...tags } } : v)),
        });
      });
    },

    async getSecret(name) {
      checkName(vault, 'secret', name);
      return store.readSecret(name);
    },

    async setSecret(name, value) {
      checkName(vault, 'secret', name);
      if (typeof value !== 'string')
        throw nonRetryable(
          'InvalidSecret',
          `local vault '${vault}': secret '${name}': expected a string value.`,
        );
      await store.writeSecret(name, value);
    },
  };
}

function currentOf(record: CertificateRecord): VersionRecord | undefined {
  return record.versions.find((v) => v.version === record.current);
}

/** The chain as normalised PEM certificates, leaf first; bundles inside one string are split. */
function parseChain(where: string, chainPem: string[]): string[] {
  const pems = (Array.isArray(chainPem) ? chainPem : []).flatMap((p) =>
    typeof p === 'string' ? splitPemChain(p) : [],
  );
  if (pems.length === 0)
    throw nonRetryable(
      'InvalidChain',
      `${where}: merge expects a PEM certificate chain (leaf first), got no CERTIFICATE block.`,
    );
  pems.forEach((pem, i) => {
    try {
      parseX509(pem);
    } catch {
      throw nonRetryable(
        'InvalidChain',
        `${where}: chain certificate #${i + 1} is not a valid X.509 certificate.`,
      );
    }
  });
  return pems;
}

function sanDnsNames(cert: X509Certificate): string[] {
  const names = cert.subjectAltName?.split(', ') ?? [];
  return names.flatMap((entry) => (entry.startsWith('DNS:') ? [entry.slice(4)] : []));
}

/**
 * Only the snapshot's own fields, without undefined ones: what describe returns before and after a restart.
 * The lifetime action is not stored: describe adds it.
 */
function copyPolicy(p: CertificatePolicySnapshot): CertificatePolicySnapshot {
  const { keyType, keySize, curve, reuseKey, exportable } = p.key;
  const copy: CertificatePolicySnapshot = {
    subject: p.subject,
    dnsNames: [...p.dnsNames],
    // the local vault only knows the Unknown issuer: Certflow's CAs issue every version
    issuerName: 'Unknown',
    key: { keyType, keySize, curve, reuseKey, exportable },
    validityInMonths: p.validityInMonths,
    lifetimePercentage: p.lifetimePercentage,
    daysBeforeExpiry: p.daysBeforeExpiry,
  };
  return JSON.parse(JSON.stringify(copy)) as CertificatePolicySnapshot;
}
