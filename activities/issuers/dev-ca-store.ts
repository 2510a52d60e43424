/**
 * The dev CA's root and intermediate, made on first use and kept in one file, `ca.json`, in the CA directory
 * (directory 0700, files 0600), plus `root.pem` for people who want to trust it. Both CA keys are ECDSA P-256.
 * With an encryption key the CA keys are sealed with AES-256-GCM (bound to their role, so swapping them fails)
 * under a key derived from it for this use only (HKDF, local-crypto.ts): a local vault configured with the same
 * key never shares a key with the dev CA. Keys sealed by an earlier release with the configured key itself are
 * re-sealed the first time they are opened. Without an encryption key the CA keys are plain PKCS#8 PEM,
 * protected by file permissions only: acceptable for a dev CA, which is what this is. Never use it as a
 * production CA.
 *
 * Two workers starting on the same directory at once must not end up with two CAs: each writes its candidate
 * to a private file and hard-links it to `ca.json`, which fails if the other was first; the loser loads the
 * winner's. A file that does not open, or whose keys do not fit its certificates, is reported, never replaced.
 */
import 'reflect-metadata'; // @peculiar/x509 2.x needs a Reflect polyfill loaded first
import * as x509 from '@peculiar/x509';
import crypto, { webcrypto, X509Certificate } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { ApplicationFailure } from '@temporalio/common';
import { aad, deriveKey, isSealedV1, seal, SealBroken, unseal, unsealV1 } from '../vault/local-crypto';
import { createLocalFiles, type LocalFiles } from '../vault/local-files';

export interface DevCaMaterial {
  rootPem: string;
  intermediatePem: string;
  intermediate: x509.X509Certificate;
  intermediateKey: webcrypto.CryptoKey;
}

export interface DevCaStoreOptions {
  /** Shown in the CA names, e.g. "Certflow dev root CA (demo) 3f2a9c". */
  name: string;
  dir: string;
  encryptionKey?: Buffer;
  now: () => Date;
}

const CA_FILE = 'ca.json';
const ROOT_FILE = 'root.pem';
const FORMAT = 'certflow-dev-ca/v1';
const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' };
export const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' };
const YEAR_MS = 365 * 86_400_000;
const ROOT_LIFETIME_MS = 20 * YEAR_MS;
const INTERMEDIATE_LIFETIME_MS = 10 * YEAR_MS;

/** A CA key as stored: sealed (base64 of the AES-GCM blob) or PKCS#8 PEM. */
type StoredKey = { sealed: string } | { pem: string };

interface CaFile {
  format: typeof FORMAT;
  rootCertPem: string;
  rootKey: StoredKey;
  intermediateCertPem: string;
  intermediateKey: StoredKey;
}

export function devCaFailure(
  type: 'DevCaMisconfigured' | 'DevCaCorrupt',
  message: string,
): ApplicationFailure {
  return ApplicationFailure.create({ message, type, nonRetryable: true });
}

/** A random 16-byte serial, positive (top bit clear) and exactly 16 bytes long (second bit set). */
export function randomSerial(): string {
  const bytes = crypto.randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return bytes.toString('hex');
}

export async function loadOrCreateDevCa(opts: DevCaStoreOptions): Promise<DevCaMaterial> {
  const files = createLocalFiles(opts.dir);
  const where = files.pathOf(CA_FILE);
  const material = await withFsErrors(opts.dir, async () => {
    await files.mkdir('');
    const existing = await files.read(CA_FILE);
    if (existing) {
      const opened = await openCaFile(existing, where, opts.encryptionKey);
      // keys sealed by an earlier release with the configured key itself: re-sealed with the derived key
      if (opened.migrated) await files.write(CA_FILE, JSON.stringify(opened.migrated, null, 2));
      return opened.material;
    }
    const created = await createCaFile(opts);
    const winner = await publishOnce(files, JSON.stringify(created, null, 2));
    return (await openCaFile(winner, where, opts.encryptionKey)).material;
  });
  await withFsErrors(opts.dir, async () => {
    if ((await files.read(ROOT_FILE))?.toString('utf8') !== material.rootPem)
      await files.write(ROOT_FILE, material.rootPem);
  });
  return material;
}

async function withFsErrors<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ApplicationFailure) throw err;
    const e = err as NodeJS.ErrnoException;
    throw devCaFailure(
      'DevCaMisconfigured',
      `dev CA directory ${dir} is not usable (${e.code ?? 'error'}: ${e.message}); expected a directory this worker can create and write`,
    );
  }
}

/** Links our candidate to ca.json unless another process was first; returns whichever won. */
async function publishOnce(files: LocalFiles, text: string): Promise<Buffer> {
  const candidate = `${CA_FILE}.${crypto.randomBytes(6).toString('hex')}.new`;
  await files.write(candidate, text);
  try {
    await fs.link(files.pathOf(candidate), files.pathOf(CA_FILE));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    await files.remove(candidate);
  }
  const winner = await files.read(CA_FILE);
  if (!winner) throw new Error(`${files.pathOf(CA_FILE)} vanished right after it was written`);
  return winner;
}

async function createCaFile(opts: DevCaStoreOptions): Promise<CaFile> {
  const subtle = webcrypto.subtle;
  const gen = () =>
    subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']) as Promise<webcrypto.CryptoKeyPair>;
  const [rootKeys, intermediateKeys] = await Promise.all([gen(), gen()]);
  const tag = crypto.randomBytes(3).toString('hex');
  const rootName = caName(`Certflow dev root CA (${opts.name}) ${tag}`);
  const notBefore = new Date(opts.now().getTime() - 3_600_000);
  const rootSki = await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey, false, webcrypto);
  const usage = new x509.KeyUsagesExtension(
    x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
    true,
  );
  const root = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: rootName,
      issuer: rootName,
      notBefore,
      notAfter: new Date(notBefore.getTime() + ROOT_LIFETIME_MS),
      publicKey: rootKeys.publicKey,
      signingKey: rootKeys.privateKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true), usage, rootSki],
    },
    webcrypto,
  );
  const intermediate = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: caName(`Certflow dev intermediate CA (${opts.name}) ${tag}`),
      issuer: root.subjectName,
      notBefore,
      notAfter: new Date(notBefore.getTime() + INTERMEDIATE_LIFETIME_MS),
      publicKey: intermediateKeys.publicKey,
      signingKey: rootKeys.privateKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        usage,
        await x509.SubjectKeyIdentifierExtension.create(intermediateKeys.publicKey, false, webcrypto),
        new x509.AuthorityKeyIdentifierExtension(rootSki.keyId),
      ],
    },
    webcrypto,
  );
  const store = async (key: webcrypto.CryptoKey, role: string): Promise<StoredKey> => {
    const der = Buffer.from(await subtle.exportKey('pkcs8', key));
    return opts.encryptionKey
      ? { sealed: seal(sealKeyOf(opts.encryptionKey), der, keyBinding(role)).toString('base64') }
      : {
          pem: crypto
            .createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
            .export({ type: 'pkcs8', format: 'pem' }) as string,
        };
  };
  return {
    format: FORMAT,
    rootCertPem: pemOf(root),
    rootKey: await store(rootKeys.privateKey, 'root'),
    intermediateCertPem: pemOf(intermediate),
    intermediateKey: await store(intermediateKeys.privateKey, 'intermediate'),
  };
}

function caName(commonName: string): x509.Name {
  return new x509.Name([{ CN: [commonName] }, { O: ['Certflow dev CA'] }]);
}

export function pemOf(cert: x509.X509Certificate): string {
  return `${cert.toString('pem').trim()}\n`;
}

function keyBinding(role: string): Buffer {
  return aad('dev-ca', `${role}-key`);
}

const sealKeyOf = (encryptionKey: Buffer) => deriveKey(encryptionKey, 'dev-ca/seal');

async function openCaFile(
  raw: Buffer,
  where: string,
  encryptionKey: Buffer | undefined,
): Promise<{ material: DevCaMaterial; migrated?: CaFile }> {
  const sealKey = encryptionKey ? sealKeyOf(encryptionKey) : undefined;
  let migrated = false;
  const corrupt = (what: string) =>
    devCaFailure(
      'DevCaCorrupt',
      `dev CA file ${where} ${what}; it was not replaced: restore it, or move the directory away to start a new dev CA (and re-trust its root)`,
    );
  let file: CaFile;
  try {
    file = JSON.parse(raw.toString('utf8')) as CaFile;
  } catch {
    throw corrupt('is not valid JSON');
  }
  if (
    file?.format !== FORMAT ||
    typeof file.rootCertPem !== 'string' ||
    typeof file.intermediateCertPem !== 'string'
  )
    throw corrupt(
      `is not a dev CA file (expected format '${FORMAT}' with rootCertPem and intermediateCertPem)`,
    );

  const keyDer = (stored: StoredKey | undefined, role: string): Buffer => {
    if (stored && 'sealed' in stored && typeof stored.sealed === 'string') {
      if (!encryptionKey || !sealKey)
        throw devCaFailure(
          'DevCaMisconfigured',
          `the CA keys in ${where} are encrypted: pass the encryptionKey they were written with`,
        );
      try {
        const blob = Buffer.from(stored.sealed, 'base64');
        if (!isSealedV1(blob)) return unseal(sealKey, blob, keyBinding(role));
        migrated = true;
        return unsealV1(encryptionKey, blob, keyBinding(role));
      } catch (err) {
        if (err instanceof SealBroken)
          throw corrupt(`holds a ${role} key that does not open: ${err.message}`);
        throw err;
      }
    }
    if (stored && 'pem' in stored && typeof stored.pem === 'string') {
      if (encryptionKey)
        throw devCaFailure(
          'DevCaMisconfigured',
          `the CA keys in ${where} were written unencrypted but an encryptionKey is configured: ` +
            'omit encryptionKey, or move the directory away to start a new, encrypted dev CA',
        );
      try {
        return crypto.createPrivateKey(stored.pem).export({ type: 'pkcs8', format: 'der' });
      } catch {
        throw corrupt(`holds a ${role} key that is not a readable PKCS#8 PEM key`);
      }
    }
    throw corrupt(`has no ${role} key (expected 'sealed' or 'pem')`);
  };

  let root: X509Certificate;
  let intermediate: X509Certificate;
  try {
    root = new X509Certificate(file.rootCertPem);
    intermediate = new X509Certificate(file.intermediateCertPem);
  } catch {
    throw corrupt('holds a certificate that does not parse');
  }
  const rootKeyDer = keyDer(file.rootKey, 'root');
  const intermediateKeyDer = keyDer(file.intermediateKey, 'intermediate');
  const spki = (k: crypto.KeyObject) => k.export({ type: 'spki', format: 'der' });
  const publicOf = (der: Buffer) =>
    spki(crypto.createPublicKey(crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })));
  if (
    !publicOf(rootKeyDer).equals(spki(root.publicKey)) ||
    !publicOf(intermediateKeyDer).equals(spki(intermediate.publicKey))
  )
    throw corrupt('holds a key that does not belong to its certificate');
  if (!intermediate.checkIssued(root) || !intermediate.verify(root.publicKey))
    throw corrupt('holds an intermediate that the root did not issue');

  const intermediateKey = await webcrypto.subtle.importKey(
    'pkcs8',
    intermediateKeyDer,
    KEY_ALGORITHM,
    false,
    ['sign'],
  );
  const material = {
    rootPem: file.rootCertPem,
    intermediatePem: file.intermediateCertPem,
    intermediate: new x509.X509Certificate(file.intermediateCertPem),
    intermediateKey,
  };
  if (!migrated || !sealKey) return { material };
  const reseal = (der: Buffer, role: string): StoredKey => ({
    sealed: seal(sealKey, der, keyBinding(role)).toString('base64'),
  });
  return {
    material,
    migrated: {
      ...file,
      rootKey: reseal(rootKeyDer, 'root'),
      intermediateKey: reseal(intermediateKeyDer, 'intermediate'),
    },
  };
}
