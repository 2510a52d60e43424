/**
 * Verification of an issued chain before it is merged into the vault: never skipped, pure (no I/O).
 * Whatever a CA returns is checked against the CSR we sent and the names we asked for, so a wrong,
 * broken or foreign certificate never reaches the vault. Works for RSA and EC keys alike (node:crypto
 * for certificates, @peculiar/x509 for CSRs and extensions; node-forge cannot read EC keys).
 * The chain itself is checked by pkijs' RFC 5280 path validation (signatures, CA flags and key usage of every
 * issuer, name constraints, validity of every certificate on the path including the trust anchor) twice: the
 * chain as the CA returned it, up to its top, and the path from the leaf to a trust anchor. pkijs does not
 * enforce basicConstraints' pathLenConstraint, so that one check is ours, on the path pkijs validated.
 * Trust is checked by default against the public web PKI roots; a private CA's roots must be passed in.
 */
import 'reflect-metadata'; // @peculiar/x509 2.x needs a Reflect polyfill loaded first
import { createHash, createPublicKey, webcrypto, X509Certificate, type KeyObject } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import * as x509 from '@peculiar/x509';
import { ApplicationFailure } from '@temporalio/common';
import * as pkijs from 'pkijs';
import { isHostLike, nameNotAllowed } from '../issuers/allowed-names';
import { namesNotAllowed } from '../globs';
import { parseX509 } from './parsed';

export interface VerifyIssuedChainInput {
  /** The CSR that was sent to the CA (PEM). */
  csrPem: string;
  /** The chain the CA returned, PEM, leaf first. */
  chainPem: string[];
  /** The DNS names the certificate must carry, no more, no fewer (compared case-insensitively). */
  expectedDnsNames: string[];
  now: Date;
  /** Tolerated clock skew for notBefore/notAfter. Default 300 s. */
  maxSkewSeconds?: number;
  /**
   * The roots the chain must lead to: some certificate of the chain is one of them (same name and key, so a
   * cross-signed copy counts) or is issued by one, so a chain may end below its root or include it.
   * Default (undefined): the public web PKI roots Node ships (`tls.rootCertificates`), right for public ACME CAs.
   * For a private or enterprise CA pass its root(s) here. An explicit `[]` skips the trust check altogether;
   * use it only where trust is enforced elsewhere.
   */
  trustAnchorsPem?: string[];
  /** The issuer's allowedNames: every DNS name of the leaf must match one of these globs (activities/globs.ts). */
  allowedNames?: { issuer: string; patterns: readonly string[] };
}

export interface VerifiedCertificate {
  /** SHA-1 of the leaf DER, uppercase hex (App Service style). */
  thumbprint: string;
  /** SHA-256 of the leaf DER, uppercase hex. */
  sha256: string;
  /** Uppercase hex. */
  serialNumber: string;
  notBefore: string; // ISO 8601
  notAfter: string; // ISO 8601
  dnsNames: string[];
  issuer: string;
  subject: string;
}

export type X509FailureType =
  | 'Unparseable'
  | 'KeyMismatch'
  | 'NameMismatch'
  | 'Expired'
  | 'NotYetValid'
  | 'BrokenChain'
  | 'Untrusted'
  | 'WrongUsage'
  /** A CA on the path limits the path's length or the names below it, and the chain breaks that limit. */
  | 'ChainConstraint';

const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const OID_ANY_EKU = '2.5.29.37.0';

/** Failures that say the CSR itself is unusable: the workflow drops it, so the next attempt makes a new one. */
const CSR_PROBLEMS: ReadonlySet<X509FailureType> = new Set(['Unparseable', 'KeyMismatch', 'NameMismatch']);

function fail(type: X509FailureType, message: string): never {
  throw ApplicationFailure.create({
    message,
    type,
    nonRetryable: true,
    ...(CSR_PROBLEMS.has(type) ? { details: [{ discardCsr: true }] } : {}),
  });
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** The certificates in a PEM bundle, in order, each normalised to `-----BEGIN ...` through `-----END ...\n`. */
export function splitPemChain(text: string): string[] {
  return (text.match(PEM_CERT) ?? []).map((pem) => {
    const body = pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
    const lines = body.match(/.{1,64}/g) ?? [];
    return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
  });
}

export { thumbprintOf } from './thumbprint';

export async function verifyIssuedChain(input: VerifyIssuedChainInput): Promise<VerifiedCertificate> {
  const skewMs = (input.maxSkewSeconds ?? 300) * 1000;
  if (input.chainPem.length === 0) fail('Unparseable', 'the CA returned no certificate (chain is empty)');
  const chain = input.chainPem.map((pem, i) => parseCertificate(pem, positionName(i)));
  const leaf = chain[0]!;
  const leafExt = new x509.X509Certificate(leaf.raw);
  const csr = parseCsr(input.csrPem);

  checkKey(leaf, csr);
  const dnsNames = checkNames(leafExt, input.expectedDnsNames);
  if (input.allowedNames) checkAllowed(leafExt, dnsNames, input.allowedNames);
  checkUsage(leaf, leafExt);
  chain.forEach((cert, i) => checkValidity(cert, positionName(i), input.now, skewMs));
  const at = pathDate(chain, input.now);
  // parsed for pkijs once, for both path validations (pkijs reads certificates, it never changes them)
  const chainPkijs = chain.map(toPkijs);
  await checkChain(chain, chainPkijs, at);
  await checkTrust(chain, chainPkijs, input.trustAnchorsPem, at);

  return {
    thumbprint: digest('sha1', leaf.raw),
    sha256: digest('sha256', leaf.raw),
    serialNumber: leaf.serialNumber.toUpperCase(),
    notBefore: new Date(leaf.validFrom).toISOString(),
    notAfter: new Date(leaf.validTo).toISOString(),
    dnsNames,
    issuer: leafExt.issuer,
    subject: leafExt.subject,
  };
}

function positionName(i: number): string {
  return i === 0 ? 'leaf certificate' : `chain certificate #${i} (after the leaf)`;
}

function digest(alg: 'sha1' | 'sha256', der: Buffer): string {
  return createHash(alg).update(der).digest('hex').toUpperCase();
}

function parseCertificate(pem: string, what: string): X509Certificate {
  if (typeof pem !== 'string' || !/-----BEGIN CERTIFICATE-----/.test(pem)) {
    fail('Unparseable', `${what} is not a PEM certificate (expected '-----BEGIN CERTIFICATE-----')`);
  }
  try {
    return parseX509(pem);
  } catch (err) {
    return fail('Unparseable', `${what} could not be parsed as X.509: ${(err as Error).message}`);
  }
}

function parseCsr(pem: string): x509.Pkcs10CertificateRequest {
  if (typeof pem !== 'string' || !/-----BEGIN (NEW )?CERTIFICATE REQUEST-----/.test(pem)) {
    fail('Unparseable', "CSR is not PEM (expected '-----BEGIN CERTIFICATE REQUEST-----')");
  }
  try {
    return new x509.Pkcs10CertificateRequest(pem.replace(/NEW CERTIFICATE REQUEST/g, 'CERTIFICATE REQUEST'));
  } catch (err) {
    return fail('Unparseable', `CSR could not be parsed as PKCS#10: ${(err as Error).message}`);
  }
}

function spkiDer(key: KeyObject): Buffer {
  return key.export({ type: 'spki', format: 'der' });
}

function checkKey(leaf: X509Certificate, csr: x509.Pkcs10CertificateRequest): void {
  let csrKey: KeyObject;
  try {
    csrKey = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
  } catch (err) {
    return fail('Unparseable', `CSR public key could not be read: ${(err as Error).message}`);
  }
  // both re-exported by node:crypto, so equal keys compare equal whatever encoding the CA chose
  const a = spkiDer(leaf.publicKey);
  const b = spkiDer(csrKey);
  if (!a.equals(b)) {
    fail(
      'KeyMismatch',
      `the leaf certificate's public key (${describeKey(leaf.publicKey)}, SPKI sha256 ${digest('sha256', a).slice(0, 16)}…) ` +
        `is not the CSR's (${describeKey(csrKey)}, SPKI sha256 ${digest('sha256', b).slice(0, 16)}…): ` +
        'the CA returned a certificate for another key',
    );
  }
}

function describeKey(k: KeyObject): string {
  const d = k.asymmetricKeyDetails;
  if (k.asymmetricKeyType === 'ec') return `EC ${d?.namedCurve ?? '?'}`;
  if (k.asymmetricKeyType === 'rsa') return `RSA ${d?.modulusLength ?? '?'}`;
  return k.asymmetricKeyType ?? 'unknown';
}

function sanEntries(cert: x509.X509Certificate): { dns: string[]; other: string[] } {
  const ext = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const dns: string[] = [];
  const other: string[] = [];
  for (const n of ext?.names.items ?? []) {
    if (n.type === 'dns') dns.push(n.value.toLowerCase());
    else other.push(`${n.type}:${n.value}`);
  }
  return { dns, other };
}

function checkNames(leaf: x509.X509Certificate, expected: string[]): string[] {
  let names: { dns: string[]; other: string[] };
  try {
    names = sanEntries(leaf);
  } catch (err) {
    return fail(
      'Unparseable',
      `leaf certificate's subjectAltName could not be read: ${(err as Error).message}`,
    );
  }
  const have = new Set(names.dns);
  const want = new Set(expected.map((n) => n.toLowerCase()));
  const missing = [...want].filter((n) => !have.has(n));
  const extra = [...[...have].filter((n) => !want.has(n)), ...names.other];
  if (missing.length || extra.length) {
    const parts = [
      missing.length ? `missing ${missing.join(', ')}` : '',
      extra.length ? `unexpected ${extra.join(', ')}` : '',
    ].filter(Boolean);
    fail(
      'NameMismatch',
      `leaf certificate's subjectAltName does not match the requested names [${[...want].join(', ')}]: ${parts.join('; ')}`,
    );
  }
  return names.dns;
}

function checkUsage(leaf: X509Certificate, leafExt: x509.X509Certificate): void {
  // read basicConstraints itself: node's `ca` is false for CA:TRUE without keyCertSign
  if (leafExt.getExtension(x509.BasicConstraintsExtension)?.ca) {
    fail(
      'WrongUsage',
      'leaf certificate is a CA certificate (basicConstraints CA:TRUE); expected an end-entity certificate',
    );
  }
  // node names the extended key usage list `keyUsage`; undefined when the extension is absent
  const eku = leaf.keyUsage;
  if (eku && !eku.includes(OID_SERVER_AUTH) && !eku.includes(OID_ANY_EKU)) {
    fail(
      'WrongUsage',
      `leaf certificate's extendedKeyUsage [${eku.join(', ')}] lacks serverAuth (${OID_SERVER_AUTH})`,
    );
  }
  const ku = leafExt.getExtension(x509.KeyUsagesExtension);
  if (ku && !(ku.usages & x509.KeyUsageFlags.digitalSignature)) {
    fail('WrongUsage', "leaf certificate's keyUsage lacks digitalSignature, which TLS needs");
  }
}

function checkValidity(cert: X509Certificate, what: string, now: Date, skewMs: number): void {
  const from = new Date(cert.validFrom).getTime();
  const to = new Date(cert.validTo).getTime();
  if (now.getTime() > to + skewMs) {
    fail('Expired', `${what} expired at ${new Date(to).toISOString()} (now ${now.toISOString()})`);
  }
  if (now.getTime() + skewMs < from) {
    fail(
      'NotYetValid',
      `${what} is not valid before ${new Date(from).toISOString()} (now ${now.toISOString()})`,
    );
  }
}

/**
 * The moment the path is validated at: now, moved into the chain's common validity window when the leaf or an
 * intermediate is valid only within the tolerated skew (checkValidity above has already judged them with it).
 */
function pathDate(chain: X509Certificate[], now: Date): Date {
  const from = Math.max(...chain.map((c) => new Date(c.validFrom).getTime()));
  const to = Math.min(...chain.map((c) => new Date(c.validTo).getTime()));
  return new Date(Math.min(Math.max(now.getTime(), from), Math.max(from, to)));
}

let engine: pkijs.CryptoEngine | undefined;
const cryptoEngine = () =>
  (engine ??= new pkijs.CryptoEngine({
    name: 'node',
    crypto: webcrypto as unknown as pkijs.CryptoEngineParameters['crypto'],
  }));

function toPkijs(cert: X509Certificate): pkijs.Certificate {
  return pkijs.Certificate.fromBER(new Uint8Array(cert.raw));
}

interface PathResult {
  ok: boolean;
  code: number;
  message: string;
  path: pkijs.Certificate[];
}

/** pkijs' result codes (CertificateChainValidationEngine) for a broken name constraint. */
const NAME_CONSTRAINT_CODES = new Set([21, 41, 42]);
const VALIDITY_CODE = 8;

/** RFC 5280 path validation by pkijs from the leaf (chain[0]) to one of `trusted`, plus pathLenConstraint. */
async function validatePath(
  chain: readonly pkijs.Certificate[],
  trusted: pkijs.Certificate[],
  at: Date,
): Promise<PathResult> {
  const crypto = cryptoEngine();
  const trustedDer = new Set(trusted.map((t) => Buffer.from(t.tbsView).toString('base64')));
  const validator = new pkijs.CertificateChainValidationEngine({
    trustedCerts: trusted,
    // pkijs takes the last certificate as the one to validate
    certs: [...chain].reverse(),
    checkDate: at,
    // a path that ends at an anchor wins over a branch through other certificates (pkijs gives up on the
    // first branch that leads nowhere, e.g. a cross-signed copy of the anchor whose own issuer is absent)
    findIssuer: async (cert, eng, c) => {
      const found = await pkijs.CertificateChainValidationEngine.prototype.defaultFindIssuer.call(
        eng,
        cert,
        eng,
        c,
      );
      const anchors = found.filter((f) => trustedDer.has(Buffer.from(f.tbsView).toString('base64')));
      return anchors.length ? anchors : found;
    },
  });
  const r = await validator.verify({}, crypto);
  const path = r.certificatePath ?? [];
  if (!r.result) return { ok: false, code: r.resultCode, message: r.resultMessage, path };
  const tooLong = pathLengthProblem(path);
  if (tooLong) return { ok: false, code: -2, message: tooLong, path };
  return { ok: true, code: 0, message: '', path };
}

/**
 * RFC 5280 6.1.4 (l, m): below a CA whose basicConstraints carry pathLenConstraint n, at most n intermediate
 * CAs that are not self-issued may follow before the leaf. Checked for every CA on the path, the anchor included.
 */
function pathLengthProblem(path: pkijs.Certificate[]): string | null {
  const selfIssued = (c: pkijs.Certificate) => c.subject.isEqual(c.issuer);
  for (let k = 1; k < path.length; k++) {
    const bc = path[k]!.extensions?.find((e) => e.extnID === pkijs.id_BasicConstraints)?.parsedValue as
      pkijs.BasicConstraints | undefined;
    const limit = bc?.pathLenConstraint;
    if (typeof limit !== 'number' || !bc?.cA) continue;
    const below = path.slice(1, k).filter((c) => !selfIssued(c)).length;
    if (below > limit)
      return (
        `'${dnOf(path[k]!)}' allows ${limit} intermediate CA certificate(s) below it (pathLenConstraint), ` +
        `but the path has ${below}`
      );
  }
  return null;
}

function dnOf(c: pkijs.Certificate): string {
  return c.subject.typesAndValues
    .map((tv) => `${SHORT_ATTR[tv.type] ?? tv.type}=${String(tv.value.valueBlock.value)}`)
    .join(', ');
}
const SHORT_ATTR: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.6': 'C',
};

/** The chain as the CA returned it must be a valid path up to its own top certificate. */
async function checkChain(
  chain: X509Certificate[],
  chainPkijs: readonly pkijs.Certificate[],
  at: Date,
): Promise<void> {
  if (chain.length < 2) return;
  const r = await validatePath(chainPkijs, [chainPkijs[chainPkijs.length - 1]!], at);
  if (r.ok) return;
  if (r.code === -2 || NAME_CONSTRAINT_CODES.has(r.code))
    fail('ChainConstraint', `the chain breaks a constraint of its CA: ${r.message}`);
  fail(
    'BrokenChain',
    explainBrokenLink(chain) ?? `the chain is not a valid certification path: ${r.message}`,
  );
}

/** Which link of the presented chain is broken, in words (pkijs has decided already; this only explains). */
function explainBrokenLink(chain: X509Certificate[]): string | null {
  for (let i = 0; i + 1 < chain.length; i++) {
    const child = chain[i]!;
    const parent = chain[i + 1]!;
    const what = `${positionName(i)} (subject '${oneLine(child.subject)}')`;
    if (!child.checkIssued(parent))
      return `${what} was not issued by the next certificate in the chain (subject '${oneLine(parent.subject)}')`;
    if (!child.verify(parent.publicKey))
      return `${what}: signature does not verify with the next certificate's key (subject '${oneLine(parent.subject)}')`;
    if (!parent.ca) return `${positionName(i + 1)} issues ${positionName(i)} but is not a CA certificate`;
  }
  return null;
}

interface Anchors {
  node: X509Certificate[];
  pkijs: pkijs.Certificate[];
}
let publicRoots: Anchors | undefined;

/**
 * Trust anchors given as PEM, parsed once per distinct text: an issuer passes the same root(s) for every
 * certificate it issues, and parsing them for pkijs costs milliseconds of synchronous work each time. Keyed by the
 * full text, so other anchors are other entries; a few issuers' worth are kept (the oldest is dropped first).
 */
const anchorCache = new Map<string, Anchors>();
const ANCHOR_CACHE_SIZE = 32;

function anchorsOf(anchorsPem: string[]): Anchors {
  const key = anchorsPem.join('\0');
  const hit = anchorCache.get(key);
  if (hit) return hit;
  const node = anchorsPem
    .flatMap((p) => splitPemChain(p))
    .map((p, i) => parseCertificate(p, `trust anchor #${i + 1}`));
  const parsed = { node, pkijs: node.map(toPkijs) };
  if (anchorCache.size >= ANCHOR_CACHE_SIZE) anchorCache.delete(anchorCache.keys().next().value!);
  anchorCache.set(key, parsed);
  return parsed;
}

async function checkTrust(
  chain: X509Certificate[],
  chainPkijs: readonly pkijs.Certificate[],
  anchorsPem: string[] | undefined,
  at: Date,
): Promise<void> {
  if (anchorsPem?.length === 0) return; // the caller said: do not check
  let anchors: X509Certificate[];
  let trusted: pkijs.Certificate[];
  if (anchorsPem) {
    ({ node: anchors, pkijs: trusted } = anchorsOf(anchorsPem));
  } else {
    if (!publicRoots) {
      const node = rootCertificates.map((p) => new X509Certificate(p));
      publicRoots = { node, pkijs: node.map(toPkijs) };
    }
    ({ node: anchors, pkijs: trusted } = publicRoots);
  }
  if (anchors.length === 0)
    fail(
      'Untrusted',
      `trustAnchorsPem was given but holds no certificate ('-----BEGIN CERTIFICATE-----' blocks)`,
    );
  const r = await validatePath(chainPkijs, trusted, at);
  if (r.ok) return;
  if (r.code === -2 || NAME_CONSTRAINT_CODES.has(r.code))
    fail('ChainConstraint', `the path to the trust anchor breaks a constraint: ${r.message}`);
  const top = chain[chain.length - 1]!;
  if (r.code === VALIDITY_CODE) {
    const stale = anchors.find(
      (a) =>
        chain.some((c) => c.checkIssued(a)) && !(new Date(a.validFrom) <= at && at <= new Date(a.validTo)),
    );
    fail(
      'Untrusted',
      stale
        ? `trust anchor '${oneLine(stale.subject)}' is not valid at ${at.toISOString()} (valid ${new Date(stale.validFrom).toISOString()} .. ${new Date(stale.validTo).toISOString()})`
        : `a certificate on the path to the trust anchor is not valid at ${at.toISOString()}: ${r.message}`,
    );
  }
  const against = anchorsPem
    ? `none of the ${anchors.length} trust anchor(s)`
    : `none of the ${anchors.length} public web PKI roots (Node's tls.rootCertificates); for a private or ` +
      `enterprise CA pass its root certificate(s) in trustAnchorsPem`;
  fail(
    'Untrusted',
    `chain ends at '${oneLine(top.subject)}' issued by '${oneLine(top.issuer)}', which leads to ${against} (${r.message})`,
  );
}

/** The leaf's DNS names (and a host-name-like CN) must all be within the issuer's allowedNames. */
function checkAllowed(
  leaf: x509.X509Certificate,
  dnsNames: string[],
  allowed: NonNullable<VerifyIssuedChainInput['allowedNames']>,
): void {
  const cn = leaf.subjectName.getField('CN')[0];
  const names = [...dnsNames, ...(isHostLike(cn) ? [cn] : [])];
  const outside = namesNotAllowed(names, allowed.patterns);
  if (outside.length)
    throw nameNotAllowed(allowed.issuer, outside, allowed.patterns, 'in the issued certificate');
}

function oneLine(dn: string): string {
  return dn.split('\n').join(', ');
}
