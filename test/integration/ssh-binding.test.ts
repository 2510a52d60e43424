/**
 * The SSH host target against a real sshd (Debian's openssh-server, on a loopback port, its own host key, the
 * current user with a generated key) in front of a real nginx on loopback playing the remote server: bind and see
 * it served live, refuse a bad `nginx -t` and roll back, refuse changed and unknown host keys and a key the server
 * does not accept, recover from a worker killed mid-bind, and keep the worker's environment out of remote commands.
 */
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { DefaultLogger } from '@temporalio/worker';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  batchFileTargets,
  createFileReloadTarget,
  fileLeafThumbprint,
  type FileReloadTarget,
} from '../../activities/bindings/file-reload';
import { SshPool, type SshHost } from '../../activities/bindings/ssh-connection';
import { sshFileHost } from '../../activities/bindings/ssh-file-host';
import type { BindingContext, BindingOutcome } from '../../activities/types';
import { probeTls, thumbprintOf } from '../../activities/verify/probe';
import { settledThumbprint, startNginx, type RunningNginx } from '../support/nginx';
import { siteName, startNginxSites, type NginxSites } from '../support/nginx-sites';
import { waitFor } from '../support/proc';
import { startSshd, type RunningSshd } from '../support/sshd';
import { createTestCa } from '../support/test-ca';
import { repoRoot, scratchDir } from '../support/tools';

const ca = createTestCa();
interface Cert {
  keyPem: string;
  chainPem: string[];
  thumbprint: string;
}
const issue = (opts: { rsaBits?: number } = {}): Cert => {
  const { certPem, keyPem } = ca.issueServerCert(
    ['localhost', '127.0.0.1'],
    opts.rsaBits ? { keyType: 'rsa', rsaBits: opts.rsaBits } : {},
  );
  return {
    keyPem,
    chainPem: [certPem, ca.caCertPem],
    thumbprint: thumbprintOf(new X509Certificate(certPem)),
  };
};

let sshd: RunningSshd;
let nginx: RunningNginx;
let pool: SshPool;
let first: Cert;

beforeAll(async () => {
  first = issue();
  sshd = await startSshd();
  nginx = await startNginx({
    certPem: first.chainPem.join(''),
    keyPem: first.keyPem,
    serverNames: ['localhost'],
  });
  pool = new SshPool({ idleMs: 2_000 });
});

afterAll(async () => {
  await pool?.close();
  await nginx?.stop();
  await sshd?.stop();
});

const host = (overrides: Partial<SshHost> = {}): SshHost => ({
  name: 'web-1',
  address: '127.0.0.1',
  port: sshd.port,
  user: sshd.user,
  privateKey: sshd.clientKey,
  hostKeys: [sshd.hostFingerprint],
  ...overrides,
});

function settings(overrides: Partial<FileReloadTarget> = {}): FileReloadTarget {
  return {
    name: 'remote-nginx',
    certPath: nginx.certPath,
    keyPath: nginx.keyPath,
    validate: { command: nginx.command, args: nginx.testArgs, timeoutMs: 15_000 },
    reload: { command: nginx.command, args: nginx.reloadArgs, timeoutMs: 15_000 },
    probe: {
      host: '127.0.0.1',
      port: nginx.port,
      servername: 'localhost',
      caPem: ca.caCertPem,
      settleMs: 10_000,
    },
    ...overrides,
  };
}

const ctxFor = (c: Cert, previous: string | null = null): BindingContext => ({
  certificateId: 'kv/web',
  version: c.thumbprint.slice(0, 8),
  thumbprint: c.thumbprint,
  previousThumbprint: previous,
  secretId: 'local://kv/secrets/web',
  notAfter: null,
  material: async () => ({ keyPem: c.keyPem, chainPem: c.chainPem }),
});

async function sync(
  c: Cert,
  opts: { host?: SshHost; pool?: SshPool; target?: Partial<FileReloadTarget> } = {},
) {
  const t = createFileReloadTarget({
    ...settings(opts.target),
    host: sshFileHost(opts.host ?? host(), opts.pool ?? pool),
  });
  const [out] = await t.sync(ctxFor(c));
  return out as BindingOutcome;
}

/** What nginx serves once its reload has settled (old workers may take a new connection while they drain). */
const served = async (settled?: string) => {
  const probe = async () =>
    (await probeTls({ host: '127.0.0.1', port: nginx.port, servername: 'localhost' })).servedThumbprint;
  return settled ? settledThumbprint(probe, settled) : probe();
};

/** Every bind so far left the server on this certificate. */
let current: Cert;

describe('files over SSH to a remote nginx', () => {
  it('binds: atomic files on the host, nginx -t, reload, then the new certificate served live over a trusted chain', async () => {
    const next = issue();
    const out = await sync(next);
    expect(out.status).toBe('bound');
    expect(out.binding).toBe(`web-1:${nginx.certPath}`);
    expect(out.before).toBe(first.thumbprint);
    expect(out.probe).toMatchObject({ ok: true, servedThumbprint: next.thumbprint });
    expect(out.probe?.detail).toContain('chain trusted');
    expect(await served(next.thumbprint)).toBe(next.thumbprint);
    expect(await fileLeafThumbprint(`${nginx.certPath}.previous`)).toBe(first.thumbprint);
    expect((await readdir(nginx.dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    current = next;

    const again = await sync(next);
    expect(again.status).toBe('unchanged');
  });

  it('rolls back when nginx -t refuses the new pair (a 1024-bit RSA key), and the old one stays served', async () => {
    const weak = issue({ rsaBits: 1024 });
    const out = await sync(weak);
    expect(out.status).toBe('rolled-back');
    expect(out.reason).toBe('CommandFailed');
    expect(out.detail).toMatch(/^validation failed: 'nginx -t( -q)?' exited with code 1/);
    expect(out.detail).not.toContain('PRIVATE KEY');
    expect(await fileLeafThumbprint(nginx.certPath)).toBe(current.thumbprint);
    expect(await served()).toBe(current.thumbprint);
  });

  it("gives remote commands none of the worker's environment", async () => {
    process.env.CERTFLOW_TEST_WORKER_SECRET = 'not-for-the-host';
    try {
      const next = issue();
      const out = await sync(next, {
        target: {
          validate: {
            command: '/bin/sh',
            args: [
              '-c',
              `test -z "$CERTFLOW_TEST_WORKER_SECRET" && exec "$0" "$@"`,
              nginx.command,
              ...nginx.testArgs,
            ],
          },
        },
      });
      expect(out.detail).not.toContain('not-for-the-host');
      expect(out.status).toBe('bound');
      current = next;
    } finally {
      delete process.env.CERTFLOW_TEST_WORKER_SECRET;
    }
  });

  it('kills a remote command that overruns its deadline, with its process group', async () => {
    const pidFile = path.join(nginx.dir, 'remote-child.pid');
    const out = await sync(issue(), {
      target: {
        validate: {
          command: '/bin/sh',
          args: ['-c', `sleep 44 & echo $! > ${pidFile}; wait`],
          timeoutMs: 4_000, // time for the shell to start and write the pid, however slow the machine
        },
      },
    });
    expect(out.status).toBe('failed'); // nothing to roll back to beyond the files: restored, reload ok
    expect(out.detail).toMatch(/'sh' timed out after 4000 ms/);
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    const sleeping = () => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep\u000044');
      } catch {
        return false;
      }
    };
    try {
      await waitFor('the remote sleep to be killed', async () => !sleeping(), { timeoutMs: 10_000 });
    } finally {
      if (sleeping()) process.kill(pid, 'SIGKILL');
    }
    expect(await served()).toBe(current.thumbprint);
  });
});

describe('who Certflow talks to', () => {
  it('refuses a key the server does not accept (AuthenticationRefused), touching nothing', async () => {
    const out = await sync(issue(), { host: host({ privateKey: sshd.strangerKey }) });
    expect(out).toMatchObject({ status: 'failed', reason: 'AuthenticationRefused' });
    expect(out.detail).toContain('refused public-key authentication for user');
    expect(out.detail).not.toContain('PRIVATE KEY');
    expect(await fileLeafThumbprint(nginx.certPath)).toBe(current.thumbprint);
  });

  it('reports an unreachable host (HostUnreachable)', async () => {
    const out = await sync(issue(), { host: host({ port: 1, connectTimeoutMs: 3_000 }) });
    expect(out).toMatchObject({ status: 'failed', reason: 'HostUnreachable' });
    expect(out.detail).toContain('ECONNREFUSED');
  });

  it('refuses an unknown host key: one that is not pinned (HostKeyMismatch)', async () => {
    // a pin for some other server's key (here: the stranger client key's public half, an ed25519 key too)
    const pinned = readFileSync(path.join(sshd.dir, 'stranger_ed25519.pub'), 'utf8').trim();
    const out = await sync(issue(), { host: host({ hostKeys: [pinned] }) });
    expect(out).toMatchObject({ status: 'failed', reason: 'HostKeyMismatch' });
    expect(out.detail).toContain(`the server's host key ${sshd.hostFingerprint} is not pinned`);
    expect(await fileLeafThumbprint(nginx.certPath)).toBe(current.thumbprint);
  });

  it('refuses a changed host key (the server re-keyed or swapped), and binds again once the new key is pinned', async () => {
    const oldPin = sshd.hostFingerprint;
    await pool.close(); // no connection made before the change may be reused
    await sshd.restart({ newHostKey: true });
    expect(sshd.hostFingerprint).not.toBe(oldPin);
    const fresh = new SshPool();
    try {
      const next = issue();
      const refused = await sync(next, { host: host({ hostKeys: [oldPin] }), pool: fresh });
      expect(refused).toMatchObject({ status: 'failed', reason: 'HostKeyMismatch' });
      expect(refused.detail).toContain(`expected ${oldPin}`);
      expect(await served()).toBe(current.thumbprint);

      const repinned = await sync(next, { host: host({ hostKeys: [sshd.hostPublicKey] }), pool: fresh });
      expect(repinned.status).toBe('bound');
      current = next;
    } finally {
      await fresh.close();
    }
  });
});

describe('a worker killed mid-bind', () => {
  it('leaves a consistent state that the re-run activity finishes: previous generation kept, temp files cleaned', async () => {
    const next = issue();
    const dir = scratchDir('ssh-kill');
    mkdirSync(dir, { recursive: true });
    const marker = path.join(dir, 'validating');
    const pidFile = path.join(dir, 'remote.pid');
    const job = path.join(dir, 'job.json');
    // validation announces itself, then waits: the worker is killed while the new files are written but not loaded
    const slowValidate = {
      command: '/bin/sh',
      args: [
        '-c',
        `echo $$ > ${pidFile}; touch ${marker}; sleep 40; exec "$0" "$@"`,
        nginx.command,
        ...nginx.testArgs,
      ],
      timeoutMs: 60_000,
    };
    writeFileSync(
      job,
      JSON.stringify({
        host: host(),
        target: settings({ validate: slowValidate }),
        material: next,
        thumbprint: next.thumbprint,
      }),
      { mode: 0o600 },
    );
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(repoRoot, 'test/support/ssh-bind-child.ts'), job],
      {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const remoteShell = () => {
      try {
        const pid = Number(readFileSync(pidFile, 'utf8').trim());
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker) ? pid : undefined;
      } catch {
        return undefined;
      }
    };
    try {
      await waitFor('the child to reach validation', async () => existsSync(marker), { timeoutMs: 45_000 });
      child.kill('SIGKILL');
      await exited;
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      // the remote validation outlives its killed client (sshd does not signal it): stop it, it is ours
      const pid = remoteShell();
      if (pid) process.kill(-pid, 'SIGKILL');
    }
    // as the crash left it: the new pair on disk, the old one in .previous, the old one still served
    expect(await fileLeafThumbprint(nginx.certPath)).toBe(next.thumbprint);
    expect(await fileLeafThumbprint(`${nginx.certPath}.previous`)).toBe(current.thumbprint);
    expect(await served()).toBe(current.thumbprint);
    // and a temp file as a kill in the middle of a write would leave one
    writeFileSync(path.join(nginx.dir, '.key.pem.0123456789ab.tmp'), 'half a key', { mode: 0o600 });

    const out = await sync(next);
    expect(out.status).toBe('bound');
    expect(out.probe).toMatchObject({ ok: true, servedThumbprint: next.thumbprint });
    expect(await fileLeafThumbprint(`${nginx.certPath}.previous`)).toBe(current.thumbprint);
    expect((await readdir(nginx.dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    current = next;
  });
});

describe('many sites behind one sshd', () => {
  let sites: NginxSites;
  afterAll(async () => {
    await sites?.stop();
  });

  it('binds them as one batch over one connection, heartbeating inside an activity', async () => {
    const dir = scratchDir('ssh-sites');
    const start = issue();
    sites = await startNginxSites({
      dir,
      names: [1, 2, 3, 4].map(siteName),
      domain: 'sites.test',
      certPem: start.chainPem.join(''),
      keyPem: start.keyPem,
    });
    const wildcard = ca.issueServerCert(['*.sites.test']);
    const next: Cert = {
      keyPem: wildcard.keyPem,
      chainPem: [wildcard.certPem, ca.caCertPem],
      thumbprint: thumbprintOf(new X509Certificate(wildcard.certPem)),
    };
    const fileHost = sshFileHost(host(), pool);
    const targets = sites.sites.map((s) =>
      createFileReloadTarget({
        name: s.name,
        certPath: s.certPath,
        keyPath: s.keyPath,
        host: fileHost,
        validate: { command: sites.command, args: sites.testArgs },
        reload: { command: sites.command, args: sites.reloadArgs },
        probe: {
          host: '127.0.0.1',
          port: sites.port,
          servername: s.serverName,
          caPem: ca.caCertPem,
          settleMs: 10_000,
        },
      }),
    );
    const batched = batchFileTargets(targets);
    expect(batched).toHaveLength(1);
    const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    const outcomes = (await env.run(() => batched[0]!.sync(ctxFor(next)))) as BindingOutcome[];
    expect(outcomes.map((o) => o.status)).toEqual(['bound', 'bound', 'bound', 'bound']);
    expect(outcomes[0]!.detail).toContain('one reload for 4 sites');
    expect(outcomes.every((o) => o.probe?.servedThumbprint === next.thumbprint)).toBe(true);
    expect(beats.length).toBeGreaterThan(3);
  });
});
