/**
 * Encryption at rest for the local vault and the dev CA: AES-256-GCM with a random 12-byte IV per write and the
 * 16-byte tag checked on read. Each sealed blob is bound (as additional authenticated data) to what it is and
 * whose it is, e.g. the key of certificate `web` version `ab12...`, so a file copied over another one fails to
 * open. The configured 32-byte key is never used directly: HKDF-SHA256 derives one key per use (`deriveKey`),
 * so the vault's sealing, its record MACs and the dev CA's sealing never share a key.
 *
 * Blob layout: "CFLV2" (format) | IV (12) | tag (16) | ciphertext, sealed with a derived key. "CFLV1" blobs were
 * sealed with the configured key itself (releases before HKDF); `unsealV1` opens them once, to migrate them.
 */
import crypto from 'node:crypto';

export const KEY_VARIABLE = 'CERTFLOW_LOCAL_VAULT_KEY';

const MAGIC_V1 = Buffer.from('CFLV1', 'latin1');
const MAGIC = Buffer.from('CFLV2', 'latin1');
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER = MAGIC.length + IV_BYTES + TAG_BYTES;

/** What a derived key is for; each gets its own key from the configured one. */
export type KeyUse = 'local-vault/seal' | 'local-vault/record-mac' | 'dev-ca/seal';

/** HKDF-SHA256 of the configured key for one use (RFC 5869; the info names the use). */
export function deriveKey(master: Buffer, use: KeyUse): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', master, Buffer.from('certflow'), `certflow/${use}/v1`, 32));
}

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

/** Whether a blob was sealed by a release before HKDF, with the configured key itself. */
export function isSealedV1(blob: Buffer): boolean {
  return blob.length >= HEADER && blob.subarray(0, MAGIC_V1.length).equals(MAGIC_V1);
}

/** Opens a blob of a release before HKDF (header CFLV1), with the configured key: only to migrate it. */
export function unsealV1(masterKey: Buffer, blob: Buffer, boundTo: Buffer): Buffer {
  if (!isSealedV1(blob)) throw new SealBroken('not a sealed file of the earlier format (CFLV1)');
  return open(masterKey, blob, boundTo);
}

export function unseal(key: Buffer, blob: Buffer, boundTo: Buffer): Buffer {
  if (isSealedV1(blob))
    throw new SealBroken(
      'it is sealed in the format before key derivation (CFLV1), which this vault no longer accepts once migrated',
    );
  if (blob.length < HEADER || !blob.subarray(0, MAGIC.length).equals(MAGIC))
    throw new SealBroken('not a sealed local vault file (unknown header or truncated)');
  return open(key, blob, boundTo);
}

function open(key: Buffer, blob: Buffer, boundTo: Buffer): Buffer {
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

/**
 * JSON with object keys sorted, so that a record's MAC does not depend on key order. Hand-written (ten lines)
 * rather than a dependency: records hold only JSON values (strings, numbers, booleans, null, arrays, objects).
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object')
    return `{${Object.keys(value)
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(value);
}

/** HMAC-SHA256 of a record (every field but `mac`), base64. */
export function recordMac(macKey: Buffer, record: Record<string, unknown>): string {
  const { mac: _ignored, ...rest } = record;
  return crypto.createHmac('sha256', macKey).update(canonicalJson(rest)).digest('base64');
}

/** Whether `record.mac` is the record's MAC (constant-time comparison). */
export function macMatches(macKey: Buffer, record: Record<string, unknown>): boolean {
  if (typeof record.mac !== 'string') return false;
  const want = Buffer.from(recordMac(macKey, record), 'base64');
  const given = Buffer.from(record.mac, 'base64');
  return given.length === want.length && crypto.timingSafeEqual(given, want);
}
