/**
 * The Azure Key Vault adapter exactly as the worker builds it (worker/deps-vaults.ts: name, url, credential; no
 * client options): a vault URL of the production form https://<name>.vault.azure.net, the SDK's challenge-resource
 * verification on, a credential that carries its cloud (so the URL is checked against it), and TLS verified
 * against the vault's host name. The host is served by our Key Vault test server (test/servers/keyvault: ours)
 * with a certificate for that name; the only addition is the transport: an https agent that connects the
 * vault's host to 127.0.0.1 (test/support/vault-host.ts), as DNS would, and trusts the test CA.
 */
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLOUDS } from '../../activities/vault/azure-credential';
import { createAzureKeyVault } from '../../activities/vault/azure-key-vault';
import { failureOf } from '../support/failure';
import { startTestKeyVault, type TestKeyVault } from '../support/keyvault';
import { agentToLocalVault } from '../support/vault-host';

const HOST = 'certflow-test.vault.azure.net';
const URL_ = `https://${HOST}`;
let kv: TestKeyVault;
const scopes: string[] = [];

/** Like createAzureCredential's: a TokenCredential that names its cloud; tokens from the test Entra. */
function credentialOf(kv: TestKeyVault): TokenCredential & { cloud: typeof CLOUDS.public } {
  return {
    cloud: CLOUDS.public,
    getToken(s: string | string[], o?: GetTokenOptions): Promise<AccessToken | null> {
      scopes.push([s].flat().join(' '));
      return kv.credential.getToken(s, o);
    },
  };
}

/** The worker's construction, plus the agent that stands in for DNS. */
const productionVault = (target: TestKeyVault) =>
  createAzureKeyVault({
    name: 'prod',
    url: URL_,
    credential: credentialOf(target),
    clientOptions: { agent: agentToLocalVault(target.server.port, target.caPem) },
  });

beforeAll(async () => {
  kv = await startTestKeyVault({
    hostnames: [HOST],
    server: { publicUrl: URL_, issuanceDelayMs: 0 },
  });
});

afterAll(async () => {
  await kv?.stop();
});

describe('the adapter with production options', () => {
  it('renews, lists, exports and keeps tags against https://<name>.vault.azure.net, challenge verification on', async () => {
    const vault = productionVault(kv);
    const seeded = await kv.seed('prod-web', { tags: { Recipient: 'ops@example.test' } });
    const before = await vault.describe('prod-web');
    expect(before).toMatchObject({ version: seeded.version, thumbprint: seeded.thumbprint });
    const pending = await vault.beginRenewal('prod-web');
    const merged = await vault.merge('prod-web', [kv.ca.signCsr(pending.csrPem), kv.ca.caCertPem]);
    expect(merged.tags).toEqual({ Recipient: 'ops@example.test' });
    expect(merged.version).not.toBe(seeded.version);
    const listed = [];
    for await (const s of vault.list()) listed.push(s.name);
    expect(listed).toContain('prod-web');
    expect((await vault.exportSecret('prod-web', merged.version ?? '')).keyPem).toMatch(/BEGIN PRIVATE KEY/);
    expect(vault.secretIdOf('prod-web', merged.version ?? '')).toBe(
      `${URL_}/secrets/prod-web/${merged.version}`,
    );
    await vault.setSecret('acme-account-prod', 'value');
    expect(await vault.getSecret('acme-account-prod')).toBe('value');
    // the SDK asked for the scope the vault's challenge named, after verifying it against the host
    expect(new Set(scopes)).toEqual(new Set(['https://vault.azure.net/.default']));
    // every request went to our server under the production host
    expect(kv.server.requests.filter((r) => r.authorized).length).toBeGreaterThan(10);
  });

  it("refuses a vault whose challenge names another cloud's resource (verification is on)", async () => {
    const china = await startTestKeyVault({
      hostnames: [HOST],
      audience: 'https://vault.azure.cn',
      server: { publicUrl: URL_ },
    });
    try {
      const err = await failureOf(productionVault(china).describe('anything'));
      expect(err).toMatchObject({ type: 'VaultCloudMismatch', nonRetryable: true });
      expect(china.server.requests.every((r) => !r.authorized)).toBe(true); // no token was ever sent
    } finally {
      await china.stop();
    }
  });

  it('refuses a server whose certificate does not name the vault host (TLS verification is on)', async () => {
    const impostor = await startTestKeyVault({ server: { publicUrl: URL_ } }); // certificate for 127.0.0.1 only
    try {
      const err = await failureOf(productionVault(impostor).describe('anything'));
      expect(err).toMatchObject({ type: 'VaultTlsUntrusted', nonRetryable: true });
      expect(impostor.server.requests).toHaveLength(0);
    } finally {
      await impostor.stop();
    }
  });

  it('refuses, before any request, a URL that is not a vault of the credential cloud', () => {
    expect(() =>
      createAzureKeyVault({
        name: 'prod',
        url: `https://${HOST.replace('azure.net', 'azure.cn')}`,
        credential: credentialOf(kv),
      }),
    ).toThrow(/not a Key Vault of the credential's cloud/);
  });
});
