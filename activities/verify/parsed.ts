/**
 * Parsed X.509 certificates by their PEM text. One renewal reads the same few certificates many times (the vault's
 * describe and merge, the chain check before merge, the file target's material check), each parse synchronous
 * work on the event loop that every activity shares. A parsed certificate is immutable, so the same text gives the
 * same answer from a parse made earlier. Bounded (least recently used dropped first); a text that does not parse
 * throws as `new X509Certificate` does and is not kept.
 */
import { X509Certificate } from 'node:crypto';

const MAX_ENTRIES = 1024;
const parsed = new Map<string, X509Certificate>();

export function parseX509(pem: string): X509Certificate {
  const hit = parsed.get(pem);
  if (hit) {
    parsed.delete(pem); // most recently used last
    parsed.set(pem, hit);
    return hit;
  }
  const cert = new X509Certificate(pem);
  if (parsed.size >= MAX_ENTRIES) parsed.delete(parsed.keys().next().value!);
  parsed.set(pem, cert);
  return cert;
}

/** How many parsed certificates are kept now (tests). */
export const parsedCount = (): number => parsed.size;
