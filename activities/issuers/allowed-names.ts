/**
 * The names an issuer may be asked for (its `allowedNames` globs, activities/globs.ts), checked before anything
 * goes to the CA: the names of the request and every name the CSR itself carries (subjectAltName DNS names and
 * a host-name-like common name), because the vault's CSR is what the CA signs. Write access to a vault must not
 * be enough to get a certificate for any name the CA's DNS credential can answer for.
 * The issued chain is checked again against the same globs before merge (verify/x509.ts).
 */
import 'reflect-metadata'; // @peculiar/x509 2.x needs a Reflect polyfill loaded first
import * as x509 from '@peculiar/x509';
import { ApplicationFailure } from '@temporalio/common';
import { namesNotAllowed } from '../globs';
import type { Issuer, IssueRequest } from '../types';

/** Whether a common name looks like a DNS name (a CN such as "Contoso Web" is not one, and is not checked). */
export const isHostLike = (cn: string | undefined): cn is string =>
  !!cn && /^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+\.?$/.test(cn);

/** The DNS names a CSR asks for: its SAN DNS entries and its CN when that is host-name-like. */
export function csrDnsNames(csrPem: string): string[] {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(
      csrPem.replace(/NEW CERTIFICATE REQUEST/g, 'CERTIFICATE REQUEST'),
    );
  } catch (err) {
    throw ApplicationFailure.create({
      message: `CSR could not be parsed as PKCS#10: ${(err as Error).message}`,
      type: 'Unparseable',
      nonRetryable: true,
    });
  }
  const san = csr.extensions.find(
    (e): e is x509.SubjectAlternativeNameExtension => e instanceof x509.SubjectAlternativeNameExtension,
  );
  const names: string[] = (san?.names.items ?? []).filter((n) => n.type === 'dns').map((n) => n.value);
  const cn = csr.subjectName.getField('CN')[0];
  if (isHostLike(cn)) names.push(cn);
  return [...new Set(names.map((n) => n.toLowerCase()))];
}

/** The non-retryable failure for names outside an issuer's allowedNames (also used by the verify step). */
export function nameNotAllowed(issuer: string, names: string[], patterns: readonly string[], where: string) {
  return ApplicationFailure.create({
    message:
      `issuer "${issuer}" may not issue for ${names.join(', ')} (${where}): its allowedNames are ` +
      `${patterns.map((p) => `"${p}"`).join(', ')}. Add a glob to issuers[].allowedNames if this is intended.`,
    type: 'NameNotAllowed',
    nonRetryable: true,
  });
}

/** Refuses a request whose names (request or CSR) are not all covered by the issuer's allowedNames. */
export function checkAllowedNames(issuer: string, patterns: readonly string[], req: IssueRequest): void {
  const requested = namesNotAllowed(req.dnsNames, patterns);
  if (requested.length) throw nameNotAllowed(issuer, requested, patterns, 'requested');
  const inCsr = namesNotAllowed(csrDnsNames(req.csrPem), patterns);
  if (inCsr.length) throw nameNotAllowed(issuer, inCsr, patterns, 'in the CSR');
}

/** The issuer, refusing before any CA call a request for a name outside `patterns`. */
export function withAllowedNames(issuer: Issuer, patterns: readonly string[]): Issuer {
  const wrapped: Issuer = {
    name: issuer.name,
    async submit(req) {
      checkAllowedNames(issuer.name, patterns, req);
      return issuer.submit(req);
    },
    async poll(ref, req) {
      checkAllowedNames(issuer.name, patterns, req);
      return issuer.poll(ref, req);
    },
  };
  if (issuer.renewalWindow) wrapped.renewalWindow = (leafPem) => issuer.renewalWindow!(leafPem);
  return wrapped;
}
