/**
 * Whether a host is this machine's loopback, for the defaults that only loopback may skip (SMTP without TLS,
 * Temporal without TLS). Decided on the text alone, never by DNS: a name that merely resolves to 127.0.0.1
 * is not trusted as loopback.
 */
import { isIPv4 } from 'node:net';

/** `localhost` and `*.localhost` (RFC 6761), 127.0.0.0/8, ::1 and its IPv4-mapped form. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.$/, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.replace(/^::ffff:/, '');
  return isIPv4(v4) && v4.startsWith('127.');
}

/** The host of `host:port`, `[v6]:port`, a bare IPv6 address or a bare host. */
export function hostOfAddress(address: string): string {
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(address);
  if (v6) return v6[1]!;
  if ((address.match(/:/g) ?? []).length > 1) return address; // a bare IPv6 address
  return address.replace(/:\d*$/, '');
}
