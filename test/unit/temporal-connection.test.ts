/**
 * The Temporal connection's guard rails: plaintext gRPC beyond loopback refused unless said otherwise (worker
 * configuration, worker connection options, CLI), and the payload codec's key handling (rotation, unknown key
 * ids, tampering, plaintext histories from before encryption).
 */
import crypto from 'node:crypto';
import type { Payload } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { hostOfAddress, isLoopbackHost } from '../../activities/loopback';
import { connectClient } from '../../client/connect';
import { AesGcmPayloadCodec, parseKeyRing } from '../../client/payload-codec';
import { ConfigError, parseConfig } from '../../worker/config';
import { connectionOptions, payloadKeysOf } from '../../worker/connect';

const problems = (temporal: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) => {
  try {
    parseConfig({ temporal }, env);
    return [];
  } catch (err) {
    return (err as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
  }
};

describe('plaintext to Temporal', () => {
  it('tells loopback from the rest by the text alone', () => {
    for (const h of [
      '127.0.0.1',
      '127.9.9.9',
      'localhost',
      'LOCALHOST.',
      'api.localhost',
      '::1',
      '[::1]',
      '::ffff:127.0.0.1',
    ])
      expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['10.0.0.4', 'temporal', 'localhost.example.com', '128.0.0.1', '::2', '0.0.0.0'])
      expect(isLoopbackHost(h), h).toBe(false);
    expect(['127.0.0.1:7233', '[::1]:7233', 'temporal:7233', '::1'].map(hostOfAddress)).toEqual([
      '127.0.0.1',
      '::1',
      'temporal',
      '::1',
    ]);
  });

  it('is refused by the configuration for an address beyond loopback, naming the way out', () => {
    expect(problems({ address: 'temporal.internal:7233' })).toEqual([
      expect.stringMatching(
        /^temporal\.address: expected a loopback address, or TLS .* temporal\.allowInsecure: true/,
      ),
    ]);
    expect(problems({ address: '127.0.0.1:7233' })).toEqual([]);
    expect(problems({ address: 'localhost:7233' })).toEqual([]);
    expect(problems({ address: 'temporal.internal:7233', allowInsecure: true })).toEqual([]);
    expect(problems({ address: 'temporal.internal:7233', tls: { caFile: '/ca.pem' } })).toEqual([]);
    expect(problems({ address: 'ns.acct.tmprl.cloud:7233', apiKey: { env: 'K' } })).toEqual([]);
    expect(
      problems({ address: 'temporal.internal:7233' }, { CERTFLOW_TEMPORAL_ALLOW_INSECURE: 'true' }),
    ).toEqual([]);
    expect(problems({}, { CERTFLOW_TEMPORAL_ADDRESS: 'temporal:7233' })).toHaveLength(1);
  });

  it('is refused by the worker connection options too', () => {
    const t = parseConfig({ temporal: { address: 'temporal:7233', allowInsecure: true } }, {}).temporal;
    expect(connectionOptions(t, {})).toEqual({ address: 'temporal:7233' });
    expect(() => connectionOptions({ ...t, allowInsecure: false }, {})).toThrow(
      /plaintext gRPC beyond this machine is refused/,
    );
  });

  it('is refused by the CLI unless CERTFLOW_TEMPORAL_ALLOW_INSECURE says otherwise', async () => {
    await expect(connectClient({ address: 'temporal.internal:7233', namespace: 'default' })).rejects.toThrow(
      /refusing plaintext gRPC to temporal\.internal:7233.*CERTFLOW_TEMPORAL_ALLOW_INSECURE=true/,
    );
  });
});

describe('payload codec', () => {
  const k1 = { id: 'k1', key: crypto.randomBytes(32) };
  const k2 = { id: 'k2', key: crypto.randomBytes(32) };
  const json = (v: unknown): Payload => ({
    metadata: { encoding: Buffer.from('json/plain') },
    data: Buffer.from(JSON.stringify(v)),
  });

  it('round-trips, with a fresh IV each time and the key id in the metadata', async () => {
    const codec = new AesGcmPayloadCodec([k1]);
    const [a, b] = await codec.encode([json({ certificateId: 'kv/a' }), json({ certificateId: 'kv/a' })]);
    expect(Buffer.from(a!.metadata!['encryption-key-id']!).toString()).toBe('k1');
    expect(Buffer.from(a!.data!).equals(Buffer.from(b!.data!))).toBe(false);
    const [back] = await codec.decode([a!]);
    expect(JSON.parse(Buffer.from(back!.data!).toString())).toEqual({ certificateId: 'kv/a' });
    expect(Buffer.from(back!.metadata!.encoding!).toString()).toBe('json/plain');
  });

  it('rotates: the new key seals, the old one still opens; an unknown key id is named', async () => {
    const [old] = await new AesGcmPayloadCodec([k1]).encode([json('before')]);
    const rotated = new AesGcmPayloadCodec([k2, k1]);
    expect(Buffer.from((await rotated.decode([old!]))[0]!.data!).toString()).toBe('"before"');
    const [fresh] = await rotated.encode([json('after')]);
    expect(Buffer.from(fresh!.metadata!['encryption-key-id']!).toString()).toBe('k2');
    await expect(new AesGcmPayloadCodec([k1]).decode([fresh!])).rejects.toThrow(
      /key id "k2", which is not among/,
    );
  });

  it('passes through payloads written before encryption; refuses a tampered one', async () => {
    const codec = new AesGcmPayloadCodec([k1]);
    const plain = json({ from: 'before' });
    expect(await codec.decode([plain])).toEqual([plain]);
    const [sealed] = await codec.encode([json('x')]);
    const data = Buffer.from(sealed!.data!);
    data[data.length - 1] = data[data.length - 1]! ^ 1;
    await expect(codec.decode([{ ...sealed!, data }])).rejects.toThrow(/does not open/);
    // the key id is authenticated: relabelling the payload does not help
    const other = new AesGcmPayloadCodec([{ id: 'k9', key: k1.key }]);
    await expect(
      other.decode([
        { ...sealed!, metadata: { ...sealed!.metadata, 'encryption-key-id': Buffer.from('k9') } },
      ]),
    ).rejects.toThrow(/does not open/);
  });

  it('reads key rings and configured keys, naming where a bad key came from and never the key', () => {
    const ring = parseKeyRing(`k2=${k2.key.toString('base64')}, k1=${k1.key.toString('hex')}`, 'VAR');
    expect(ring.map((k) => k.id)).toEqual(['k2', 'k1']);
    expect(ring[1]!.key.equals(k1.key)).toBe(true);
    expect(() => parseKeyRing('k1=short', 'VAR')).toThrow(/^VAR: key "k1": expected 32 random bytes/);
    expect(() => parseKeyRing('nokey', 'VAR')).toThrow(/VAR: entry 1: expected id=key/);
    const t = parseConfig(
      { temporal: { payloadEncryption: { keys: [{ id: 'k1', key: { env: 'PK' } }] } } },
      {},
    ).temporal;
    expect(payloadKeysOf(t, { PK: k1.key.toString('base64') })?.[0]?.key.equals(k1.key)).toBe(true);
    expect(() => payloadKeysOf(t, { PK: 'not-a-key-value' })).toThrow(
      /temporal\.payloadEncryption\.keys\[0\]\.key/,
    );
    try {
      payloadKeysOf(t, { PK: 'not-a-key-value' });
    } catch (err) {
      expect((err as Error).message).not.toContain('not-a-key-value');
    }
  });
});
