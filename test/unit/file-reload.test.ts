import { X509Certificate } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  bindFiles,
  cleanStderr,
  fileLeafThumbprint,
  pemLeafThumbprint,
  type FileReloadTarget,
} from '../../activities/bindings/file-reload';
import { thumbprintOf } from '../../activities/verify/probe';
import { createTestCa } from '../support/test-ca';
import { scratchDir } from '../support/tools';

describe('file-reload helpers', () => {
  it('reads the leaf thumbprint of a PEM (first certificate, key or chain around it)', () => {
    const { certPem, keyPem } = createTestCa().issueServerCert(['x.test']);
    const want = new X509Certificate(certPem).fingerprint.replace(/:/g, '');
    expect(pemLeafThumbprint(`${certPem}\n${keyPem}`)).toBe(want);
    expect(pemLeafThumbprint(keyPem)).toBeNull();
    expect(pemLeafThumbprint('-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----')).toBeNull();
  });

  it('removes PEM blocks from command output, closed or not', () => {
    const out = cleanStderr(
      'error: bad\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\nmore\n-----BEGIN RSA PRIVATE KEY-----\nMIIabc',
    );
    expect(out).toBe('error: bad\n[PEM removed]\nmore\n[PEM removed]');
  });
});

describe('bindFiles without a server (commands /bin/true and /bin/false)', () => {
  const ca = createTestCa();
  const issue = () => {
    const { certPem, keyPem } = ca.issueServerCert(['x.test']);
    return {
      material: { keyPem, chainPem: [certPem, ca.caCertPem] },
      thumbprint: thumbprintOf(new X509Certificate(certPem)),
    };
  };
  const ok = { command: '/bin/true', args: [] };

  it('writes a combined file (chain then key, 0600) and keeps earlier generations', async () => {
    const dir = scratchDir('file-reload-combined');
    mkdirSync(dir, { recursive: true });
    const combinedPath = path.join(dir, 'site.pem');
    const t: FileReloadTarget = { name: 'haproxy', combinedPath, validate: ok, reload: ok, keepPrevious: 2 };
    const [one, two, three] = [issue(), issue(), issue()];

    expect((await bindFiles(t, one.material, one.thumbprint)).status).toBe('bound');
    expect((await bindFiles(t, two.material, two.thumbprint)).status).toBe('bound');
    const out = await bindFiles(t, three.material, three.thumbprint);

    expect(out).toMatchObject({
      status: 'bound',
      before: two.thumbprint,
      after: three.thumbprint,
      binding: combinedPath,
    });
    const text = await readFile(combinedPath, 'utf8');
    expect(text.startsWith('-----BEGIN CERTIFICATE-----\n')).toBe(true);
    expect(text.trimEnd().endsWith('-----END PRIVATE KEY-----')).toBe(true);
    expect(text.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect((await stat(combinedPath)).mode & 0o777).toBe(0o600);
    expect(await fileLeafThumbprint(combinedPath)).toBe(three.thumbprint);
    expect(await fileLeafThumbprint(`${combinedPath}.previous`)).toBe(two.thumbprint);
    expect(await fileLeafThumbprint(`${combinedPath}.previous.2`)).toBe(one.thumbprint);
    expect((await stat(`${combinedPath}.previous.2`)).mode & 0o777).toBe(0o600);
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('removes the files of a first deployment that fails validation, and reports the command', async () => {
    const dir = scratchDir('file-reload-first');
    mkdirSync(dir, { recursive: true });
    const t: FileReloadTarget = {
      name: 'first',
      certPath: path.join(dir, 'cert.pem'),
      keyPath: path.join(dir, 'key.pem'),
      validate: { command: '/bin/sh', args: ['-c', 'echo "config broken" >&2; exit 3'] },
      reload: ok,
    };
    const { material, thumbprint } = issue();
    const out = await bindFiles(t, material, thumbprint);
    expect(out.status).toBe('failed');
    expect(out.detail).toBe(
      `validation failed: 'sh -c echo "config broken" >&2; exit 3' exited with code 3: config broken; ` +
        'removed the new files (there were none before)',
    );
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses a leaf that is not the expected thumbprint, and rejects a half-configured target', async () => {
    const dir = scratchDir('file-reload-refuse');
    const { material } = issue();
    const t: FileReloadTarget = {
      name: 'x',
      certPath: path.join(dir, 'c.pem'),
      keyPath: path.join(dir, 'k.pem'),
      validate: ok,
      reload: ok,
    };
    const out = await bindFiles(t, material, 'AB'.repeat(20));
    expect(out.status).toBe('failed');
    expect(out.detail).toMatch(/^nothing written: the leaf is [0-9A-F]{40}, expected (AB){20}$/);

    await expect(bindFiles({ ...t, keyPath: 'relative/key.pem' }, material, 'AB')).rejects.toMatchObject({
      type: 'BindingConfigInvalid',
      nonRetryable: true,
    });
  });
});
