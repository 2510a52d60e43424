/**
 * ACME profiles (draft-ietf-acme-profiles) against a real pebble that has them (2.10, built by
 * scripts/install-tools.sh; Debian's 2.4.0 has none): the issuer's configured profile is checked against the
 * directory's `meta.profiles` and sent on newOrder, and the CA issues that profile's lifetime (Let's Encrypt's
 * three, with their lifetimes). A profile the CA does not offer, and a CA without profiles, fail before any order.
 */
import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAcmeIssuer, type AcmeIssuerOptions } from '../../activities/issuers/acme';
import { createChalltestsrvDns } from '../../activities/issuers/dns-challtestsrv';
import type { Issued } from '../../activities/types';
import { verifyIssuedChain } from '../../activities/verify/x509';
import { accountKey, failureOf, makeCsr, request, uniq } from '../support/acme';
import { startPebble, type Pebble } from '../support/pebble';
import { tools } from '../support/tools';

const HOUR_S = 3600;
const DAY_S = 24 * HOUR_S;
/** Let's Encrypt's profiles (https://letsencrypt.org/docs/profiles/), their lifetimes in seconds. */
const LE_PROFILES = {
  classic: { description: '90-day certificates, the default', validityPeriod: 90 * DAY_S },
  tlsserver: { description: '45-day certificates for TLS servers', validityPeriod: 45 * DAY_S },
  shortlived: { description: '160-hour certificates', validityPeriod: 160 * HOUR_S },
};

const getJson = (url: string, ca: string) =>
  new Promise<Record<string, unknown>>((resolve, reject) => {
    https
      .get(url, { ca, headers: { 'user-agent': 'certflow-test' } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve(JSON.parse(body) as Record<string, unknown>));
      })
      .on('error', reject);
  });

function base(p: Pebble, name: string): AcmeIssuerOptions {
  return {
    name,
    directoryUrl: p.directoryUrl,
    accountKeyPem: async () => accountKey(),
    contactEmail: 'certs@example.com',
    caBundlePem: p.caBundlePem,
    dns: createChalltestsrvDns({ managementUrl: p.challtestsrvUrl }),
  };
}

describe('ACME profiles against pebble 2.10', () => {
  let pebble: Pebble;
  beforeAll(async () => {
    pebble = await startPebble({ binary: tools.pebbleProfiles(), profiles: LE_PROFILES });
  });
  afterAll(async () => {
    await pebble?.stop();
  });

  it("advertises Let's Encrypt's profiles in the directory's meta.profiles", async () => {
    const dir = await getJson(pebble.directoryUrl, pebble.caBundlePem);
    const profiles = (dir.meta as { profiles?: Record<string, string> }).profiles;
    expect(Object.keys(profiles ?? {}).sort()).toEqual(['classic', 'shortlived', 'tlsserver']);
  });

  it.each(Object.entries(LE_PROFILES))(
    'an issuer configured with profile %s gets that lifetime',
    async (profile, { validityPeriod }) => {
      const issuer = createAcmeIssuer({ ...base(pebble, `pebble-${profile}`), profile });
      const names = [`${profile}-${uniq()}.certflow.test`];
      const csrPem = await makeCsr('EC', names);
      const out = (await issuer.submit(request(names, csrPem))) as Issued;
      expect(out.status).toBe('issued');
      await verifyIssuedChain({
        csrPem,
        chainPem: out.chainPem,
        expectedDnsNames: names,
        now: new Date(),
        trustAnchorsPem: [await pebble.rootsPem()],
      });
      const leaf = new X509Certificate(out.chainPem[0]!);
      const lifetimeS = (Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)) / 1000;
      // pebble ends the validity a second early (notAfter is inclusive)
      expect(Math.abs(lifetimeS - validityPeriod)).toBeLessThanOrEqual(1);
    },
  );

  it('a profile the CA does not offer fails before any order, naming what it offers', async () => {
    const issuer = createAcmeIssuer({ ...base(pebble, 'pebble-typo'), profile: 'shortlive' });
    const names = [`typo-${uniq()}.certflow.test`];
    const f = await failureOf(issuer.submit(request(names, await makeCsr('EC', names))));
    expect(f.type).toBe('AcmeProfileUnavailable');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toMatch(
      /does not offer profile "shortlive" \(its directory offers: classic, shortlived, tlsserver\)/,
    );
  });
});

describe('ACME profiles against a CA without them (Debian pebble 2.4.0)', () => {
  let pebble: Pebble;
  beforeAll(async () => {
    pebble = await startPebble();
  });
  afterAll(async () => {
    await pebble?.stop();
  });

  it('a configured profile fails clearly instead of silently getting the default lifetime', async () => {
    const issuer = createAcmeIssuer({ ...base(pebble, 'pebble-old'), profile: 'tlsserver' });
    const names = [`old-${uniq()}.certflow.test`];
    const f = await failureOf(issuer.submit(request(names, await makeCsr('EC', names))));
    expect(f.type).toBe('AcmeProfileUnavailable');
    expect(f.message).toMatch(/advertises no profiles \(meta\.profiles\)/);
  });

  it('without a profile it issues as before', async () => {
    const issuer = createAcmeIssuer(base(pebble, 'pebble-plain'));
    const names = [`plain-${uniq()}.certflow.test`];
    const out = (await issuer.submit(request(names, await makeCsr('EC', names)))) as Issued;
    expect(out.status).toBe('issued');
  });
});
