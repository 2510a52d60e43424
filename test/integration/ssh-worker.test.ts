/**
 * Both SSH targets through the worker service as operators run it (`worker/main.ts` in its own process, the real
 * dev server, a local vault and the dev CA): a configured certificate is created and issued, and its first renewal
 * binds it on a "remote" nginx over a real sshd (`ssh-files`) and through the IIS contract's POSIX stand-in
 * (`remote-command`), each probed live. The SSH key comes by file reference; the host key is pinned.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { shellQuote } from '../../activities/bindings/ssh-file-host';
import { statusQuery, workflowIdFor } from '../../workflows/messages';
import { probeSettled, startNginx, type RunningNginx } from '../support/nginx';
import { siteName, startNginxSites, type NginxSites } from '../support/nginx-sites';
import { freePort, waitFor } from '../support/proc';
import { startSshd, type RunningSshd } from '../support/sshd';
import { createTestCa } from '../support/test-ca';
import { repoRoot, scratchDir, tools } from '../support/tools';

const address = inject('temporalAddress');
const namespace = inject('temporalNamespace');
const dir = scratchDir('ssh-worker');

let sshd: RunningSshd;
let nginx: RunningNginx;
let sites: NginxSites;
let worker: ChildProcess | undefined;
let output = '';

beforeAll(async () => {
  mkdirSync(dir, { recursive: true });
  // the servers start on a throwaway certificate; the worker's first renewal replaces it
  const start = createTestCa().issueServerCert(['localhost', 'site-001.iis.test']);
  sshd = await startSshd();
  nginx = await startNginx({ certPem: start.certPem, keyPem: start.keyPem, serverNames: ['localhost'] });
  sites = await startNginxSites({
    dir: path.join(dir, 'iis-nginx'),
    names: [siteName(1)],
    domain: 'iis.test',
    certPem: start.certPem,
    keyPem: start.keyPem,
  });
});

afterAll(async () => {
  if (worker && worker.exitCode === null) {
    const exited = new Promise((r) => worker!.once('exit', r));
    worker.kill('SIGTERM');
    await exited;
  }
  await sites?.stop();
  await nginx?.stop();
  await sshd?.stop();
});

it('a renewal binds over SSH (files on a remote nginx, and the IIS contract) and probes each live', async () => {
  const keyFile = path.join(dir, 'ssh-key');
  writeFileSync(keyFile, sshd.clientKey, { mode: 0o600 });
  const iisState = path.join(dir, 'iis');
  mkdirSync(path.join(iisState, 'store'), { recursive: true });
  writeFileSync(
    path.join(iisState, 'state.json'),
    JSON.stringify({
      openssl: tools.openssl(),
      nginx: { command: sites.command, testArgs: sites.testArgs, reloadArgs: sites.reloadArgs },
      bindings: sites.sites.map((s) => ({
        binding: `IIS:${s.name} https *:443:${s.serverName}`,
        hostName: s.serverName,
        certPath: s.certPath,
        keyPath: s.keyPath,
        thumbprint: null,
      })),
      fail: null,
      lie: null,
    }),
  );
  const taskQueue = `svc-ssh-${process.pid}-${Date.now().toString(36)}`;
  process.env.CERTFLOW_TEST_VAULT_KEY ??= randomBytes(32).toString('base64');
  const host = { address: '127.0.0.1', port: sshd.port, user: sshd.user, privateKey: { file: keyFile } };
  const config = {
    temporal: { address, namespace, connectTimeoutSeconds: 30 },
    taskQueue,
    vaults: [
      {
        kind: 'local',
        name: 'sshlocal',
        dir: path.join(dir, 'vault'),
        encryptionKey: { env: 'CERTFLOW_TEST_VAULT_KEY' },
      },
    ],
    issuers: [{ kind: 'dev-ca', name: 'dev', dir: path.join(dir, 'ca'), validity: { days: 30 } }],
    certificates: [
      {
        id: 'sshlocal/web',
        issuer: 'dev',
        create: { dnsNames: ['localhost', 'site-001.iis.test'], keyType: 'EC' },
      },
    ],
    hosts: [
      { name: 'web-1', ...host, hostKeys: [sshd.hostFingerprint], tags: ['web'] },
      { name: 'iis-1', ...host, hostKeys: [sshd.hostPublicKey], tags: ['iis'] },
    ],
    bindings: [
      {
        kind: 'ssh-files',
        name: 'web-nginx',
        certificates: { ids: ['sshlocal/web'] },
        hosts: { tag: 'web' },
        certPath: nginx.certPath,
        keyPath: nginx.keyPath,
        validate: { command: nginx.command, args: nginx.testArgs },
        reload: { command: nginx.command, args: nginx.reloadArgs },
        probe: { port: nginx.port, servername: 'localhost', settleSeconds: 10 },
      },
      {
        kind: 'remote-command',
        name: 'iis',
        certificates: { ids: ['sshlocal/web'] },
        hosts: { names: ['iis-1'] },
        command: [process.execPath, path.join(repoRoot, 'test/fixtures/bindings/iis-standin.mjs'), iisState]
          .map(shellQuote)
          .join(' '),
        hostNames: ['site-001.iis.test'],
        probe: { port: sites.port, settleSeconds: 10 },
      },
    ],
    http: { port: await freePort() },
    shutdownGraceSeconds: 5,
    log: { level: 'info', format: 'json' },
  };
  const file = path.join(dir, 'worker.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  worker = spawn(process.execPath, ['--import', 'tsx', 'worker/main.ts', '--config', file], {
    cwd: repoRoot,
    env: process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  worker.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  worker.stderr!.on('data', (d: Buffer) => (output += d.toString()));

  const client = new Client({ connection: await Connection.connect({ address }), namespace });
  try {
    const handle = client.workflow.getHandle(workflowIdFor('sshlocal/web'));
    const st = await waitFor(
      'the first renewal to issue and bind',
      async () => {
        if (worker?.exitCode !== null) return 'exited' as const;
        const s = await handle.query(statusQuery).catch(() => undefined);
        return s?.thumbprint && s.bindings.length >= 2 ? s : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\nworker output:\n${output.slice(-3000)}`);
    });
    if (st === 'exited')
      throw new Error(`the worker exited with ${worker?.exitCode}:\n${output.slice(-3000)}`);
    const byTarget = Object.fromEntries(st.bindings.map((b) => [b.target, b]));
    expect(byTarget['web-nginx']).toMatchObject({ status: 'bound', binding: `web-1:${nginx.certPath}` });
    expect(byTarget['iis']).toMatchObject({
      status: 'bound',
      binding: 'iis-1:IIS:site-001 https *:443:site-001.iis.test',
    });
    for (const b of st.bindings) expect(b.probe).toMatchObject({ ok: true, servedThumbprint: st.thumbprint });
    const served = await probeSettled(
      { host: '127.0.0.1', port: sites.port, servername: 'site-001.iis.test' },
      st.thumbprint,
    );
    expect(served.servedThumbprint).toBe(st.thumbprint);
    // the key and its PKCS#12 wrapping never reach the worker's logs
    expect(output).not.toMatch(/PRIVATE KEY|"pfx"|"password"/);
    await handle.terminate('test done');
  } finally {
    await client.connection.close();
  }
}, 180_000);
