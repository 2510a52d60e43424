/**
 * The worker service's way to the test Key Vault, in this process: an identity from configuration (a client
 * secret: @azure/identity's ClientSecretCredential through MSAL, over HTTPS to the test Entra's token endpoint)
 * and a production-style vault URL (https://<name>.vault.azure.net), both reached through redirectHosts. The
 * chaos suite starts worker/main.ts the same way (test/support/redirect-hosts-preload.mjs).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAzureCredential } from '../../activities/vault/azure-credential';
import { createAzureKeyVault } from '../../activities/vault/azure-key-vault';
import { createTestEntra, startEntraServer, type EntraServer } from '../servers/keyvault/entra';
import { startKeyVaultServer, type KeyVaultServer } from '../servers/keyvault/server';
import { REDIRECT_HOSTS_ENV, redirectHosts } from '../support/redirect-hosts';
import { createTestCa } from '../support/test-ca';
import { repoRoot } from '../support/tools';

const execFileAsync = promisify(execFile);

const VAULT_HOST = 'certflow-entra.vault.azure.net';
const CLIENT_ID = '0a1b2c3d-0000-4000-8000-00000000c11e';
const SECRET = 'test~client+secret/only=for.tests';
const entra = createTestEntra();
const tlsCa = createTestCa({ commonName: 'Certflow test Entra and Key Vault TLS CA', keyType: 'ec' });
let kv: KeyVaultServer;
let login: EntraServer;
let unredirect: () => void;

const credential = (clientSecret: string) =>
  createAzureCredential({
    kind: 'client-secret',
    tenantId: entra.tenantId,
    clientId: CLIENT_ID,
    clientSecret,
  });

beforeAll(async () => {
  const tls = tlsCa.issueServerCert([VAULT_HOST, 'login.microsoftonline.com']);
  kv = await startKeyVaultServer({
    jwks: entra.jwks,
    issuer: entra.issuer,
    tenantId: entra.tenantId,
    tls,
    vaultName: 'certflow-entra',
    publicUrl: `https://${VAULT_HOST}`,
  });
  login = await startEntraServer({ entra, tls, clients: { [CLIENT_ID]: SECRET } });
  unredirect = redirectHosts({
    hosts: { [VAULT_HOST]: kv.port, 'login.microsoftonline.com': login.port },
    caPem: tlsCa.caCertPem,
  });
});

afterAll(async () => {
  unredirect?.();
  await kv?.close();
  await login?.close();
});

describe('the test Entra token endpoint and production-style hosts', () => {
  it('gives a client-secret credential a token the test Key Vault accepts', async () => {
    const vault = createAzureKeyVault({
      name: 'kv',
      url: `https://${VAULT_HOST}`,
      credential: credential(SECRET),
    });
    await vault.setSecret('entra-check', 'value');
    expect(await vault.getSecret('entra-check')).toBe('value');
    expect(login.stats()).toMatchObject({ issued: 1, refused: 0 });
    expect(kv.requests.filter((r) => r.authorized).length).toBeGreaterThanOrEqual(2);
  });

  it('refuses a wrong client secret, and the failure does not carry it', async () => {
    const wrong = `${SECRET}-wrong`;
    const vault = createAzureKeyVault({
      name: 'kv',
      url: `https://${VAULT_HOST}`,
      credential: credential(wrong),
    });
    const err = await vault.getSecret('entra-check').then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeDefined();
    expect(`${String(err?.message)}\n${String(err?.stack)}\n${JSON.stringify(err)}`).not.toContain(wrong);
    expect(login.stats().refused).toBeGreaterThanOrEqual(1);
  });
});

describe('the preload, in a process configured like the worker service', () => {
  it('brings that process (not its worker threads, which load it too) to the test Entra and Key Vault', async () => {
    const script = `
      const { createAzureCredential } = await import('./activities/vault/azure-credential.ts');
      const { createAzureKeyVault } = await import('./activities/vault/azure-key-vault.ts');
      const { Worker } = await import('node:worker_threads');
      const credential = createAzureCredential({
        kind: 'client-secret', tenantId: process.env.T_TENANT, clientId: process.env.T_CLIENT, clientSecret: process.env.T_SECRET,
      });
      const vault = createAzureKeyVault({ name: 'kv', url: 'https://${VAULT_HOST}', credential });
      const thread = await new Promise((resolve, reject) => {
        const w = new Worker('import { parentPort } from "node:worker_threads"; parentPort.postMessage("thread up");', { eval: true });
        w.once('message', (m) => { void w.terminate(); resolve(m); });
        w.once('error', reject);
      });
      console.log(JSON.stringify({ secret: await vault.getSecret('entra-check'), thread }));
    `;
    const { stdout } = await execFileAsync(
      process.execPath,
      [
        '--import',
        'tsx',
        '--import',
        './test/support/redirect-hosts-preload.mjs',
        '--input-type=module',
        '-e',
        script,
      ],
      {
        cwd: repoRoot,
        timeout: 60_000,
        env: {
          ...process.env,
          T_TENANT: entra.tenantId,
          T_CLIENT: CLIENT_ID,
          T_SECRET: SECRET,
          [REDIRECT_HOSTS_ENV]: JSON.stringify({
            hosts: { [VAULT_HOST]: kv.port, 'login.microsoftonline.com': login.port },
            caPem: tlsCa.caCertPem,
          }),
        },
      },
    );
    expect(JSON.parse(stdout.trim())).toEqual({ secret: 'value', thread: 'thread up' });
  });
});
