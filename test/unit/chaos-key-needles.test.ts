/** chaos/key-needles.ts: a private key is found however it is written, and nothing public matches. */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { privateKeyNeedles, secretValueNeedles } from '../../chaos/key-needles';

const body = (pem: string) =>
  pem
    .split('\n')
    .filter((l) => l && !l.startsWith('-----'))
    .join('');
const found = (needles: string[], text: string) => needles.some((n) => text.includes(n));

describe.each([
  ['EC P-256', () => generateKeyPairSync('ec', { namedCurve: 'P-256' })],
  ['EC P-384', () => generateKeyPairSync('ec', { namedCurve: 'P-384' })],
  ['RSA 2048', () => generateKeyPairSync('rsa', { modulusLength: 2048 })],
])('privateKeyNeedles (%s)', (_name, make) => {
  const { privateKey, publicKey } = make() as { privateKey: KeyObject; publicKey: KeyObject };
  const needles = privateKeyNeedles(privateKey);
  const other =
    'asymmetricKeyType' in privateKey && privateKey.asymmetricKeyType === 'rsa' ? 'pkcs1' : 'sec1';

  it('finds the key in its PEM bodies, its DER as base64 or hex, and its JWK', () => {
    const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    expect(found(needles, body(pkcs8))).toBe(true);
    expect(found(needles, body(privateKey.export({ type: other as 'sec1', format: 'pem' }) as string))).toBe(
      true,
    );
    expect(found(needles, privateKey.export({ type: 'pkcs8', format: 'der' }).toString('base64'))).toBe(true);
    expect(found(needles, privateKey.export({ type: 'pkcs8', format: 'der' }).toString('hex'))).toBe(true);
    expect(found(needles, JSON.stringify(privateKey.export({ format: 'jwk' })))).toBe(true);
    // the same needles from the PEM text and from the PKCS#8 DER (how the Key Vault test server keeps keys)
    expect(privateKeyNeedles(pkcs8).sort()).toEqual([...needles].sort());
    expect(privateKeyNeedles(privateKey.export({ type: 'pkcs8', format: 'der' })).sort()).toEqual(
      [...needles].sort(),
    );
  });

  it('matches nothing public, nor another key of the same type', () => {
    expect(found(needles, publicKey.export({ type: 'spki', format: 'der' }).toString('base64'))).toBe(false);
    expect(found(needles, JSON.stringify(publicKey.export({ format: 'jwk' })))).toBe(false);
    const another = (make() as { privateKey: KeyObject }).privateKey;
    expect(found(needles, body(another.export({ type: 'pkcs8', format: 'pem' }) as string))).toBe(false);
  });
});

describe('secretValueNeedles', () => {
  it('takes the key out of a PEM secret, a stretch of a long value, a short value whole', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    expect(secretValueNeedles(`cert\n${pem}`)).toEqual(privateKeyNeedles(privateKey));
    const long = 'x'.repeat(20) + 'the-middle-of-a-long-secret-value' + 'y'.repeat(20);
    expect(long).toContain(secretValueNeedles(long)[0]);
    expect(secretValueNeedles(long)[0]).toHaveLength(32);
    expect(secretValueNeedles('sixteen-chars-ok')).toEqual(['sixteen-chars-ok']);
    expect(secretValueNeedles('short')).toEqual([]);
  });
});
