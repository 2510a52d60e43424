/**
 * Challenges against a real pebble: HTTP-01 validated by pebble's VA against servers we run (the built-in
 * server, and a webroot served by a small static file server), and DNS-01 with the propagation check
 * asking challtestsrv for the TXT before the CA is told to validate; cleanup after a failed order.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAcmeIssuer, type AcmeIssuerOptions } from '../../activities/issuers/acme';
import { ariCertId } from '../../activities/issuers/acme-ari';
import { createChalltestsrvDns } from '../../activities/issuers/dns-challtestsrv';
import type { DnsProvider } from '../../activities/issuers/dns';
import { createWebrootHttp01, startHttp01Server, type Http01Provider } from '../../activities/issuers/http01';
import type { Issued } from '../../activities/types';
import { verifyIssuedChain } from '../../activities/verify/x509';
import { accountKey, dnsReader, failureOf, makeCsr, request, uniq } from '../support/acme';
import { freePort } from '../support/proc';
import { startPebble, type Pebble } from '../support/pebble';

describe('ACME challenges against pebble: HTTP-01 on our servers, DNS-01 propagation', () => {
  let pebble: Pebble;
  let http01Port: number;
  let txt: (fqdn: string) => Promise<string[]>;
  let dns: DnsProvider;
  let base: Omit<AcmeIssuerOptions, 'dns'>;

  beforeAll(async () => {
    http01Port = await freePort();
    pebble = await startPebble({ http01Port });
    txt = dnsReader(pebble.dnsPort);
    dns = createChalltestsrvDns({ managementUrl: pebble.challtestsrvUrl });
    base = {
      name: 'pebble',
      directoryUrl: pebble.directoryUrl,
      accountKeyPem: accountKey(),
      caBundlePem: pebble.caBundlePem,
    };
  });
  afterAll(async () => {
    await pebble?.stop();
  });

  async function issue(opts: AcmeIssuerOptions, label: string) {
    const names = [`${label}-${uniq()}.certflow.test`];
    const csrPem = await makeCsr('EC', names);
    const out = (await createAcmeIssuer(opts).submit(request(names, csrPem))) as Issued;
    await verifyIssuedChain({
      csrPem,
      chainPem: out.chainPem,
      expectedDnsNames: names,
      now: new Date(),
      trustAnchorsPem: [await pebble.rootsPem()],
    });
    return names;
  }

  /** Records what a provider was asked to do. */
  function recording(inner: Http01Provider) {
    const presented: string[] = [];
    const cleaned: string[] = [];
    const provider: Http01Provider = {
      async present(host, token, keyAuthorization) {
        presented.push(`${host}/${token}`);
        await inner.present(host, token, keyAuthorization);
      },
      async cleanup(host, token) {
        cleaned.push(`${host}/${token}`);
        await inner.cleanup(host, token);
      },
    };
    return { provider, presented, cleaned };
  }

  it('HTTP-01 through the built-in server: pebble fetches the answer from it; preferred over DNS-01 when asked', async () => {
    const server = await startHttp01Server({ host: '127.0.0.1', port: http01Port });
    try {
      const rec = recording(server);
      const dnsCalls: string[] = [];
      const names = await issue(
        {
          ...base,
          http01: rec.provider,
          dns: { present: async (f) => void dnsCalls.push(f), cleanup: async () => {} },
          preferredChallenge: 'http-01',
        },
        'http01-builtin',
      );
      expect(rec.presented).toHaveLength(1);
      expect(rec.presented[0]!.startsWith(`${names[0]}/`)).toBe(true);
      expect(rec.cleaned).toEqual(rec.presented);
      expect(dnsCalls).toEqual([]);
      // cleaned up: the token is no longer served
      const res = await fetch(`${server.url}/.well-known/acme-challenge/${rec.presented[0]!.split('/')[1]}`);
      expect(res.status).toBe(404);
    } finally {
      await server.close();
    }
  });

  it('HTTP-01 through a webroot: the file is what the web server serves, and is removed after', async () => {
    const webroot = await mkdtemp(path.join(os.tmpdir(), 'certflow-webroot-'));
    const served: { url: string; status: number }[] = [];
    // a plain static file server over the webroot (stands in for nginx/IIS serving that directory)
    const server = http.createServer(async (req, res) => {
      const file = path.join(webroot, path.normalize(decodeURIComponent(req.url ?? '/')));
      try {
        const body = await readFile(file);
        served.push({ url: req.url ?? '', status: 200 });
        res.writeHead(200, { 'content-type': 'text/plain' }).end(body);
      } catch {
        served.push({ url: req.url ?? '', status: 404 });
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((r) => server.listen(http01Port, '127.0.0.1', r));
    try {
      await issue({ ...base, http01: createWebrootHttp01({ webroot }) }, 'http01-webroot');
      expect(served.some((s) => s.status === 200 && s.url.startsWith('/.well-known/acme-challenge/'))).toBe(
        true,
      );
      expect(await readdir(path.join(webroot, '.well-known/acme-challenge'))).toEqual([]);
    } finally {
      await new Promise((r) => server.close(r));
      server.closeAllConnections();
      await rm(webroot, { recursive: true, force: true });
    }
  });

  it('a wildcard needs DNS-01: with only HTTP-01 configured the order fails non-retryable, naming why', async () => {
    const names = [`*.wild-${uniq()}.certflow.test`];
    const f = await failureOf(
      createAcmeIssuer({ ...base, http01: createWebrootHttp01({ webroot: '/nonexistent' }) }).submit(
        request(names, await makeCsr('EC', names)),
      ),
    );
    expect(f.type).toBe('AcmeNoUsableChallenge');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain('a wildcard needs dns-01');
  });

  /** Publishes each TXT only `lagMs` after present() returned, like a DNS host with slow propagation. */
  function lagging(inner: DnsProvider, lagMs: number, tamper = false): DnsProvider {
    const pending = new Map<string, { timer: NodeJS.Timeout; published: Promise<void> | null }>();
    return {
      async present(fqdn, value) {
        const v = tamper ? `${value.slice(0, -2)}xx` : value;
        const p: { timer: NodeJS.Timeout; published: Promise<void> | null } = {
          timer: setTimeout(() => (p.published = inner.present(fqdn, v)), lagMs),
          published: null,
        };
        pending.set(fqdn, p);
      },
      async cleanup(fqdn, value) {
        const p = pending.get(fqdn);
        if (p) clearTimeout(p.timer); // not published yet: it never will be
        await p?.published?.catch(() => {});
        await inner.cleanup(fqdn, value);
      },
    };
  }

  it('DNS-01 with a slow DNS host: the propagation check waits for the TXT, and validation passes', async () => {
    const t0 = Date.now();
    const names = await issue(
      {
        ...base,
        dns: lagging(dns, 1_500),
        propagation: { resolvers: [`127.0.0.1:${pebble.dnsPort}`], intervalMs: 200, timeoutMs: 10_000 },
      },
      'propagation',
    );
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_500);
    expect(await txt(`_acme-challenge.${names[0]}`)).toEqual([]);
  });

  it('the same slow DNS host without the check: pebble sees no TXT and validation fails (the check matters)', async () => {
    const names = [`no-check-${uniq()}.certflow.test`];
    // published far later than pebble validates, however slow the machine (cleanup cancels it)
    const f = await failureOf(
      createAcmeIssuer({ ...base, dns: lagging(dns, 60_000) }).submit(
        request(names, await makeCsr('EC', names)),
      ),
    );
    expect(f.type).toBe('AcmeUnauthorized');
    expect(f.message).toContain(`DNS-01 validation of ${names[0]}`);
    expect(await txt(`_acme-challenge.${names[0]}`)).toEqual([]);
  });

  it('a TXT that never shows the right value: retryable DnsPropagationTimeout, and the record is gone after', async () => {
    const names = [`never-${uniq()}.certflow.test`];
    const fqdn = `_acme-challenge.${names[0]}`;
    const server = `127.0.0.1:${pebble.dnsPort}`;
    const t0 = Date.now();
    const f = await failureOf(
      createAcmeIssuer({
        ...base,
        dns: lagging(dns, 0, true),
        propagation: { resolvers: [server], intervalMs: 100, timeoutMs: 1_000 },
      }).submit(request(names, await makeCsr('EC', names))),
    );
    expect(Date.now() - t0).toBeLessThan(30_000); // the 1 s propagation timeout, not a hang
    expect(f.type).toBe('DnsPropagationTimeout');
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toContain(fqdn);
    expect(f.message).toContain(`${server} (1 other value(s))`);
    expect(await txt(fqdn)).toEqual([]);
  });

  it('ARI: pebble 2.4 offers no renewalInfo, so the window is null (and the leaf has an ARI id)', async () => {
    const names = [`ari-${uniq()}.certflow.test`];
    const issuer = createAcmeIssuer({ ...base, dns });
    const out = (await issuer.submit(request(names, await makeCsr('EC', names)))) as Issued;
    expect(ariCertId(out.chainPem[0]!)).toMatch(/^[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]+$/);
    expect(await issuer.renewalWindow(out.chainPem[0]!)).toBeNull();
  });
});
