// The pure parts of the SSH host target: host key pins, fingerprints as OpenSSH prints them, and the quoting of a
// command's words for the remote POSIX shell (checked against a real /bin/sh).
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkPrivateKey, parseHostKeys, sshFingerprint } from '../../activities/bindings/ssh-connection';
import { shellQuote } from '../../activities/bindings/ssh-file-host';

const blob = Buffer.from('AAAAC3NzaC1lZDI1NTE5AAAAIFaKEkeyFaKEkeyFaKEkeyFaKEkeyFaKEkeyFaKEkey0', 'base64');
const line = `ssh-ed25519 ${blob.toString('base64')} root@web-1`;

describe('host key pins', () => {
  it('fingerprints a key blob as ssh-keygen -l does (SHA256, base64 without padding)', () => {
    const digest = createHash('sha256').update(blob).digest('base64');
    expect(sshFingerprint(blob)).toBe(`SHA256:${digest.replace(/=+$/, '')}`);
    expect(sshFingerprint(blob)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it('takes fingerprints and .pub lines; a .pub line limits the negotiation to its type', () => {
    const fp = sshFingerprint(blob);
    expect(parseHostKeys([line])).toEqual({ fingerprints: new Set([fp]), types: ['ssh-ed25519'] });
    const rsa = `ssh-rsa ${Buffer.from('rsa-key-blob').toString('base64')}`;
    expect(parseHostKeys([line, rsa]).types).toEqual([
      'ssh-ed25519',
      'rsa-sha2-512',
      'rsa-sha2-256',
      'ssh-rsa',
    ]);
    // a fingerprint does not say its type: every type stays on offer
    expect(parseHostKeys([fp, rsa]).types).toEqual([]);
  });

  it('refuses anything else, and an empty list', () => {
    expect(() => parseHostKeys(['MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48'])).toThrow(
      /expected a host key/,
    );
    expect(() => parseHostKeys(['*'])).toThrow(/expected a host key/);
    expect(() => parseHostKeys([])).toThrow(/at least one pinned host key/);
  });
});

describe('private keys', () => {
  it('accepts what ssh2 reads and refuses PKCS#8 without echoing the key', () => {
    const sec1 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
      type: 'sec1',
      format: 'pem',
    });
    expect(checkPrivateKey(sec1 as string)).toBe(true);
    const pkcs8 = generateKeyPairSync('ed25519').privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    }) as string;
    let message = '';
    try {
      checkPrivateKey(pkcs8);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^the private key cannot be used \(Unsupported key format\)/);
    expect(message).not.toContain(pkcs8.split('\n')[1]);
  });
});

describe('shellQuote', () => {
  it('keeps every word one argument for a POSIX shell, whatever it holds', () => {
    const words = ['-t', '/etc/nginx/site a.conf', "it's", '$HOME', '`id`', 'a;b', '*', '', 'x"y', 'ü'];
    const out = execFileSync('/bin/sh', ['-c', `printf '%s\\n' ${words.map(shellQuote).join(' ')}`], {
      encoding: 'utf8',
      env: { PATH: '/usr/bin:/bin', HOME: '/nowhere' },
    });
    expect(out.split('\n').slice(0, -1)).toEqual(words);
    expect(shellQuote('/usr/sbin/nginx')).toBe('/usr/sbin/nginx'); // plain words stay readable
  });
});
