/**
 * The parse cache behind the vault, the chain check and the file targets: the same PEM text gives a certificate
 * equal to a fresh parse, another text never gets an earlier text's certificate, a text that does not parse still
 * throws (and is not kept), and the cache stays bounded.
 */
import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseX509, parsedCount } from '../../activities/verify/parsed';
import { createTestCa } from '../support/test-ca';

describe('parseX509', () => {
  const ca = createTestCa({ keyType: 'ec' });
  const a = ca.issueServerCert(['a.example'], { keyType: 'ec' }).certPem;
  const b = ca.issueServerCert(['b.example'], { keyType: 'ec' }).certPem;

  it('answers as a fresh parse of the same text, and only for that text', () => {
    for (const pem of [a, b, a, b]) {
      const fresh = new X509Certificate(pem);
      const got = parseX509(pem);
      expect(got.raw.equals(fresh.raw)).toBe(true);
      expect(got.fingerprint).toBe(fresh.fingerprint);
    }
    expect(parseX509(a).fingerprint).not.toBe(parseX509(b).fingerprint);
    expect(parseX509(a)).toBe(parseX509(a));
  });

  it('throws for text that is not a certificate, every time, and keeps nothing for it', () => {
    const before = parsedCount();
    for (let i = 0; i < 2; i++) expect(() => parseX509('not a certificate')).toThrow();
    expect(() => parseX509(a.replace(/[A-Za-z]{8}\n/, 'AAAAAAAA\n'))).toThrow();
    expect(parsedCount()).toBe(before);
  });

  it('stays bounded', () => {
    const many = Array.from(
      { length: 40 },
      (_, i) => ca.issueServerCert([`n${i}.example`], { keyType: 'ec' }).certPem,
    );
    // the same certificates written differently (CRLF) are other texts: enough of them to pass the bound
    for (let round = 0; round < 30; round++)
      for (const pem of many)
        parseX509(pem.replace(/\n/g, `${'\r'.repeat(round % 2)}\n`) + ' '.repeat(round));
    expect(parsedCount()).toBeLessThanOrEqual(1024);
    expect(parseX509(a).fingerprint).toBe(new X509Certificate(a).fingerprint);
  });
});
