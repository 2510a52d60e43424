/**
 * The remote-command target (the Windows/IIS contract of docs/hosts.md) over a real sshd. PowerShell and IIS cannot
 * run here, so Certflow's side of the contract is exercised with a POSIX stand-in (test/fixtures/bindings/
 * iis-standin.mjs) that implements the same stdin/stdout/exit-code contract: it imports the PKCS#12 into a store
 * directory and "re-binds" nginx sites, so that Certflow's live probe of each host name is real. The PowerShell
 * script itself (examples/bindings/iis/iis-rebind.ps1) is untested here.
 */
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRemoteCommandTarget, parseScriptAnswer } from '../../activities/bindings/remote-command';
import { SshPool, type SshHost } from '../../activities/bindings/ssh-connection';
import { shellQuote } from '../../activities/bindings/ssh-file-host';
import type { BindingContext, BindingOutcome } from '../../activities/types';
import { probeTls, thumbprintOf } from '../../activities/verify/probe';
import { settledThumbprint } from '../support/nginx';
import { siteName, startNginxSites, type NginxSites } from '../support/nginx-sites';
import { startSshd, type RunningSshd } from '../support/sshd';
import { createTestCa } from '../support/test-ca';
import { repoRoot, scratchDir, tools } from '../support/tools';

const ca = createTestCa();
const DOMAIN = 'iis.test';
interface Cert {
  keyPem: string;
  chainPem: string[];
  thumbprint: string;
}
const issue = (): Cert => {
  const { certPem, keyPem } = ca.issueServerCert([`*.${DOMAIN}`]);
  return {
    keyPem,
    chainPem: [certPem, ca.caCertPem],
    thumbprint: thumbprintOf(new X509Certificate(certPem)),
  };
};

let sshd: RunningSshd;
let sites: NginxSites;
let pool: SshPool;
let stateDir: string;
let current: Cert;
const names = [siteName(1), siteName(2)];
const hostNameOf = (name: string) => `${name}.${DOMAIN}`;

beforeAll(async () => {
  current = issue();
  const dir = scratchDir('remote-command');
  mkdirSync(dir, { recursive: true });
  sites = await startNginxSites({
    dir: path.join(dir, 'nginx'),
    names,
    domain: DOMAIN,
    certPem: current.chainPem.join(''),
    keyPem: current.keyPem,
  });
  sshd = await startSshd();
  pool = new SshPool({ idleMs: 2_000 });
  // the "server": its store already holds the certificate in use, as on a Windows server before a renewal
  stateDir = path.join(dir, 'iis');
  mkdirSync(path.join(stateDir, 'store'), { recursive: true });
  writeFileSync(path.join(stateDir, 'store', `${current.thumbprint}.crt`), current.chainPem.join(''));
  writeFileSync(path.join(stateDir, 'store', `${current.thumbprint}.key`), current.keyPem, { mode: 0o600 });
  writeState({ fail: null, lie: null });
});

afterAll(async () => {
  await pool?.close();
  await sshd?.stop();
  await sites?.stop();
});

function writeState(flags: { fail: string | null; lie: string | null }) {
  const file = path.join(stateDir, 'state.json');
  const old = (() => {
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as { bindings: unknown[] };
    } catch {
      return undefined;
    }
  })();
  writeFileSync(
    file,
    JSON.stringify({
      openssl: tools.openssl(),
      nginx: { command: sites.command, testArgs: sites.testArgs, reloadArgs: sites.reloadArgs },
      bindings:
        old?.bindings ??
        sites.sites.map((s) => ({
          binding: `IIS:${s.name} https *:443:${s.serverName}`,
          hostName: s.serverName,
          certPath: s.certPath,
          keyPath: s.keyPath,
          thumbprint: current.thumbprint,
        })),
      ...flags,
    }),
  );
}

const host = (): SshHost => ({
  name: 'iis-1',
  address: '127.0.0.1',
  port: sshd.port,
  user: sshd.user,
  privateKey: sshd.clientKey,
  hostKeys: [sshd.hostPublicKey],
});

const target = () =>
  createRemoteCommandTarget({
    name: 'iis',
    hosts: [host()],
    command: [process.execPath, path.join(repoRoot, 'test/fixtures/bindings/iis-standin.mjs'), stateDir]
      .map(shellQuote)
      .join(' '),
    timeoutMs: 60_000,
    probe: { port: sites.port, caPem: ca.caCertPem, settleMs: 3_000 },
    pool,
  });

const ctxFor = (c: Cert, previous: Cert | null): BindingContext => ({
  certificateId: 'kv/iis',
  version: 'v',
  thumbprint: c.thumbprint,
  previousThumbprint: previous?.thumbprint ?? null,
  secretId: 'local://kv/secrets/iis',
  notAfter: null,
  material: async () => ({ keyPem: c.keyPem, chainPem: c.chainPem }),
});

/** What a site serves once nginx's reload has settled (old workers may take a new connection while they drain). */
const served = async (name: string, settled: string) => {
  const probe = async () =>
    (await probeTls({ host: '127.0.0.1', port: sites.port, servername: hostNameOf(name) })).servedThumbprint;
  return settledThumbprint(probe, settled, { timeoutMs: 10_000 });
};

describe('the remote-command contract over SSH (POSIX stand-in for the IIS script)', () => {
  it('imports the PKCS#12, moves every binding from the old thumbprint, and each host name is probed live', async () => {
    const next = issue();
    const outcomes = await target().sync(ctxFor(next, current));
    expect(outcomes.map((o) => [o.binding, o.status])).toEqual(
      names.map((n) => [`iis-1:IIS:${n} https *:443:${hostNameOf(n)}`, 'bound']),
    );
    for (const o of outcomes) {
      expect(o).toMatchObject({ before: current.thumbprint, after: next.thumbprint });
      expect(o.probe).toMatchObject({ ok: true, servedThumbprint: next.thumbprint });
      expect(o.probe?.detail).toContain('chain trusted');
    }
    // nothing of the key or its wrapping in what goes to history
    expect(JSON.stringify(outcomes)).not.toMatch(/PRIVATE KEY|"pfx"|password/i);
    current = next;

    const again = await target().sync(ctxFor(next, null));
    expect(again.map((o) => o.status)).toEqual(['unchanged', 'unchanged']);
  });

  it('reports a binding the script could not move as failed, the others restored, stderr without key blocks', async () => {
    writeState({ fail: hostNameOf(names[1]!), lie: null });
    try {
      const next = issue();
      const outcomes = await target().sync(ctxFor(next, current));
      expect(outcomes.map((o) => o.status)).toEqual(['rolled-back', 'failed']);
      expect(outcomes.every((o) => o.reason === 'CommandFailed')).toBe(true);
      expect(outcomes[1]!.detail).toContain('Error: 87');
      expect(outcomes[1]!.detail).toContain(
        'the script exited with code 1; stderr: netsh http update sslcert failed',
      );
      expect(outcomes[1]!.detail).toContain('[private key removed]');
      expect(JSON.stringify(outcomes)).not.toContain('TUlJRXZRSUJBREFO');
      for (const n of names) expect(await served(n, current.thumbprint)).toBe(current.thumbprint);
    } finally {
      writeState({ fail: null, lie: null });
    }
  });

  it('rolls the whole host back when a host name does not serve the new certificate (ProbeMismatch)', async () => {
    writeState({ fail: null, lie: hostNameOf(names[0]!) });
    try {
      const next = issue();
      const outcomes: BindingOutcome[] = await target().sync(ctxFor(next, current));
      expect(outcomes.map((o) => o.status)).toEqual(['rolled-back', 'rolled-back']);
      expect(outcomes.every((o) => o.reason === 'ProbeMismatch')).toBe(true);
      expect(outcomes[0]!.detail).toContain(`probe failed for ${hostNameOf(names[0]!)}`);
      expect(outcomes[0]!.detail).toContain(`moved back to ${current.thumbprint}`);
      // and Certflow saw the previous certificate served again before it said so
      expect(outcomes[1]!.detail).toContain(`serves ${current.thumbprint}`);
      for (const n of names) expect(await served(n, current.thumbprint)).toBe(current.thumbprint);
      const state = JSON.parse(readFileSync(path.join(stateDir, 'state.json'), 'utf8')) as {
        bindings: { thumbprint: string }[];
      };
      expect(state.bindings.map((b) => b.thumbprint)).toEqual([current.thumbprint, current.thumbprint]);
    } finally {
      writeState({ fail: null, lie: null });
    }
  });

  it('classifies an unusable answer as CommandFailed with the tail of stderr', async () => {
    const t = createRemoteCommandTarget({
      name: 'broken',
      hosts: [host()],
      command: `echo 'Import-PfxCertificate : The PFX file you are trying to import requires a different password' >&2; exit 5`,
      pool,
    });
    const [o] = await t.sync(ctxFor(issue(), current));
    expect(o).toMatchObject({ status: 'failed', reason: 'CommandFailed', binding: 'iis-1:' });
    expect(o!.detail).toMatch(
      /exited with code 5 and its answer is unusable: no JSON document on stdout; stderr: Import-PfxCertificate/,
    );
  });
});

describe('parseScriptAnswer', () => {
  it('takes the JSON document among other output, normalizes thumbprints, and says what is wrong otherwise', () => {
    const ok = parseScriptAnswer(
      'WARNING: something\n{"version":1,"bindings":[{"binding":"IIS:a","hostName":"a.test","before":"ab:cd","after":"EF","status":"bound","detail":"ok"}]}\n',
    );
    expect(ok).toEqual([
      { binding: 'IIS:a', hostName: 'a.test', before: 'ABCD', after: 'EF', status: 'bound', detail: 'ok' },
    ]);
    expect(parseScriptAnswer('nothing')).toBe('no JSON document on stdout');
    expect(parseScriptAnswer('{"bindings":{}}')).toBe('expected { "bindings": [...] } on stdout');
    expect(parseScriptAnswer('{"bindings":[{"binding":"x","status":"moved"}]}')).toMatch(
      /^bindings\[0\]\.status: expected/,
    );
  });
});
