/**
 * The account key is parsed once (signWithParsedKey): acme-client then signs every request with a KeyObject
 * instead of re-reading the PEM. The JWS must be exactly what acme-client made from the PEM: the same JWK in
 * the header, a signature that verifies with the account's public key (ES256, ES384, RS256; RSA PKCS#1 v1.5 is
 * deterministic, so there the signature is byte for byte the one made from the PEM).
 */
import { createPublicKey, generateKeyPairSync, verify, type JsonWebKey } from 'node:crypto';
import * as acme from 'acme-client';
import { describe, expect, it } from 'vitest';
import { signWithParsedKey } from '../../activities/issuers/acme-http';

interface Jws {
  protected: string;
  payload: string;
  signature: string;
}
interface HttpInternals {
  accountKey: unknown;
  getJwk(): JsonWebKey;
  createSignedBody(url: string, payload: unknown, opts: { nonce: string; kid?: string }): Jws;
}
const httpOf = (c: acme.Client) => (c as unknown as { http: HttpInternals }).http;
const pemOf = (k: ReturnType<typeof generateKeyPairSync>['privateKey']) =>
  k.export({ type: 'pkcs8', format: 'pem' }).toString();

const keys = {
  'EC P-256': () => pemOf(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey),
  'EC P-384': () => pemOf(generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey),
  'RSA 2048': () => pemOf(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey),
};

describe('signWithParsedKey', () => {
  for (const [what, make] of Object.entries(keys)) {
    it(`${what}: same JWK, the key kept as a KeyObject, signatures verify with the account key`, () => {
      const pem = make();
      const fromPem = new acme.Client({ directoryUrl: 'https://ca.invalid/dir', accountKey: pem });
      const parsed = new acme.Client({ directoryUrl: 'https://ca.invalid/dir', accountKey: pem });
      signWithParsedKey(parsed);

      const http = httpOf(parsed);
      expect(Buffer.isBuffer(http.accountKey)).toBe(false);
      expect((http.accountKey as { type?: string }).type).toBe('private');
      expect(http.getJwk()).toEqual(httpOf(fromPem).getJwk());

      const payload = { identifiers: [{ type: 'dns', value: 'a.example' }] };
      const opts = { nonce: 'nonce-1', kid: 'https://ca.invalid/acct/1' };
      const a = httpOf(fromPem).createSignedBody('https://ca.invalid/new-order', payload, opts);
      const b = http.createSignedBody('https://ca.invalid/new-order', payload, opts);
      expect(b.protected).toBe(a.protected);
      expect(b.payload).toBe(a.payload);

      const header = JSON.parse(Buffer.from(b.protected, 'base64url').toString()) as { alg: string };
      const hash = { ES256: 'sha256', ES384: 'sha384', RS256: 'sha256' }[header.alg];
      expect(hash).toBeDefined();
      const pub = createPublicKey(pem);
      const ok = verify(
        hash!,
        Buffer.from(`${b.protected}.${b.payload}`),
        { key: pub, dsaEncoding: 'ieee-p1363' },
        Buffer.from(b.signature, 'base64url'),
      );
      expect(ok).toBe(true);
      if (header.alg === 'RS256') expect(b.signature).toBe(a.signature);
    });
  }

  it('refuses an acme-client whose internals moved, instead of signing some other way', () => {
    const c = new acme.Client({ directoryUrl: 'https://ca.invalid/dir', accountKey: keys['EC P-256']() });
    (c as unknown as { http: unknown }).http = {};
    expect(() => signWithParsedKey(c)).toThrow(/internals changed/);
  });
});
