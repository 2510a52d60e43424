/**
 * The Azure Key Vault adapter against the behaviours of the real service that Microsoft's recorded sessions
 * show and our test server now has (issue 17; test/conformance holds the recorded sequences themselves):
 * a cancel that leaves the operation inProgress, "latest" while a version is pending (both possibilities, the
 * recordings show only a first issuance), PATCH without a version writing to the pending version, a policy the
 * vault renews itself, and a certificate's own secret in the secret store. Real SDKs, our server
 * (test/servers/keyvault: ours, not Microsoft's).
 */
import { CertificateClient, type CertificatePolicy } from '@azure/keyvault-certificates';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CertificateSummary } from '../../activities/types';
import { createAzureKeyVault } from '../../activities/vault/azure-key-vault';
import { failureOf } from '../support/failure';
import { startTestKeyVault, type TestKeyVault } from '../support/keyvault';
import { rawKeyVault } from '../support/keyvault-raw';
import { waitFor } from '../support/proc';

let kv: TestKeyVault;
let vault: ReturnType<typeof createAzureKeyVault>;
let client: CertificateClient;
const thrown: unknown[] = [];
const failure = (p: Promise<unknown>) => failureOf(p, thrown);

beforeAll(async () => {
  kv = await startTestKeyVault({ server: { issuanceDelayMs: 300 } });
  vault = kv.adapter();
  client = new CertificateClient(kv.url, kv.credential, kv.clientOptions);
});

afterAll(async () => {
  await kv?.stop();
});

const requests = (method: string, path: string) =>
  kv.server.requests.filter((r) => r.method === method && r.path === path && r.status < 300).length;
const sha1 = (pem: string) => new X509Certificate(pem).fingerprint.replace(/:/g, '');

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** A certificate the vault issues itself (DigiCert here: the server's integrated test CA), once issued. */
async function vaultIssued(name: string, issuerName: string, extra: Partial<CertificatePolicy> = {}) {
  await client.beginCreateCertificate(
    name,
    {
      issuerName,
      subject: `CN=${name}.example.test`,
      subjectAlternativeNames: { dnsNames: [`${name}.example.test`] },
      keyType: 'EC',
      lifetimeActions: [{ action: 'AutoRenew', lifetimePercentage: 75 }],
      ...extra,
    } as CertificatePolicy,
    { tags: { Recipient: 'owner@example.test' } },
  );
  return waitFor(
    `${name} issued by the vault`,
    async () => (await vault.describe(name)).version ?? undefined,
  );
}

describe('a cancelled operation is never reused (real Key Vault keeps it inProgress with cancellation_requested)', () => {
  it('beginRenewal deletes it and starts a fresh CSR', async () => {
    await kv.seed('cancelled');
    const first = await vault.beginRenewal('cancelled');
    // an operator cancels in the portal: the SDK's cancel, a PATCH of the pending operation
    const poller = await client.getCertificateOperation('cancelled');
    await poller.cancelOperation();
    const op = (await client.getCertificateOperation('cancelled')).getOperationState().certificateOperation;
    expect(op).toMatchObject({ status: 'inProgress', cancellationRequested: true });
    expect((await vault.describe('cancelled')).pendingOperation).toBe(false);

    const next = await vault.beginRenewal('cancelled');
    expect(next.reused).toBe(false);
    expect(next.csrPem).not.toBe(first.csrPem);
    expect(requests('DELETE', '/certificates/cancelled/pending')).toBe(1);
    // and the fresh one is the operation the vault now has
    const fresh = (await client.getCertificateOperation('cancelled')).getOperationState()
      .certificateOperation;
    expect(fresh).toMatchObject({ status: 'inProgress', cancellationRequested: false });
  });

  it('create (a first issuance an operator started, then cancelled) does the same', async () => {
    await client.beginCreateCertificate('cancelled-new', {
      issuerName: 'Unknown',
      subject: 'CN=cancelled-new',
    });
    const cancelled = (await client.getCertificateOperation('cancelled-new')).getOperationState()
      .certificateOperation;
    await (await client.getCertificateOperation('cancelled-new')).cancelOperation();
    const created = await vault.create('cancelled-new', {
      subject: 'CN=cancelled-new',
      dnsNames: [],
      issuerName: 'Unknown',
      key: { keyType: 'EC', reuseKey: false, exportable: true },
    });
    expect(created.reused).toBe(false);
    expect(created.csrPem.replace(/\s|-----[^-]+-----/g, '')).not.toBe(
      Buffer.from(cancelled?.csr ?? []).toString('base64'),
    );
  });

  it('an integrated CA whose request was cancelled ends cancelled; renewInVault starts afresh', async () => {
    await vaultIssued('digicert-cancel', 'DigiCert');
    expect(await vault.renewInVault?.('digicert-cancel')).toEqual({ started: true, status: 'inProgress' });
    await (await client.getCertificateOperation('digicert-cancel')).cancelOperation();
    await waitFor('the cancelled request to end', async () => {
      const op = (await client.getCertificateOperation('digicert-cancel')).getOperationState()
        .certificateOperation;
      return op?.status === 'cancelled';
    });
    const before = (await vault.describe('digicert-cancel')).version;
    expect(await vault.renewInVault?.('digicert-cancel')).toEqual({ started: true, status: 'inProgress' });
    await waitFor('a new version', async () => (await vault.describe('digicert-cancel')).version !== before);
  });
});

describe.each(['pending', 'current'] as const)(
  "'latest' while a renewal is pending is the %s version",
  (latestWhilePending) => {
    let other: TestKeyVault;
    let adapter: ReturnType<typeof createAzureKeyVault>;

    beforeAll(async () => {
      other = await startTestKeyVault({ server: { latestWhilePending } });
      adapter = other.adapter('kv2');
    });
    afterAll(async () => {
      await other?.stop();
    });

    it('describe, list, certificatePem and create all see the current version; the merge moves them on', async () => {
      const seeded = await other.seed('web', { tags: { Recipient: 'ops@example.test' } });
      const pending = await adapter.beginRenewal('web');

      const latest = await rawKeyVault(other)('GET', '/certificates/web/');
      if (latestWhilePending === 'pending') {
        expect(latest.body.attributes.enabled).toBe(false);
        for (const absent of ['cer', 'x5t', 'kid', 'sid']) expect(latest.body).not.toHaveProperty(absent);
      } else {
        expect(latest.body.x5t).toBeTruthy();
      }

      const state = await adapter.describe('web');
      expect(state).toMatchObject({
        version: seeded.version,
        thumbprint: seeded.thumbprint,
        tags: { Recipient: 'ops@example.test' },
        pendingOperation: true,
        policy: { issuerName: 'Unknown', lifetimeAction: 'EmailContacts' },
      });
      expect(await adapter.certificatePem('web')).toBe(
        `-----BEGIN CERTIFICATE-----\n${new X509Certificate(seeded.leafPem).raw.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`,
      );
      const listed = (await collect(adapter.list())).find((s: CertificateSummary) => s.name === 'web');
      expect(listed).toMatchObject({ version: seeded.version, thumbprint: seeded.thumbprint, enabled: true });
      expect(await failure(adapter.create('web', state.policy!))).toMatchObject({
        type: 'CertificateExists',
      });
      // a retry of the renewal reuses the operation
      expect(await adapter.beginRenewal('web')).toEqual({ csrPem: pending.csrPem, reused: true });

      const leaf = other.ca.signCsr(pending.csrPem);
      const merged = await adapter.merge('web', [leaf, other.ca.caCertPem]);
      expect(merged).toMatchObject({
        thumbprint: sha1(leaf),
        tags: { Recipient: 'ops@example.test' },
        pendingOperation: false,
      });
      expect(merged.version).not.toBe(seeded.version);
      expect(await adapter.describe('web')).toEqual(merged);
    });
  },
);

describe('PATCH always names a version (without one, real Key Vault writes to a pending version)', () => {
  it('a renewal with tags changed meanwhile, torn and retried, PATCHes explicit versions only', async () => {
    const seeded = await kv.seed('explicit', { tags: { Recipient: 'old@example.test' } });
    const pending = await vault.beginRenewal('explicit');
    await client.updateCertificateProperties('explicit', seeded.version, {
      tags: { Recipient: 'new@example.test' },
    });
    const chain = [kv.ca.signCsr(pending.csrPem), kv.ca.caCertPem];
    kv.server.injectFault({ status: 500, count: 1, match: /^PATCH \/certificates\/explicit\// });
    expect((await failure(vault.merge('explicit', chain))).type).toBe('VaultUnavailable');
    const merged = await vault.merge('explicit', chain);
    expect(merged.tags).toEqual({ Recipient: 'new@example.test' });

    const patches = kv.server.requests.filter(
      (r) => r.method === 'PATCH' && r.path.startsWith('/certificates/explicit'),
    );
    // the SDK's updateCertificateProperties with the version; never '/certificates/explicit/' alone
    expect(patches.length).toBeGreaterThanOrEqual(3);
    for (const p of patches) expect(p.path).toMatch(/^\/certificates\/explicit\/[0-9a-f]{32}$/);
    expect(
      patches.filter((p) => p.path === `/certificates/explicit/${merged.version}` && p.status === 200),
    ).toHaveLength(1);
  });

  it('what a versionless PATCH would do while a renewal is pending: tag the pending version, not the current', async () => {
    const seeded = await kv.seed('versionless', { tags: { Recipient: 'a@example.test' } });
    await vault.beginRenewal('versionless');
    await client.updateCertificateProperties('versionless', '', { tags: { Recipient: 'b@example.test' } });
    expect((await client.getCertificateVersion('versionless', seeded.version)).properties.tags).toEqual({
      Recipient: 'a@example.test',
    });
  });
});

describe('a certificate the vault renews itself: its policy is never rewritten', () => {
  it.each([
    ['DigiCert', 'integrated-digicert'],
    ['Self', 'integrated-self'],
  ])(
    'beginRenewal refuses issuer %s (PolicyNotOwned), and rewrites it only with takeOver',
    async (issuer, name) => {
      await vaultIssued(name, issuer);
      const before = await client.getCertificatePolicy(name);
      const creates = requests('POST', `/certificates/${name}/create`);

      const refused = await failure(vault.beginRenewal(name));
      expect(refused).toMatchObject({ type: 'PolicyNotOwned', nonRetryable: true });
      expect(refused.message).toContain(`issuer '${issuer}'`);
      expect(refused.message).toContain('mode "issue"');
      expect(await failure(vault.beginRenewal(name, { takeOver: false }))).toMatchObject({
        type: 'PolicyNotOwned',
      });
      expect(requests('POST', `/certificates/${name}/create`)).toBe(creates);
      expect(await client.getCertificatePolicy(name)).toEqual(before);
      expect((await vault.describe(name)).policy).toMatchObject({
        issuerName: issuer,
        lifetimeAction: 'AutoRenew',
      });

      // configured mode "issue": taken over, today's behaviour (issuer Unknown, the vault only emails)
      const taken = await vault.beginRenewal(name, { takeOver: true });
      expect(taken.reused).toBe(false);
      expect((await vault.describe(name)).policy).toMatchObject({
        issuerName: 'Unknown',
        lifetimeAction: 'EmailContacts',
        lifetimePercentage: 75,
      });
    },
  );
});

describe("the secret store refuses a certificate's own secret (managed: true)", () => {
  it('in getSecret and setSecret, so a TLS key can never become the ACME account key', async () => {
    await kv.seed('tls-key-holder');
    const read = await failure(vault.getSecret('tls-key-holder'));
    expect(read).toMatchObject({ type: 'SecretIsCertificate', nonRetryable: true });
    const puts = requests('PUT', '/secrets/tls-key-holder');
    expect(await failure(vault.setSecret('tls-key-holder', 'account-key'))).toMatchObject({
      type: 'SecretIsCertificate',
    });
    expect(requests('PUT', '/secrets/tls-key-holder')).toBe(puts);
    // a plain secret is still fine
    await vault.setSecret('acme-account-fidelity', 'value');
    expect(await vault.getSecret('acme-account-fidelity')).toBe('value');
  });
});

describe('secrecy', () => {
  it('never put key material or a token in a thrown error', () => {
    expect(thrown.length).toBeGreaterThan(5);
    for (const err of thrown) {
      const text = `${String((err as Error).message)} ${JSON.stringify(err)} ${String((err as Error).stack)}`;
      expect(text).not.toMatch(/PRIVATE KEY/);
      expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\./);
    }
  });
});
