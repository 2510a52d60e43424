/**
 * A local vault and a dev CA in a scratch directory, and certificates put into it the way a person's first
 * `certflow` run would: the vault makes the key and CSR, the dev CA signs it, the vault merges the chain.
 * These are the same objects the worker's activities use; seeding calls them directly (not through Temporal)
 * so that enrolling measures the lifecycles, not the seeding.
 */
import crypto from 'node:crypto';
import path from 'node:path';
import { mapLimit } from '../../activities/bindings/concurrency';
import { createDevCaIssuer, type DevCaIssuer } from '../../activities/issuers/dev-ca';
import type { CertificatePolicySnapshot, CertificateState } from '../../activities/types';
import { createLocalVault, type LocalVault } from '../../activities/vault/local';

export const VAULT = 'bench';
export const ISSUER = 'dev';

export interface BenchPki {
  vault: LocalVault;
  issuer: DevCaIssuer;
  rootPem: string;
}

export async function createBenchPki(dir: string, validityDays = 90): Promise<BenchPki> {
  const vault = createLocalVault({
    name: VAULT,
    dir: path.join(dir, 'vault'),
    encryptionKey: crypto.randomBytes(32),
  });
  const issuer = createDevCaIssuer({
    name: ISSUER,
    dir: path.join(dir, 'dev-ca'),
    validity: { days: validityDays },
  });
  return { vault, issuer, rootPem: await issuer.rootPem() };
}

/** EC P-256 (a key in about a millisecond), exportable so file targets can be served, renewed at 66 % of life. */
export function benchPolicy(dnsNames: string[]): CertificatePolicySnapshot {
  return {
    subject: `CN=${dnsNames[0]}`,
    dnsNames,
    issuerName: 'Unknown',
    key: { keyType: 'EC', curve: 'P-256', reuseKey: false, exportable: true },
    validityInMonths: 3,
    lifetimePercentage: 66,
  };
}

/** Creates `name` in the vault and merges its first certificate from the dev CA. */
export async function seedOne(pki: BenchPki, name: string, dnsNames: string[]): Promise<CertificateState> {
  const { csrPem } = await pki.vault.create(name, benchPolicy(dnsNames));
  return mergeIssued(pki, name, csrPem, dnsNames);
}

/** One renewal without Temporal: CSR from the vault, signed by the dev CA, merged. */
export async function renewDirect(
  pki: BenchPki,
  name: string,
  dnsNames: string[],
): Promise<CertificateState> {
  const { csrPem } = await pki.vault.beginRenewal(name);
  return mergeIssued(pki, name, csrPem, dnsNames);
}

async function mergeIssued(pki: BenchPki, name: string, csrPem: string, dnsNames: string[]) {
  const issued = await pki.issuer.submit({ certificateId: `${VAULT}/${name}`, csrPem, dnsNames });
  if (issued.status !== 'issued')
    throw new Error(`dev CA answered ${issued.status} for ${name}; it never pends`);
  return pki.vault.merge(name, issued.chainPem);
}

export const certName = (i: number): string => `cert-${String(i).padStart(5, '0')}`;

/** Seeds `count` certificates named cert-00000...; returns how long it took. */
export async function seedFleet(
  pki: BenchPki,
  count: number,
  onProgress?: (done: number) => void,
): Promise<{ ms: number }> {
  const started = performance.now();
  let done = 0;
  await mapLimit(
    Array.from({ length: count }, (_, i) => i),
    8,
    async (i) => {
      await seedOne(pki, certName(i), [`${certName(i)}.fleet.bench.test`]);
      if (++done % 1000 === 0) onProgress?.(done);
    },
  );
  return { ms: performance.now() - started };
}
