/**
 * The file+reload binding against a real nginx: swap under continuous HTTPS traffic, roll back on a
 * failed `nginx -t` and on a reload that never shows, refuse a key that does not match, stay idempotent.
 */
import { execFile } from 'node:child_process';
import { X509Certificate, createHash, createPublicKey } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bindFiles, fileLeafThumbprint, type FileReloadTarget } from '../../activities/bindings/file-reload';
import { probeTls } from '../../activities/verify/probe';
import { startNginx, type RunningNginx } from '../support/nginx';
import { waitFor } from '../support/proc';
import { scratchDir, tools } from '../support/tools';

const run = promisify(execFile);

interface TestCert {
  certPem: string;
  keyPem: string;
  thumbprint: string;
}

/** A throwaway CA and leaves made with the openssl CLI (RSA; `bits` lets a test make one nginx refuses). */
async function testCa(dir: string) {
  mkdirSync(dir, { recursive: true });
  const ssl = (args: string[]) => run(tools.openssl(), args, { cwd: dir });
  await ssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '1',
    ].concat(['-subj', '/CN=certflow nginx test CA', '-addext', 'basicConstraints=critical,CA:TRUE']),
  );
  await writeFile(
    path.join(dir, 'leaf.ext'),
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n',
  );
  return {
    caPem: await readFile(path.join(dir, 'ca.crt'), 'utf8'),
    async issue(name: string, bits = 2048): Promise<TestCert> {
      await ssl(
        [
          'req',
          '-new',
          '-newkey',
          `rsa:${bits}`,
          '-nodes',
          '-keyout',
          `${name}.key`,
          '-out',
          `${name}.csr`,
        ].concat(['-subj', '/CN=localhost']),
      );
      await ssl(
        ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-days', '1'].concat([
          '-extfile',
          'leaf.ext',
          '-out',
          `${name}.crt`,
        ]),
      );
      const certPem = await readFile(path.join(dir, `${name}.crt`), 'utf8');
      const keyPem = await readFile(path.join(dir, `${name}.key`), 'utf8');
      const thumbprint = new X509Certificate(certPem).fingerprint.replace(/:/g, '');
      return { certPem, keyPem, thumbprint };
    },
  };
}

let nginx: RunningNginx;
let caPem: string;
let certA: TestCert;
let certB: TestCert;
let weak: TestCert;

beforeAll(async () => {
  const ca = await testCa(path.join(scratchDir('nginx-binding-certs')));
  caPem = ca.caPem;
  [certA, certB, weak] = await Promise.all([ca.issue('a'), ca.issue('b'), ca.issue('weak', 1024)]);
  nginx = await startNginx({ certPem: certA.certPem, keyPem: certA.keyPem, serverNames: ['localhost'] });
});

afterAll(async () => {
  await nginx?.stop();
});

function target(overrides: Partial<FileReloadTarget> = {}): FileReloadTarget {
  return {
    name: 'nginx-test',
    certPath: nginx.certPath,
    keyPath: nginx.keyPath,
    validate: { command: nginx.command, args: nginx.testArgs, timeoutMs: 10_000 },
    reload: { command: nginx.command, args: nginx.reloadArgs, timeoutMs: 10_000 },
    probe: { host: '127.0.0.1', port: nginx.port, servername: 'localhost', caPem },
    ...overrides,
  };
}

const material = (c: TestCert, key = c.keyPem) => ({ keyPem: key, chainPem: [c.certPem] });

/** A public fingerprint of a private key, so that a failed assertion never prints the key itself. */
const keyId = (keyPem: string) =>
  createHash('sha256')
    .update(createPublicKey(keyPem).export({ type: 'spki', format: 'der' }))
    .digest('hex');
const keyIdOf = async (file: string) => keyId(await readFile(file, 'utf8'));

/** nginx's worker processes (children of the master in its pid file); more than one while a reload drains. */
async function workerCount(): Promise<number> {
  const master = (await readFile(nginx.pidFile, 'utf8')).trim();
  let n = 0;
  for (const pid of (await readdir('/proc')).filter((d) => /^\d+$/.test(d))) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    // "pid (comm) state ppid ...": comm may hold spaces, so read after the last ')'
    if (stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] === master) n++;
  }
  return n;
}

/** What nginx serves once a reload has finished: the old worker (still serving the old pair) has exited. */
async function servedSettled(): Promise<string | null> {
  await waitFor('the old nginx worker to exit after a reload', async () => (await workerCount()) === 1, {
    timeoutMs: 10_000,
  });
  return served();
}

/** Writes a pair straight into nginx's files (no Certflow code), reloads nginx, and waits until it serves it. */
async function serveDirectly(c: TestCert): Promise<void> {
  await writeFile(nginx.certPath, c.certPem);
  await writeFile(nginx.keyPath, c.keyPem);
  await run(nginx.command, nginx.reloadArgs);
  // `nginx -s reload` only signals the master. Until the master acts on it, the old worker (still on the
  // old pair) is the only one: counting workers first and probing after could see the new worker answer
  // while the old one is still about to take the next connection. So: the new pair served, and only then
  // a single worker left.
  await waitFor(
    `nginx to serve ${c.thumbprint} from its only worker`,
    async () => (await served()) === c.thumbprint && (await workerCount()) === 1,
    { timeoutMs: 10_000 },
  );
}

/** Sets (or removes) the `.previous` generation by hand, as an earlier attempt's rotation would have left it. */
async function setPrevious(c: TestCert | null): Promise<void> {
  for (const [file, text, mode] of [
    [nginx.certPath, c?.certPem, 0o644],
    [nginx.keyPath, c?.keyPem, 0o600],
  ] as const) {
    await rm(`${file}.previous`, { force: true });
    if (text !== undefined) await writeFile(`${file}.previous`, text, { mode });
  }
}

async function served(): Promise<string | null> {
  const p = await probeTls({
    host: '127.0.0.1',
    port: nginx.port,
    servername: 'localhost',
    caPem,
    timeoutMs: 10_000, // a handshake on a loaded machine, not a measure of speed
  });
  return p.servedThumbprint;
}

/** Full HTTPS requests (new connection each) from a few parallel loops until stopped; counts failures. */
function trafficLoop(max = 3_000) {
  let stop = false;
  const stats = { ok: 0, failed: 0, errors: [] as string[], seen: new Set<string>() };
  const one = () =>
    new Promise<void>((resolve) => {
      const req = https.get(
        { host: '127.0.0.1', port: nginx.port, servername: 'localhost', ca: caPem, agent: false, path: '/' },
        (res) => {
          const leaf = (res.socket as TLSSocket).getPeerX509Certificate();
          if (leaf) stats.seen.add(leaf.fingerprint.replace(/:/g, ''));
          res.resume();
          res.on('end', () => {
            if (res.statusCode === 200) {
              stats.ok++;
            } else {
              stats.failed++;
              stats.errors.push(`HTTP ${res.statusCode}`);
            }
            resolve();
          });
        },
      );
      req.setTimeout(30_000, () => req.destroy(new Error('timeout'))); // a request that never ends, not a slow one
      req.on('error', (err) => {
        stats.failed++;
        stats.errors.push(err.message);
        resolve();
      });
    });
  const loops = Array.from({ length: 4 }, async () => {
    while (!stop && stats.ok + stats.failed < max) await one();
  });
  return {
    stats,
    async finish() {
      stop = true;
      await Promise.all(loops);
      return stats;
    },
  };
}

describe('file+reload binding on a real nginx', () => {
  it('nginx is real: given a mismatched key it fails `-t` and reload, and keeps serving the old certificate', async () => {
    const before = await served();
    expect(before).toBe(certA.thumbprint);
    const [oldCert, oldKey] = await Promise.all([readFile(nginx.certPath), readFile(nginx.keyPath)]);
    try {
      // B's certificate with A's key, written straight into nginx's files (no Certflow code involved)
      await writeFile(nginx.certPath, certB.certPem);
      const t = await run(nginx.command, nginx.testArgs).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => e,
      );
      expect(t.code).not.toBe(0);
      expect(t.stderr).toMatch(/key values mismatch|SSL_CTX_use_PrivateKey/);
      const r = await run(nginx.command, nginx.reloadArgs).then(
        () => 0,
        (e: { code: number }) => e.code,
      );
      expect(r).not.toBe(0);
      await new Promise((res) => setTimeout(res, 300));
      expect(await served()).toBe(certA.thumbprint);
    } finally {
      await writeFile(nginx.certPath, oldCert);
      await writeFile(nginx.keyPath, oldKey, { mode: 0o600 });
    }
  });

  it('rolls back when nginx -t refuses the new certificate (1024-bit key)', async () => {
    expect(await served()).toBe(certA.thumbprint);
    const keyBefore = await readFile(nginx.keyPath, 'utf8');

    const out = await bindFiles(target(), material(weak), weak.thumbprint);

    expect(out.status).toBe('rolled-back');
    expect(out.before).toBe(certA.thumbprint);
    expect(out.after).toBe(certA.thumbprint);
    expect(out.detail).toMatch(/^validation failed: 'nginx -t' exited with code 1: .*ee key too small/s);
    expect(out.detail).not.toMatch(/PRIVATE KEY|BEGIN/);
    expect(await served()).toBe(certA.thumbprint);
    expect(await fileLeafThumbprint(nginx.certPath)).toBe(certA.thumbprint);
    expect(await keyIdOf(nginx.keyPath)).toBe(keyId(keyBefore));
    expect((await stat(nginx.keyPath)).mode & 0o777).toBe(0o600);
  });

  it('refuses a key that does not match the certificate before touching any file', async () => {
    const mtime = (await stat(nginx.certPath)).mtimeMs;

    const out = await bindFiles(target(), material(certB, certA.keyPem), certB.thumbprint);

    expect(out.status).toBe('failed');
    expect(out.detail).toContain(`the private key does not match certificate ${certB.thumbprint}`);
    expect(out.detail).not.toMatch(/PRIVATE KEY|BEGIN/);
    expect((await stat(nginx.certPath)).mtimeMs).toBe(mtime);
    expect(await served()).toBe(certA.thumbprint);
  });

  it('rolls back when the reload never shows the new certificate', async () => {
    // a reload command that succeeds without reloading: the probe is what catches it, once the site has served
    // its old certificate for the whole reload window (a reload may take effect late on a large server)
    const started = Date.now();
    const out = await bindFiles(
      target({
        reload: { command: '/bin/true', args: [] },
        probe: { ...target().probe!, settleMs: 600, reloadMs: 2_000 },
      }),
      material(certB),
      certB.thumbprint,
    );

    expect(out.status).toBe('rolled-back');
    expect(out.detail).toMatch(/^probe failed: .*serves .*, expected/);
    expect(out.probe?.servedThumbprint).toBe(certA.thumbprint);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_000);
    expect(await fileLeafThumbprint(nginx.certPath)).toBe(certA.thumbprint);
    expect(await served()).toBe(certA.thumbprint);
  });

  it('puts back the key it already wrote when writing the certificate fails', async () => {
    const out = await bindFiles(
      target({ certPath: path.join(nginx.dir, 'no-such-dir', 'cert.pem') }),
      material(certB),
      certB.thumbprint,
    );

    expect(out.status).toBe('failed');
    expect(out.detail).toMatch(/^writing the new files failed: ENOENT.*; restored the previous files$/);
    expect(await keyIdOf(nginx.keyPath)).toBe(keyId(certA.keyPem));
    expect(await served()).toBe(certA.thumbprint);
  });

  it('swaps A -> B under continuous HTTPS traffic with zero failed requests', async () => {
    const traffic = trafficLoop();
    await new Promise((r) => setTimeout(r, 300)); // traffic running on A first
    const t0 = performance.now();
    const atStart = traffic.stats.ok + traffic.stats.failed;
    const out = await bindFiles(target(), material(certB), certB.thumbprint);
    const bindMs = performance.now() - t0;
    const duringBind = traffic.stats.ok + traffic.stats.failed - atStart;
    // and on B after, until a few hundred requests have gone through in all
    // a loaded machine (CI shares its 2 cores) is slower: wait longer rather than ask for fewer requests
    const enough = Date.now() + 45_000;
    while (traffic.stats.ok + traffic.stats.failed < 400 && Date.now() < enough)
      await new Promise((r) => setTimeout(r, 50));
    const stats = await traffic.finish();
    console.log(
      `nginx swap: bind ${bindMs.toFixed(0)} ms (${duringBind} requests completed meanwhile), ` +
        `${stats.ok} ok / ${stats.failed} failed requests in all, last probe ${out.probe?.latencyMs} ms`,
    );

    expect(out.status, out.detail).toBe('bound');
    expect(out.before).toBe(certA.thumbprint);
    expect(out.after).toBe(certB.thumbprint);
    expect(out.probe?.servedThumbprint).toBe(certB.thumbprint);
    expect(stats.errors).toEqual([]);
    expect(duringBind).toBeGreaterThan(0);
    expect(stats.ok).toBeGreaterThanOrEqual(400);
    expect([...stats.seen].sort()).toEqual([certA.thumbprint, certB.thumbprint].sort());

    expect((await stat(nginx.keyPath)).mode & 0o777).toBe(0o600);
    expect((await stat(`${nginx.keyPath}.previous`)).mode & 0o777).toBe(0o600);
    expect(await fileLeafThumbprint(`${nginx.certPath}.previous`)).toBe(certA.thumbprint);
    expect(await keyIdOf(`${nginx.keyPath}.previous`)).toBe(keyId(certA.keyPem));
  }, 120_000);

  it('is idempotent: binding B again changes nothing', async () => {
    const before = await Promise.all([stat(nginx.certPath), stat(nginx.keyPath)]);

    const out = await bindFiles(target(), material(certB), certB.thumbprint.toLowerCase());

    expect(out.status).toBe('unchanged');
    expect(out.after).toBe(certB.thumbprint);
    const after = await Promise.all([stat(nginx.certPath), stat(nginx.keyPath)]);
    expect(after.map((s) => s.mtimeMs)).toEqual(before.map((s) => s.mtimeMs));
  });

  describe('after a worker crashed halfway through an earlier attempt', () => {
    afterAll(async () => {
      await setPrevious(null);
    });

    it('between the key and certificate renames: binds, and .previous keeps the pair that was live', async () => {
      await serveDirectly(certA);
      await setPrevious(certA); // the crashed attempt rotated A into .previous ...
      await writeFile(nginx.keyPath, certB.keyPem); // ... and renamed B's key into place, not B's certificate

      const out = await bindFiles(target(), material(certB), certB.thumbprint);

      expect(out, out.detail).toMatchObject({
        status: 'bound',
        before: certA.thumbprint,
        after: certB.thumbprint,
      });
      expect(await servedSettled()).toBe(certB.thumbprint);
      expect(await keyIdOf(`${nginx.keyPath}.previous`)).toBe(keyId(certA.keyPem));
      expect(await fileLeafThumbprint(`${nginx.certPath}.previous`)).toBe(certA.thumbprint);
      expect((await stat(`${nginx.keyPath}.previous`)).mode & 0o777).toBe(0o600);
      expect(out.detail).toContain(`the key in ${nginx.keyPath} did not match the certificate`);
      expect(out.detail).not.toMatch(/PRIVATE KEY|BEGIN/);
    });

    it('between the key and certificate renames, then refused: rolls back to a pair nginx accepts', async () => {
      await serveDirectly(certA);
      await setPrevious(certA);
      await writeFile(nginx.keyPath, weak.keyPem); // torn: weak's key with A's certificate

      const out = await bindFiles(target(), material(weak), weak.thumbprint);

      expect(out, out.detail).toMatchObject({
        status: 'rolled-back',
        before: certA.thumbprint,
        after: certA.thumbprint,
      });
      expect(out.detail).toMatch(/^validation failed: 'nginx -t' exited with code 1: .*ee key too small/s);
      expect(out.detail).not.toMatch(/PRIVATE KEY|BEGIN/);
      expect(await keyIdOf(nginx.keyPath)).toBe(keyId(certA.keyPem));
      expect(await fileLeafThumbprint(nginx.certPath)).toBe(certA.thumbprint);
      expect(await keyIdOf(`${nginx.keyPath}.previous`)).toBe(keyId(certA.keyPem));
      expect(await servedSettled()).toBe(certA.thumbprint);
    });

    it('after writing both files but before the reload, refused: rolls back to .previous and reloads', async () => {
      await serveDirectly(certA);
      await setPrevious(certA); // rotated, then both of weak's files written; nginx never reloaded
      await writeFile(nginx.certPath, weak.certPem);
      await writeFile(nginx.keyPath, weak.keyPem);

      const out = await bindFiles(target(), material(weak), weak.thumbprint);

      expect(out, out.detail).toMatchObject({
        status: 'rolled-back',
        before: certA.thumbprint,
        after: certA.thumbprint,
      });
      expect(out.detail).toMatch(/^validation failed: 'nginx -t' exited with code 1: .*ee key too small/s);
      expect(out.probe?.servedThumbprint).toBe(certA.thumbprint);
      expect(await keyIdOf(nginx.keyPath)).toBe(keyId(certA.keyPem));
      expect(await fileLeafThumbprint(nginx.certPath)).toBe(certA.thumbprint);
      expect((await stat(nginx.keyPath)).mode & 0o777).toBe(0o600);
      expect(await servedSettled()).toBe(certA.thumbprint);
    });

    it('after writing both files but before the reload, accepted: reloads only', async () => {
      await serveDirectly(certA);
      await setPrevious(certA);
      await writeFile(nginx.certPath, certB.certPem);
      await writeFile(nginx.keyPath, certB.keyPem);

      const out = await bindFiles(target(), material(certB), certB.thumbprint);

      expect(out, out.detail).toMatchObject({
        status: 'bound',
        before: certA.thumbprint,
        after: certB.thumbprint,
      });
      expect(await servedSettled()).toBe(certB.thumbprint);
      expect(await fileLeafThumbprint(`${nginx.certPath}.previous`)).toBe(certA.thumbprint);
    });
  });
});
