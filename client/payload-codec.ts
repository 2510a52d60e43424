/**
 * Optional encryption of everything Certflow puts into Temporal (workflow inputs, results, signals, queries,
 * memos): a PayloadCodec (@temporalio/common) that seals each payload with AES-256-GCM, so that a history is
 * encrypted at rest on the Temporal server and in its database. The worker, the client and the CLI use the same
 * data converter (`dataConverterOf`) and must hold the same keys.
 *
 * Keys rotate: each encrypted payload names the key it was sealed with (`encryption-key-id` in its metadata);
 * the first key of the ring seals, every key of the ring opens. Payloads that are not encrypted (a history
 * written before encryption was turned on) pass through unchanged, so running workflows keep working.
 * A payload sealed with a key id the ring does not hold is an error naming that key id.
 *
 * Layout of the data: IV (12) | tag (16) | ciphertext of the protobuf-encoded original Payload; the key id is
 * authenticated as additional data.
 */
import crypto from 'node:crypto';
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';

// a CommonJS package: its named exports are not visible to Node's ESM loader, the default export is
const { temporal } = proto;

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
const CIPHER_METADATA = 'encryption-cipher';
const CIPHER = 'AES-256-GCM';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface PayloadKey {
  /** A short name for the key, stored with each payload (not secret): "2025-06", "k2". */
  id: string;
  /** 32 bytes. */
  key: Buffer;
}

const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

export class AesGcmPayloadCodec implements PayloadCodec {
  private readonly byId: Map<string, Buffer>;
  private readonly current: PayloadKey;

  /** `keys[0]` seals; all of them open. */
  constructor(keys: PayloadKey[]) {
    if (keys.length === 0) throw new Error('payload encryption: expected at least one key');
    for (const k of keys) {
      if (!KEY_ID.test(k.id))
        throw new Error(
          `payload encryption: key id ${JSON.stringify(k.id)}: expected 1-64 letters, digits, . _ -`,
        );
      if (!Buffer.isBuffer(k.key) || k.key.length !== 32)
        throw new Error(`payload encryption: key "${k.id}": expected 32 bytes (AES-256)`);
    }
    this.byId = new Map(keys.map((k) => [k.id, k.key]));
    if (this.byId.size !== keys.length) throw new Error('payload encryption: expected each key id once');
    this.current = keys[0]!;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => {
      const iv = crypto.randomBytes(IV_BYTES);
      const cipher = crypto.createCipheriv('aes-256-gcm', this.current.key, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(Buffer.from(this.current.id));
      const plain = temporal.api.common.v1.Payload.encode(p).finish();
      const body = Buffer.concat([cipher.update(plain), cipher.final()]);
      return {
        metadata: {
          encoding: Buffer.from(ENCRYPTED_ENCODING),
          [KEY_ID_METADATA]: Buffer.from(this.current.id),
          [CIPHER_METADATA]: Buffer.from(CIPHER),
        },
        data: Buffer.concat([iv, cipher.getAuthTag(), body]),
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => {
      if (text(p.metadata?.encoding) !== ENCRYPTED_ENCODING) return p;
      const id = text(p.metadata?.[KEY_ID_METADATA]) ?? '';
      const key = this.byId.get(id);
      if (!key)
        throw new Error(
          `payload encrypted with key id "${id}", which is not among this process's payload keys (${[...this.byId.keys()].join(', ')}): add it to the key ring to read it`,
        );
      const data = Buffer.from(p.data ?? new Uint8Array());
      const decipher = crypto.createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES), {
        authTagLength: TAG_BYTES,
      });
      decipher.setAAD(Buffer.from(id));
      decipher.setAuthTag(data.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      let plain: Buffer;
      try {
        plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
      } catch {
        throw new Error(
          `payload encrypted with key id "${id}" does not open: altered, or another key of that id`,
        );
      }
      return temporal.api.common.v1.Payload.decode(plain) as Payload;
    });
  }
}

const text = (b: Uint8Array | null | undefined) => (b ? Buffer.from(b).toString('utf8') : undefined);

/** The data converter for worker, client and CLI alike: encrypted payloads when there are keys. */
export function dataConverterOf(keys: PayloadKey[] | undefined): DataConverter | undefined {
  return keys?.length ? { payloadCodecs: [new AesGcmPayloadCodec(keys)] } : undefined;
}

/** 32 bytes from base64 or hex (like the local vault's key); the error names where it came from, never the value. */
export function payloadKeyBytes(value: string, from: string): Buffer {
  const raw = value.trim();
  if (/^[0-9a-fA-F]{64}$/.test(raw)) return Buffer.from(raw, 'hex');
  const bytes = /^[A-Za-z0-9+/_-]+={0,2}$/.test(raw) ? Buffer.from(raw, 'base64') : Buffer.alloc(0);
  if (bytes.length === 32) return bytes;
  throw new Error(
    `${from}: expected 32 random bytes as base64 (44 characters) or hex (64), e.g. 'openssl rand -base64 32'`,
  );
}

/**
 * A key ring in one string, for the CLI's environment (CERTFLOW_TEMPORAL_PAYLOAD_KEYS): `id=key,id=key`, the
 * first one sealing. Errors name the variable and the key id, never a key.
 */
export function parseKeyRing(ring: string, variable: string): PayloadKey[] {
  return ring
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part, i) => {
      const eq = part.indexOf('=');
      if (eq <= 0)
        throw new Error(`${variable}: entry ${i + 1}: expected id=key (base64 or hex of 32 bytes)`);
      const id = part.slice(0, eq).trim();
      return { id, key: payloadKeyBytes(part.slice(eq + 1), `${variable}: key "${id}"`) };
    });
}
