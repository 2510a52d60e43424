/**
 * ACME Renewal Information (RFC 9773): the certificate identifier a CA knows a leaf by, and reading the
 * `renewalInfo` answer into a RenewalWindow.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { ApplicationFailure } from '@temporalio/common';
import type { RenewalWindow } from '../types';
import { parseRetryAfter } from './acme-http';

/** When the CA sends no Retry-After: RFC 9773 has clients ask again a few times a day. */
export const DEFAULT_ARI_RETRY_AFTER_SECONDS = 6 * 60 * 60;

/** base64url(AKI keyIdentifier) '.' base64url(serial number as its DER INTEGER content bytes). */
export function ariCertId(leafPem: string): string {
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(leafPem);
  } catch {
    throw ApplicationFailure.create({
      message: 'ARI: the leaf is not a readable X.509 certificate (expected PEM)',
      type: 'AriBadCertificate',
      nonRetryable: true,
    });
  }
  const keyId = cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;
  if (!keyId) {
    throw ApplicationFailure.create({
      message: `ARI: certificate ${cert.subject} has no authority key identifier (keyIdentifier), so no ARI id`,
      type: 'AriBadCertificate',
      nonRetryable: true,
    });
  }
  // @peculiar/x509 drops the sign byte of the serial; DER keeps a leading 0x00 when the top bit is set
  let serial = Buffer.from(cert.serialNumber, 'hex');
  if (serial.length === 0 || (serial[0]! & 0x80) !== 0) serial = Buffer.concat([Buffer.from([0]), serial]);
  return `${Buffer.from(keyId, 'hex').toString('base64url')}.${serial.toString('base64url')}`;
}

/** The renewalInfo answer (200 JSON) as a RenewalWindow; a malformed answer is a retryable failure. */
export function parseRenewalInfo(
  body: unknown,
  retryAfterHeader: unknown,
  url: string,
  now = Date.now(),
): RenewalWindow {
  const doc = (typeof body === 'object' && body !== null ? body : {}) as {
    suggestedWindow?: { start?: unknown; end?: unknown };
    explanationURL?: unknown;
  };
  const start = Date.parse(String(doc.suggestedWindow?.start ?? ''));
  const end = Date.parse(String(doc.suggestedWindow?.end ?? ''));
  if (Number.isNaN(start) || Number.isNaN(end) || end < start) {
    throw ApplicationFailure.create({
      message: `ARI answer from ${url} has no valid suggestedWindow (expected RFC 3339 start <= end)`,
      type: 'AriBadAnswer',
      nonRetryable: false,
    });
  }
  return {
    start: new Date(start).toISOString(),
    end: new Date(end).toISOString(),
    ...(typeof doc.explanationURL === 'string' ? { explanationUrl: doc.explanationURL } : {}),
    retryAfterSeconds: parseRetryAfter(retryAfterHeader, now) ?? DEFAULT_ARI_RETRY_AFTER_SECONDS,
  };
}
