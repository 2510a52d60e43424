/**
 * Observe mode at the adapter level (issue 10, "Certificate modes"): a certificate Key Vault renews itself
 * (issuer DigiCert, lifetime action AutoRenew) is renewed by our Key Vault test server on its own schedule,
 * the adapter sees each new version, refuses to take the certificate over for issue mode, and asks the vault
 * for another version with `renewInVault`; the policy and issuer are the same at the end. Real SDK, our server
 * (test/servers/keyvault: ours, its integrated CA a test CA), the server's clock under the test's control.
 */
import { CertificateClient, type CertificatePolicy } from '@azure/keyvault-certificates';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAzureKeyVault } from '../../activities/vault/azure-key-vault';
import { certificateMode } from '../../workflows/lifecycle/mode';
import { failureOf } from '../support/failure';
import { startTestKeyVault, type TestKeyVault } from '../support/keyvault';
import { waitFor } from '../support/proc';

let kv: TestKeyVault;
let client: CertificateClient;
let vault: ReturnType<typeof createAzureKeyVault>;
let offset = 0;
const DELAY = 3_000;

beforeAll(async () => {
  kv = await startTestKeyVault({
    server: {
      now: () => Date.now() + offset,
      issuanceDelayMs: DELAY,
      issuedValiditySeconds: 3600,
      tickMs: 50,
    },
  });
  client = new CertificateClient(kv.url, kv.credential, kv.clientOptions);
  vault = kv.adapter();
});

afterAll(async () => {
  await kv?.stop();
});

/** The server's clock moves on; its own schedule acts on the next request or tick. */
function advance(ms: number): void {
  offset += ms;
}

const versionAfter = (name: string, previous: string | null) =>
  waitFor(
    `a new version of ${name}`,
    async () => {
      const state = await vault.describe(name);
      return state.version && state.version !== previous ? state : undefined;
    },
    { timeoutMs: 30_000 },
  );

describe('a DigiCert certificate with AutoRenew, observed', () => {
  it('is renewed by the vault itself, seen by describe, refused by beginRenewal, renewed on request by renewInVault', async () => {
    const name = 'observed';
    await client.beginCreateCertificate(
      name,
      {
        issuerName: 'DigiCert',
        subject: 'CN=shop.example.test',
        subjectAlternativeNames: { dnsNames: ['shop.example.test'] },
        keyType: 'RSA',
        keySize: 2048,
        lifetimeActions: [{ action: 'AutoRenew', lifetimePercentage: 80 }],
      } as CertificatePolicy,
      { tags: { Recipient: 'shop@example.test' } },
    );
    advance(DELAY);
    const first = await versionAfter(name, null);
    const policyBefore = await client.getCertificatePolicy(name);
    expect(first.policy).toEqual({
      subject: 'CN=shop.example.test',
      dnsNames: ['shop.example.test'],
      issuerName: 'DigiCert',
      key: { keyType: 'RSA', keySize: 2048, reuseKey: false, exportable: true },
      validityInMonths: 12,
      lifetimePercentage: 80,
      lifetimeAction: 'AutoRenew',
    });
    expect(certificateMode(first.policy)).toBe('observe');

    // the vault's own renewal at 80 % of the lifetime, by its clock
    const at = kv.server.autoRenewAt(name) ?? 0;
    advance(at * 1000 - (Date.now() + offset) + 1000);
    await waitFor(
      'the vault to start its renewal',
      async () => (await vault.describe(name)).pendingOperation,
    );
    advance(DELAY);
    const second = await versionAfter(name, first.version);
    expect(second.thumbprint).not.toBe(first.thumbprint);
    expect(Date.parse(second.notAfter ?? '')).toBeGreaterThan(Date.parse(first.notAfter ?? ''));
    expect(second.tags).toEqual({ Recipient: 'shop@example.test' });
    expect(second.pendingOperation).toBe(false);
    const leaf = new X509Certificate((await vault.certificatePem(name)) ?? '');
    expect(leaf.checkIssued(new X509Certificate(await kv.server.issuingCaPem()))).toBe(true);

    // issue mode would rewrite the policy to issuer Unknown: refused
    const refused = await failureOf(vault.beginRenewal(name));
    expect(refused).toMatchObject({ type: 'PolicyNotOwned', nonRetryable: true });

    // `certflow renew` in observe mode: the vault makes a new version with its own CA
    expect(await vault.renewInVault?.(name)).toEqual({ started: true, status: 'inProgress' });
    expect(await vault.renewInVault?.(name)).toEqual({ started: false, status: 'inProgress' }); // a retry
    advance(DELAY);
    const third = await versionAfter(name, second.version);
    expect(third.thumbprint).not.toBe(second.thumbprint);
    expect(third.tags).toEqual({ Recipient: 'shop@example.test' });

    // policy and issuer unchanged through all of it
    expect(third.policy).toEqual(first.policy);
    expect(await client.getCertificatePolicy(name)).toEqual(policyBefore);
    const creates = kv.server.requests.filter(
      (r) => r.method === 'POST' && r.path === `/certificates/${name}/create`,
    );
    expect(creates.filter((r) => r.status === 202)).toHaveLength(2); // ours: the first create and renewInVault
    expect(
      kv.server.requests.some(
        (r) => r.method === 'PATCH' && r.path.startsWith(`/certificates/${name}/policy`),
      ),
    ).toBe(false);
  });

  it('renewInVault of a Self certificate completes by itself too', async () => {
    await client.beginCreateCertificate('observed-self', {
      issuerName: 'Self',
      subject: 'CN=self.example.test',
      keyType: 'EC',
    } as CertificatePolicy);
    advance(DELAY);
    const first = await versionAfter('observed-self', null);
    expect(await vault.renewInVault?.('observed-self')).toMatchObject({ started: true });
    advance(DELAY);
    const next = await versionAfter('observed-self', first.version);
    expect(next.policy).toEqual(first.policy);
  });
});

describe('renewInVault refuses and classifies', () => {
  it('a certificate the vault cannot renew by itself (issuer Unknown), a missing one, a throttled create', async () => {
    await kv.seed('issued-elsewhere');
    expect(await failureOf(vault.renewInVault!('issued-elsewhere'))).toMatchObject({
      type: 'VaultCannotRenew',
      nonRetryable: true,
    });
    expect(await failureOf(vault.renewInVault!('not-there'))).toMatchObject({ type: 'CertificateNotFound' });

    await client.beginCreateCertificate('busy-self', {
      issuerName: 'Self',
      subject: 'CN=busy',
      keyType: 'EC',
    });
    advance(DELAY);
    await versionAfter('busy-self', null);
    kv.server.injectFault({
      status: 429,
      retryAfter: 4,
      count: 1,
      match: 'POST /certificates/busy-self/create',
    });
    expect(await failureOf(vault.renewInVault!('busy-self'))).toMatchObject({
      type: 'VaultThrottled',
      nonRetryable: false,
      nextRetryDelay: 4000,
    });
    expect(await vault.renewInVault?.('busy-self')).toMatchObject({ started: true });
  });
});
