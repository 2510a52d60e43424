/**
 * Thumbprints of certificates as Azure services return them: a base64 PKCS#7 bundle (Application Gateway's
 * `publicCertData`) or a single DER certificate. `@peculiar/x509` reads PKCS#7 with RSA and EC keys alike.
 */
import 'reflect-metadata'; // @peculiar/x509 2.x needs a Reflect polyfill loaded first
import { X509Certificate } from 'node:crypto';
import { X509Certificates } from '@peculiar/x509';
import { thumbprintOf } from '../verify/probe';

/** The leaf's SHA-1 thumbprint (uppercase hex): the certificate that issued none of the others. Null if unreadable. */
export function leafThumbprintOfBase64(data: string): string | null {
  // a gateway lists the same bundles on every read: parse each once (bounded)
  const known = parsed.get(data);
  if (known !== undefined) return known;
  const t = parse(data);
  if (parsed.size >= 1_000) parsed.clear();
  parsed.set(data, t);
  return t;
}

const parsed = new Map<string, string | null>();

function parse(data: string): string | null {
  const der = Buffer.from(data, 'base64');
  let certs: X509Certificate[];
  try {
    certs = [...new X509Certificates(der)].map((c) => new X509Certificate(Buffer.from(c.rawData)));
  } catch {
    try {
      certs = [new X509Certificate(der)];
    } catch {
      return null;
    }
  }
  const leaf = certs.find(
    (c) => !certs.some((o) => o !== c && o.issuer === c.subject && o.subject !== c.subject),
  );
  return leaf ? thumbprintOf(leaf) : null;
}
