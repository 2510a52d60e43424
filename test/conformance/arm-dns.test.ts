/**
 * Conformance of our FAKE Azure DNS (test/servers/arm-dns.ts) to the real service, with the facts taken from a
 * recorded real session in Azure/azure-sdk-assets (read for facts; nothing of it is copied here), and the Azure
 * DNS provider's not-found path exercised with the body shape Azure really sends.
 */
import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAzureDns, type AzureDnsOptions } from '../../activities/issuers/dns-azure';
import { ARM_SCOPE, startArmDnsServer, type ArmDnsServer } from '../servers/arm-dns';
import { createTestEntra } from '../servers/keyvault/entra';
import { createTestCa } from '../support/test-ca';

const SUB = '11111111-2222-3333-4444-555555555555';
const RG = 'dns-rg';
const ZONE = 'example.test';
const tlsCa = createTestCa({ commonName: 'Certflow conformance ARM DNS TLS CA', keyType: 'ec' });
const entra = createTestEntra();

let arm: ArmDnsServer;
let base: AzureDnsOptions;
beforeAll(async () => {
  arm = await startArmDnsServer({
    jwks: entra.jwks,
    tls: tlsCa.issueServerCert(['127.0.0.1']),
    zones: [{ subscriptionId: SUB, resourceGroup: RG, zone: ZONE }],
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

async function raw(method: string, name: string, body?: unknown) {
  const token = (await entra.credential().getToken(ARM_SCOPE))?.token;
  const u = new URL(
    `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Network/dnsZones/${ZONE}/TXT/${name}?api-version=2018-05-01`,
    arm.url,
  );
  return new Promise<{ status: number; headers: Record<string, unknown>; text: string }>(
    (resolve, reject) => {
      const req = https.request(
        u,
        {
          method,
          ca: tlsCa.caCertPem,
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
        },
      );
      req.on('error', reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    },
  );
}

describe('ARM DNS: our fake against recorded real sessions', () => {
  // recording: net/sdk/dns/Azure.ResourceManager.Dns/tests/SessionRecords/RecordTest/TxtRecordOperationTest.json
  it('TxtRecordOperationTest: PUT 201 with an ETag, DELETE 200 with no body, GET of the deleted set 404 NotFound without the error wrapper', async () => {
    const put = await raw('PUT', 'txt-conf', {
      properties: { TTL: 3600, TXTRecords: [{ value: ['value1', 'value2'] }] },
    });
    expect(put.status).toBe(201);
    expect(JSON.parse(put.text)).toMatchObject({
      type: 'Microsoft.Network/dnszones/TXT',
      properties: { TTL: 3600, provisioningState: 'Succeeded' },
    });
    const del = await raw('DELETE', 'txt-conf');
    expect(del).toMatchObject({ status: 200, text: '' });
    const gone = await raw('GET', 'txt-conf');
    expect(gone.status).toBe(404);
    const body = JSON.parse(gone.text) as Record<string, unknown>;
    expect(body).toEqual({
      code: 'NotFound',
      message: `The resource record 'txt-conf' does not exist in resource group '${RG}' of subscription '${SUB}'.`,
    });
    expect(body).not.toHaveProperty('error');
  });

  // same recording: the provider's not-found path (a record set absent before present, gone before cleanup)
  it.each(['as-azure', 'wrapped'] as const)(
    'TxtRecordOperationTest: the Azure DNS provider reads a missing record set as absent with %s error bodies',
    async (shape) => {
      arm.setErrorBodies(shape);
      try {
        const dns = createAzureDns(base);
        const fqdn = `_acme-challenge.${shape}.${ZONE}`;
        const before = arm.requests.length;
        await dns.present(fqdn, 'v1'); // GET 404 → create with If-None-Match
        expect(arm.requests.slice(before).map((r) => `${r.method} ${r.status}`)).toEqual([
          'GET 404',
          'PUT 201',
        ]);
        await dns.cleanup(fqdn, 'v1');
        const again = arm.requests.length;
        await dns.cleanup(fqdn, 'v1'); // already gone: a 404 read, nothing written, no error
        expect(arm.requests.slice(again).map((r) => `${r.method} ${r.status}`)).toEqual(['GET 404']);
      } finally {
        arm.setErrorBodies('as-azure');
      }
    },
  );
});
