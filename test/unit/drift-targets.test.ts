/**
 * The drift watch over `files` / `ssh-files` targets as the worker builds them from its configuration
 * (createFileReloadTarget, worker/deps-bindings.ts): their file is read and their endpoint probed, instead of the
 * `unprobeable` a target without a watch gets. (The end-to-end drift test builds its file target another way,
 * through `fileBindings`, which is why this went unnoticed.) And `remote-command` targets: each configured host
 * name on each host, live (no SSH: the script is not run to watch).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFileReloadTarget, type FileReloadTarget } from '../../activities/bindings/file-reload';
import {
  createRemoteCommandTarget,
  type RemoteCommandTargetOptions,
} from '../../activities/bindings/remote-command';
import { SshPool } from '../../activities/bindings/ssh-connection';
import { watchTargets } from '../../activities/bindings/watch';
import { thumbprintOf } from '../../activities/verify/probe';
import { freePort } from '../support/proc';
import { createTestCa } from '../support/test-ca';
import { scratchDir } from '../support/tools';

const ca = createTestCa();
const served = ca.issueServerCert(['web.test']);
const other = ca.issueServerCert(['web.test']);
const SERVED = thumbprintOf(served.certPem);
const OTHER = thumbprintOf(other.certPem);

const dir = scratchDir('drift-file-targets');
let server: tls.Server;
let port: number;
beforeAll(async () => {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'cert.pem'), served.certPem);
  writeFileSync(path.join(dir, 'key.pem'), served.keyPem, { mode: 0o600 });
  port = await freePort();
  server = tls.createServer({ cert: served.certPem, key: served.keyPem }, (s) => s.end());
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
});
afterAll(async () => {
  await new Promise((r) => server?.close(r));
});

const target = (extra: Partial<FileReloadTarget> = {}) =>
  createFileReloadTarget({
    name: 'web',
    certPath: path.join(dir, 'cert.pem'),
    keyPath: path.join(dir, 'key.pem'),
    validate: { command: '/bin/true', args: [] },
    reload: { command: '/bin/true', args: [] },
    ...extra,
  });
const probe = { host: '127.0.0.1', port: 0, servername: 'web.test', caPem: ca.caCertPem };

describe('drift watch over configured file targets', () => {
  it('probes the endpoint: serving when it serves the vault’s version', async () => {
    const [a] = await watchTargets([target({ probe: { ...probe, port } })], SERVED);
    expect(a).toMatchObject({ target: 'web', state: 'serving', served: SERVED });
    expect(a!.detail).toContain('cert.pem holds it');
  });

  it('drift when the endpoint and the file hold another certificate than the vault’s', async () => {
    const [a] = await watchTargets([target({ probe: { ...probe, port } })], OTHER);
    expect(a).toMatchObject({ target: 'web', state: 'drift', served: SERVED });
  });

  it('without an endpoint the file still tells: drift when it holds another, else unprobeable naming it', async () => {
    const [d] = await watchTargets([target()], OTHER);
    expect(d).toMatchObject({ state: 'drift', served: SERVED });
    const [u] = await watchTargets([target()], SERVED);
    expect(u).toMatchObject({ state: 'unprobeable', served: SERVED });
    expect(u!.detail).toMatch(/no live endpoint configured \(probe\); .*cert\.pem holds it/);
  });

  it('an endpoint that does not answer is unreachable, not healthy', async () => {
    const [a] = await watchTargets([target({ probe: { ...probe, port: await freePort() } })], SERVED);
    expect(a).toMatchObject({ state: 'unreachable', served: null });
  });
});

describe('drift watch over remote-command targets', () => {
  // the host's SSH settings are never used to watch: only its address
  const host = (name: string) => ({
    name,
    address: '127.0.0.1',
    user: 'certflow',
    privateKey: 'unused',
    hostKeys: ['unused'],
  });
  const iis = (extra: Partial<RemoteCommandTargetOptions> = {}) =>
    createRemoteCommandTarget({
      name: 'iis',
      hosts: [host('iis-1'), host('iis-2')],
      command: 'unused',
      pool: new SshPool(),
      ...extra,
    });

  it('probes each configured host name on each host: serving, or drift when another certificate is served', async () => {
    const t = iis({ hostNames: ['web.test', '*.wild.test'], probe: { port, caPem: ca.caCertPem } });
    const ok = await watchTargets([t], SERVED);
    expect(ok.map((a) => [a.binding, a.state, a.served])).toEqual([
      ['iis-1:web.test', 'serving', SERVED],
      ['iis-2:web.test', 'serving', SERVED],
    ]);
    const drift = await watchTargets([t], OTHER);
    expect(drift.map((a) => a.state)).toEqual(['drift', 'drift']);
  });

  it('a name whose endpoint does not answer is unreachable; the expected certificate on a wrong name is invalid', async () => {
    const down = await watchTargets(
      [iis({ hostNames: ['web.test'], probe: { port: await freePort() } })],
      SERVED,
    );
    expect(down.map((a) => a.state)).toEqual(['unreachable', 'unreachable']);
    const wrong = await watchTargets(
      [iis({ hostNames: ['other.test'], probe: { port, caPem: ca.caCertPem } })],
      SERVED,
    );
    expect(wrong.map((a) => a.state)).toEqual(['invalid', 'invalid']);
  });

  it('without a probe or host names it says why it cannot watch, per host', async () => {
    const noProbe = await watchTargets([iis({ hostNames: ['web.test'] })], SERVED);
    expect(noProbe).toMatchObject([
      { binding: 'iis-1', state: 'unprobeable', detail: 'no live endpoint configured (probe)' },
      { binding: 'iis-2', state: 'unprobeable' },
    ]);
    const noNames = await watchTargets([iis({ probe: { port } })], SERVED);
    expect(noNames[0]).toMatchObject({ state: 'unprobeable' });
    expect(noNames[0]!.detail).toMatch(/no host names configured \(hostNames\)/);
  });
});
