/**
 * The ACME issuer against a real pebble, with real DNS-01 validation through pebble-challtestsrv
 * (PEBBLE_VA_ALWAYS_VALID is off: a wrong TXT value fails validation), for CSRs made outside the issuer.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import * as acme from 'acme-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAcmeIssuer, type AcmeIssuerOptions } from '../../activities/issuers/acme';
import { createChalltestsrvDns } from '../../activities/issuers/dns-challtestsrv';
import type { DnsProvider } from '../../activities/issuers/dns';
import type { Issued } from '../../activities/types';
import { verifyIssuedChain } from '../../activities/verify/x509';
import { accountKey, dnsReader, failureOf, makeCsr, request, uniq, type Kind } from '../support/acme';
import { freePort } from '../support/proc';
import { startPebble, type Pebble } from '../support/pebble';

/** Wraps a DnsProvider: records what was presented and whether the DNS server answered it at that moment. */
function spyDns(inner: DnsProvider, txt: (fqdn: string) => Promise<string[]>, tamper = false) {
  const presented: { fqdn: string; visible: boolean }[] = [];
  const cleaned: string[] = [];
  const provider: DnsProvider = {
    async present(fqdn, value) {
      const v = tamper ? `${value.slice(0, -2)}xx` : value;
      await inner.present(fqdn, v);
      presented.push({ fqdn, visible: (await txt(fqdn)).includes(v) });
    },
    async cleanup(fqdn, value) {
      await inner.cleanup(fqdn, value);
      cleaned.push(fqdn);
    },
  };
  return { provider, presented, cleaned };
}

describe('ACME issuer against pebble (real DNS-01)', () => {
  let pebble: Pebble;
  let txt: (fqdn: string) => Promise<string[]>;
  let dns: DnsProvider;
  let base: Omit<AcmeIssuerOptions, 'dns'>;

  beforeAll(async () => {
    pebble = await startPebble();
    txt = dnsReader(pebble.dnsPort);
    dns = createChalltestsrvDns({ managementUrl: pebble.challtestsrvUrl });
    base = {
      name: 'pebble',
      directoryUrl: pebble.directoryUrl,
      accountKeyPem: async () => accountKey(),
      contactEmail: 'certs@example.com',
      caBundlePem: pebble.caBundlePem,
    };
  });
  afterAll(async () => {
    await pebble?.stop();
  });

  async function issueAndVerify(kind: Kind, issuer = createAcmeIssuer({ ...base, dns }), nNames = 2) {
    const label = `${kind.toLowerCase()}-${uniq()}.certflow.test`;
    const names = [label, `www.${label}`].slice(0, nNames);
    const csrPem = await makeCsr(kind, names);
    const t0 = performance.now();
    const out = (await issuer.submit(request(names, csrPem))) as Issued;
    const ms = performance.now() - t0;
    expect(out.status).toBe('issued');
    const verified = await verifyIssuedChain({
      csrPem,
      chainPem: out.chainPem,
      expectedDnsNames: names,
      now: new Date(),
      trustAnchorsPem: [await pebble.rootsPem()],
    });
    return { names, out, verified, ms };
  }

  it.each<Kind>(['EC', 'RSA'])(
    "issues a %s certificate for an external CSR; the chain verifies to pebble's root; TXT records are gone after",
    async (kind) => {
      const spy = spyDns(dns, txt);
      const { names, out, verified } = await issueAndVerify(
        kind,
        createAcmeIssuer({ ...base, dns: spy.provider }),
      );
      expect(out.chainPem.length).toBeGreaterThanOrEqual(2); // leaf + pebble intermediate
      expect(verified.dnsNames.sort()).toEqual([...names].sort());
      expect(verified.thumbprint).toMatch(/^[0-9A-F]{40}$/);
      // DNS-01 went through the DNS server for every name, and was cleaned up after
      expect(spy.presented.map((p) => p.fqdn).sort()).toEqual(
        names.map((n) => `_acme-challenge.${n}`).sort(),
      );
      expect(spy.presented.every((p) => p.visible)).toBe(true);
      expect(spy.cleaned.sort()).toEqual(names.map((n) => `_acme-challenge.${n}`).sort());
      for (const n of names) expect(await txt(`_acme-challenge.${n}`)).toEqual([]);
    },
  );

  it('warm issuance figures (printed): one issuer, account registered once, real DNS-01 each time', async () => {
    const issuer = createAcmeIssuer({ ...base, dns });
    const cold = await issueAndVerify('EC', issuer, 1); // includes the account lookup + registration
    const stats = async (nNames: number) => {
      const ms: number[] = [];
      for (let i = 0; i < 6; i++) ms.push((await issueAndVerify(i % 2 ? 'RSA' : 'EC', issuer, nNames)).ms);
      ms.sort((a, b) => a - b);
      return { median: ms[ms.length / 2]!, min: ms[0]!, max: ms[ms.length - 1]! };
    };
    const one = await stats(1);
    const two = await stats(2);
    const fmt = (s: { median: number; min: number; max: number }) =>
      `median ${s.median.toFixed(0)} ms (min ${s.min.toFixed(0)}, max ${s.max.toFixed(0)})`;
    console.log(
      `[acme-pebble] first issuance ${cold.ms.toFixed(0)} ms; warm, n=6 each, EC/RSA alternating: ` +
        `1 name ${fmt(one)}; 2 names ${fmt(two)}`,
    );
    // figures only: how fast is for bench/, not an assertion (each of the 13 issuances above was verified)
  });

  it("takes nonces from pebble's earlier answers: newNonce is asked only when none is left", async () => {
    const issuer = createAcmeIssuer({ ...base, dns });
    await issueAndVerify('EC', issuer, 1); // warm: account and directory
    const asked: string[] = [];
    const signed: string[] = [];
    const spy = acme.axios.interceptors.request.use((config) => {
      if (config.method?.toLowerCase() === 'head') asked.push(config.url ?? '');
      else if (config.method?.toLowerCase() === 'post') signed.push(config.url ?? '');
      return config;
    });
    try {
      for (let i = 0; i < 3; i++) await issueAndVerify('EC', issuer, 2);
    } finally {
      acme.axios.interceptors.request.eject(spy);
    }
    // each order is a dozen signed requests; acme-client alone asks newNonce before every one of them
    expect(signed.length).toBeGreaterThan(30);
    expect(asked.length).toBeLessThanOrEqual(1);
  });

  it('a second issuer with the same account key (a worker restart) finds the existing account and issues', async () => {
    const key = accountKey();
    const first = await issueAndVerify('EC', createAcmeIssuer({ ...base, accountKeyPem: key, dns }), 1);
    const again = await issueAndVerify(
      'EC',
      createAcmeIssuer({ ...base, contactEmail: undefined, accountKeyPem: key, dns }),
      1,
    );
    expect(again.verified.thumbprint).not.toBe(first.verified.thumbprint);
  });

  it('a wrong TXT value fails real validation: AcmeUnauthorized, non-retryable, records cleaned', async () => {
    const spy = spyDns(dns, txt, true);
    const names = [`bad-txt-${uniq()}.certflow.test`];
    const f = await failureOf(
      createAcmeIssuer({ ...base, dns: spy.provider }).submit(request(names, await makeCsr('EC', names))),
    );
    expect(f.type).toBe('AcmeUnauthorized');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain(`DNS-01 validation of ${names[0]}`);
    expect(f.message).toContain('urn:ietf:params:acme:error:unauthorized');
    expect(spy.presented).toHaveLength(1);
    expect(spy.cleaned).toEqual([`_acme-challenge.${names[0]}`]);
    expect(await txt(`_acme-challenge.${names[0]}`)).toEqual([]);
  });

  // pebble 2.4 answers names that differ from the order with `unauthorized` (403); Boulder says `badCSR`.
  // Both are classified non-retryable: asking again with the same CSR cannot help.
  it.each([
    {
      what: 'other names',
      csrNames: (_ordered: string) => [`other-${uniq()}.certflow.test`],
      detail: `CSR is missing Order domain`,
    },
    {
      what: 'an extra name',
      csrNames: (o: string) => [o, `extra-${uniq()}.certflow.test`],
      detail: 'different number of DNSnames',
    },
  ])(
    'pebble refuses a CSR with $what than the order at finalize: AcmeUnauthorized, non-retryable, records cleaned',
    async (c) => {
      const spy = spyDns(dns, txt);
      const ordered = [`order-${uniq()}.certflow.test`];
      const csrPem = await makeCsr('EC', c.csrNames(ordered[0]!));
      const f = await failureOf(
        createAcmeIssuer({ ...base, dns: spy.provider }).submit(request(ordered, csrPem)),
      );
      expect(f.type).toBe('AcmeUnauthorized');
      expect(f.nonRetryable).toBe(true);
      expect(f.message).toContain('finalize the order with the CSR');
      expect(f.message).toContain(c.detail);
      expect(f.message).toContain('urn:ietf:params:acme:error:unauthorized, HTTP 403');
      expect(f.message).toContain(pebble.directoryUrl);
      expect(spy.presented.every((p) => p.visible)).toBe(true); // validation passed; only the CSR was refused
      expect(spy.cleaned).toEqual([`_acme-challenge.${ordered[0]}`]);
      expect(await txt(`_acme-challenge.${ordered[0]}`)).toEqual([]);
    },
  );

  it('pebble refuses bytes that are no CSR at finalize: AcmeMalformed, non-retryable', async () => {
    const names = [`garbage-${uniq()}.certflow.test`];
    const garbage = `-----BEGIN CERTIFICATE REQUEST-----\n${randomBytes(48).toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    const f = await failureOf(createAcmeIssuer({ ...base, dns }).submit(request(names, garbage)));
    expect(f.type).toBe('AcmeMalformed');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain('finalize the order with the CSR');
    expect(await txt(`_acme-challenge.${names[0]}`)).toEqual([]);
  });

  it("pebble's TLS without its CA in caBundlePem: retryable AcmeTls naming the real cause (verification stays on)", async () => {
    const { caBundlePem: _omit, ...untrusting } = base;
    const names = [`tls-${uniq()}.certflow.test`];
    const t0 = Date.now();
    const f = await failureOf(
      createAcmeIssuer({ ...untrusting, dns }).submit(request(names, await makeCsr('EC', names))),
    );
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(f.type).toBe('AcmeTls');
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toMatch(
      /self-signed certificate in certificate chain|unable to verify|unable to get local issuer/,
    );
    expect(f.message).toContain(pebble.directoryUrl);
  });

  it('placeOrder answers with the order URL at once; poll(url) resumes that order, also when asked again after a lost answer', async () => {
    const issuer = createAcmeIssuer({ ...base, dns });
    const label = `resume-${uniq()}.certflow.test`;
    const csrPem = await makeCsr('EC', [label]);
    const placed = await issuer.placeOrder!(request([label], csrPem));
    expect(placed).toMatchObject({ status: 'pending', retryAfterSeconds: 0 });
    const ref = (placed as { ref: string }).ref;
    expect(ref).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/.*order/);
    const first = (await issuer.poll(ref, request([label], csrPem))) as Issued;
    expect(first.status).toBe('issued');
    // the answer was lost (a crash, a server restart): the retry polls the same order, which is valid by now,
    // and downloads the same certificate instead of ordering and finalizing again
    const again = (await issuer.poll(ref, request([label], csrPem))) as Issued;
    expect(again.chainPem[0]).toBe(first.chainPem[0]);
  });
});

describe('ACME issuer when the CA goes away', () => {
  it('a stopped CA fails fast and retryable, with ECONNREFUSED and the directory URL in the message', async () => {
    const pebble = await startPebble();
    try {
      const dns = createChalltestsrvDns({ managementUrl: pebble.challtestsrvUrl });
      const issuer = createAcmeIssuer({
        name: 'pebble',
        directoryUrl: pebble.directoryUrl,
        accountKeyPem: accountKey(),
        caBundlePem: pebble.caBundlePem,
        dns,
      });
      const names = [`gone-${uniq()}.certflow.test`];
      const csrPem = await makeCsr('EC', names);
      expect((await issuer.submit(request(names, csrPem))).status).toBe('issued'); // warm: account + directory cached
      await pebble.stop();
      const cold = createAcmeIssuer({
        name: 'pebble',
        directoryUrl: pebble.directoryUrl,
        accountKeyPem: accountKey(),
        dns,
      });
      // the warm issuer's first attempt may meet its kept-alive socket being reset (ECONNRESET): also a real cause
      const attempts = [
        { who: 'warm issuer, 1st attempt', issuer, cause: /ECONNREFUSED|ECONNRESET/ },
        { who: 'warm issuer, 2nd attempt', issuer, cause: /ECONNREFUSED/ },
        { who: 'cold issuer', issuer: cold, cause: /ECONNREFUSED/ },
      ];
      for (const a of attempts) {
        const t0 = Date.now();
        const f = await failureOf(a.issuer.submit(request(names, csrPem)));
        const ms = Date.now() - t0;
        console.log(`[acme-pebble] stopped CA (${a.who}) failed in ${ms} ms: ${f.type}: ${f.message}`);
        expect(ms).toBeLessThan(3_000);
        expect(f.type).toBe('AcmeUnreachable');
        expect(f.nonRetryable).toBe(false);
        expect(f.message).toMatch(a.cause);
        expect(f.message).toContain(pebble.directoryUrl);
      }
    } finally {
      await pebble.stop();
    }
  });
});

describe('ACME issuer with 20% of nonces rejected and 2-minute certificates', () => {
  let pebble: Pebble;
  beforeAll(async () => {
    pebble = await startPebble({ nonceRejectPercent: 20, certificateValidityPeriodSeconds: 120 });
  });
  afterAll(async () => {
    await pebble?.stop();
  });

  it("still issues: acme-client retries badNonce itself (up to 5 times per request, with the error's fresh nonce)", async () => {
    let badNonces = 0;
    let activityRetries = 0;
    const id = acme.axios.interceptors.response.use((res) => {
      if ((res.data as { type?: string } | undefined)?.type === 'urn:ietf:params:acme:error:badNonce')
        badNonces++;
      return res;
    });
    try {
      const issuer = createAcmeIssuer({
        name: 'pebble-nonce',
        directoryUrl: pebble.directoryUrl,
        accountKeyPem: accountKey(),
        caBundlePem: pebble.caBundlePem,
        dns: createChalltestsrvDns({ managementUrl: pebble.challtestsrvUrl }),
      });
      for (let i = 0; i < 5; i++) {
        const names = [`nonce-${uniq()}.certflow.test`];
        const csrPem = await makeCsr('EC', names);
        // acme-client retries a rejected nonce 5 times per request; six in a row (about 1 request in 15,000 here,
        // ~60 requests per run) fail the submit as retryable AcmeBadNonce, which the activity's retry policy
        // answers with a new attempt: so does this loop, and it checks the classification on the way
        let out: Issued | undefined;
        for (let attempt = 1; !out; attempt++) {
          const result = await issuer.submit(request(names, csrPem)).catch((err: unknown) => err);
          if (result instanceof Error) {
            const f = await failureOf(Promise.reject(result));
            expect(f.type, f.message).toBe('AcmeBadNonce');
            expect(f.nonRetryable).toBe(false);
            expect(attempt).toBeLessThan(3);
            activityRetries++;
          } else out = result as Issued;
        }
        expect(out.status).toBe('issued');
        const v = await verifyIssuedChain({
          csrPem,
          chainPem: out.chainPem,
          expectedDnsNames: names,
          now: new Date(),
          trustAnchorsPem: [await pebble.rootsPem()],
        });
        const lifetime = (Date.parse(v.notAfter) - Date.now()) / 1000;
        expect(lifetime).toBeGreaterThan(60);
        expect(lifetime).toBeLessThanOrEqual(121);
      }
      console.log(
        `[acme-pebble] 5 certificates issued with 20% nonce rejection; badNonce answers retried: ${badNonces}, ` +
          `submits retried as an activity would: ${activityRetries}`,
      );
      expect(badNonces).toBeGreaterThan(0); // the rejection really happened
    } finally {
      acme.axios.interceptors.response.eject(id);
    }
  });
});

describe('ACME problem documents are classified (a scripted ACME server)', () => {
  let server: http.Server;
  let url: string;
  let answer: { status: number; type: string; retryAfter?: string } = { status: 500, type: 'serverInternal' };

  beforeAll(async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    server = http.createServer((req, res) => {
      req.resume();
      if (req.url === '/dir') {
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({ newNonce: `${url}/nonce`, newAccount: `${url}/acct`, newOrder: `${url}/order` }),
        );
      } else if (req.url === '/nonce') {
        res.setHeader('replay-nonce', randomBytes(8).toString('base64url'));
        res.end();
      } else {
        res.statusCode = answer.status;
        res.setHeader('content-type', 'application/problem+json');
        res.setHeader('replay-nonce', randomBytes(8).toString('base64url'));
        // 'date+N': the HTTP-date form, N seconds from now
        const dateForm = /^date\+(\d+)$/.exec(answer.retryAfter ?? '');
        const retryAfter = dateForm
          ? new Date(Date.now() + Number(dateForm[1]) * 1000).toUTCString()
          : answer.retryAfter;
        if (retryAfter) res.setHeader('retry-after', retryAfter);
        res.end(
          JSON.stringify({
            type: `urn:ietf:params:acme:error:${answer.type}`,
            detail: `scripted ${answer.type}`,
            status: answer.status,
          }),
        );
      }
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  });
  afterAll(async () => {
    await new Promise((r) => server?.close(r));
  });

  const submit = () =>
    createAcmeIssuer({
      name: 'scripted',
      directoryUrl: `${url}/dir`,
      accountKeyPem: accountKey(),
      dns: { present: async () => {}, cleanup: async () => {} },
    }).submit(
      request(
        ['a.certflow.test'],
        '-----BEGIN CERTIFICATE REQUEST-----\nAA==\n-----END CERTIFICATE REQUEST-----\n',
      ),
    );

  it.each([
    {
      status: 429,
      type: 'rateLimited',
      retryAfter: '120',
      expect: { type: 'AcmeRateLimited', nonRetryable: false, delay: /^120s$/ },
    },
    {
      status: 429,
      type: 'rateLimited',
      retryAfter: 'date+90',
      expect: { type: 'AcmeRateLimited', nonRetryable: false, delay: /^(8[89]|9[01])s$/ },
    },
    { status: 400, type: 'badNonce', expect: { type: 'AcmeBadNonce', nonRetryable: false } },
    { status: 500, type: 'serverInternal', expect: { type: 'AcmeServerInternal', nonRetryable: false } },
    { status: 503, type: 'somethingNew', expect: { type: 'AcmeProblem', nonRetryable: false } },
    { status: 403, type: 'unauthorized', expect: { type: 'AcmeUnauthorized', nonRetryable: true } },
    {
      status: 400,
      type: 'rejectedIdentifier',
      expect: { type: 'AcmeRejectedIdentifier', nonRetryable: true },
    },
    { status: 400, type: 'malformed', expect: { type: 'AcmeMalformed', nonRetryable: true } },
  ])('$status $type -> $expect.type, fast, without acme-client retries', async (c) => {
    answer = c;
    const t0 = Date.now();
    const f = await failureOf(submit());
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(f.type).toBe(c.expect.type);
    expect(f.nonRetryable).toBe(c.expect.nonRetryable);
    expect(f.message).toContain(`scripted ${c.type}`);
    expect(f.message).toContain('register the ACME account');
    if ('delay' in c.expect && c.expect.delay) expect(String(f.nextRetryDelay)).toMatch(c.expect.delay);
    else expect(f.nextRetryDelay).toBeUndefined();
  });
});
