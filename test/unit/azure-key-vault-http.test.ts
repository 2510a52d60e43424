/**
 * Real Key Vault behaviours our test server does not have, at the HTTP layer: the real SDK clients and the
 * adapter, with the socket replaced by recorded answers (test/support/keyvault-recorded.ts).
 *
 * Where the bodies come from: the 403 texts (access policy, RBAC with its Action line, firewall, policy
 * requiring OBO), the 429 body, the disabled-secret 403 and the soft-deleted secret's 409 are Key Vault's own,
 * as reported in public issues and Microsoft's docs (identifiers replaced). The merge refusal is the message
 * Key Vault gives for a certificate whose key is not the pending one. The exact wording of the 409 for a
 * create while an operation is pending was not found in public records: that body keeps Key Vault's shape and
 * code ('Conflict') with the wording Key Vault uses for its other pending-certificate conflicts; the adapter
 * reads only the status there.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  answer,
  certificateBundle,
  certificateNotFound,
  kvError,
  noPending,
  pendingCertificate,
  pendingOperation,
  recordedKeyVault,
  RECORDED_TENANT,
  TEST_TOKEN,
} from '../support/keyvault-recorded';
import { createTestCa } from '../support/test-ca';
import { failureOf } from '../support/failure';

const BASE = 'https://kv-recorded.vault.azure.net';
const ca = createTestCa();
const current = ca.issueServerCert(['web.example.com']).certPem;
let csrDer: Uint8Array;
const thrown: unknown[] = [];

beforeAll(async () => {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=web.example.com',
    keys,
    signingAlgorithm: alg,
  });
  csrDer = new Uint8Array(csr.rawData);
});

const failure = (p: Promise<unknown>) => failureOf(p, thrown);

const caller = `appid=11111111-2222-3333-4444-555555555555;oid=66666666-7777-8888-9999-000000000000;iss=https://sts.windows.net/${RECORDED_TENANT}/`;
const FORBIDDEN = {
  accessPolicy: (kind: string, perm: string) =>
    kvError(
      'Forbidden',
      `The user, group or application '${caller}' does not have ${kind} ${perm} permission on key vault 'kv-recorded;location=westeurope'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287`,
      'AccessDenied',
    ),
  rbac: (action: string, resource: string) =>
    kvError(
      'Forbidden',
      `Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: ${caller}\r\nAction: '${action}'\r\nResource: '/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg-certs/providers/microsoft.keyvault/vaults/kv-recorded/${resource}'\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: 'DeniedWithNoValidRBAC' \r\nVault: kv-recorded;location=westeurope\r\n`,
      'ForbiddenByRbac',
    ),
  firewall: kvError(
    'Forbidden',
    `Client address is not authorized and caller is not a trusted service.\r\nClient address: 203.0.113.7\r\nCaller: ${caller}\r\nVault: kv-recorded;location=westeurope`,
    'ForbiddenByFirewall',
  ),
  obo: kvError(
    'Forbidden',
    `The policy requires the caller '${caller}' to use on-behalf-of (OBO) flow. For more information on OBO, please see https://go.microsoft.com/fwlink/?linkid=2152310`,
    'ForbiddenByPolicy',
  ),
};
const THROTTLED = kvError(
  'Throttled',
  'Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached',
);

describe('a create that races another (real Key Vault: 409 while an operation is pending)', () => {
  const conflict = answer(
    409,
    kvError(
      'Conflict',
      "There was a conflict while creating certificate 'web'. This can happen when multiple operations are performed in parallel against the pending certificate. To avoid this error, perform operations against the pending certificate in a sequential manner.",
    ),
  );

  it('beginRenewal uses the operation that won instead of failing', async () => {
    const kv = recordedKeyVault({
      'GET /certificates/web/': answer(200, certificateBundle(BASE, 'web', current)),
      // no operation when we looked, one by the time our create arrived
      'GET /certificates/web/pending': [noPending('web'), answer(200, pendingOperation(BASE, 'web', csrDer))],
      'POST /certificates/web/create': conflict,
    });
    const pending = await kv.vault.beginRenewal('web');
    expect(pending.reused).toBe(true);
    expect(pending.csrPem).toContain(Buffer.from(csrDer).toString('base64').slice(0, 64));
    expect(kv.http.seen.filter((r) => r.url.pathname === '/certificates/web/create')).toHaveLength(1);
    expect(kv.http.unanswered).toEqual([]);
  });

  it('create does the same for a first issuance', async () => {
    const kv = recordedKeyVault({
      // (the SDK reads the certificate before its operation) nothing yet, then the other create's version
      'GET /certificates/fresh/': [
        certificateNotFound('fresh'),
        certificateNotFound('fresh'),
        answer(200, pendingCertificate(BASE, 'fresh')),
      ],
      'GET /certificates/fresh/pending': answer(200, pendingOperation(BASE, 'fresh', csrDer)),
      'POST /certificates/fresh/create': conflict,
    });
    const pending = await kv.vault.create('fresh', {
      subject: 'CN=fresh.example.com',
      dnsNames: ['fresh.example.com'],
      issuerName: 'Unknown',
      key: { keyType: 'EC', curve: 'P-256', reuseKey: false, exportable: true },
    });
    expect(pending.reused).toBe(true);
    expect(kv.http.unanswered).toEqual([]);
  });

  it('a 409 with no operation to reuse (a soft-deleted name) is final and says what to do', async () => {
    const kv = recordedKeyVault({
      'GET /certificates/old/': certificateNotFound('old'),
      'GET /certificates/old/pending': noPending('old'),
      'POST /certificates/old/create': answer(
        409,
        kvError(
          'Conflict',
          'Certificate old is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the certificate can only be recovered or purged.',
          'ObjectIsDeletedButRecoverable',
        ),
      ),
    });
    const err = await failure(
      kv.vault.create('old', {
        subject: 'CN=old.example.com',
        dnsNames: [],
        issuerName: 'Unknown',
        key: { keyType: 'RSA', keySize: 2048, reuseKey: false, exportable: true },
      }),
    );
    expect(err).toMatchObject({ type: 'VaultObjectDeleted', nonRetryable: true });
    expect(err.message).toMatch(/recover it, or purge it \(needs the 'certificates\/purge' permission\)/i);
  });
});

describe('versions of a certificate that is gone', () => {
  it('a 404 from the versions listing (older services; real Key Vault: an empty list) means no current version', async () => {
    const kv = recordedKeyVault({
      // a first issuance still pending, whose versions listing answers as for a missing certificate
      'GET /certificates/gone/': answer(200, pendingCertificate(BASE, 'gone')),
      'GET /certificates/gone/versions': certificateNotFound('gone'),
      'GET /certificates/gone/pending': noPending('gone'),
    });
    expect(await kv.vault.describe('gone')).toMatchObject({ version: null, thumbprint: null });
    expect(await kv.vault.certificatePem('gone')).toBeNull();
    expect(kv.http.unanswered).toEqual([]);
  });
});

describe('403s name what is missing', () => {
  it('access policy: the permission', async () => {
    const kv = recordedKeyVault({
      'GET /certificates/web/': answer(200, certificateBundle(BASE, 'web', current)),
      'GET /certificates/web/pending': noPending('web'),
      'POST /certificates/web/create': answer(403, FORBIDDEN.accessPolicy('certificates', 'create')),
    });
    const err = await failure(kv.vault.beginRenewal('web'));
    expect(err).toMatchObject({ type: 'VaultForbidden', nonRetryable: true });
    expect(err.message).toContain("needs the 'certificates/create' permission in the vault's access policy");
    expect(err.details?.[0]).toMatchObject({ status: 403, permission: 'certificates/create' });
  });

  it.each([
    [
      'exportSecret',
      'Microsoft.KeyVault/vaults/secrets/getSecret/action',
      'secrets/web',
      'Key Vault Secrets User',
      (v: ReturnType<typeof recordedKeyVault>['vault']) => v.exportSecret('web', 'a1b2'),
      'GET /secrets/web/a1b2',
    ],
    [
      'describe',
      'Microsoft.KeyVault/vaults/certificates/read',
      'certificates/web',
      'Key Vault Certificates Officer',
      (v: ReturnType<typeof recordedKeyVault>['vault']) => v.describe('web'),
      'GET /certificates/web/',
    ],
    [
      'setSecret',
      'Microsoft.KeyVault/vaults/secrets/setSecret/action',
      'secrets/acme-account',
      'Key Vault Secrets Officer',
      (v: ReturnType<typeof recordedKeyVault>['vault']) => v.setSecret('acme-account', 'value'),
      'PUT /secrets/acme-account',
    ],
  ] as const)(
    'RBAC (%s): the data action and a role that grants it',
    async (_op, action, resource, role, call, route) => {
      const kv = recordedKeyVault({
        'GET /secrets/acme-account/': answer(
          404,
          kvError('SecretNotFound', 'A secret with (name/id) acme-account was not found in this key vault.'),
        ),
        [route]: answer(403, FORBIDDEN.rbac(action, resource)),
      });
      const err = await failure(call(kv.vault));
      expect(err).toMatchObject({ type: 'VaultForbidden', nonRetryable: true });
      expect(err.message).toContain(`by Azure RBAC (403): the identity lacks '${action}'`);
      expect(err.message).toContain(`'${role}'`);
      expect(err.details?.[0]).toMatchObject({ permission: action });
    },
  );

  it('firewall: the network rule, not a permission', async () => {
    const kv = recordedKeyVault({ 'GET /certificates': answer(403, FORBIDDEN.firewall) });
    const err = await failure(collect(kv.vault.list()));
    expect(err).toMatchObject({ type: 'VaultNetworkForbidden', nonRetryable: true });
    expect(err.message).toMatch(/network rules.*firewall/);
    expect(err.message).toContain("Key Vault 'kv-rec': list the certificates");
  });

  it('a policy requiring OBO: final, with the service text and the permission the call needs', async () => {
    const kv = recordedKeyVault({ 'GET /secrets/acme-account/': answer(403, FORBIDDEN.obo) });
    const err = await failure(kv.vault.getSecret('acme-account'));
    expect(err).toMatchObject({ type: 'VaultForbidden', nonRetryable: true });
    expect(err.message).toContain("for secret 'acme-account'");
    expect(err.message).toContain('on-behalf-of (OBO)');
  });

  it('a disabled secret', async () => {
    const kv = recordedKeyVault({
      'GET /secrets/acme-account/': answer(
        403,
        kvError('Forbidden', 'Operation get is not allowed on a disabled secret.', 'SecretDisabled'),
      ),
    });
    expect(await failure(kv.vault.getSecret('acme-account'))).toMatchObject({
      type: 'VaultObjectDisabled',
      nonRetryable: true,
    });
  });
});

describe('throttling', () => {
  it.each([
    ['with Retry-After', { 'retry-after': '12' }, 12_000],
    ['without Retry-After (as recorded from the service)', undefined, undefined],
  ])('429 %s is retryable', async (_what, headers, delay) => {
    const kv = recordedKeyVault({ 'GET /certificates': answer(429, THROTTLED, headers) });
    const err = await failure(collect(kv.vault.list()));
    expect(err).toMatchObject({ type: 'VaultThrottled', nonRetryable: false });
    expect(err.nextRetryDelay).toBe(delay);
    expect(err.message).toContain('VaultRequestTypeLimitReached');
  });
});

describe('merge', () => {
  it("refuses a chain whose key is not the pending request's (400 from the service) as KeyMismatch", async () => {
    const kv = recordedKeyVault({
      'GET /certificates/web/': answer(200, certificateBundle(BASE, 'web', current)),
      'GET /certificates/web/pending': answer(200, pendingOperation(BASE, 'web', csrDer)),
      'POST /certificates/web/pending/merge': answer(
        400,
        kvError('BadParameter', "Public key from x509 certificate and key of this instance doesn't match"),
      ),
    });
    const stranger = ca.issueServerCert(['web.example.com']).certPem;
    const err = await failure(kv.vault.merge('web', [stranger, ca.caCertPem]));
    expect(err).toMatchObject({ type: 'KeyMismatch', nonRetryable: true });
    expect(
      kv.http.seen.some((r) => r.url.pathname === '/certificates/web/pending/merge' && r.authorization),
    ).toBe(true);
  });
});

describe('secrets', () => {
  it('a soft-deleted name: 409 is final and says recover or purge', async () => {
    const kv = recordedKeyVault({
      'GET /secrets/acme-account/': answer(
        404,
        kvError('SecretNotFound', 'A secret with (name/id) acme-account was not found in this key vault.'),
      ),
      'PUT /secrets/acme-account': answer(
        409,
        kvError(
          'Conflict',
          'Secret acme-account is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.',
          'ObjectIsDeletedButRecoverable',
        ),
      ),
    });
    const err = await failure(kv.vault.setSecret('acme-account', 'value'));
    expect(err).toMatchObject({ type: 'VaultObjectDeleted', nonRetryable: true });
    expect(err.message).toContain("'secrets/purge'");
  });
});

describe("the token's scope comes from the vault's challenge", () => {
  it('a vault in Azure China gets a token for https://vault.azure.cn in the tenant it names', async () => {
    const url = 'https://kv-recorded.vault.azure.cn';
    const kv = recordedKeyVault(
      {
        'GET /certificates/web/': answer(200, certificateBundle(url, 'web', current)),
        'GET /certificates/web/pending': noPending('web'),
      },
      { url, resource: 'https://vault.azure.cn' },
    );
    expect((await kv.vault.describe('web')).version).toMatch(/^[0-9a-f]{32}$/);
    expect(kv.tokenRequests[0]).toEqual({
      scopes: ['https://vault.azure.cn/.default'],
      tenantId: RECORDED_TENANT,
    });
  });

  it("a challenge for another cloud's vault is refused by the SDK and reported as final", async () => {
    const kv = recordedKeyVault({}, { resource: 'https://vault.azure.cn' });
    const err = await failure(kv.vault.describe('web'));
    expect(err).toMatchObject({ type: 'VaultCloudMismatch', nonRetryable: true });
    expect(kv.tokenRequests).toHaveLength(0);
  });
});

describe('secrecy', () => {
  it('no bearer token in any error', () => {
    expect(thrown.length).toBeGreaterThan(8);
    for (const err of thrown) {
      const text = `${String((err as Error).message)} ${JSON.stringify(err)} ${String((err as Error).stack)}`;
      expect(text).not.toContain(TEST_TOKEN);
      expect((err as Error).cause).toBeUndefined();
    }
  });
});

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
