/**
 * Encryption at rest for the local vault: AES-256-GCM with a random 12-byte IV per write and the 16-byte tag
 * checked on read. Each sealed blob is bound (as additional authenticated data) to what it is and whose it is,
 * e.g. the key of certificate `web` version `ab12...`, so a file copied over another one fails to open.
 *
 * Blob layout: "CFLV1" (format) | IV (12) | tag (16) | ciphertext.
 */
import crypto from 'node:crypto';

export const KEY_VARIABLE = 'CERTFLOW_LOCAL_VAULT_KEY';

const MAGIC = Buffer.from('CFLV1', 'latin1');
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER = MAGIC.length + IV_BYTES + TAG_BYTES;

const EXPECTED =
  'expected 32 random bytes encoded as base64 (44 characters) or hex (64 characters), ' +
  "e.g. the output of 'openssl rand -base64 32'";

/**
 * The vault's encryption key from the environment. The error names the variable and the expected format,
 * never the value.
 */
export function loadEncryptionKey(env: NodeJS.ProcessEnv, variable = KEY_VARIABLE): Buffer {
  const raw = env[variable]?.trim();
  if (!raw) throw new Error(`${variable} is not set: ${EXPECTED}.`);
  if (/^[0-9a-fA-F]{64}$/.test(raw)) return Buffer.from(raw, 'hex');
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(raw)) {
    const bytes = Buffer.from(raw, 'base64');
    if (bytes.length === 32) return bytes;
  }
  throw new Error(`${variable} is not a valid local vault key: ${EXPECTED}.`);
}

export function checkEncryptionKey(key: Buffer, field = 'encryptionKey'): void {
  if (!Buffer.isBuffer(key) || key.length !== 32)
    throw new Error(`${field}: expected a Buffer of 32 bytes (AES-256), got ${describeLength(key)}.`);
}

function describeLength(key: unknown): string {
  return Buffer.isBuffer(key) ? `${key.length} bytes` : typeof key;
}

/** What a blob is bound to, e.g. aad('key', certName, version). Parts never contain NUL (names are validated). */
export function aad(...parts: string[]): Buffer {
  return Buffer.from(['certflow-local-vault/v1', ...parts].join('\0'), 'utf8');
}

export function seal(key: Buffer, plaintext: Buffer, boundTo: Buffer): Buffer {
  const iv = crypto.randomBytes(IV_BYTES);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(boundTo);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([MAGIC, iv, cipher.getAuthTag(), body]);
}

/** Why a blob did not open, for people; never quotes the blob. */
export class SealBroken extends Error {}

export function unseal(key: Buffer, blob: Buffer, boundTo: Buffer): Buffer {
  if (blob.length < HEADER || !blob.subarray(0, MAGIC.length).equals(MAGIC))
    throw new SealBroken('not a sealed local vault file (unknown header or truncated)');
  const iv = blob.subarray(MAGIC.length, MAGIC.length + IV_BYTES);
  const tag = blob.subarray(MAGIC.length + IV_BYTES, HEADER);
  const decipher = crypto.createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(boundTo);
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(blob.subarray(HEADER)), decipher.final()]);
  } catch {
    throw new SealBroken(
      'authentication failed: the file was altered, belongs to another certificate or version, or was written with another key',
    );
  }
}
