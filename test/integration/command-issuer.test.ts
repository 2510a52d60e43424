/**
 * The command issuer runs real programs (small Node scripts in test/fixtures/issuers) and maps what they do to
 * issued / pending / failures. Then verification before merge: a script CA that answers with deliberately wrong
 * certificates is driven through the real activities (beginRenewal → issue → verify → merge) over the test Key
 * Vault server and the real Azure SDK, and none of its certificates may reach the vault.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { webcrypto, X509Certificate } from 'node:crypto';
import { mkdtempSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities, type Activities } from '../../activities/index';
import { createCommandIssuer, type CommandIssuerOptions } from '../../activities/issuers/command';
import { createDevCaIssuer } from '../../activities/issuers/dev-ca';
import type { CertificateState, Issuer, IssueRequest } from '../../activities/types';
import { createAzureKeyVault } from '../../activities/vault/azure-key-vault';
import { verifyIssuedChain } from '../../activities/verify/x509';
import { startTestKeyVault, type SeedOptions, type TestKeyVault } from '../support/keyvault';
import { repoRoot } from '../support/tools';
import { failureOf } from '../support/failure';

const fixtures = path.join(repoRoot, 'test/fixtures/issuers');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'certflow-command-issuer-'));
const caDir = path.join(tmp, 'script-ca');
let rootPem: string;

/** The script CA: a dev CA behind a program, answering as CERTFLOW_TEST_MODE says. */
const scriptCa = (mode: string, extra: Partial<CommandIssuerOptions> = {}): Issuer =>
  createCommandIssuer({
    name: `ca-${mode}`,
    command: process.execPath,
    args: ['--import', 'tsx', path.join(fixtures, 'dev-ca-script.ts')],
    env: { CERTFLOW_TEST_MODE: mode, CERTFLOW_TEST_CA_DIR: caDir },
    cwd: repoRoot,
    timeoutMs: 60_000,
    ...extra,
  });

/** A script with no CA behind it, behaving as its argument says. */
const behaviour = (mode: string, extra: Partial<CommandIssuerOptions> = {}): Issuer =>
  createCommandIssuer({
    name: mode,
    command: process.execPath,
    args: [path.join(fixtures, 'behaviours.mjs'), mode],
    timeoutMs: 30_000,
    ...extra,
  });

const failure = failureOf;

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

beforeAll(async () => {
  // the CA exists before any script runs, so every run (and the trust anchor) shares one root
  rootPem = await createDevCaIssuer({ name: 'script', dir: caDir, validity: { days: 1 } }).rootPem();
});

afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('command issuer: the exit-code contract', () => {
  let req: IssueRequest;

  beforeAll(async () => {
    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    const keys = await webcrypto.subtle.generateKey(alg, false, ['sign', 'verify']);
    const csr = await x509.Pkcs10CertificateRequestGenerator.create(
      { name: 'CN=api.example.test', keys, signingAlgorithm: alg },
      webcrypto,
    );
    req = {
      certificateId: 'kv/api',
      csrPem: csr.toString('pem'),
      dnsNames: ['api.example.test', 'api2.example.test'],
    };
  });

  it('exit 0: the chain on stdout, leaf first, for the names in CERTFLOW_DNS_NAMES', async () => {
    const r = await scriptCa('good').submit(req);
    if (r.status !== 'issued') throw new Error(`expected issued, got ${r.status}`);
    expect(r.chainPem).toHaveLength(2);
    expect(new X509Certificate(r.chainPem[0]!).subjectAltName).toBe(
      'DNS:api.example.test, DNS:api2.example.test',
    );
    const verified = await verifyIssuedChain({
      csrPem: req.csrPem,
      chainPem: r.chainPem,
      expectedDnsNames: req.dnsNames,
      now: new Date(),
      trustAnchorsPem: [rootPem],
    });
    expect(verified.subject).toBe('CN=api.example.test');
  });

  it('exit 75: pending with ref and retry-after; the poll (--poll, CERTFLOW_REQUEST_REF) issues', async () => {
    const issuer = scriptCa('pending');
    const pending = await issuer.submit(req);
    expect(pending).toEqual({
      status: 'pending',
      ref: expect.stringMatching(/^req-[0-9a-f]{8}$/),
      retryAfterSeconds: 7,
    });
    if (pending.status !== 'pending') return;
    const issued = await issuer.poll(pending.ref, req);
    expect(issued.status).toBe('issued');
  });

  it('kills the process group of a program that runs past the timeout (retryable)', async () => {
    const pidFile = path.join(tmp, 'hang.pids');
    const started = Date.now();
    const f = await failure(
      behaviour('hang', { timeoutMs: 5000, env: { CERTFLOW_TEST_PID_FILE: pidFile } }).submit(req),
    );
    expect([f.type, f.nonRetryable]).toEqual(['CommandIssuerTimeout', false]);
    expect(f.message).toMatch(/ran longer than 5000 ms and was killed/);
    expect(Date.now() - started).toBeLessThan(40_000); // killed, not waited for (the program sleeps far longer)
    const pids = JSON.parse(await fs.readFile(pidFile, 'utf8')) as number[];
    expect(pids).toHaveLength(2);
    // the helper it started went with it
    await expect.poll(() => pids.filter(alive), { timeout: 5000 }).toEqual([]);
  });

  it('kills a program whose output passes the limit (not retryable)', async () => {
    const f = await failure(behaviour('flood', { maxOutputBytes: 64 * 1024 }).submit(req));
    expect([f.type, f.nonRetryable]).toEqual(['CommandIssuerOutputTooLarge', true]);
    expect(f.message).toMatch(/more than 65536 bytes to stdout/);
  });

  it('refuses exit 0 with no certificate on stdout', async () => {
    const f = await failure(behaviour('garbage').submit(req));
    expect([f.type, f.nonRetryable]).toEqual(['CommandIssuerNoChain', true]);
    expect(f.message).not.toMatch(/mailed/); // stdout is not echoed
  });

  it('reports a refusal with the end of stderr, private keys removed (not retryable)', async () => {
    const f = await failure(behaviour('reject').submit(req));
    expect([f.type, f.nonRetryable]).toEqual(['CommandIssuerRejected', true]);
    expect(f.message).toMatch(/exited 1; stderr: …/);
    expect(f.message).toMatch(/\[private key removed\]\s*Denied by Policy Module/);
    expect(f.message).not.toMatch(/PRIVATE KEY-----|S2V5TWF0ZXJpYWx/);
    expect(f.message).not.toMatch(/contacting the CA/); // only the last 500 characters
  });

  it('exit 69: the CA is unavailable, retryable after the retry-after it printed', async () => {
    const f = await failure(behaviour('unavailable').submit(req));
    expect([f.type, f.nonRetryable, f.nextRetryDelay]).toEqual(['CommandIssuerUnavailable', false, '30s']);
    expect(f.message).toMatch(/RPC server unavailable/);
  });

  it('names a program that cannot be started', async () => {
    const missing = path.join(tmp, 'no-such-ca-client');
    const f = await failure(createCommandIssuer({ name: 'adcs', command: missing }).submit(req));
    expect([f.type, f.nonRetryable]).toEqual(['CommandIssuerMisconfigured', true]);
    expect(f.message).toContain(`'${missing}' could not be started (ENOENT)`);
    const notExecutable = path.join(fixtures, 'behaviours.mjs');
    const g = await failure(createCommandIssuer({ name: 'adcs', command: notExecutable }).submit(req));
    expect(g.type).toBe('CommandIssuerMisconfigured');
  });

  it("passes the contract's variables and not the worker's environment", async () => {
    process.env.CERTFLOW_TEST_WORKER_SECRET = 'not-for-scripts';
    try {
      const f = await failure(behaviour('env', { env: { STEPPATH: '/etc/step' } }).submit(req));
      const names = f.message.split('stderr: ')[1]!.split(' ');
      expect(names).toEqual(
        expect.arrayContaining([
          'CERTFLOW_ACTION',
          'CERTFLOW_CERTIFICATE_ID',
          'CERTFLOW_DNS_NAMES',
          'PATH',
          'STEPPATH',
        ]),
      );
      expect(names).not.toContain('CERTFLOW_TEST_WORKER_SECRET');
      expect(names).not.toContain('CERTFLOW_REQUEST_REF');
    } finally {
      delete process.env.CERTFLOW_TEST_WORKER_SECRET;
    }
  });
});

describe('verification before merge: wrong certificates from a CA are never merged', () => {
  let kv: TestKeyVault;
  let acts: Activities;
  const modes = ['good', 'other-key', 'missing-san', 'expired', 'broken-chain', 'garbage-bytes'];
  // activity logs (failures included) are not what this test is about
  const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
  const run = <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...args: A): Promise<R> =>
    env.run(fn, ...args);

  beforeAll(async () => {
    kv = await startTestKeyVault();
    const vault = createAzureKeyVault({
      name: kv.vaultName,
      url: kv.url,
      credential: kv.credential,
      clientOptions: kv.clientOptions,
    });
    acts = createActivities({
      vaults: new Map([[kv.vaultName, vault]]),
      issuers: new Map(modes.map((m) => [`ca-${m}`, scriptCa(m)])),
      fileBindings: () => [],
      notifier: null,
      trustAnchorsPem: (issuer) => (issuer.startsWith('ca-') ? [rootPem] : undefined),
    });
    const twoNames = (name: string): SeedOptions => ({
      policy: { subjectAlternativeNames: { dnsNames: [`${name}.example.test`, `www.${name}.example.test`] } },
    });
    await kv.seed('shop', twoNames('shop'));
    await kv.seed('web', twoNames('web'));
  });

  afterAll(async () => {
    await kv?.stop();
  });

  /** One renewal attempt as the renewal workflow runs it: merge only when verification passed. */
  async function renew(certName: string, mode: string): Promise<CertificateState> {
    const certificateId = `${kv.vaultName}/${certName}`;
    const issuer = `ca-${mode}`;
    const state = await run(acts.observe, certificateId);
    const dnsNames = state.policy?.dnsNames ?? state.dnsNames;
    const { csrPem } = await run(acts.beginRenewal, certificateId);
    const issued = await run(acts.issue, { issuer, certificateId, csrPem, dnsNames });
    if (issued.status !== 'issued') throw new Error(`expected issued, got ${issued.status}`);
    const verified = await run(acts.verify, {
      certificateId,
      csrPem,
      chainPem: issued.chainPem,
      dnsNames,
      issuer,
    });
    return run(acts.merge, {
      certificateId,
      chainPem: issued.chainPem,
      expectedThumbprint: verified.thumbprint,
    });
  }

  it.each([
    ['other-key', 'KeyMismatch'],
    ['missing-san', 'NameMismatch'],
    ['expired', 'Expired'],
    ['broken-chain', 'BrokenChain'],
    ['garbage-bytes', 'Unparseable'],
  ])('%s: verify fails with %s and the vault keeps its certificate', async (mode, type) => {
    const before = await run(acts.observe, `${kv.vaultName}/shop`);
    const f = await failure(renew('shop', mode));
    expect([f.type, f.nonRetryable]).toEqual([type, true]);
    const after = await run(acts.observe, `${kv.vaultName}/shop`);
    expect([after.version, after.thumbprint]).toEqual([before.version, before.thumbprint]);
    expect(after.pendingOperation).toBe(true); // the CSR waits for a good chain
  });

  it('good: a correct chain passes verification and is merged', async () => {
    const before = await run(acts.observe, `${kv.vaultName}/web`);
    const merged = await renew('web', 'good');
    expect(merged.version).not.toBe(before.version);
    expect(merged.thumbprint).not.toBe(before.thumbprint);
    expect(merged.dnsNames.sort()).toEqual(['web.example.test', 'www.web.example.test']);
    expect(merged.pendingOperation).toBe(false);
    expect((await run(acts.observe, `${kv.vaultName}/web`)).thumbprint).toBe(merged.thumbprint);
  });
});
