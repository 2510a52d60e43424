/**
 * A local certificate authority for the embedded default and for demos: a root and an intermediate kept in a
 * directory (see dev-ca-store.ts) that sign TLS server certificates for a CSR right away, never pending.
 * Leaves carry what verification before merge and TLS clients expect: the requested DNS names as SAN,
 * EKU serverAuth, KeyUsage digitalSignature (+ keyEncipherment for RSA), SKI/AKI, CA:false, a random
 * positive 16-byte serial, and a notBefore one minute in the past for clock skew. RSA (>= 2048 bits) and
 * EC (P-256, P-384, P-521) CSRs are accepted; the CSR's signature must verify.
 *
 * It is a dev CA: its keys are only as safe as the directory (and the optional encryption key) they live in.
 */
import 'reflect-metadata'; // @peculiar/x509 2.x needs a Reflect polyfill loaded first
import * as x509 from '@peculiar/x509';
import crypto, { webcrypto } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import type { Issued, Issuer, IssueRequest } from '../types';
import { checkEncryptionKey } from '../vault/local-crypto';
import {
  loadOrCreateDevCa,
  pemOf,
  randomSerial,
  SIGNING_ALGORITHM,
  type DevCaMaterial,
} from './dev-ca-store';

export interface DevCaIssuerOptions {
  name: string;
  /** Where the root and intermediate live; created (0700) on first use. */
  dir: string;
  /** 32 bytes: the CA keys are sealed with AES-256-GCM. Without it they are PEM files readable by the owner. */
  encryptionKey?: Buffer;
  /** Lifetime of issued leaves; days and minutes add up (e.g. { minutes: 5 } for lifecycle tests). */
  validity: { minutes?: number; days?: number };
  now?: () => Date;
}

export type DevCaIssuer = Issuer & {
  /** The root certificate (PEM), the trust anchor for what this CA issues. */
  rootPem(): Promise<string>;
};

/** How far before issuance a leaf's notBefore lies (clock skew): a leaf issued for N minutes covers N + 1. */
export const SKEW_MS = 60_000;
const ACCEPTED_CURVES = new Set(['prime256v1', 'secp384r1', 'secp521r1']);

export function createDevCaIssuer(opts: DevCaIssuerOptions): DevCaIssuer {
  if (!opts.name) throw new Error('dev CA: name is required (the issuer name certificates refer to)');
  if (!opts.dir) throw new Error(`dev CA '${opts.name}': dir is required (where the CA keys are kept)`);
  if (opts.encryptionKey !== undefined)
    checkEncryptionKey(opts.encryptionKey, `dev CA '${opts.name}': encryptionKey`);
  const lifetimeMs = ((opts.validity?.days ?? 0) * 1440 + (opts.validity?.minutes ?? 0)) * 60_000;
  if (!Number.isFinite(lifetimeMs) || lifetimeMs < 60_000)
    throw new Error(
      `dev CA '${opts.name}': validity must be at least one minute, e.g. { days: 30 } or { minutes: 5 } (got ${JSON.stringify(opts.validity)})`,
    );
  const now = opts.now ?? (() => new Date());
  let ca: Promise<DevCaMaterial> | undefined;
  const material = (): Promise<DevCaMaterial> =>
    (ca ??= loadOrCreateDevCa({
      name: opts.name,
      dir: opts.dir,
      encryptionKey: opts.encryptionKey,
      now,
    }).catch((err: unknown) => {
      ca = undefined; // a fixed directory or key works on the next attempt
      throw err;
    }));

  return {
    name: opts.name,

    async submit(req: IssueRequest): Promise<Issued> {
      const csr = await readCsr(req.csrPem);
      const m = await material();
      const issuedAt = now().getTime();
      const notAfter = new Date(issuedAt + lifetimeMs);
      if (notAfter > m.intermediate.notAfter)
        throw ApplicationFailure.create({
          message: `dev CA '${opts.name}': its intermediate expires ${m.intermediate.notAfter.toISOString()}, before a leaf issued now would (${notAfter.toISOString()}); move ${opts.dir} away to start a new dev CA`,
          type: 'DevCaExpired',
          nonRetryable: true,
        });
      const leaf = await signLeaf(m, csr, namesFor(req, csr), new Date(issuedAt - SKEW_MS), notAfter);
      return { status: 'issued', chainPem: [pemOf(leaf), m.intermediatePem] };
    },

    async poll(): Promise<never> {
      throw ApplicationFailure.create({
        message: `dev CA '${opts.name}' issues immediately and has no pending requests to poll`,
        type: 'DevCaNeverPends',
        nonRetryable: true,
      });
    },

    async rootPem() {
      return (await material()).rootPem;
    },
  };
}

function badCsr(message: string): ApplicationFailure {
  return ApplicationFailure.create({ message, type: 'BadCsr', nonRetryable: true });
}

async function readCsr(pem: string): Promise<x509.Pkcs10CertificateRequest> {
  if (typeof pem !== 'string' || !/-----BEGIN (NEW )?CERTIFICATE REQUEST-----/.test(pem))
    throw badCsr("CSR is not PEM (expected '-----BEGIN CERTIFICATE REQUEST-----')");
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem.replace(/NEW CERTIFICATE REQUEST/g, 'CERTIFICATE REQUEST'));
  } catch (err) {
    throw badCsr(`CSR could not be parsed as PKCS#10: ${(err as Error).message}`);
  }
  checkKeyType(Buffer.from(csr.publicKey.rawData));
  let valid = false;
  try {
    valid = await csr.verify(webcrypto);
  } catch (err) {
    throw badCsr(`CSR signature could not be checked: ${(err as Error).message}`);
  }
  if (!valid) throw badCsr('CSR signature does not verify with the public key it carries');
  return csr;
}

function checkKeyType(spki: Buffer): void {
  let key: crypto.KeyObject;
  try {
    key = crypto.createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch (err) {
    throw badCsr(`CSR public key could not be read: ${(err as Error).message}`);
  }
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa' && (d.modulusLength ?? 0) >= 2048) return;
  if (key.asymmetricKeyType === 'ec' && ACCEPTED_CURVES.has(d.namedCurve ?? '')) return;
  throw badCsr(
    `CSR key ${key.asymmetricKeyType} ${d.modulusLength ?? d.namedCurve ?? ''} is not accepted; expected RSA of at least 2048 bits or EC P-256, P-384 or P-521`,
  );
}

/** The names the request asks for; the CSR's own SAN DNS names when the request has none. */
function namesFor(req: IssueRequest, csr: x509.Pkcs10CertificateRequest): string[] {
  const fromCsr = (): string[] => {
    const ext = csr.getExtension('2.5.29.17'); // by OID: a CSR's lookup takes no extension class
    if (!ext) return [];
    const items = new x509.SubjectAlternativeNameExtension(ext.rawData).names.items;
    return items.filter((n) => n.type === 'dns').map((n) => n.value);
  };
  const names = req.dnsNames?.length ? req.dnsNames : fromCsr();
  if (names.length === 0) throw badCsr('neither the request nor the CSR names a DNS name to certify');
  return [...new Set(names.map((n) => n.toLowerCase()))];
}

async function signLeaf(
  m: DevCaMaterial,
  csr: x509.Pkcs10CertificateRequest,
  dnsNames: string[],
  notBefore: Date,
  notAfter: Date,
): Promise<x509.X509Certificate> {
  const spki = Buffer.from(csr.publicKey.rawData);
  const isRsa =
    crypto.createPublicKey({ key: spki, format: 'der', type: 'spki' }).asymmetricKeyType === 'rsa';
  const aki = m.intermediate.getExtension(x509.SubjectKeyIdentifierExtension);
  const emptySubject = csr.subjectName.toJSON().length === 0;
  return x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: csr.subjectName,
      issuer: m.intermediate.subjectName,
      notBefore,
      notAfter,
      publicKey: spki,
      signingKey: m.intermediateKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | (isRsa ? x509.KeyUsageFlags.keyEncipherment : 0),
          true,
        ),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        await x509.SubjectKeyIdentifierExtension.create(spki, false, webcrypto),
        ...(aki ? [new x509.AuthorityKeyIdentifierExtension(aki.keyId)] : []),
        // RFC 5280 4.2.1.6: the SAN is critical when the subject is empty
        new x509.SubjectAlternativeNameExtension(
          dnsNames.map((value) => ({ type: 'dns' as const, value })),
          emptySubject,
        ),
      ],
    },
    webcrypto,
  );
}
