/**
 * The Azure DNS provider with the real `@azure/arm-dns` client (real pipeline: bearer tokens, retries,
 * ETag headers, error deserialization) against test/servers/arm-dns.ts, which is a FAKE of the ARM DNS
 * REST API written from its documented wire format: no Azure DNS emulator exists.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAzureDns, type AzureDnsOptions } from '../../activities/issuers/dns-azure';
import { ARM_SCOPE, startArmDnsServer, type ArmDnsServer } from '../servers/arm-dns';
import { createTestEntra } from '../servers/keyvault/entra';
import { failureOf } from '../support/acme';
import { createTestCa } from '../support/test-ca';

const SUB = '11111111-2222-3333-4444-555555555555';
const RG = 'dns-rg';
const ZONE = 'example.test';

describe('Azure DNS provider over the real ARM client (fake ARM DNS server)', () => {
  let arm: ArmDnsServer;
  let base: AzureDnsOptions;

  beforeAll(async () => {
    const tlsCa = createTestCa({ commonName: 'Certflow test ARM TLS CA', keyType: 'ec' });
    const entra = createTestEntra();
    arm = await startArmDnsServer({
      jwks: entra.jwks,
      tls: tlsCa.issueServerCert(['127.0.0.1']),
      zones: [{ subscriptionId: SUB, resourceGroup: RG, zone: ZONE, nameServers: ['127.0.0.1:53'] }],
    });
    base = {
      subscriptionId: SUB,
      resourceGroup: RG,
      zone: ZONE,
      credential: entra.credential(),
      clientOptions: {
        $host: arm.url,
        endpoint: arm.url,
        credentialScopes: [ARM_SCOPE],
        tlsOptions: { ca: tlsCa.caCertPem },
        retryOptions: { maxRetries: 1, retryDelayInMs: 50 },
      },
    };
  });
  afterAll(async () => {
    await arm?.stop();
  });

  const values = (name: string) => arm.recordSet(ZONE, 'TXT', name)?.txt.map((v) => v.join(''));

  it('creates the set, merges a second value, removes one value, then deletes the set', async () => {
    const dns = createAzureDns(base);
    const fqdn = `_acme-challenge.app.${ZONE}`;
    await dns.present(fqdn, 'first-value');
    expect(values('_acme-challenge.app')).toEqual(['first-value']);
    expect(arm.recordSet(ZONE, 'TXT', '_acme-challenge.app')?.ttl).toBe(60);
    const create = arm.requests.filter((r) => r.method === 'PUT').at(-1)!;
    expect(create).toMatchObject({ status: 201, ifNoneMatch: '*' });

    await dns.present(`${fqdn}.`, 'second-value'); // trailing dot: same record set
    expect(values('_acme-challenge.app')).toEqual(['first-value', 'second-value']);
    const merge = arm.requests.filter((r) => r.method === 'PUT').at(-1)!;
    expect(merge.status).toBe(200);
    expect(merge.ifMatch).toMatch(/^[0-9a-f-]{36}$/);

    const puts = arm.requests.length;
    await dns.present(fqdn, 'second-value'); // idempotent: no write
    expect(arm.requests.slice(puts).map((r) => r.method)).toEqual(['GET']);

    await dns.cleanup(fqdn, 'first-value');
    expect(values('_acme-challenge.app')).toEqual(['second-value']);
    await dns.cleanup(fqdn, 'second-value');
    expect(arm.recordSet(ZONE, 'TXT', '_acme-challenge.app')).toBeUndefined();
    expect(arm.requests.at(-1)).toMatchObject({ method: 'DELETE', status: 200 });
    await dns.cleanup(fqdn, 'second-value'); // already gone: no error
  });

  it("keeps other tools' values, TTL and metadata; a concurrent change (412) is re-read, not clobbered", async () => {
    arm.seed(ZONE, 'TXT', '_acme-challenge.shared', {
      ttl: 300,
      metadata: { owner: 'someone-else' },
      txt: [['other-challenge'], ['long-', 'split-value']],
    });
    const dns = createAzureDns(base);
    const fqdn = `_acme-challenge.shared.${ZONE}`;
    const before = arm.requests.length;
    // another order adds its value between our read and our write: our If-Match write gets 412, we re-read
    arm.beforeNextWrite(() => {
      const seen = arm.recordSet(ZONE, 'TXT', '_acme-challenge.shared')!;
      arm.seed(ZONE, 'TXT', '_acme-challenge.shared', { ...seen, txt: [...seen.txt, ['ours-2']] });
    });
    await dns.present(fqdn, 'ours-1');
    const puts = arm.requests.slice(before).filter((r) => r.method === 'PUT');
    expect(puts.map((r) => r.status)).toEqual([412, 200]);
    const set = arm.recordSet(ZONE, 'TXT', '_acme-challenge.shared')!;
    expect(set.txt.map((v) => v.join('')).sort()).toEqual(
      ['long-split-value', 'other-challenge', 'ours-1', 'ours-2'].sort(),
    );
    expect(set.ttl).toBe(300);
    expect(set.metadata).toEqual({ owner: 'someone-else' });
    expect(set.txt).toContainEqual(['long-', 'split-value']); // multi-string record kept as it was

    await Promise.all([dns.cleanup(fqdn, 'ours-1'), dns.cleanup(fqdn, 'ours-2')]);
    expect(values('_acme-challenge.shared')!.sort()).toEqual(['long-split-value', 'other-challenge']);
  });

  it('a 429 with Retry-After is waited out by the SDK and the write goes through', async () => {
    const dns = createAzureDns(base);
    arm.throttle({ count: 1, retryAfterSeconds: 1, match: 'PUT' });
    const t0 = Date.now();
    await dns.present(`_acme-challenge.throttled.${ZONE}`, 'v');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    expect(values('_acme-challenge.throttled')).toEqual(['v']);
    expect(arm.requests.filter((r) => r.status === 429)).toHaveLength(1);
  });

  it('throttling that outlasts the SDK retries: retryable AzureDnsThrottled with nextRetryDelay', async () => {
    const dns = createAzureDns(base);
    arm.throttle({ count: 2, retryAfterSeconds: 1, match: 'throttled-long' });
    const f = await failureOf(dns.present(`_acme-challenge.throttled-long.${ZONE}`, 'v'));
    expect(f.type).toBe('AzureDnsThrottled');
    expect(f.nonRetryable).toBe(false);
    expect(f.nextRetryDelay).toBe(1000);
    expect(f.message).toContain("zone 'example.test'");
  });

  it('a missing role: non-retryable AzureDnsForbidden naming the role; a wrong zone: AzureDnsZoneNotFound', async () => {
    const { tlsCa, entra, server } = await separateServer();
    try {
      server.deny('Microsoft.Network/dnsZones/TXT/write');
      const opts = { ...base, credential: entra.credential() };
      opts.clientOptions = {
        ...base.clientOptions,
        $host: server.url,
        endpoint: server.url,
        tlsOptions: { ca: tlsCa.caCertPem },
      };
      const forbidden = await failureOf(createAzureDns(opts).present(`_acme-challenge.x.${ZONE}`, 'v'));
      expect(forbidden.type).toBe('AzureDnsForbidden');
      expect(forbidden.nonRetryable).toBe(true);
      expect(forbidden.message).toContain('DNS Zone Contributor');
      expect(forbidden.message).toContain('Microsoft.Network/dnsZones/TXT/write');

      const missing = await failureOf(
        createAzureDns({ ...opts, zone: 'nope.test' }).present('_acme-challenge.x.nope.test', 'v'),
      );
      expect(missing.type).toBe('AzureDnsZoneNotFound');
      expect(missing.nonRetryable).toBe(true);
      expect(missing.message).toContain("Parent resource 'nope.test' not found");
    } finally {
      await server.stop();
    }
  });

  it('a name outside the zone is refused before any request; name servers come from the zone', async () => {
    const dns = createAzureDns(base);
    const n = arm.requests.length;
    const f = await failureOf(dns.present('_acme-challenge.app.other.test', 'v'));
    expect(f.type).toBe('DnsZoneMismatch');
    expect(arm.requests.length).toBe(n);
    expect(await dns.authoritativeNameservers!(`_acme-challenge.app.${ZONE}`)).toEqual(['127.0.0.1:53']);
  });

  it('a token signed by a key the server does not trust: non-retryable AzureDnsUnauthorized', async () => {
    const entra = createTestEntra();
    const dns = createAzureDns({ ...base, credential: entra.credential() }); // not trusted by this server
    const f = await failureOf(dns.present(`_acme-challenge.app.${ZONE}`, 'v'));
    expect(f.type).toBe('AzureDnsUnauthorized');
    expect(f.nonRetryable).toBe(true);
  });
});

async function separateServer() {
  const tlsCa = createTestCa({ commonName: 'Certflow test ARM TLS CA 2', keyType: 'ec' });
  const entra = createTestEntra();
  const server = await startArmDnsServer({
    jwks: entra.jwks,
    tls: tlsCa.issueServerCert(['127.0.0.1']),
    zones: [{ subscriptionId: SUB, resourceGroup: RG, zone: ZONE }],
  });
  return { tlsCa, entra, server };
}
