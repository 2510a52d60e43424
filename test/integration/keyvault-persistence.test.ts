/**
 * The test Key Vault's optional persistence: state as JSON, private keys and secret values in their own 0600
 * files, and a restarted server that carries on where the old one stopped (certificates, a pending operation,
 * a secret).
 */
import crypto from 'node:crypto';
import { readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { createAzureKeyVault } from '../../activities/vault/azure-key-vault';
import { startTestKeyVault, type TestKeyVault } from '../support/keyvault';
import { scratchDir } from '../support/tools';

const dataDir = scratchDir('keyvault-persistence');
const started: TestKeyVault[] = [];

afterAll(async () => {
  await Promise.all(started.map((kv) => kv.stop()));
  rmSync(dataDir, { recursive: true, force: true });
});

const open = async () => {
  const kv = await startTestKeyVault({ dataDir });
  started.push(kv);
  return {
    kv,
    vault: createAzureKeyVault({
      name: 'kv',
      url: kv.url,
      credential: kv.credential,
      clientOptions: kv.clientOptions,
    }),
  };
};

it('keeps certificates, keys and a pending operation across a restart', async () => {
  const first = await open();
  const seeded = await first.kv.seed('durable', { tags: { Recipient: 'ops@example.test' } });
  const pending = await first.vault.beginRenewal('durable');
  const accountKey = crypto.randomBytes(32).toString('base64');
  await first.vault.setSecret('acme-account', accountKey);
  await first.kv.stop();

  const keyDir = path.join(dataDir, 'keys');
  const keyFiles = readdirSync(keyDir);
  expect(keyFiles.length).toBe(2); // the merged version's key and the pending one's
  for (const f of keyFiles) expect(statSync(path.join(keyDir, f)).mode & 0o777).toBe(0o600);
  const state = readFileSync(path.join(dataDir, 'state.json'), 'utf8');
  expect(state).toContain('durable');
  expect(state).not.toMatch(/PRIVATE KEY/);
  expect(state).not.toContain(accountKey); // plain secrets live in their own 0600 file
  expect(statSync(path.join(dataDir, 'secrets.json')).mode & 0o777).toBe(0o600);

  const second = await open();
  const described = await second.vault.describe('durable');
  expect(described).toMatchObject({
    thumbprint: seeded.thumbprint,
    pendingOperation: true,
    tags: { Recipient: 'ops@example.test' },
  });
  expect(await second.vault.getSecret('acme-account')).toBe(accountKey);
  const again = await second.vault.beginRenewal('durable');
  expect(again).toEqual({ csrPem: pending.csrPem, reused: true });
  const merged = await second.vault.merge('durable', [
    second.kv.ca.signCsr(again.csrPem),
    second.kv.ca.caCertPem,
  ]);
  expect(merged.thumbprint).not.toBe(seeded.thumbprint);
  const secret = await second.vault.exportSecret('durable', merged.version ?? '');
  expect(secret.chainPem).toHaveLength(2);
});
