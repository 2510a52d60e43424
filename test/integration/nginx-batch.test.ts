/**
 * Several sites of one real nginx bound as one batch (one `nginx -t`, one reload), and what happens when the
 * batch cannot go through together: a site the validation refuses is found by binding site by site, a site whose
 * probe fails is rolled back alone, a site whose files cannot be written fails alone. A reload that takes effect
 * only after the probes' settle window (a server re-reading thousands of sites) still binds every site.
 */
import { X509Certificate, createHash, createPublicKey } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  batchFileTargets,
  bindFiles,
  createFileReloadTarget,
  fileLeafThumbprint,
  type FileReloadTarget,
} from '../../activities/bindings/file-reload';
import type { BindingOutcome, BindingTarget } from '../../activities/types';
import { probeTls, thumbprintOf } from '../../activities/verify/probe';
import { syncAsOneBatch, type CertPair as Pair } from '../support/file-batch';
import { settledThumbprint } from '../support/nginx';
import { siteName, startNginxSites, type NginxSites } from '../support/nginx-sites';
import { waitFor } from '../support/proc';
import { createTestCa } from '../support/test-ca';
import { scratchDir } from '../support/tools';

const DOMAIN = 'sites.test';
const SITES = 6;

let nginx: NginxSites;
let ca: ReturnType<typeof createTestCa>;
let caPem: string;
let pairs: Pair[];
let current: Pair;

beforeAll(async () => {
  ca = createTestCa();
  caPem = ca.caCertPem;
  pairs = Array.from({ length: 4 }, () => {
    const { certPem, keyPem } = ca.issueServerCert([`*.${DOMAIN}`], { keyType: 'rsa' });
    return { certPem, keyPem, thumbprint: thumbprintOf(new X509Certificate(certPem)) };
  });
  current = pairs[0]!;
  nginx = await startNginxSites({
    dir: scratchDir('nginx-batch'),
    names: Array.from({ length: SITES }, (_, i) => siteName(i + 1)),
    domain: DOMAIN,
    certPem: current.certPem,
    keyPem: current.keyPem,
    logLevel: 'notice',
  });
});

afterAll(async () => {
  await nginx?.stop();
});

function target(i: number, overrides: Partial<FileReloadTarget> = {}): FileReloadTarget {
  const site = nginx.sites[i]!;
  return {
    name: site.name,
    certPath: site.certPath,
    keyPath: site.keyPath,
    validate: { command: nginx.command, args: nginx.testArgs, timeoutMs: 10_000 },
    reload: { command: nginx.command, args: nginx.reloadArgs, timeoutMs: 10_000 },
    probe: { host: '127.0.0.1', port: nginx.port, servername: site.serverName, caPem },
    ...overrides,
  };
}

function sync(targets: FileReloadTarget[], next: Pair): Promise<BindingOutcome[]> {
  return syncAsOneBatch(targets, { from: current, to: next, name: 'sites' });
}

const served = async (i: number) =>
  (
    await probeTls({
      host: '127.0.0.1',
      port: nginx.port,
      servername: nginx.sites[i]!.serverName,
      caPem,
      timeoutMs: 2_000,
    })
  ).servedThumbprint;
/** What site i serves once the last reload has settled (a retiring worker may still answer the first probes). */
const settled = (i: number, expected: string) => settledThumbprint(() => served(i), expected);

/** Reloads nginx has done so far, from its notice-level log. */
const reloads = async () => ((await readFile(nginx.errorLog, 'utf8')).match(/SIGHUP/g) ?? []).length;
/**
 * The reloads since `before`, once `expected` of them are in nginx's error log: `nginx -s reload` returns when the
 * signal is sent, and the master logs it when it handles it, a moment later on a loaded machine (a rollback's reload
 * is the batch's last step, so its line may not be written yet when the batch returns). A reload too many still
 * shows: the count is read again after a short pause.
 */
async function reloadsSince(before: number, expected: number): Promise<number> {
  await waitFor(`${expected} reload(s) in nginx's error log`, async () =>
    (await reloads()) >= before + expected ? true : undefined,
  ).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 500));
  return (await reloads()) - before;
}

const keyId = (pem: string) =>
  createHash('sha256')
    .update(createPublicKey(pem).export({ type: 'spki', format: 'der' }))
    .digest('hex');

/** Which pair of `pairs` a site's files hold (index), checking the key matches the certificate. */
async function onDisk(i: number, suffix = ''): Promise<number> {
  const site = nginx.sites[i]!;
  const thumb = await fileLeafThumbprint(site.certPath + suffix);
  const key = keyId(await readFile(site.keyPath + suffix, 'utf8'));
  const at = pairs.findIndex((p) => p.thumbprint === thumb);
  expect(key, `key and certificate of ${site.name}${suffix} are one pair`).toBe(keyId(pairs[at]!.keyPem));
  return at;
}

describe('file targets of one nginx, bound as a batch', () => {
  beforeEach(async () => {
    // every site serves `current` before each case (an old worker may still be draining)
    for (let i = 0; i < SITES; i++)
      await waitFor(`site ${i + 1} on the current pair`, async () =>
        (await served(i)) === current.thumbprint ? true : undefined,
      );
  });

  it('binds every site with one validation and one reload, each verified live', async () => {
    const next = pairs[1]!;
    const before = await reloads();
    const all = Array.from({ length: SITES }, (_, i) => target(i));

    const out = await sync(all, next);

    expect(out.map((o) => [o.target, o.status])).toEqual(all.map((t) => [t.name, 'bound']));
    for (const o of out) {
      expect(o.before).toBe(current.thumbprint);
      expect(o.after).toBe(next.thumbprint);
      expect(o.probe?.servedThumbprint).toBe(next.thumbprint);
      expect(o.detail).toContain(`one reload for ${SITES} sites`);
    }
    expect(await reloadsSince(before, 1)).toBe(1);
    for (let i = 0; i < SITES; i++) {
      expect(await settled(i, next.thumbprint)).toBe(next.thumbprint);
      expect(await onDisk(i)).toBe(1);
      expect(await onDisk(i, '.previous')).toBe(0);
      expect((await stat(nginx.sites[i]!.keyPath)).mode & 0o777).toBe(0o600);
    }
    current = next;

    // and again: nothing to do, no reload
    const again = await sync(all, next);
    expect(again.map((o) => o.status)).toEqual(all.map(() => 'unchanged'));
    expect(await reloadsSince(before, 1)).toBe(1);
  });

  it('a site nginx refuses in the batch is found site by site: it alone rolls back, the others bind', async () => {
    const next = pairs[2]!;
    // site 3's target writes chain+key into the file nginx reads as the certificate, leaving nginx's key file on
    // the old key: `nginx -t` fails for the whole batch (key values mismatch), and for that site alone
    const bad = 2;
    const targets = Array.from({ length: SITES }, (_, i) =>
      i === bad
        ? target(i, { certPath: undefined, keyPath: undefined, combinedPath: nginx.sites[i]!.certPath })
        : target(i),
    );

    const out = await sync(targets, next);

    const expected = targets.map((t, i) => [t.name, i === bad ? 'rolled-back' : 'bound']);
    expect(out.map((o) => [o.target, o.status])).toEqual(expected);
    expect(out[bad]!.detail).toMatch(
      /^validation failed: 'nginx -t -q' exited with code 1: .*key values mismatch/s,
    );
    expect(out[bad]!.after).toBe(current.thumbprint);
    for (const o of out) {
      expect(o.detail).not.toMatch(/PRIVATE KEY|BEGIN/);
      if (o.status === 'bound') expect(o.detail).not.toContain('one reload for');
    }
    for (let i = 0; i < SITES; i++) {
      await waitFor(`site ${i + 1} settled`, async () =>
        (await served(i)) === (i === bad ? current : next).thumbprint ? true : undefined,
      );
      expect(await onDisk(i)).toBe(i === bad ? 1 : 2);
    }
    // the refused site's files and generations are as they were (a pair of `current`, `.previous` untouched)
    expect(await onDisk(bad, '.previous')).toBe(0);

    // put the refused site on `next` too, for the next case
    const fixed = await sync([target(bad), target(0)], next);
    expect(fixed.map((o) => o.status)).toEqual(['bound', 'unchanged']);
    current = next;
  });

  it('a site whose live probe fails is rolled back alone; a site whose files cannot be written fails alone', async () => {
    const next = pairs[3]!;
    const before = await reloads();
    const wrongProbe = 1; // probes a site outside the batch, which keeps serving `current`
    const unwritable = 4;
    const outside = SITES - 1;
    const targets = Array.from({ length: SITES - 1 }, (_, i) =>
      i === wrongProbe
        ? target(i, {
            probe: {
              host: '127.0.0.1',
              port: nginx.port,
              servername: nginx.sites[outside]!.serverName,
              caPem,
              settleMs: 1_000,
            },
          })
        : target(i),
    );
    // site 5's certificate goes to a directory that does not exist: its key is written, its certificate is not
    targets[unwritable] = target(unwritable, {
      certPath: path.join(path.dirname(nginx.sites[unwritable]!.certPath), 'nope', 'cert.pem'),
    });
    const out = await sync(targets, next);

    const statuses = out.map((o) => o.status);
    expect(statuses).toEqual(
      targets.map((_, i) => (i === wrongProbe ? 'rolled-back' : i === unwritable ? 'failed' : 'bound')),
    );
    expect(out[wrongProbe]!.detail).toMatch(
      /^probe failed: .*serves .*, expected .*; restored the previous files/,
    );
    expect(out[unwritable]!.detail).toMatch(
      /^writing the new files failed: ENOENT.*; restored the previous files$/,
    );
    // one reload for the batch, one more for the rollback
    expect(await reloadsSince(before, 2)).toBe(2);
    for (let i = 0; i < SITES - 1; i++) {
      const bound = i !== wrongProbe && i !== unwritable;
      await waitFor(`site ${i + 1} settled`, async () =>
        (await served(i)) === (bound ? next : current).thumbprint ? true : undefined,
      );
      expect(await onDisk(i)).toBe(bound ? 3 : 2);
    }
    expect(await served(outside)).toBe(current.thumbprint);
  });
});

describe('grouping', () => {
  it('merges the file targets of one server, keeps other servers and other kinds apart and in order', () => {
    const other: BindingTarget = { kind: 'webhook', name: 'hook', sync: async () => [] };
    const a = createFileReloadTarget(target(0));
    const b = createFileReloadTarget(target(1));
    const elsewhere = createFileReloadTarget(
      target(2, { reload: { command: '/usr/sbin/haproxy', args: ['-sf'] } }),
    );
    const out = batchFileTargets([a, other, elsewhere, b]);
    expect(out.map((t) => [t.kind, t.name])).toEqual([
      ['files', 'site-001 and 1 more'],
      ['webhook', 'hook'],
      ['files', 'site-003'],
    ]);
  });

  it('syncs of different certificates on one nginx that arrive together share one validation and one reload', async () => {
    // a renewal wave: each certificate its own activity and its own site; they arrive while the server is busy
    const own = Array.from({ length: SITES }, () => {
      const { certPem, keyPem } = ca.issueServerCert([`*.${DOMAIN}`], { keyType: 'ec' });
      return { certPem, keyPem, thumbprint: thumbprintOf(new X509Certificate(certPem)) };
    });
    const before = await reloads();

    const outs = await Promise.all(
      own.map((pair, i) =>
        createFileReloadTarget(target(i)).sync({
          certificateId: `kv/site-${i + 1}`,
          version: pair.thumbprint,
          thumbprint: pair.thumbprint,
          previousThumbprint: current.thumbprint,
          secretId: `https://kv.example/secrets/site-${i + 1}/1`,
          notAfter: null,
          material: () => Promise.resolve({ keyPem: pair.keyPem, chainPem: [pair.certPem] }),
        }),
      ),
    );

    for (const [i, out] of outs.entries()) {
      expect(out.map((o) => [o.target, o.status])).toEqual([[nginx.sites[i]!.name, 'bound']]);
      expect(out[0]!.after).toBe(own[i]!.thumbprint);
      expect(out[0]!.probe?.servedThumbprint).toBe(own[i]!.thumbprint);
    }
    // they arrive within GATHER_QUIET_MS of each other: all of them in one batch, one validation and one reload
    // (one at a time they would be SITES reloads; without the gathering wait, the first went alone: 2)
    expect(await reloadsSince(before, 1)).toBe(1);
    expect(outs.flat().filter((o) => o.detail.includes(`one reload for ${SITES} sites`)).length).toBe(SITES);
    for (let i = 0; i < SITES; i++) {
      expect(await settled(i, own[i]!.thumbprint)).toBe(own[i]!.thumbprint);
      const site = nginx.sites[i]!;
      expect(await fileLeafThumbprint(site.certPath)).toBe(own[i]!.thumbprint);
      expect(keyId(await readFile(site.keyPath, 'utf8'))).toBe(keyId(own[i]!.keyPem));
    }
  });
  it('syncs that trickle in (a wave dispatched over a second) still go as one batch: one reload', async () => {
    const own = Array.from({ length: SITES }, () => {
      const { certPem, keyPem } = ca.issueServerCert([`*.${DOMAIN}`], { keyType: 'ec' });
      return { certPem, keyPem, thumbprint: thumbprintOf(new X509Certificate(certPem)) };
    });
    const before = await reloads();
    const outs = await Promise.all(
      own.map(async (pair, i) => {
        // each 150 ms after the one before: under GATHER_QUIET_MS apart, over it in all
        await new Promise((r) => setTimeout(r, i * 150));
        return createFileReloadTarget(target(i)).sync({
          certificateId: `kv/site-${i + 1}`,
          version: pair.thumbprint,
          thumbprint: pair.thumbprint,
          previousThumbprint: null,
          secretId: `https://kv.example/secrets/site-${i + 1}/2`,
          notAfter: null,
          material: () => Promise.resolve({ keyPem: pair.keyPem, chainPem: [pair.certPem] }),
        });
      }),
    );
    for (const [i, out] of outs.entries()) {
      expect(out.map((o) => [o.target, o.status])).toEqual([[nginx.sites[i]!.name, 'bound']]);
      expect(out[0]!.probe?.servedThumbprint).toBe(own[i]!.thumbprint);
    }
    expect(await reloadsSince(before, 1)).toBe(1);
    expect(outs.flat().filter((o) => o.detail.includes(`one reload for ${SITES} sites`)).length).toBe(SITES);
    for (let i = 0; i < SITES; i++) expect(await settled(i, own[i]!.thumbprint)).toBe(own[i]!.thumbprint);
  });
});

describe('a reload that takes effect late', () => {
  let slow: NginxSites | undefined;
  afterAll(async () => {
    await slow?.stop();
  });

  // `nginx -s reload` returns at once; here the new configuration serves 4 s later, after each probe's 1.5 s
  // settle window (nginx with thousands of sites on a busy machine: bench/wave.ts at N = 1,000)
  function lateTargets(s: NginxSites, probe: Partial<NonNullable<FileReloadTarget['probe']>> = {}) {
    const lateReload = {
      command: '/bin/sh',
      args: ['-c', '(sleep 4; exec "$0" "$@") >/dev/null 2>&1 &', s.command, ...s.reloadArgs],
      timeoutMs: 10_000,
    };
    return s.sites.map((site): FileReloadTarget => ({
      name: site.name,
      certPath: site.certPath,
      keyPath: site.keyPath,
      validate: { command: s.command, args: s.testArgs, timeoutMs: 10_000 },
      reload: lateReload,
      probe: {
        host: '127.0.0.1',
        port: s.port,
        servername: site.serverName,
        caPem,
        settleMs: 1_500,
        ...probe,
      },
    }));
  }

  it('binds every site: the batch waits for the reload to take effect before each probe (no good site rolled back)', async () => {
    const [from, to] = [pairs[0]!, pairs[1]!];
    slow = await startNginxSites({
      dir: scratchDir('nginx-batch-slow'),
      names: Array.from({ length: 3 }, (_, i) => siteName(i + 1)),
      domain: DOMAIN,
      certPem: from.certPem,
      keyPem: from.keyPem,
    });
    const s = slow;
    const out = await syncAsOneBatch(lateTargets(s), { from, to, name: 'slow' });
    expect(out.map((o) => [o.status, o.probe?.servedThumbprint])).toEqual(
      s.sites.map(() => ['bound', to.thumbprint]),
    );
  });

  it('binds a site bound alone too: while it still serves its old certificate, the probe waits up to reloadMs', async () => {
    const s = slow!;
    const [from, to] = [pairs[1]!, pairs[2]!];
    const bind = (t: FileReloadTarget) =>
      bindFiles(t, { keyPem: to.keyPem, chainPem: [to.certPem] }, to.thumbprint);

    const lone = await bind(lateTargets(s)[0]!);
    expect([lone.status, lone.before, lone.probe?.servedThumbprint]).toEqual([
      'bound',
      from.thumbprint,
      to.thumbprint,
    ]);

    // the same late reload with a reload window shorter than the delay: rolled back after that window (the site
    // never left its old certificate: the late reload runs after the rollback has put the old files back)
    const short = await bind(lateTargets(s, { reloadMs: 2_000 })[1]!);
    expect(short.status).toBe('rolled-back');
    expect(short.detail).toMatch(/^probe failed: .*serves .*, expected .*; restored the previous files/);
    expect(short.probe?.servedThumbprint).toBe(from.thumbprint);
  });
});
