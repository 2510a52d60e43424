/**
 * The local vault's records are authenticated (HMAC per record) and its keys are derived per use (HKDF), and a
 * vault and dev CA written by the release before (test/fixtures/local-vault-v1, npm start's `.data/` layout)
 * keep working: migrated on first open, refused in the old form afterwards.
 */
import { ApplicationFailure } from '@temporalio/common';
import crypto from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createDevCaIssuer } from '../../activities/issuers/dev-ca';
import type { Issued } from '../../activities/types';
import { createLocalVault } from '../../activities/vault/local';
import { aad, deriveKey, unseal, unsealV1 } from '../../activities/vault/local-crypto';
import { verifyIssuedChain } from '../../activities/verify/x509';
import { failureOf } from '../support/failure';
import { repoRoot, scratchDir } from '../support/tools';

const FIXED_NOW = new Date('2027-01-01T00:00:00Z');

const root = scratchDir('local-vault-migration');
afterAll(() => fs.rm(root, { recursive: true, force: true }));

const FIXTURE = path.join(repoRoot, 'test/fixtures/local-vault-v1');
const fixtureKey = Buffer.from(readFileSync(path.join(FIXTURE, 'key.txt'), 'utf8').trim(), 'base64');

const policy = (name: string) => ({
  subject: `CN=${name}.certflow.test`,
  dnsNames: [`${name}.certflow.test`],
  issuerName: 'Unknown',
  key: { keyType: 'EC', curve: 'P-256', reuseKey: false, exportable: true },
});

async function copyFixture(name: string): Promise<string> {
  const dir = path.join(root, name);
  await fs.cp(FIXTURE, dir, { recursive: true });
  return dir;
}
const readJson = async (file: string) =>
  JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>;

describe('record MACs', () => {
  it('refuses a record whose policy, names, tags, exportable flag or chain was edited on disk', async () => {
    const dir = path.join(root, 'mac');
    const key = crypto.randomBytes(32);
    const vault = createLocalVault({ name: 'local', dir, encryptionKey: key });
    const ca = createDevCaIssuer({ name: 'dev', dir: path.join(dir, '..', 'mac-ca'), validity: { days: 1 } });
    const { csrPem } = await vault.create('site', policy('site'), { Recipient: 'owner@certflow.test' });
    const issued = (await ca.submit({ certificateId: 'local/site', csrPem, dnsNames: [] })) as Issued;
    await vault.merge('site', issued.chainPem);
    const file = path.join(dir, 'certificates/site/certificate.json');
    const authentic = await fs.readFile(file, 'utf8');
    const record = JSON.parse(authentic) as {
      mac: string;
      policy: { dnsNames: string[]; key: { exportable: boolean } };
      versions: Array<{ tags: Record<string, string>; exportable: boolean; chainPem: string[] }>;
    };
    expect(record.mac).toMatch(/^[A-Za-z0-9+/]{43}=$/);

    const edits: Array<[string, (r: typeof record) => void]> = [
      ['names', (r) => (r.policy.dnsNames = ['www.bank.example'])],
      ['tags', (r) => (r.versions[0]!.tags.Recipient = 'attacker@evil.test')],
      ['exportable', (r) => (r.versions[0]!.exportable = !r.versions[0]!.exportable)],
      ['key policy', (r) => (r.policy.key.exportable = !r.policy.key.exportable)],
      ['chain', (r) => r.versions[0]!.chainPem.reverse()],
      ['no MAC', (r) => delete (r as { mac?: string }).mac],
    ];
    for (const [what, edit] of edits) {
      const copy = structuredClone(record);
      edit(copy);
      await fs.writeFile(file, JSON.stringify(copy, null, 2));
      const f = await failureOf(vault.describe('site'));
      expect(f, what).toBeInstanceOf(ApplicationFailure);
      expect(f.type, what).toBe('VaultCorrupt');
      expect(f.message, what).toContain(`${file} is corrupt`);
      expect(f.message, what).toContain('MAC does not match');
    }
    // key order and whitespace are not edits
    await fs.writeFile(file, JSON.stringify(JSON.parse(authentic)));
    expect((await vault.describe('site')).tags).toEqual({ Recipient: 'owner@certflow.test' });
  });

  it('derives a key per use: blobs do not open with the configured key, nor with the dev CA key', async () => {
    const dir = path.join(root, 'hkdf');
    const key = crypto.randomBytes(32);
    const vault = createLocalVault({ name: 'local', dir, encryptionKey: key });
    await vault.setSecret('acme', 'account-key');
    const blob = await fs.readFile(path.join(dir, 'secrets/acme.secret'));
    expect(blob.subarray(0, 5).toString('latin1')).toBe('CFLV2');
    const boundTo = aad('secret', 'acme');
    expect(unseal(deriveKey(key, 'local-vault/seal'), blob, boundTo).toString()).toBe('account-key');
    expect(() => unseal(key, blob, boundTo)).toThrow(/authentication failed/);
    expect(() => unseal(deriveKey(key, 'dev-ca/seal'), blob, boundTo)).toThrow(/authentication failed/);
    const uses = ['local-vault/seal', 'local-vault/record-mac', 'dev-ca/seal'] as const;
    const derived = uses.map((u) => deriveKey(key, u).toString('hex'));
    expect(new Set([...derived, key.toString('hex')]).size).toBe(4);
    // the dev CA configured with the same key seals with its own derived key
    const caDir = path.join(root, 'hkdf-ca');
    await createDevCaIssuer({ name: 'dev', dir: caDir, encryptionKey: key, validity: { days: 1 } }).rootPem();
    const ca = await readJson(path.join(caDir, 'ca.json'));
    const sealed = Buffer.from((ca.rootKey as { sealed: string }).sealed, 'base64');
    const caBinding = aad('dev-ca', 'root-key');
    expect(() => unseal(deriveKey(key, 'local-vault/seal'), sealed, caBinding)).toThrow(
      /authentication failed/,
    );
    expect(unseal(deriveKey(key, 'dev-ca/seal'), sealed, caBinding).length).toBeGreaterThan(0);
  });
});

describe('a vault and dev CA of the release before (npm start .data/)', () => {
  it('opens, migrates on first use, and keeps every certificate, key and secret', async () => {
    const dir = await copyFixture('migrate');
    const vault = createLocalVault({
      name: 'local',
      dir: path.join(dir, 'vault'),
      encryptionKey: fixtureKey,
    });
    const site = await vault.describe('demo-site');
    expect(site).toMatchObject({
      version: expect.any(String),
      tags: { Recipient: 'site-owner@certflow.test' },
    });
    expect(site.dnsNames).toEqual(['demo-site.certflow.test']);
    const exported = await vault.exportSecret('demo-site', site.version!);
    expect(exported.keyPem).toMatch(/BEGIN PRIVATE KEY/);
    expect(await vault.getSecret('acme-account')).toBe('account-key-of-the-earlier-release');
    expect((await vault.describe('demo-pending')).pendingOperation).toBe(true);

    // on disk now: vault.json v2, records with a MAC, every blob re-sealed with the derived key
    const v = path.join(dir, 'vault');
    expect((await readJson(path.join(v, 'vault.json'))).format).toBe('certflow-local-vault/v2');
    const record = await readJson(path.join(v, 'certificates/demo-site/certificate.json'));
    expect(record.format).toBe('certflow-local-vault/certificate/v2');
    expect(typeof record.mac).toBe('string');
    for (const rel of [`certificates/demo-site/keys/${site.version}.key`, 'secrets/acme-account.secret'])
      expect((await fs.readFile(path.join(v, rel))).subarray(0, 5).toString('latin1'), rel).toBe('CFLV2');

    // a renewal through the migrated dev CA: the CA keys opened with the key they were sealed with, re-sealed
    const ca = createDevCaIssuer({
      name: 'dev',
      dir: path.join(dir, 'dev-ca'),
      encryptionKey: fixtureKey,
      validity: { days: 1 },
      // the fixture's intermediate expires 2036-11-29: a fixed clock keeps this test passing after that day
      now: () => FIXED_NOW,
    });
    const { csrPem } = await vault.beginRenewal('demo-site');
    const issued = (await ca.submit({ certificateId: 'local/demo-site', csrPem, dnsNames: [] })) as Issued;
    await verifyIssuedChain({
      csrPem,
      chainPem: issued.chainPem,
      expectedDnsNames: ['demo-site.certflow.test'],
      now: FIXED_NOW,
      trustAnchorsPem: [await ca.rootPem()],
    });
    expect((await vault.merge('demo-site', issued.chainPem)).version).not.toBe(site.version);
    const caFile = await readJson(path.join(dir, 'dev-ca/ca.json'));
    const rootKey = Buffer.from((caFile.rootKey as { sealed: string }).sealed, 'base64');
    expect(rootKey.subarray(0, 5).toString('latin1')).toBe('CFLV2');
    expect(() => unsealV1(fixtureKey, rootKey, aad('dev-ca', 'root-key'))).toThrow();

    // and again after a restart
    const again = createLocalVault({ name: 'local', dir: v, encryptionKey: fixtureKey });
    expect((await again.describe('demo-site')).version).toBe((await vault.describe('demo-site')).version);
    expect(await again.getSecret('acme-account')).toBe('account-key-of-the-earlier-release');
  });

  it('refuses, once migrated, a record or a blob in the old form put back into the vault', async () => {
    const dir = await copyFixture('replant');
    const v = path.join(dir, 'vault');
    const oldRecord = await fs.readFile(path.join(v, 'certificates/demo-site/certificate.json'));
    const oldSecret = await fs.readFile(path.join(v, 'secrets/acme-account.secret'));
    const vault = createLocalVault({ name: 'local', dir: v, encryptionKey: fixtureKey });
    await vault.describe('demo-site');
    await fs.writeFile(path.join(v, 'certificates/demo-site/certificate.json'), oldRecord);
    const f = await failureOf(vault.describe('demo-site'));
    expect(f.type).toBe('VaultCorrupt');
    expect(f.message).toContain('a record without MAC');
    await fs.writeFile(path.join(v, 'secrets/acme-account.secret'), oldSecret);
    const g = await failureOf(vault.getSecret('acme-account'));
    expect(g.type).toBe('VaultCorrupt');
    expect(g.message).toMatch(/format before key derivation/);
  });

  it('refuses to migrate with another key, and leaves the old vault as it was', async () => {
    const dir = await copyFixture('wrong-key');
    const v = path.join(dir, 'vault');
    const before = await fs.readFile(path.join(v, 'vault.json'), 'utf8');
    const wrong = createLocalVault({ name: 'local', dir: v, encryptionKey: crypto.randomBytes(32) });
    expect((await failureOf(wrong.describe('demo-site'))).type).toBe('VaultKeyMismatch');
    expect(await fs.readFile(path.join(v, 'vault.json'), 'utf8')).toBe(before);
  });
});
