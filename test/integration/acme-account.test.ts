/**
 * The ACME account against a real pebble that requires External Account Binding: the account key kept in
 * a SecretStore (made once, reused by every later issuer), EAB accepted with the right MAC key and refused
 * (non-retryable) without it or with a wrong one.
 */
import { createPrivateKey, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAcmeIssuer, type AcmeIssuerOptions } from '../../activities/issuers/acme';
import { createChalltestsrvDns } from '../../activities/issuers/dns-challtestsrv';
import type { Issued, SecretStore } from '../../activities/types';
import { failureOf, makeCsr, request, uniq } from '../support/acme';
import { startPebble, type Pebble } from '../support/pebble';

const KID = 'certflow-test-kid';
const HMAC = randomBytes(32).toString('base64url');

function memoryStore(initial: Record<string, string> = {}) {
  const secrets = new Map(Object.entries(initial));
  const calls = { get: 0, set: 0 };
  const store: SecretStore = {
    async getSecret(name) {
      calls.get++;
      return secrets.get(name) ?? null;
    },
    async setSecret(name, value) {
      calls.set++;
      secrets.set(name, value);
    },
  };
  return { store, secrets, calls };
}

describe('ACME account: key in the vault, External Account Binding (pebble requiring EAB)', () => {
  let pebble: Pebble;
  let base: Omit<AcmeIssuerOptions, 'accountKey' | 'accountKeyPem'>;

  beforeAll(async () => {
    pebble = await startPebble({ externalAccountMACKeys: { [KID]: HMAC } });
    base = {
      name: 'pebble-eab',
      directoryUrl: pebble.directoryUrl,
      caBundlePem: pebble.caBundlePem,
      dns: createChalltestsrvDns({ managementUrl: pebble.challtestsrvUrl }),
      externalAccountBinding: { kid: KID, hmacKey: HMAC },
    };
  });
  afterAll(async () => {
    await pebble?.stop();
  });

  it('makes the account key once (EC P-256 in the store), and a second issuer reuses it: same account URL', async () => {
    const vault = memoryStore();
    const accountKey = { store: vault.store, secretName: 'acme-account-pebble' };
    const first = createAcmeIssuer({ ...base, accountKey });
    const url = await first.accountUrl();
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/my-account\//);
    expect(vault.calls.set).toBe(1);
    const pem = vault.secrets.get('acme-account-pebble')!;
    expect(createPrivateKey(pem).asymmetricKeyDetails?.namedCurve).toBe('prime256v1');

    // a worker restart: a new issuer over the same vault finds the key and the account, stores nothing
    const second = createAcmeIssuer({ ...base, accountKey });
    expect(await second.accountUrl()).toBe(url);
    expect(vault.calls.set).toBe(1);
    const names = [`eab-${uniq()}.certflow.test`];
    const out = (await second.submit(request(names, await makeCsr('EC', names)))) as Issued;
    expect(out.status).toBe('issued');

    // another vault means another key, so another account
    const other = createAcmeIssuer({ ...base, accountKey: { store: memoryStore().store, secretName: 'x' } });
    expect(await other.accountUrl()).not.toBe(url);
  });

  it('without EAB the CA refuses to register: non-retryable AcmeExternalAccountRequired', async () => {
    const { externalAccountBinding: _omit, ...noEab } = base;
    const issuer = createAcmeIssuer({
      ...noEab,
      accountKey: { store: memoryStore().store, secretName: 'a' },
    });
    const f = await failureOf(issuer.accountUrl());
    expect(f.type).toBe('AcmeExternalAccountRequired');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain('register the ACME account');
    expect(f.message).toContain('externalAccountBinding');
    expect(f.message).toContain(pebble.directoryUrl);
  });

  it('a wrong MAC key is refused: non-retryable AcmeUnauthorized, and the key never appears in the message', async () => {
    const wrong = randomBytes(32).toString('base64url');
    const issuer = createAcmeIssuer({
      ...base,
      externalAccountBinding: { kid: KID, hmacKey: wrong },
      accountKey: { store: memoryStore().store, secretName: 'a' },
    });
    const names = [`eab-wrong-${uniq()}.certflow.test`];
    const f = await failureOf(issuer.submit(request(names, await makeCsr('EC', names))));
    expect(f.type).toBe('AcmeUnauthorized');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain('external account binding');
    expect(f.message).not.toContain(wrong);
    expect(f.message).not.toContain(HMAC);
  });

  it('a malformed EAB is refused when the issuer is made, without echoing the key', () => {
    const bad = 'not base64url!!';
    let err: unknown;
    try {
      createAcmeIssuer({ ...base, externalAccountBinding: { kid: KID, hmacKey: bad }, accountKeyPem: 'x' });
    } catch (e) {
      err = e;
    }
    expect((err as { type?: string }).type).toBe('InvalidExternalAccountBinding');
    expect((err as Error).message).toContain('externalAccountBinding.hmacKey');
    expect((err as Error).message).not.toContain(bad);
  });

  it('a corrupt key in the vault is reported by secret name and never replaced', async () => {
    const vault = memoryStore({ 'acme-account': 'garbage, not a key' });
    const issuer = createAcmeIssuer({
      ...base,
      accountKey: { store: vault.store, secretName: 'acme-account' },
    });
    const f = await failureOf(issuer.accountUrl());
    expect(f.type).toBe('InvalidAccountKey');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain("vault secret 'acme-account'");
    expect(f.message).not.toContain('garbage');
    expect(vault.calls.set).toBe(0);
    expect(vault.secrets.get('acme-account')).toBe('garbage, not a key');
  });

  it('a vault that cannot be read: retryable AccountKeyStore; both key sources at once: a config error', async () => {
    const store: SecretStore = {
      getSecret: async () => {
        throw new Error('vault kv-test answered 503');
      },
      setSecret: async () => {},
    };
    const f = await failureOf(
      createAcmeIssuer({ ...base, accountKey: { store, secretName: 'k' } }).accountUrl(),
    );
    expect(f.type).toBe('AccountKeyStore');
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toContain(
      "read the ACME account key from vault secret 'k': vault kv-test answered 503",
    );

    const both = await failureOf(
      createAcmeIssuer({ ...base, accountKey: { store, secretName: 'k' }, accountKeyPem: 'x' }).accountUrl(),
    );
    expect(both.type).toBe('InvalidAccountKey');
    expect(both.message).toContain('both accountKeyPem and accountKey');
  });
});
