/**
 * `npm start`'s embedded default as a user runs it: scripts/dev-stack.ts as a child process, in a scratch data
 * directory on free ports (its own Temporal dev server, not the suite's). It must come up and renew by itself
 * (a new vault version, a mail saved as .eml and listed on the sink's page, the demo site serving the new
 * certificate), stop every child on Ctrl-C (SIGINT), and resume on a second start: the same three lifecycles,
 * nothing enrolled twice, the vault's versions kept, renewals going on.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, describe, expect, it } from 'vitest';
import { probeTls } from '../../activities/verify/probe';
import { createLocalVault, loadEncryptionKey } from '../../activities/vault/local';
import { freePort, waitFor } from '../support/proc';
import { repoRoot, scratchDir } from '../support/tools';

const dir = scratchDir('embedded-start');
const SITE = 'demo-site';

interface Launch {
  proc: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
  pids: number[];
}
const launches: Launch[] = [];

const ports = {
  temporal: await freePort(),
  ui: await freePort(),
  smtp: await freePort(),
  mail: await freePort(),
  demo: await freePort(),
  worker: await freePort(),
};
const flags = Object.entries(ports).flatMap(([k, p]) => [`--${k}-port`, String(p)]);

async function launch(): Promise<Launch> {
  const env = { ...process.env };
  delete env.CERTFLOW_TEMPORAL_ADDRESS;
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', 'scripts/dev-stack.ts', '--data-dir', dir, '--validity-minutes', '2', ...flags],
    { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((resolve) => proc.once('close', (code) => resolve(code)));
  const l: Launch = { proc, output: () => out, exit, pids: [] };
  launches.push(l);
  const line = await waitFor(
    'the embedded start to say it is ready',
    async () => {
      if (proc.exitCode !== null) throw new Error(`it exited with ${proc.exitCode}:\n${out}`);
      return /^processes: (.*)$/m.exec(out)?.[1];
    },
    { timeoutMs: 150_000, intervalMs: 250 },
  );
  l.pids = [...line.matchAll(/=(\d+)/g)].map((m) => Number(m[1]));
  return l;
}

/** The process, or with `group` anything in its process group, still exists. */
const alive = (pid: number, group = false) => {
  try {
    process.kill(group ? -pid : pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Ctrl-C: the start exits 0 and no child (nor its process group) is left. */
async function interrupt(l: Launch): Promise<void> {
  l.proc.kill('SIGINT');
  const code = await Promise.race([l.exit, new Promise((r) => setTimeout(() => r('timeout'), 40_000))]);
  expect(code, l.output()).toBe(0);
  expect(l.pids).toHaveLength(3);
  expect(l.pids.filter((p) => alive(p) || alive(p, true))).toEqual([]);
}

afterAll(async () => {
  for (const l of launches) {
    if (l.proc.exitCode === null) {
      l.proc.kill('SIGINT');
      await Promise.race([l.exit, new Promise((r) => setTimeout(r, 20_000))]);
    }
    for (const pid of [l.proc.pid ?? 0, ...l.pids].filter((p) => p > 0 && alive(p))) {
      try {
        process.kill(-pid, 'SIGKILL'); // the children run in groups of their own
      } catch {
        process.kill(pid, 'SIGKILL');
      }
    }
  }
}, 60_000);

const vault = () =>
  createLocalVault({
    name: 'local',
    dir: path.join(dir, 'vault'),
    encryptionKey: loadEncryptionKey({ K: readFileSync(path.join(dir, 'vault.key'), 'utf8') }, 'K'),
  });
const siteVersions = async () =>
  (
    await vault()
      .listVersions(SITE)
      .catch(() => [])
  ).length;
const siteMails = () =>
  readdirSync(path.join(dir, 'mail'))
    .filter((f) => f.endsWith('.eml'))
    .filter((f) => readFileSync(path.join(dir, 'mail', f), 'utf8').includes(`local/${SITE}`));
const rootPem = () => readFileSync(path.join(dir, 'dev-ca-root.pem'), 'utf8');
const served = () =>
  probeTls({ host: '127.0.0.1', port: ports.demo, servername: 'localhost', caPem: rootPem() });

/** The three demo lifecycles running on the start's own Temporal server. */
async function runningLifecycles(): Promise<string[]> {
  const connection = await Connection.connect({ address: `127.0.0.1:${ports.temporal}` });
  try {
    const client = new Client({ connection });
    const ids: string[] = [];
    const query = `WorkflowType = 'certificateLifecycle' AND ExecutionStatus = 'Running'`;
    for await (const w of client.workflow.list({ query })) ids.push(w.workflowId);
    return ids.sort();
  } finally {
    await connection.close();
  }
}

describe('npm start (embedded default)', () => {
  let versionsBefore = 0;

  it('comes up, renews by itself (vault, mail, demo site) and stops every child on Ctrl-C', async () => {
    const first = await launch();
    expect(first.output()).toContain('created in the local vault: demo-site, demo-api, demo-intranet');
    expect(first.output().match(/enrolled now/g)).toHaveLength(3);
    // the worker of the build (the suite's global setup builds, as `npm start` does), its workflows bundled then
    const workerLog = readFileSync(path.join(dir, 'logs', 'worker.log'), 'utf8');
    expect(workerLog).toContain('workflow bundle loaded');
    expect(workerLog).not.toContain('workflows bundled at start');

    // first issuance, then at least one automatic renewal (2-minute certificates renew after ~30 s)
    await waitFor('an automatic renewal of the demo site', async () => (await siteVersions()) >= 2, {
      timeoutMs: 120_000,
      intervalMs: 1_000,
    });
    const [current, previous] = await vault().listVersions(SITE);
    expect(current!.thumbprint).not.toBe(previous!.thumbprint);
    // re-bound: the demo site serves the vault's current certificate, chained to the dev CA
    const probe = await waitFor(
      'the demo site to serve the current certificate',
      async () => {
        const p = await served();
        const now = (await vault().listVersions(SITE))[0]!.thumbprint;
        return p.ok && p.servedThumbprint === now && p.servedThumbprint !== previous!.thumbprint
          ? p
          : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(probe.detail).not.toMatch(/untrusted|mismatch/i);
    // a mail per issuance to the Recipient tag, saved as .eml and listed on the sink's page
    await waitFor('the renewal mails', async () => siteMails().length >= 2, { timeoutMs: 30_000 });
    const page = await (await fetch(`http://127.0.0.1:${ports.mail}/`)).text();
    expect(page).toMatch(
      /site-owner@certflow\.test<\/td><td><a href="\/mail\/[^"]+\.eml">\[certflow\] Renewed local\/demo-site/,
    );

    expect(await runningLifecycles()).toEqual([
      'certificate:local/demo-api',
      'certificate:local/demo-intranet',
      'certificate:local/demo-site',
    ]);
    versionsBefore = await siteVersions();
    await interrupt(first);
  }, 200_000);

  it('a second start resumes the same workflows and vault: nothing enrolled twice, renewals go on', async () => {
    expect(versionsBefore).toBeGreaterThanOrEqual(2);
    const second = await launch();
    expect(second.output()).not.toContain('created in the local vault');
    expect(second.output()).not.toContain('enrolled now');
    expect(second.output().match(/already enrolled/g)).toHaveLength(3);
    expect(await siteVersions()).toBeGreaterThanOrEqual(versionsBefore);
    expect(await runningLifecycles()).toHaveLength(3);
    await waitFor(
      'the resumed lifecycle to renew again',
      async () => (await siteVersions()) > versionsBefore,
      {
        timeoutMs: 90_000,
        intervalMs: 1_000,
      },
    );
    await interrupt(second);
  }, 200_000);
});
