/**
 * The ACME account: where its key comes from (given PEM, or a secret in the vault that is made on first use)
 * and registering it at the CA, with External Account Binding for CAs that require it.
 */
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import * as acme from 'acme-client';
import { ApplicationFailure } from '@temporalio/common';
import type { SecretStore } from '../types';
import { AcmeTransportError } from './acme-http';

/** The account key as a secret of the vault: read on first use, generated (EC P-256) and stored when missing. */
export interface VaultAccountKey {
  store: SecretStore;
  secretName: string;
}

/** Exactly one of the two. */
export interface AccountKeySource {
  /** PEM (PKCS#8 or traditional), RSA or EC. A function is called once, when the account is first needed. */
  accountKeyPem?: string | (() => Promise<string>);
  /** The key as a vault secret, made on first use: never on a plain disk. */
  accountKey?: VaultAccountKey;
}

/** What the CA gave out of band for EAB (RFC 8555 7.3.4): the key id and the MAC key, base64url. */
export interface ExternalAccountBinding {
  kid: string;
  hmacKey: string;
}

export async function loadAccountKey(source: AccountKeySource): Promise<string> {
  if (!source.accountKey === (source.accountKeyPem === undefined)) {
    throw ApplicationFailure.create({
      message: source.accountKey
        ? 'ACME issuer has both accountKeyPem and accountKey: keep one (accountKey keeps it in the vault)'
        : 'ACME issuer has no account key: set accountKey { store, secretName } (a vault secret) or accountKeyPem',
      type: 'InvalidAccountKey',
      nonRetryable: true,
    });
  }
  if (source.accountKey) return fromStore(source.accountKey);
  const pem =
    typeof source.accountKeyPem === 'function' ? await source.accountKeyPem() : source.accountKeyPem!;
  return checked(pem, 'accountKeyPem');
}

async function fromStore({ store, secretName }: VaultAccountKey): Promise<string> {
  const where = `vault secret '${secretName}'`;
  const existing = await storeCall(`read the ACME account key from ${where}`, () =>
    store.getSecret(secretName),
  );
  if (existing !== null) return checked(existing, where);
  const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  }) as string;
  await storeCall(`store the new ACME account key in ${where}`, () => store.setSecret(secretName, pem));
  // Two workers starting at once may both generate: read back so that every later start uses the stored one.
  const stored = await storeCall(`read back the ACME account key from ${where}`, () =>
    store.getSecret(secretName),
  );
  return checked(stored ?? pem, where);
}

async function storeCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ApplicationFailure) throw err;
    throw ApplicationFailure.create({
      message: `could not ${what}: ${(err as Error).message}`,
      type: 'AccountKeyStore',
      nonRetryable: false,
      cause: err as Error,
    });
  }
}

function checked(pem: string, where: string): string {
  try {
    createPrivateKey(pem);
  } catch {
    // the parser's message is not echoed: it could quote part of the key. A broken stored key is never replaced
    // silently: the account (and its rate limits, EAB binding) belongs to it.
    throw ApplicationFailure.create({
      message: `ACME account key in ${where} is not a readable PEM private key (expected PKCS#8 or traditional RSA/EC PEM)`,
      type: 'InvalidAccountKey',
      nonRetryable: true,
    });
  }
  return pem;
}

export function checkEab(eab: ExternalAccountBinding | undefined): ExternalAccountBinding | undefined {
  if (!eab) return undefined;
  const fail = (message: string) =>
    ApplicationFailure.create({ message, type: 'InvalidExternalAccountBinding', nonRetryable: true });
  if (!eab.kid?.trim())
    throw fail('externalAccountBinding.kid is empty: expected the key id the CA gave you');
  if (
    !/^[A-Za-z0-9_-]+={0,2}$/.test(eab.hmacKey ?? '') ||
    Buffer.from(eab.hmacKey, 'base64url').length < 16
  ) {
    // the key itself is never echoed
    throw fail(
      'externalAccountBinding.hmacKey is not a base64url MAC key of at least 16 bytes: paste it exactly as the CA gave it',
    );
  }
  return { kid: eab.kid.trim(), hmacKey: eab.hmacKey };
}

export interface RegisterOptions {
  directoryUrl: string;
  accountKeyPem: string;
  contactEmail?: string;
  externalAccountBinding?: ExternalAccountBinding;
}

/** A client bound to the account of this key: looked up first, registered when the CA does not know it. */
export async function registerAccount(opts: RegisterOptions): Promise<acme.Client> {
  const client = new acme.Client({
    directoryUrl: opts.directoryUrl,
    accountKey: opts.accountKeyPem,
    backoffAttempts: 1,
    ...(opts.externalAccountBinding ? { externalAccountBinding: opts.externalAccountBinding } : {}),
  });
  // Look the account up first: acme-client answers "account exists" with an update carrying only
  // termsOfServiceAgreed, which pebble (rightly) refuses as an empty update. The lookup carries no EAB.
  try {
    await client.createAccount({ onlyReturnExisting: true });
  } catch (err) {
    if (err instanceof AcmeTransportError) throw err;
    await client.createAccount({
      termsOfServiceAgreed: true,
      ...(opts.contactEmail ? { contact: [`mailto:${opts.contactEmail}`] } : {}),
    });
  }
  return client;
}
