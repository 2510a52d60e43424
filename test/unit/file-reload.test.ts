import { X509Certificate, createHash, createPublicKey } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { copyFile, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  bindFiles,
  createFileReloadTarget,
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

/** A public fingerprint of a private key, so that a failed assertion never prints the key itself. */
const keyId = (keyPem: string) =>
  createHash('sha256')
    .update(createPublicKey(keyPem).export({ type: 'spki', format: 'der' }))
    .digest('hex');
const keyIdOf = async (file: string) => keyId(await readFile(file, 'utf8'));

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

  /** A validate command that accepts only the given certificate file content (so a rollback to it validates). */
  async function acceptOnly(t: FileReloadTarget, c: ReturnType<typeof issue>) {
    const accepted = `${path.dirname(t.certPath as string)}-accepted.pem`;
    await writeFile(accepted, c.material.chainPem.join(''));
    return { ...t, validate: { command: '/usr/bin/cmp', args: ['-s', t.certPath as string, accepted] } };
  }

  /** Every file in the directory (name, SHA-256 of the content, mode): what "exactly as before" is checked against. */
  async function dirState(dir: string): Promise<Record<string, { sha256: string; mode: number }>> {
    const out: Record<string, { sha256: string; mode: number }> = {};
    for (const f of (await readdir(dir)).sort()) {
      const p = path.join(dir, f);
      const sha256 = createHash('sha256')
        .update(await readFile(p))
        .digest('hex');
      out[f] = { sha256, mode: (await stat(p)).mode & 0o777 };
    }
    return out;
  }

  function pairTarget(name: string, keepPrevious?: number): { dir: string; t: FileReloadTarget } {
    const dir = scratchDir(name);
    mkdirSync(dir, { recursive: true });
    const t: FileReloadTarget = {
      name,
      certPath: path.join(dir, 'cert.pem'),
      keyPath: path.join(dir, 'key.pem'),
      validate: ok,
      reload: ok,
      ...(keepPrevious === undefined ? {} : { keepPrevious }),
    };
    return { dir, t };
  }

  /** The disk as a crash right after the generations were rotated would leave it (live files copied to .previous). */
  async function rotatedByCrash(t: FileReloadTarget, keep: number) {
    for (const f of [t.keyPath as string, t.certPath as string]) {
      for (let i = keep - 1; i >= 1; i--) {
        const from = i === 1 ? `${f}.previous` : `${f}.previous.${i}`;
        await copyFile(from, `${f}.previous.${i + 1}`).catch(() => undefined);
      }
      await copyFile(f, `${f}.previous`);
    }
  }

  it.each([1, 2])(
    'keepPrevious %i: two rolled-back attempts leave the files and every generation exactly as before',
    async (keep) => {
      const { dir, t } = pairTarget(`file-reload-rollback-gens-${keep}`, keep);
      const [one, two, three, four, five, six] = [issue(), issue(), issue(), issue(), issue(), issue()];
      for (const c of [one, two, three])
        expect((await bindFiles(t, c.material, c.thumbprint)).status).toBe('bound');
      const before = await dirState(dir);
      expect(Object.keys(before)).toHaveLength(2 + 2 * keep);

      const failing = await acceptOnly(t, three);
      for (const c of [four, five]) {
        const out = await bindFiles(failing, c.material, c.thumbprint);
        expect(out).toMatchObject({
          status: 'rolled-back',
          before: three.thumbprint,
          after: three.thumbprint,
        });
      }
      expect(await dirState(dir)).toEqual(before);

      // and `.previous` after the next successful bind is the pair that was live before it
      expect((await bindFiles(t, six.material, six.thumbprint)).status).toBe('bound');
      expect(await fileLeafThumbprint(`${t.certPath}.previous`)).toBe(three.thumbprint);
      expect(await keyIdOf(`${t.keyPath}.previous`)).toBe(keyId(three.material.keyPem));
      if (keep === 2) expect(await fileLeafThumbprint(`${t.certPath}.previous.2`)).toBe(two.thumbprint);
    },
  );

  it('a retry after a crash between rotating and writing does not push a generation out for a duplicate', async () => {
    const { t } = pairTarget('file-reload-crash-rotated', 2);
    const [one, two, three] = [issue(), issue(), issue()];
    for (const c of [one, two]) expect((await bindFiles(t, c.material, c.thumbprint)).status).toBe('bound');
    await rotatedByCrash(t, 2); // live two, .previous two, .previous.2 one

    expect((await bindFiles(t, three.material, three.thumbprint)).status).toBe('bound');
    expect(await fileLeafThumbprint(`${t.certPath}.previous`)).toBe(two.thumbprint);
    expect(await fileLeafThumbprint(`${t.certPath}.previous.2`)).toBe(one.thumbprint);
    expect(await keyIdOf(`${t.keyPath}.previous.2`)).toBe(keyId(one.material.keyPem));
  });

  it('a retry after a crash between the key and certificate renames keeps the last consistent pair', async () => {
    const { dir, t } = pairTarget('file-reload-torn');
    const [one, two, three] = [issue(), issue(), issue()];
    for (const c of [one, two]) expect((await bindFiles(t, c.material, c.thumbprint)).status).toBe('bound');
    // attempt "three" crashed: generations rotated (.previous = two), key renamed into place, certificate not
    await rotatedByCrash(t, 1);
    await writeFile(t.keyPath as string, three.material.keyPem, { mode: 0o600 });

    const failed = await bindFiles(await acceptOnly(t, two), three.material, three.thumbprint);
    expect(failed).toMatchObject({ status: 'rolled-back', before: two.thumbprint, after: two.thumbprint });
    expect(failed.detail).not.toMatch(/BEGIN|PRIVATE/);
    // the rollback put back a pair that belongs together, and two's key survived in .previous
    expect(await keyIdOf(t.keyPath as string)).toBe(keyId(two.material.keyPem));
    expect(await fileLeafThumbprint(t.certPath as string)).toBe(two.thumbprint);
    expect(await keyIdOf(`${t.keyPath}.previous`)).toBe(keyId(two.material.keyPem));
    expect(await fileLeafThumbprint(`${t.certPath}.previous`)).toBe(two.thumbprint);

    // torn again, then a retry that succeeds: .previous is two (the last consistent pair), key and certificate
    await writeFile(t.keyPath as string, three.material.keyPem, { mode: 0o600 });
    const bound = await bindFiles(t, three.material, three.thumbprint);
    expect(bound).toMatchObject({ status: 'bound', before: two.thumbprint, after: three.thumbprint });
    expect(bound.detail).not.toMatch(/BEGIN|PRIVATE/);
    expect(await keyIdOf(`${t.keyPath}.previous`)).toBe(keyId(two.material.keyPem));
    expect(await fileLeafThumbprint(`${t.certPath}.previous`)).toBe(two.thumbprint);
    expect((await stat(`${t.keyPath}.previous`)).mode & 0o777).toBe(0o600);
    expect((await readdir(dir)).sort()).toEqual([
      'cert.pem',
      'cert.pem.previous',
      'key.pem',
      'key.pem.previous',
    ]);
  });

  it('refuses, writing nothing, when the key on disk does not match the certificate and no earlier pair exists', async () => {
    const { dir, t } = pairTarget('file-reload-torn-alone');
    const [one, two, three] = [issue(), issue(), issue()];
    await writeFile(t.certPath as string, one.material.chainPem.join(''), { mode: 0o644 });
    await writeFile(t.keyPath as string, two.material.keyPem, { mode: 0o600 });
    const before = await dirState(dir);

    const out = await bindFiles(t, three.material, three.thumbprint);

    expect(out.status).toBe('failed');
    expect(out.before).toBe(one.thumbprint);
    expect(out.detail).toBe(
      `nothing written: the key in ${t.keyPath} does not match the certificate in ${t.certPath} ` +
        `(an interrupted write?) and there is no matching earlier pair in ${t.keyPath}.previous + ` +
        `${t.certPath}.previous to fall back to; put a matching key and certificate in place`,
    );
    expect(await dirState(dir)).toEqual(before);
  });
});

describe('file targets of one server', () => {
  it('bind one at a time (its validation reads every site), different servers in parallel', async () => {
    const ca = createTestCa();
    const dir = scratchDir('file-reload-serial');
    mkdirSync(dir, { recursive: true });
    // a validation that fails when another one runs at the same time on this server (an exclusive lock file)
    const check = (server: string) => ({
      command: process.execPath,
      args: [
        '-e',
        `const fs=require('fs');const f=${JSON.stringify(path.join(dir, `${server}.lock`))};` +
          `try{fs.writeFileSync(f,'',{flag:'wx'})}catch{process.exit(1)}` +
          `setTimeout(()=>fs.unlinkSync(f),150)`,
      ],
    });
    const { certPem, keyPem } = ca.issueServerCert(['x.test']);
    const thumbprint = thumbprintOf(new X509Certificate(certPem));
    const ctx = {
      certificateId: 'kv/x',
      version: 'v2',
      thumbprint,
      previousThumbprint: null,
      secretId: 'local://kv/secrets/x/v2',
      notAfter: null,
      material: async () => ({ keyPem, chainPem: [certPem, ca.caCertPem] }),
    };
    const target = (server: string, i: number) =>
      createFileReloadTarget({
        name: `${server}-${i}`,
        certPath: path.join(dir, `${server}-${i}.crt`),
        keyPath: path.join(dir, `${server}-${i}.key`),
        validate: check(server),
        reload: { command: '/bin/true', args: [] },
      });
    const targets = [0, 1, 2, 3].flatMap((i) => [target('a', i), target('b', i)]);
    const outcomes = (await Promise.all(targets.map((t) => t.sync(ctx)))).flat();
    expect(outcomes.map((o) => `${o.target}:${o.status}`).filter((s) => !s.endsWith(':bound'))).toEqual([]);
  });
});
