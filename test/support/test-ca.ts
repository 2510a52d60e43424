/**
 * A throwaway certificate authority for tests: signs PKCS#10 requests (RSA and EC) and issues TLS server
 * certificates for the test servers. Everything is synchronous: certificates are assembled as DER here
 * and signed with node:crypto (WebCrypto-based builders are async only).
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import crypto, { type KeyObject } from 'node:crypto';
import net from 'node:net';

export interface SignOptions {
  /** Validity; default 90 days. `minutes` wins over `days` (short-lived certificates for lifecycle tests). */
  days?: number;
  minutes?: number;
  /** Replace the SANs requested in the CSR. */
  dnsNames?: string[];
  /** Backdate notBefore (default 60 s, so a fresh certificate is valid on a slightly slow clock). */
  backdateSeconds?: number;
}

export interface TestCa {
  caCertPem: string;
  /** The CA's own certificate in DER. */
  caCertDer: Buffer;
  /** Signs a CSR (PEM or DER) after checking its signature; returns the leaf certificate in PEM. */
  signCsr(csr: string | Uint8Array, opts?: SignOptions): string;
  /** A key and a certificate for a TLS server; IP addresses in `names` become IP SANs. */
  issueServerCert(
    names: string[],
    /** `rsaBits` (default 2048): 1024 makes a key that OpenSSL's default security level (and so nginx -t) refuses. */
    opts?: { days?: number; keyType?: 'ec' | 'rsa'; rsaBits?: number },
  ): { certPem: string; keyPem: string };
}

export interface TestCaOptions {
  commonName?: string;
  /** The CA's key; RSA by default, because some consumers (node-forge) cannot read EC certificates. */
  keyType?: 'rsa' | 'ec';
}

const OID = {
  sha256WithRSA: '1.2.840.113549.1.1.11',
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
};

export function createTestCa(opts: TestCaOptions = {}): TestCa {
  const keyType = opts.keyType ?? 'rsa';
  const caKeys =
    keyType === 'ec'
      ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const caName = Buffer.from(
    new x509.Name(`CN=${opts.commonName ?? 'Certflow Test CA'}, O=Certflow tests`).toArrayBuffer(),
  );
  const caSpki = caKeys.publicKey.export({ type: 'spki', format: 'der' });
  const caKeyId = keyIdentifier(caSpki);
  const sigAlg = keyType === 'ec' ? seq(oid(OID.ecdsaWithSHA256)) : seq(oid(OID.sha256WithRSA), tlv(0x05));

  const sign = (p: {
    subject: Buffer;
    spki: Buffer;
    notBefore: Date;
    notAfter: Date;
    extensions: x509.Extension[];
  }): Buffer => {
    const tbs = seq(
      explicit(0, uint(Buffer.from([2]))),
      uint(Buffer.concat([Buffer.from([0x40]), crypto.randomBytes(15)])),
      sigAlg,
      caName,
      seq(time(p.notBefore), time(p.notAfter)),
      p.subject,
      p.spki,
      explicit(3, seq(...p.extensions.map((e) => Buffer.from(e.rawData)))),
    );
    const signature = crypto.sign('sha256', tbs, caKeys.privateKey);
    return seq(tbs, sigAlg, bitString(signature));
  };

  const now = Date.now();
  const caCertDer = sign({
    subject: caName,
    spki: caSpki,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 3650 * 86400_000),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectKeyIdentifierExtension(caKeyId),
    ],
  });

  const leaf = (
    subject: Buffer,
    spki: Buffer,
    sans: x509.JsonGeneralNames,
    validity: SignOptions,
  ): string => {
    const notBefore = new Date(Date.now() - (validity.backdateSeconds ?? 60) * 1000);
    const lifetimeMs =
      validity.minutes !== undefined ? validity.minutes * 60_000 : (validity.days ?? 90) * 86400_000;
    const der = sign({
      subject,
      spki,
      notBefore,
      notAfter: new Date(Date.now() + lifetimeMs),
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(
          crypto.createPublicKey({ key: spki, format: 'der', type: 'spki' }).asymmetricKeyType === 'rsa'
            ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
            : x509.KeyUsageFlags.digitalSignature,
          true,
        ),
        new x509.ExtendedKeyUsageExtension([
          x509.ExtendedKeyUsage.serverAuth,
          x509.ExtendedKeyUsage.clientAuth,
        ]),
        new x509.SubjectKeyIdentifierExtension(keyIdentifier(spki)),
        new x509.AuthorityKeyIdentifierExtension(caKeyId),
        ...(sans.length ? [new x509.SubjectAlternativeNameExtension(sans)] : []),
      ],
    });
    return toPem(der, 'CERTIFICATE');
  };

  return {
    caCertDer,
    caCertPem: toPem(caCertDer, 'CERTIFICATE'),
    signCsr(csrInput, signOpts = {}) {
      const csrDer =
        typeof csrInput === 'string' ? pemToDer(csrInput, 'CERTIFICATE REQUEST') : Buffer.from(csrInput);
      const csr = new x509.Pkcs10CertificateRequest(csrDer);
      const spki = Buffer.from(csr.publicKey.rawData);
      verifyCsrSignature(csrDer, spki, csr.signatureAlgorithm.hash.name);
      // by OID: the class-based lookup misses when two copies of @peculiar/x509 are loaded
      const sanExt = csr.getExtension('2.5.29.17');
      const requested = sanExt ? new x509.SubjectAlternativeNameExtension(sanExt.rawData).names.toJSON() : [];
      const sans = signOpts.dnsNames ? generalNames(signOpts.dnsNames) : requested;
      return leaf(Buffer.from(csr.subjectName.toArrayBuffer()), spki, sans, signOpts);
    },
    issueServerCert(names, serverOpts = {}) {
      const keys =
        serverOpts.keyType === 'rsa'
          ? crypto.generateKeyPairSync('rsa', { modulusLength: serverOpts.rsaBits ?? 2048 })
          : crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const subject = Buffer.from(new x509.Name(`CN=${names[0] ?? 'localhost'}`).toArrayBuffer());
      const spki = keys.publicKey.export({ type: 'spki', format: 'der' });
      return {
        certPem: leaf(subject, spki, generalNames(names), { days: serverOpts.days ?? 30 }),
        keyPem: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      };
    },
  };
}

function generalNames(names: string[]): x509.JsonGeneralNames {
  return names.map((value) => ({ type: net.isIP(value) ? ('ip' as const) : ('dns' as const), value }));
}

function keyIdentifier(spkiDer: Buffer): string {
  // RFC 5280 method 1: SHA-1 of the subjectPublicKey BIT STRING contents
  const [, bits] = children(spkiDer);
  return crypto
    .createHash('sha1')
    .update(contents(bits ?? Buffer.alloc(0)))
    .digest('hex');
}

function verifyCsrSignature(csrDer: Buffer, spki: Buffer, hash: string): void {
  const [info, , sig] = children(csrDer);
  if (!info || !sig)
    throw new Error('CSR: expected certificationRequestInfo, signatureAlgorithm and signature');
  const key: KeyObject = crypto.createPublicKey({ key: spki, format: 'der', type: 'spki' });
  const ok = crypto.verify(hash.replace('-', '').toLowerCase(), info, key, contents(sig));
  if (!ok) throw new Error('CSR: the signature does not verify with the public key it carries');
}

export function toPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.replace(/.{1,64}/g, '$&\n')}-----END ${label}-----\n`;
}

export function pemToDer(pem: string, label: string): Buffer {
  const m = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`).exec(pem);
  if (!m?.[1]) throw new Error(`expected a PEM block '${label}'`);
  return Buffer.from(m[1].replace(/\s+/g, ''), 'base64');
}

// --- DER building blocks (just what a certificate needs) ---

function tlv(tag: number, ...parts: Uint8Array[]): Buffer {
  const body = Buffer.concat(parts);
  const len =
    body.length < 0x80
      ? Buffer.from([body.length])
      : (() => {
          const bytes: number[] = [];
          for (let v = body.length; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
          return Buffer.from([0x80 | bytes.length, ...bytes]);
        })();
  return Buffer.concat([Buffer.from([tag]), len, body]);
}

const seq = (...parts: Uint8Array[]): Buffer => tlv(0x30, ...parts);
const explicit = (n: number, inner: Uint8Array): Buffer => tlv(0xa0 | n, inner);
const bitString = (bytes: Uint8Array): Buffer => tlv(0x03, Buffer.from([0]), bytes);

function uint(bytes: Uint8Array): Buffer {
  let b = Buffer.from(bytes);
  while (b.length > 1 && b[0] === 0) b = b.subarray(1);
  if ((b[0] ?? 0) & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

function oid(dotted: string): Buffer {
  const [a = 0, b = 0, ...rest] = dotted.split('.').map(Number);
  const out = [40 * a + b];
  for (const n of rest) {
    const chunk: number[] = [];
    for (let v = n; ; v = Math.floor(v / 128)) {
      chunk.unshift((v & 0x7f) | (chunk.length ? 0x80 : 0));
      if (v < 128) break;
    }
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime until 2049, GeneralizedTime after, as RFC 5280 asks. */
function time(d: Date): Buffer {
  const s = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(s.slice(2))) : tlv(0x18, Buffer.from(s));
}

function header(buf: Buffer, at: number): { size: number; length: number } {
  const first = buf[at + 1];
  if (first === undefined) throw new Error('DER: truncated');
  if (first < 0x80) return { size: 2, length: first };
  let length = 0;
  for (let i = 0; i < (first & 0x7f); i++) length = length * 256 + (buf[at + 2 + i] ?? 0);
  return { size: 2 + (first & 0x7f), length };
}

/** The complete TLVs directly inside a constructed value. */
function children(der: Uint8Array): Buffer[] {
  const buf = Buffer.from(der);
  const outer = header(buf, 0);
  const out: Buffer[] = [];
  for (let at = outer.size; at < outer.size + outer.length;) {
    const h = header(buf, at);
    out.push(buf.subarray(at, at + h.size + h.length));
    at += h.size + h.length;
  }
  return out;
}

/** A primitive value's contents (a BIT STRING's without its unused-bits byte). */
function contents(der: Buffer): Buffer {
  const h = header(der, 0);
  const body = der.subarray(h.size, h.size + h.length);
  return der[0] === 0x03 ? body.subarray(1) : body;
}
