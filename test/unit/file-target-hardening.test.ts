// The file target's guard rails (issue 14): what its commands may see and leave behind, what it refuses to read or
// write, and how loose a key file may be. Commands are /bin/sh one-liners; no server is needed.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bindFiles, fileLeafThumbprint, type FileReloadTarget } from '../../activities/bindings/file-reload';
import { thumbprintOf } from '../../activities/verify/probe';
import { waitFor } from '../support/proc';
import { createTestCa } from '../support/test-ca';
import { scratchDir, tools } from '../support/tools';

const ca = createTestCa();
const issue = () => {
  const { certPem, keyPem } = ca.issueServerCert(['x.test']);
  return {
    material: { keyPem, chainPem: [certPem, ca.caCertPem] },
    thumbprint: thumbprintOf(new X509Certificate(certPem)),
  };
};
const ok = { command: '/bin/true', args: [] };
const sh = (script: string, timeoutMs?: number) => ({
  command: '/bin/sh',
  args: ['-c', script],
  ...(timeoutMs ? { timeoutMs } : {}),
});

function pairTarget(name: string, overrides: Partial<FileReloadTarget> = {}) {
  const dir = scratchDir(name);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const t: FileReloadTarget = {
    name,
    certPath: path.join(dir, 'cert.pem'),
    keyPath: path.join(dir, 'key.pem'),
    validate: ok,
    reload: ok,
    ...overrides,
  };
  return { dir, t };
}

/** PIDs of processes a test's command left behind, checked to be ours (cmdline) before anything is signalled. */
const leftovers: number[] = [];
const alive = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep\u000045');
  } catch {
    return false;
  }
};
afterAll(() => {
  for (const pid of leftovers) if (alive(pid)) process.kill(pid, 'SIGKILL');
});

describe('the commands a file target runs', () => {
  it("see an allow-listed environment, not the worker's secrets", async () => {
    process.env.CERTFLOW_TEST_WORKER_SECRET = 'not-for-nginx';
    try {
      const { t } = pairTarget('file-env', {
        // fails when the variable is visible, and when PATH is gone (sh could not find 'test' otherwise)
        validate: sh(
          'test -z "$CERTFLOW_TEST_WORKER_SECRET" && test -n "$PATH" && command -v cat >/dev/null',
        ),
      });
      const c = issue();
      const out = await bindFiles(t, c.material, c.thumbprint);
      expect(out.detail).not.toContain('not-for-nginx');
      expect(out.status).toBe('bound');
    } finally {
      delete process.env.CERTFLOW_TEST_WORKER_SECRET;
    }
  });

  it('are killed with their whole process group on a timeout', async () => {
    const { dir, t } = pairTarget('file-timeout');
    const pidFile = path.join(dir, 'child.pid');
    const c = issue();
    const out = await bindFiles(
      { ...t, validate: sh(`sleep 45 & echo $! > ${pidFile}; wait`, 3_000) },
      c.material,
      c.thumbprint,
    );
    expect(out.status).toBe('failed');
    expect(out.detail).toMatch(/'sh' timed out after 3000 ms/);
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    leftovers.push(pid);
    // the shell's child (sleep) must be gone too, not left running under init
    await waitFor(`sleep ${pid} to be killed with its group`, async () => !alive(pid), { timeoutMs: 5_000 });
  });
});

describe('what the file target refuses to read or write', () => {
  it('refuses a symlinked key file (its target would be copied into key.pem.previous), writing nothing', async () => {
    const { dir, t } = pairTarget('file-symlink');
    const first = issue();
    expect((await bindFiles(t, first.material, first.thumbprint)).status).toBe('bound');
    const elsewhere = path.join(dir, 'elsewhere.secret');
    writeFileSync(elsewhere, 'someone else’s secret\n', { mode: 0o600 });
    execFileSync('/bin/rm', [t.keyPath as string]);
    symlinkSync(elsewhere, t.keyPath as string);

    const next = issue();
    const out = await bindFiles(t, next.material, next.thumbprint);
    expect(out.status).toBe('failed');
    expect(out.detail).toMatch(/^nothing written: refusing .*key\.pem: it is a symbolic link/);
    expect(existsSync(`${t.keyPath}.previous`)).toBe(false);
    expect(readFileSync(elsewhere, 'utf8')).toBe('someone else’s secret\n');
    expect(await fileLeafThumbprint(t.certPath as string)).toBe(first.thumbprint);
  });

  it('refuses a symlinked generation file too', async () => {
    const { dir, t } = pairTarget('file-symlink-gen');
    const first = issue();
    expect((await bindFiles(t, first.material, first.thumbprint)).status).toBe('bound');
    symlinkSync(path.join(dir, 'nowhere'), `${t.certPath}.previous`);
    const next = issue();
    const out = await bindFiles(t, next.material, next.thumbprint);
    expect(out.status).toBe('failed');
    expect(out.detail).toMatch(/cert\.pem\.previous: it is a symbolic link/);
    expect(await fileLeafThumbprint(t.certPath as string)).toBe(first.thumbprint);
  });

  it.each(['0777', '0775', '0757'])(
    'refuses a directory with mode %s (others may swap files in it)',
    async (mode) => {
      const { dir, t } = pairTarget(`file-dir-${mode}`);
      chmodSync(dir, parseInt(mode, 8));
      const c = issue();
      const out = await bindFiles(t, c.material, c.thumbprint);
      expect(out.status).toBe('failed');
      expect(out.detail).toContain(`the directory is writable by its group or by others (mode ${mode})`);
      expect(await readdir(dir)).toEqual([]);
    },
  );

  it('caps the key mode at 0640 (0666 was accepted before)', async () => {
    const { t } = pairTarget('file-key-mode');
    const c = issue();
    for (const loose of [0o666, 0o644, 0o660, 0o604])
      await expect(bindFiles({ ...t, fileMode: loose }, c.material, c.thumbprint)).rejects.toMatchObject({
        type: 'BindingConfigInvalid',
        message: expect.stringContaining('too loose for a private key: expected at most 0640'),
      });
    expect((await bindFiles({ ...t, fileMode: 0o640 }, c.material, c.thumbprint)).status).toBe('bound');
    expect((await stat(t.keyPath as string)).mode & 0o777).toBe(0o640);
  });

  it('removes temp files an interrupted write left behind', async () => {
    const { dir, t } = pairTarget('file-stale-temp');
    const stale = path.join(dir, '.key.pem.0123456789ab.tmp');
    writeFileSync(stale, 'half a key', { mode: 0o600 });
    const c = issue();
    expect((await bindFiles(t, c.material, c.thumbprint)).status).toBe('bound');
    expect((await readdir(dir)).sort()).toEqual(['cert.pem', 'key.pem']);
  });
});

describe('more formats beside the PEM pair', () => {
  it('writes the intermediates alone and a PKCS#12 with a new password per generation', async () => {
    const { dir, t } = pairTarget('file-pkcs12');
    const target = { ...t, chainPath: path.join(dir, 'chain.pem'), pkcs12Path: path.join(dir, 'site.p12') };
    const [one, two] = [issue(), issue()];
    for (const c of [one, two])
      expect((await bindFiles(target, c.material, c.thumbprint)).status).toBe('bound');
    expect(readFileSync(target.chainPath, 'utf8').trim()).toBe(ca.caCertPem.trim());
    for (const f of ['site.p12', 'site.p12.password'])
      expect((await stat(path.join(dir, f))).mode & 0o777).toBe(0o600);
    const password = readFileSync(`${target.pkcs12Path}.password`, 'utf8').trim();
    expect(password).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(readFileSync(`${target.pkcs12Path}.password.previous`, 'utf8').trim()).not.toBe(password);
    // OpenSSL reads it with that password: the leaf is the new certificate, and the key is there
    const certs = execFileSync(
      tools.openssl(),
      [
        'pkcs12',
        '-in',
        target.pkcs12Path,
        '-nokeys',
        '-clcerts',
        '-passin',
        `file:${target.pkcs12Path}.password`,
      ],
      { encoding: 'utf8' },
    );
    expect(thumbprintOf(new X509Certificate(certs.slice(certs.indexOf('-----BEGIN CERTIFICATE-----'))))).toBe(
      two.thumbprint,
    );
    const keys = execFileSync(
      tools.openssl(),
      [
        'pkcs12',
        '-in',
        target.pkcs12Path,
        '-nocerts',
        '-nodes',
        '-passin',
        `file:${target.pkcs12Path}.password`,
      ],
      { encoding: 'utf8' },
    );
    expect(keys.includes('-----BEGIN PRIVATE KEY-----')).toBe(true);
  });
});
