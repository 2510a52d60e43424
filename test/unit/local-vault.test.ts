/**
 * The local vault (activities/vault/local.ts) on a real directory: the Unknown-issuer lifecycle with a test CA,
 * key rotation and reuse, the merge checks, encryption at rest and its tamper detection, file modes, restart,
 * and the SecretStore.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { ApplicationFailure } from '@temporalio/common';
import crypto, { X509Certificate } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CertificatePolicySnapshot, KeySpec } from '../../activities/types';
import { createLocalVault, loadEncryptionKey, type LocalVault } from '../../activities/vault/local';
import { createTestCa, pemToDer } from '../support/test-ca';
import { scratchDir } from '../support/tools';
import { failureOf } from '../support/failure';

const root = scratchDir('local-vault');
const encryptionKey = crypto.randomBytes(32);
const ca = createTestCa();
/** Every error message the vault gave in this file, checked for key material at the end. */
const messages: string[] = [];
/** Every private key the vault exported in this file. */
const exportedKeys: string[] = [];

const rsa: KeySpec = { keyType: 'RSA', keySize: 2048, reuseKey: false, exportable: true };
/** For tests about something else than the key: EC keys are made in a millisecond, RSA ones are not. */
const ec: KeySpec = { keyType: 'EC', curve: 'P-256', reuseKey: false, exportable: true };

function policy(name: string, key: KeySpec = rsa): CertificatePolicySnapshot {
  return {
    subject: `CN=${name}.example.test`,
    dnsNames: [`${name}.example.test`, `www.${name}.example.test`],
    issuerName: 'Unknown',
    key,
    validityInMonths: 3,
    lifetimePercentage: 66,
  };
}

async function failure(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await failureOf(p);
  messages.push(err.message);
  return err;
}

const spkiOfCsr = (csrPem: string) =>
  Buffer.from(new x509.Pkcs10CertificateRequest(csrPem).publicKey.rawData);

const chainFor = (csrPem: string) => [ca.signCsr(csrPem, { days: 30 }), ca.caCertPem];

/** One renewal end to end: CSR (new or reused), signed by the test CA, merged. */
async function renew(vault: LocalVault, name: string) {
  const { csrPem } = await vault.beginRenewal(name);
  return vault.merge(name, chainFor(csrPem));
}

async function exportKey(vault: LocalVault, name: string, version: string) {
  const secret = await vault.exportSecret(name, version);
  exportedKeys.push(secret.keyPem);
  return secret;
}

const fileOf = (...parts: string[]) => path.join(root, 'main', ...parts);
const keyFile = (name: string, version: string) => fileOf('certificates', name, 'keys', `${version}.key`);

let vault: LocalVault;

beforeAll(async () => {
  vault = createLocalVault({ name: 'local', dir: path.join(root, 'main'), encryptionKey });
});

afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('local vault lifecycle', () => {
  it('creates a certificate, reuses the pending CSR, merges and describes the new version', async () => {
    const created = await vault.create('web', policy('web'), { Recipient: 'ops@example.test' });
    expect(created.reused).toBe(false);
    expect(created.csrPem).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----/);

    const pending = await vault.describe('web');
    expect(pending).toMatchObject({
      id: 'local/web',
      version: null,
      thumbprint: null,
      pendingOperation: true,
    });
    // issue mode: the vault only reminds at the trigger (Key Vault's Unknown issuer), Certflow renews
    expect(pending.policy).toEqual({ ...policy('web'), lifetimeAction: 'EmailContacts' });
    expect(pending.tags).toEqual({ Recipient: 'ops@example.test' });

    expect(await vault.beginRenewal('web')).toEqual({ csrPem: created.csrPem, reused: true });
    expect(await vault.create('web', policy('web'))).toEqual({ csrPem: created.csrPem, reused: true });

    const [leafPem, caPem] = chainFor(created.csrPem) as [string, string];
    const state = await vault.merge('web', [leafPem, caPem]);
    const leaf = new X509Certificate(leafPem);
    expect(state).toMatchObject({
      vault: 'local',
      name: 'web',
      thumbprint: leaf.fingerprint.replace(/:/g, ''),
      notBefore: new Date(leaf.validFrom).toISOString(),
      notAfter: new Date(leaf.validTo).toISOString(),
      dnsNames: ['web.example.test', 'www.web.example.test'],
      tags: { Recipient: 'ops@example.test' },
      pendingOperation: false,
    });
    expect(state.version).toMatch(/^[0-9a-f]{32}$/);
    expect(state.subject).toContain('CN=web.example.test');
    expect(await vault.describe('web')).toEqual(state);
    // the same chain again: already merged, same state, no new version
    expect(await vault.merge('web', [leafPem + caPem])).toEqual(state);
    expect(await vault.listVersions('web')).toHaveLength(1);

    const version = state.version as string;
    expect(vault.secretIdOf('web', version)).toBe(`local://local/secrets/web/${version}`);
    const secret = await exportKey(vault, 'web', version);
    expect(secret.chainPem).toHaveLength(2);
    expect(pemToDer(secret.chainPem[0] as string, 'CERTIFICATE').equals(leaf.raw)).toBe(true);
    expect(
      crypto
        .createPublicKey(secret.keyPem)
        .export({ type: 'spki', format: 'der' })
        .equals(leaf.publicKey.export({ type: 'spki', format: 'der' })),
    ).toBe(true);
  });

  it('renews with a new key by default, carries tags over and keeps every version', async () => {
    await vault.create('rotate', policy('rotate'), { Recipient: 'a@example.test' });
    const first = await renew(vault, 'rotate');
    await vault.updateTags('rotate', first.version as string, { Recipient: 'b@example.test', Team: 'web' });

    const next = await vault.beginRenewal('rotate');
    expect(next.reused).toBe(false);
    const firstKey = (await exportKey(vault, 'rotate', first.version as string)).keyPem;
    const firstSpki = crypto.createPublicKey(firstKey).export({ type: 'spki', format: 'der' });
    expect(spkiOfCsr(next.csrPem).equals(firstSpki)).toBe(false);

    const second = await vault.merge('rotate', chainFor(next.csrPem));
    expect(second.version).not.toBe(first.version);
    expect(second.thumbprint).not.toBe(first.thumbprint);
    expect(second.tags).toEqual({ Recipient: 'b@example.test', Team: 'web' });
    const versions = await vault.listVersions('rotate');
    expect(versions.map((v) => [v.version, v.current])).toEqual([
      [second.version, true],
      [first.version, false],
    ]);
  });

  it('is always issue mode: issuer Unknown, lifetime action EmailContacts, takeOver changes nothing, no renewInVault', async () => {
    // a policy naming a CA the local vault cannot ask: Certflow's CAs issue every local version
    await vault.create('owned', { ...policy('owned', ec), issuerName: 'DigiCert' });
    const state = await vault.describe('owned');
    expect(state.policy).toMatchObject({ issuerName: 'Unknown', lifetimeAction: 'EmailContacts' });
    const first = await vault.beginRenewal('owned', { takeOver: false });
    expect(await vault.beginRenewal('owned', { takeOver: true })).toEqual({ ...first, reused: true });
    expect(vault.renewInVault).toBeUndefined();
  });

  it('keeps the key across renewals when the policy says reuseKey', async () => {
    await vault.create('sticky', policy('sticky', { ...rsa, reuseKey: true }));
    const first = await renew(vault, 'sticky');
    const { csrPem } = await vault.beginRenewal('sticky');
    const firstKey = (await exportKey(vault, 'sticky', first.version as string)).keyPem;
    expect(
      spkiOfCsr(csrPem).equals(crypto.createPublicKey(firstKey).export({ type: 'spki', format: 'der' })),
    ).toBe(true);
    const second = await vault.merge('sticky', chainFor(csrPem));
    expect(second.version).not.toBe(first.version);
    expect((await exportKey(vault, 'sticky', second.version as string)).keyPem).toBe(firstKey);
  });

  it.each(['P-256', 'P-384', 'P-521'])('runs the lifecycle with EC %s keys', async (curve) => {
    const name = `ec-${curve.toLowerCase()}`;
    const ecPolicy = policy(name, { keyType: 'EC', curve, reuseKey: false, exportable: true });
    await vault.create(name, ecPolicy);
    const state = await renew(vault, name);
    expect(state.policy?.key.curve).toBe(curve);
    const secret = await exportKey(vault, name, state.version as string);
    const key = crypto.createPrivateKey(secret.keyPem);
    expect(key.asymmetricKeyType).toBe('ec');
    const leaf = new X509Certificate(secret.chainPem[0] as string);
    expect(leaf.publicKey.asymmetricKeyDetails?.namedCurve).toBe(key.asymmetricKeyDetails?.namedCurve);
    expect(leaf.checkPrivateKey(key)).toBe(true);
  });

  it('refuses a chain for another key, a merge with nothing pending, and unknown certificates', async () => {
    await vault.create('strict', policy('strict', ec));
    const current = await renew(vault, 'strict');
    await vault.create('stranger', policy('stranger', ec));
    const foreign = chainFor((await vault.beginRenewal('stranger')).csrPem);

    await vault.beginRenewal('strict');
    const mismatch = await failure(vault.merge('strict', foreign));
    expect(mismatch).toMatchObject({ type: 'KeyMismatch', nonRetryable: true });
    expect(await vault.describe('strict')).toMatchObject({
      version: current.version,
      pendingOperation: true,
    });

    await vault.cancelRenewal('strict');
    await vault.cancelRenewal('strict');
    await vault.cancelRenewal('never-created');
    expect((await vault.describe('strict')).pendingOperation).toBe(false);
    expect(await failure(vault.merge('strict', foreign))).toMatchObject({
      type: 'NoPendingOperation',
      nonRetryable: true,
    });

    for (const call of [
      () => vault.describe('nope'),
      () => vault.beginRenewal('nope'),
      () => vault.exportSecret('nope', 'v'),
    ])
      expect(await failure(call())).toMatchObject({ type: 'CertificateNotFound', nonRetryable: true });
    expect(await failure(vault.exportSecret('strict', '0'.repeat(32)))).toMatchObject({
      type: 'SecretNotFound',
    });
    expect(await failure(vault.merge('strict', ['not a certificate']))).toMatchObject({
      type: 'InvalidChain',
    });
    expect(await failure(vault.describe('../escape'))).toMatchObject({ type: 'InvalidName' });
    const hsm = await failure(vault.create('hsm', policy('hsm', { ...rsa, keyType: 'RSA-HSM' })));
    expect(hsm).toMatchObject({ type: 'PolicyUnsupported', nonRetryable: true });
    const size = await failure(vault.create('tiny', policy('tiny', { ...rsa, keySize: 1024 })));
    expect(size.message).toContain('policy.key.keySize');
    expect(await failure(vault.describe('hsm'))).toMatchObject({ type: 'CertificateNotFound' });
  });

  it('refuses to export a key the policy marks as not exportable', async () => {
    await vault.create('locked', policy('locked', { ...ec, exportable: false }));
    const state = await renew(vault, 'locked');
    expect(await failure(vault.exportSecret('locked', state.version as string))).toMatchObject({
      type: 'KeyNotExportable',
      nonRetryable: true,
    });
  });

  it('serialises concurrent renewals and merges of one certificate', async () => {
    await vault.create('busy', policy('busy', ec));
    await renew(vault, 'busy');
    const begun = await Promise.all([vault.beginRenewal('busy'), vault.beginRenewal('busy')]);
    expect(begun.map((b) => b.reused).sort()).toEqual([false, true]);
    expect(begun[0]?.csrPem).toBe(begun[1]?.csrPem);
    const chain = chainFor(begun[0]?.csrPem as string);
    const merged = await Promise.all([vault.merge('busy', chain), vault.merge('busy', chain)]);
    expect(merged[0]).toEqual(merged[1]);
    expect(await vault.listVersions('busy')).toHaveLength(2);
  });
});

describe('local vault files', () => {
  it('reports a tampered, swapped or malformed file as VaultCorrupt and leaves it as it was', async () => {
    await vault.create('tamper', policy('tamper', ec));
    const v1 = (await renew(vault, 'tamper')).version as string;
    const v2 = (await renew(vault, 'tamper')).version as string;
    const [k1, k2] = [await fs.readFile(keyFile('tamper', v1)), await fs.readFile(keyFile('tamper', v2))];

    const flipped = Buffer.from(k1);
    flipped[flipped.length - 10] = (flipped[flipped.length - 10] as number) ^ 0x01;
    await fs.writeFile(keyFile('tamper', v1), flipped);
    const tampered = await failure(vault.exportSecret('tamper', v1));
    expect(tampered).toMatchObject({ type: 'VaultCorrupt', nonRetryable: true });
    expect(tampered.message).toContain(keyFile('tamper', v1));
    expect((await fs.readFile(keyFile('tamper', v1))).equals(flipped)).toBe(true);

    // each version's key in the other's place: both authentic, neither where it belongs
    await fs.writeFile(keyFile('tamper', v1), k2);
    await fs.writeFile(keyFile('tamper', v2), k1);
    for (const v of [v1, v2]) {
      const swapped = await failure(vault.exportSecret('tamper', v));
      expect(swapped).toMatchObject({ type: 'VaultCorrupt' });
      // caught by the GCM check of the key file itself (name and version are authenticated)
      expect(swapped.message).toContain(`${keyFile('tamper', v)} is corrupt`);
    }
    // another certificate's key file under this name, and the record edited to point at it: the record's MAC
    // catches the edit before the key file is read
    const web = (await vault.describe('web')).version as string;
    await fs.copyFile(keyFile('web', web), keyFile('tamper', web));
    const recordFile = fileOf('certificates', 'tamper', 'certificate.json');
    const authentic = await fs.readFile(recordFile, 'utf8');
    await fs.writeFile(recordFile, authentic.replaceAll(v2, web));
    const edited = await failure(vault.exportSecret('tamper', web));
    expect(edited.message).toContain(`${recordFile} is corrupt`);
    expect(edited.message).toContain('MAC does not match');
    await fs.writeFile(recordFile, authentic);

    const record = fileOf('certificates', 'tamper', 'certificate.json');
    await fs.writeFile(record, '{"format": "certflow-local-vault/certificate/v1", "name": ');
    for (const call of [
      () => vault.describe('tamper'),
      () => vault.beginRenewal('tamper'),
      () => vault.create('tamper', policy('t')),
    ]) {
      const err = await failure(call());
      expect(err).toMatchObject({ type: 'VaultCorrupt', nonRetryable: true });
      expect(err.message).toContain(record);
    }
    expect(await fs.readFile(record, 'utf8')).toBe(
      '{"format": "certflow-local-vault/certificate/v1", "name": ',
    );
    const listAll = async () => {
      for await (const summary of vault.list()) void summary;
    };
    await expect(listAll()).rejects.toMatchObject({ type: 'VaultCorrupt' });

    // a record moved under another certificate's name
    await fs.copyFile(fileOf('certificates', 'web', 'certificate.json'), record);
    expect((await failure(vault.describe('tamper'))).message).toContain("record of certificate 'web'");
    await fs.rm(fileOf('certificates', 'tamper'), { recursive: true });
  });

  it('keeps files 0600 and directories 0700', async () => {
    const seen: { path: string; mode: string; expected: string }[] = [];
    const walk = async (dir: string): Promise<void> => {
      seen.push({ path: dir, mode: ((await fs.stat(dir)).mode & 0o777).toString(8), expected: '700' });
      for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
        const p = path.join(dir, entry.name);
        if (entry.isDirectory()) await walk(p);
        else seen.push({ path: p, mode: ((await fs.stat(p)).mode & 0o777).toString(8), expected: '600' });
      }
    };
    await walk(fileOf());
    expect(seen.filter((s) => s.expected === '600').length).toBeGreaterThan(10);
    for (const s of seen) expect({ path: s.path, mode: s.mode }).toEqual({ path: s.path, mode: s.expected });
  });

  it('keeps secrets encrypted on disk', async () => {
    const value = `acme-account-${crypto.randomBytes(12).toString('hex')}`;
    expect(await vault.getSecret('acme-account')).toBeNull();
    await vault.setSecret('acme-account', value);
    expect(await vault.getSecret('acme-account')).toBe(value);
    const onDisk = await fs.readFile(fileOf('secrets', 'acme-account.secret'));
    expect(onDisk.includes(value)).toBe(false);
    expect(onDisk.toString('latin1')).not.toContain(Buffer.from(value).toString('base64').slice(0, 16));
    await vault.setSecret('acme-account', 'replaced');
    expect(await vault.getSecret('acme-account')).toBe('replaced');
    expect(await failure(vault.setSecret('../x', value))).toMatchObject({ type: 'InvalidName' });
  });

  it('lists every certificate, issued or pending', async () => {
    const other = createLocalVault({ name: 'listing', dir: path.join(root, 'listing'), encryptionKey });
    await other.create('one', policy('one', ec), { Recipient: 'x@example.test' });
    await other.create('two', policy('two', ec));
    const issued = await renew(other, 'two');
    const listed = [];
    for await (const s of other.list()) listed.push(s);
    expect(listed).toEqual([
      {
        id: 'listing/one',
        name: 'one',
        version: null,
        thumbprint: null,
        notAfter: null,
        enabled: true,
        tags: { Recipient: 'x@example.test' },
      },
      {
        id: 'listing/two',
        name: 'two',
        version: issued.version,
        thumbprint: issued.thumbprint,
        notAfter: issued.notAfter,
        enabled: true,
        tags: {},
      },
    ]);
  });

  it('sees the same state after a restart and refuses another encryption key clearly', async () => {
    const dir = path.join(root, 'main');
    const again = createLocalVault({ name: 'local', dir, encryptionKey: Buffer.from(encryptionKey) });
    expect(await again.describe('web')).toEqual(await vault.describe('web'));
    expect(await again.listVersions('rotate')).toEqual(await vault.listVersions('rotate'));
    expect(await again.getSecret('acme-account')).toBe('replaced');

    const otherKey = crypto.randomBytes(32);
    const wrong = createLocalVault({ name: 'local', dir, encryptionKey: otherKey });
    const err = await failure(wrong.describe('web'));
    expect(err).toMatchObject({ type: 'VaultKeyMismatch', nonRetryable: true });
    expect(err.message).toContain('CERTFLOW_LOCAL_VAULT_KEY');
    expect(err.message).not.toContain(otherKey.toString('base64'));
    expect(() => createLocalVault({ name: 'local', dir, encryptionKey: otherKey.subarray(0, 16) })).toThrow(
      /encryptionKey: expected a Buffer of 32 bytes/,
    );
  });

  it('loads the encryption key from base64 or hex and names the variable when it is wrong', () => {
    const key = crypto.randomBytes(32);
    expect(loadEncryptionKey({ CERTFLOW_LOCAL_VAULT_KEY: key.toString('base64') }).equals(key)).toBe(true);
    expect(loadEncryptionKey({ CERTFLOW_LOCAL_VAULT_KEY: key.toString('hex') }).equals(key)).toBe(true);
    expect(loadEncryptionKey({ MY_KEY: ` ${key.toString('base64url')}\n` }, 'MY_KEY').equals(key)).toBe(true);
    expect(() => loadEncryptionKey({})).toThrow(
      /CERTFLOW_LOCAL_VAULT_KEY is not set: expected 32 random bytes/,
    );
    for (const bad of ['hunter2-is-not-a-key', crypto.randomBytes(16).toString('base64')]) {
      let message = '';
      try {
        loadEncryptionKey({ VAULT_KEY: bad }, 'VAULT_KEY');
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).toMatch(/^VAULT_KEY is not a valid local vault key: expected 32 random bytes/);
      expect(message).not.toContain(bad);
    }
  });

  it('never put key material in an error message', () => {
    expect(messages.length).toBeGreaterThan(20);
    expect(exportedKeys.length).toBeGreaterThan(4);
    const forbidden = [
      'PRIVATE KEY',
      encryptionKey.toString('base64'),
      encryptionKey.toString('hex'),
      ...exportedKeys.map((pem) => pem.replace(/-----[^-]+-----|\s/g, '').slice(60, 100)),
    ];
    for (const message of messages) for (const f of forbidden) expect(message).not.toContain(f);
  });
});
