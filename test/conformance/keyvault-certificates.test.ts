/**
 * Conformance of our Key Vault test server (test/servers/keyvault) with the real service: each test replays the
 * request sequence of one of Microsoft's recorded sessions (public repository Azure/azure-sdk-assets, made by
 * the Azure SDK for JS's own tests against real Key Vault, api-version 2025-07-01) against our server, and
 * asserts what the recording shows: status codes, headers, which fields are present or absent, error codes.
 * Facts only: no recording is copied here. The comment above each test gives the recording's path under
 * js/sdk/keyvault/keyvault-certificates/recordings/node/ (or keyvault-secrets, where it says so).
 */
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestKeyVault, type TestKeyVault } from '../support/keyvault';
import { API_VERSION, rawKeyVault, type RawRequest } from '../support/keyvault-raw';

let kv: TestKeyVault;
let kvRequest: RawRequest;
/** The server's clock runs `offset` ms ahead of the real one (a Self request completes when the test says). */
let offset = 0;
const ISSUANCE_MS = 60_000;

beforeAll(async () => {
  kv = await startTestKeyVault({
    server: { now: () => Date.now() + offset, issuanceDelayMs: ISSUANCE_MS, tickMs: 0 },
  });
  kvRequest = rawKeyVault(kv);
});

afterAll(async () => {
  await kv?.stop();
});

/** Lets every Self request started so far complete (the recordings see them done within seconds). */
function completeSelfRequests(): void {
  offset += ISSUANCE_MS;
}

/** The policy the SDK's tests send (`cn=` in lower case, empty props). */
const sdkPolicy = (issuer: object) => ({
  policy: {
    key_props: {},
    secret_props: {},
    x509_props: { subject: 'cn=MyCert', sans: {} },
    issuer,
    attributes: {},
  },
  attributes: {},
});

const pendingId = (name: string) => `${kv.url}/certificates/${name}/pending`;

describe('Unknown issuer: create, CSR, merge', () => {
  // certificates_client__merge_and_import_certificates/recording_can_merge_a_self_signed_certificate.json
  it('can merge a self signed certificate', async () => {
    const name = 'merge-unknown';
    const created = await kvRequest(
      'POST',
      `/certificates/${name}/create`,
      sdkPolicy({ name: 'Unknown', cert_transparency: false }),
    );
    expect(created.status).toBe(202);
    expect(created.headers['retry-after']).toBe('10');
    expect(created.headers.location).toMatch(
      new RegExp(`/certificates/${name}/pending\\?api-version=${API_VERSION}&request_id=[0-9a-f]{32}$`),
    );
    expect(created.body).toMatchObject({
      id: pendingId(name),
      issuer: { name: 'Unknown' },
      cancellation_requested: false,
      status: 'inProgress',
      status_details: 'Pending certificate created. Please Perform Merge to complete the request.',
      request_id: expect.stringMatching(/^[0-9a-f]{32}$/),
    });
    expect(created.body.csr).toMatch(/^MII/);
    expect(created.body).not.toHaveProperty('target');

    const pending = await kvRequest('GET', `/certificates/${name}/pending`);
    expect(pending.status).toBe(200);
    expect(pending.headers['retry-after']).toBe('10');
    expect(pending.body.csr).toBe(created.body.csr);

    // "latest" while only the pending version exists: disabled, nbf/exp, policy, pending; no certificate yet
    const latest = await kvRequest('GET', `/certificates/${name}/`);
    expect(latest.status).toBe(200);
    expect(latest.body.id).toMatch(new RegExp(`/certificates/${name}/[0-9a-f]{32}$`));
    expect(latest.body.attributes).toMatchObject({
      enabled: false,
      nbf: expect.any(Number),
      exp: expect.any(Number),
      created: expect.any(Number),
      updated: expect.any(Number),
      recoveryLevel: 'Recoverable+Purgeable',
      recoverableDays: 90,
    });
    expect(latest.body.attributes.nbf).toBeLessThan(latest.body.attributes.created);
    expect(latest.body.pending).toEqual({ id: pendingId(name) });
    for (const absent of ['cer', 'x5t', 'kid', 'sid', 'tags']) expect(latest.body).not.toHaveProperty(absent);
    expect(latest.body.policy).toMatchObject({
      id: `${kv.url}/certificates/${name}/policy`,
      key_props: { exportable: true, kty: 'RSA', key_size: 2048, reuse_key: false },
      secret_props: { contentType: 'application/x-pkcs12' },
      x509_props: {
        subject: 'cn=MyCert',
        ekus: ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'],
        key_usage: ['digitalSignature', 'keyEncipherment'],
        validity_months: 12,
        basic_constraints: { ca: false },
      },
      lifetime_actions: [{ trigger: { lifetime_percentage: 80 }, action: { action_type: 'EmailContacts' } }],
      issuer: { name: 'Unknown', cert_transparency: false },
      attributes: { enabled: true },
    });

    const leaf = kv.ca.signCsr(Buffer.from(created.body.csr as string, 'base64'));
    const merged = await kvRequest('POST', `/certificates/${name}/pending/merge`, {
      x5c: [new X509Certificate(leaf).raw.toString('base64')],
    });
    expect(merged.status).toBe(201);
    expect(merged.headers.location).toBe(`${kv.url}/certificates/${name}?api-version=${API_VERSION}`);
    expect(merged.body).toMatchObject({
      kid: `${kv.url}/keys/${name}/${latest.body.id.split('/').pop()}`,
      sid: `${kv.url}/secrets/${name}/${latest.body.id.split('/').pop()}`,
      x5t: expect.stringMatching(/^[A-Za-z0-9_-]{27}$/),
      attributes: { enabled: true },
      pending: { id: pendingId(name) },
    });
    expect(merged.body.id).toBe(latest.body.id); // the pending version becomes the certificate
    expect(merged.body.policy.issuer).toEqual({ name: 'Unknown', cert_transparency: false });
    expect(merged.body).not.toHaveProperty('tags');
  });
});

describe('operations: read, cancel, delete', () => {
  // certificates_client__create_read_update_and_delete/recording_can_read_cancel_and_delete_a_certificates_operation.json
  it("can read, cancel and delete a certificate's operation", async () => {
    const name = 'crudcertoperation';
    const created = await kvRequest('POST', `/certificates/${name}/create`, sdkPolicy({ name: 'Self' }));
    expect(created.status).toBe(202);
    // a Self request runs asynchronously, like an integrated CA's
    expect(created.body).toMatchObject({
      issuer: { name: 'Self' },
      status: 'inProgress',
      status_details:
        'Pending certificate created. Certificate request is in progress. This may take some time based on the issuer provider. Please check again later.',
    });
    expect((await kvRequest('GET', `/certificates/${name}/pending`)).body.status).toBe('inProgress');
    const latest = await kvRequest('GET', `/certificates/${name}/`);
    expect(latest.body.attributes.enabled).toBe(false);
    expect(latest.body.policy.lifetime_actions).toEqual([
      { trigger: { lifetime_percentage: 80 }, action: { action_type: 'AutoRenew' } },
    ]);
    expect(latest.body.policy.issuer).toEqual({ name: 'Self' });

    // a cancel is only a request: the operation stays inProgress
    const cancelled = await kvRequest('PATCH', `/certificates/${name}/pending`, {
      cancellation_requested: true,
    });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ cancellation_requested: true, status: 'inProgress' });
    expect(cancelled.headers).not.toHaveProperty('retry-after');

    // the Self request finished anyway before the delete, whose answer shows it completed
    completeSelfRequests();
    const deleted = await kvRequest('DELETE', `/certificates/${name}/pending`);
    expect(deleted.status).toBe(200);
    expect(deleted.body).toMatchObject({
      status: 'completed',
      target: `${kv.url}/certificates/${name}`,
      cancellation_requested: false,
    });
    expect(deleted.body).not.toHaveProperty('status_details');

    const after = await kvRequest('GET', `/certificates/${name}/`);
    expect(after.status).toBe(200);
    expect(after.body).toMatchObject({ attributes: { enabled: true }, x5t: expect.any(String) });
    expect(after.body).not.toHaveProperty('pending');

    const gone = await kvRequest('GET', `/certificates/${name}/pending`);
    expect(gone.status).toBe(404);
    expect(gone.body.error).toEqual({
      code: 'PendingCertificateNotFound',
      message: `Pending Certificate not found: ${name}`,
    });
  });
});

describe('get, tags, policy, versions', () => {
  // certificates_client__create_read_update_and_delete/recording_can_update_the_tags_of_a_certificate.json
  it('can update the tags of a certificate (a PATCH without a version writes to the pending version)', async () => {
    const name = 'tags-pending';
    await kvRequest('POST', `/certificates/${name}/create`, sdkPolicy({ name: 'Self' }));
    const patched = await kvRequest('PATCH', `/certificates/${name}/`, {
      attributes: {},
      tags: { customTag: 'value' },
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({
      attributes: { enabled: false },
      tags: { customTag: 'value' },
      policy: { issuer: { name: 'Self' } },
      pending: { id: pendingId(name) },
    });
    expect(patched.body).not.toHaveProperty('x5t');
    expect((await kvRequest('GET', `/certificates/${name}/`)).body.tags).toEqual({ customTag: 'value' });
  });

  // certificates_client__create_read_update_and_delete/recording_can_update_a_certificates_policy.json
  it("can update a certificate's policy", async () => {
    const name = 'policy-update';
    await kvRequest('POST', `/certificates/${name}/create`, sdkPolicy({ name: 'Self' }));
    const before = (await kvRequest('GET', `/certificates/${name}/policy`)).body;
    offset += 2000; // the recording's update is a second later
    const updated = await kvRequest('PATCH', `/certificates/${name}/policy`, {
      key_props: {},
      secret_props: {},
      x509_props: { subject: 'cn=MyOtherCert', sans: {} },
      issuer: { name: 'Self' },
      attributes: {},
    });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({
      id: `${kv.url}/certificates/${name}/policy`,
      x509_props: { subject: 'cn=MyOtherCert', basic_constraints: { ca: false } },
      lifetime_actions: [{ trigger: { lifetime_percentage: 80 }, action: { action_type: 'AutoRenew' } }],
      attributes: { enabled: true, created: before.attributes.created },
    });
    expect(updated.body.attributes.updated).toBeGreaterThan(before.attributes.created);
    expect((await kvRequest('GET', `/certificates/${name}/`)).body.policy.x509_props.subject).toBe(
      'cn=MyOtherCert',
    );
  });

  // certificates_client__list_certificates_in_various_ways/recording_can_retrieve_all_versions_of_a_certificate.json
  it('can retrieve all versions of a certificate', async () => {
    const name = 'all-versions';
    for (const tag of ['tag01', 'tag02', 'tag03']) {
      const body = { ...sdkPolicy({ name: 'Self' }), tags: { tag } };
      expect((await kvRequest('POST', `/certificates/${name}/create`, body)).status).toBe(202);
      completeSelfRequests();
      expect((await kvRequest('GET', `/certificates/${name}/pending`)).body.status).toBe('completed');
    }
    const latest = await kvRequest('GET', `/certificates/${name}/`);
    expect(latest.body.tags).toEqual({ tag: 'tag03' });
    expect(latest.body.pending).toEqual({ id: pendingId(name) }); // the completed operation is still there

    const versions = await kvRequest('GET', `/certificates/${name}/versions`);
    expect(versions.status).toBe(200);
    expect(versions.body.nextLink).toBeNull();
    const items = versions.body.value as { id: string; x5t: string; attributes: object; tags: object }[];
    expect(items).toHaveLength(3);
    const ids = items.map((v) => v.id.split('/').pop() ?? '');
    expect(ids).toEqual([...ids].sort()); // by version id, not by age
    for (const v of items) {
      expect(v).toMatchObject({ x5t: expect.any(String), subject: '', tags: { tag: expect.any(String) } });
      expect(Object.keys(v.attributes).sort()).toEqual(['created', 'enabled', 'exp', 'nbf', 'updated']);
    }

    // a specific version: no policy, no pending
    const one = await kvRequest('GET', `/certificates/${name}/${ids[0]}`);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({
      kid: expect.any(String),
      sid: expect.any(String),
      cer: expect.any(String),
    });
    expect(one.body).not.toHaveProperty('policy');
    expect(one.body).not.toHaveProperty('pending');
  });

  // certificates_client__create_read_update_and_delete/recording_can_disable_a_certificate_version.json
  it('can disable a certificate version (the answer has pending, no policy)', async () => {
    const name = 'disable-version';
    await kvRequest('POST', `/certificates/${name}/create`, sdkPolicy({ name: 'Self' }));
    completeSelfRequests();
    const version = (await kvRequest('GET', `/certificates/${name}/`)).body.id.split('/').pop();
    const patched = await kvRequest('PATCH', `/certificates/${name}/${version}`, {
      attributes: { enabled: false },
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ attributes: { enabled: false }, pending: { id: pendingId(name) } });
    expect(patched.body).not.toHaveProperty('policy');
  });

  // certificates_client__list_certificates_in_various_ways/recording_can_list_certificate_versions_non_existing.json
  it('can list certificate versions (non existing): an empty list', async () => {
    const versions = await kvRequest('GET', '/certificates/never-existed/versions');
    expect(versions.status).toBe(200);
    expect(versions.body).toEqual({ value: [], nextLink: null });
  });

  // certificates_client__list_certificates_in_various_ways/recording_can_list_certificates_by_page.json
  it('can list certificates by page: a full page, then an empty one behind an opaque $skiptoken', async () => {
    const listed = await startTestKeyVault({ server: { issuanceDelayMs: 0 } });
    try {
      const raw = rawKeyVault(listed);
      // 24 issued, one waiting for its merge: a full page of 25 with includePending (EC keys: quick to make)
      const ec = sdkPolicy({ name: 'Self' });
      ec.policy.key_props = { kty: 'EC' };
      for (let i = 0; i < 24; i++)
        await raw('POST', `/certificates/bypage-${String(i).padStart(2, '0')}/create`, ec);
      await raw('POST', '/certificates/Zz-unmerged/create', sdkPolicy({ name: 'Unknown' }));
      const first = await raw('GET', '/certificates', undefined, { query: 'includePending=true' });
      expect(first.status).toBe(200);
      const value = first.body.value as Record<string, unknown>[];
      expect(value).toHaveLength(25);
      for (const item of value.slice(0, 24)) {
        expect(item).toMatchObject({ x5t: expect.any(String), subject: '', attributes: { enabled: true } });
        expect(item).not.toHaveProperty('tags');
        expect(item.attributes).not.toHaveProperty('recoveryLevel');
      }
      expect(value[24]).toMatchObject({
        id: `${listed.url}/certificates/Zz-unmerged`,
        attributes: { enabled: false },
      });
      expect(value[24]).not.toHaveProperty('x5t');
      const next = new URL(first.body.nextLink as string);
      expect(next.searchParams.get('api-version')).toBe(API_VERSION);
      expect(next.searchParams.get('$skiptoken')).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(next.searchParams.has('includePending')).toBe(false); // carried by the token
      const second = await raw('GET', first.body.nextLink as string);
      expect(second.status).toBe(200);
      expect(second.body).toEqual({ value: [], nextLink: null });
    } finally {
      await listed.stop();
    }
  });
});

describe('not found, validation, authentication', () => {
  // certificates_client__create_read_update_and_delete/recording_can_get_a_certificate_non_existing.json
  it('can get a certificate (non existing): 404 CertificateNotFound', async () => {
    const missing = await kvRequest('GET', '/certificates/nonexisting/');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('CertificateNotFound');
    expect(missing.body.error.message).toBe(
      'A certificate with (name/id) nonexisting was not found in this key vault. If you recently deleted this certificate you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182',
    );
  });

  // certificates_client__create_read_update_and_delete/recording_cannot_create_a_certificate_with_an_empty_name.json
  it('cannot create a certificate with an empty name: 405 MethodNotAllowed', async () => {
    const refused = await kvRequest('POST', '/certificates//create', sdkPolicy({ name: 'Self' }));
    expect(refused.status).toBe(405);
    expect(refused.body.error).toEqual({ code: 'MethodNotAllowed', message: 'HTTP POST not allowed' });
  });

  // every recording's first request (e.g. recording_can_get_a_certificate_non_existing.json): the challenge
  it('answers a request without a token with the Bearer challenge', async () => {
    const challenged = await kvRequest('POST', '/certificates/any/create', undefined, { token: false });
    expect(challenged.status).toBe(401);
    expect(challenged.headers['www-authenticate']).toBe(
      `Bearer authorization="https://login.microsoftonline.com/${kv.entra.tenantId}", resource="https://vault.azure.net"`,
    );
    expect(challenged.body.error).toEqual({
      code: 'Unauthorized',
      message: 'AKV10000: Request is missing a Bearer, PoP, or MTLS_POP token.',
    });
  });

  // keyvault-secrets/recordings/node/secret_client__create_read_update_and_delete_operations/recording_cant_get_a_disabled_secret.json
  it("can't get a disabled secret: 403 Forbidden with innererror SecretDisabled", async () => {
    const set = await kvRequest('PUT', '/secrets/disabled-one', {
      value: 'v',
      attributes: { enabled: false },
    });
    expect(set.status).toBe(200);
    const refused = await kvRequest('GET', '/secrets/disabled-one/');
    expect(refused.status).toBe(403);
    expect(refused.body.error).toEqual({
      code: 'Forbidden',
      message: 'Operation get is not allowed on a disabled secret.',
      innererror: { code: 'SecretDisabled' },
    });
  });

  // certificates_client__create_read_update_and_delete/recording_can_get_a_certificates_secret_in_pem_format.json
  it("serves a certificate's secret as a managed secret with its key id", async () => {
    const name = 'pem-secret';
    await kvRequest('POST', `/certificates/${name}/create`, {
      ...sdkPolicy({ name: 'Self' }),
      policy: {
        ...sdkPolicy({ name: 'Self' }).policy,
        secret_props: { contentType: 'application/x-pem-file' },
      },
    });
    completeSelfRequests();
    const version = (await kvRequest('GET', `/certificates/${name}/`)).body.id.split('/').pop();
    const secret = await kvRequest('GET', `/secrets/${name}/`);
    expect(secret.status).toBe(200);
    expect(secret.body).toMatchObject({
      id: `${kv.url}/secrets/${name}/${version}`,
      kid: `${kv.url}/keys/${name}/${version}`,
      contentType: 'application/x-pem-file',
      managed: true,
    });
    expect(secret.body.value).toMatch(/-----BEGIN PRIVATE KEY-----[\s\S]*-----BEGIN CERTIFICATE-----/);
  });
});
