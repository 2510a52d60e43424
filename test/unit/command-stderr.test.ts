// What of a command issuer program's stderr may appear in an error message.
import { describe, expect, it } from 'vitest';
import { sanitizedTail } from '../../activities/issuers/command';

describe('sanitizedTail', () => {
  it('removes private key blocks of any kind, also one cut off at the end', () => {
    const stderr =
      'one\n-----BEGIN RSA PRIVATE KEY-----\nQUJD\n-----END RSA PRIVATE KEY-----\ntwo\n' +
      '-----BEGIN ENCRYPTED PRIVATE KEY-----\nREVG\nR0hJ';
    expect(sanitizedTail(stderr)).toBe('one\n[private key removed]\ntwo\n[private key removed]');
  });

  it('keeps the last characters after removing keys, so a key body is never half-shown', () => {
    const stderr = `${'a'.repeat(50)}\n-----BEGIN PRIVATE KEY-----\n${'K'.repeat(2000)}\n-----END PRIVATE KEY-----\nend`;
    const tail = sanitizedTail(stderr, 40);
    expect(tail).not.toContain('K');
    expect(tail.endsWith('[private key removed]\nend')).toBe(true);
    expect(tail.length).toBe(41); // '…' + 40
  });

  it('drops control characters but keeps lines and tabs', () => {
    expect(sanitizedTail('a\u0000b\u001b[31mc\td\r\ne')).toBe('ab[31mc\td\ne');
  });
});
