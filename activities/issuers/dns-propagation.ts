/**
 * DNS-01 propagation check: before the CA is told to validate, the TXT value must be visible at the
 * servers the CA will effectively see (the zone's authoritative servers, or resolvers you name). Bounded:
 * on timeout the attempt fails retryable, and the issuer's cleanup removes the records.
 */
import { lookup } from 'node:dns/promises';
import { Resolver } from 'node:dns/promises';
import net from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import type { DnsProvider } from './dns';

export interface PropagationOptions {
  /**
   * Name servers to ask: IPs or host names, optionally with `:port` (`[v6]:port`). Default: the DNS
   * provider's authoritative servers for the zone (e.g. Azure DNS's `ns1-0x.azure-dns.com`).
   */
  resolvers?: string[];
  /** Give up after this long (retryable DnsPropagationTimeout). Default 120 s. */
  timeoutMs?: number;
  /** Between two rounds of queries. Default 2 s. */
  intervalMs?: number;
}

/** Resolves once `value` is among the TXT values of `fqdn` at every checked server. */
export type PropagationCheck = (fqdn: string, value: string) => Promise<void>;

export function createPropagationCheck(opts: PropagationOptions, dns: DnsProvider): PropagationCheck {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const intervalMs = opts.intervalMs ?? 2_000;
  const noServers = (fqdn: string) =>
    ApplicationFailure.create({
      message: `DNS-01 propagation check${fqdn ? ` for ${fqdn}` : ''} has no server to ask: set propagation.resolvers (the zone's name servers) or use a DNS provider that knows them`,
      type: 'DnsPropagationConfig',
      nonRetryable: true,
    });
  if (!opts.resolvers?.length && !dns.authoritativeNameservers) throw noServers('');

  async function serversFor(fqdn: string): Promise<string[]> {
    const configured = opts.resolvers?.length
      ? opts.resolvers
      : ((await dns.authoritativeNameservers?.(fqdn)) ?? []);
    if (configured.length === 0) throw noServers(fqdn);
    return Promise.all(configured.map(toAddress));
  }

  return async (fqdn, value) => {
    const servers = await serversFor(fqdn);
    const pending = new Map(servers.map((s) => [s, 'not asked yet']));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await Promise.all(
        [...pending.keys()].map(async (server) => {
          const seen = await txtAt(server, fqdn, Math.min(2_000, timeoutMs));
          if (Array.isArray(seen) && seen.includes(value)) pending.delete(server);
          else pending.set(server, Array.isArray(seen) ? `${seen.length} other value(s)` : seen);
        }),
      );
      if (pending.size === 0) return;
      if (Date.now() + intervalMs > deadline) {
        const where = [...pending].map(([s, saw]) => `${s} (${saw})`).join(', ');
        throw ApplicationFailure.create({
          message: `DNS-01 TXT ${fqdn} with this order's value is not visible after ${timeoutMs} ms at ${where}`,
          type: 'DnsPropagationTimeout',
          nonRetryable: false,
        });
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  };
}

/** The TXT values at one server, or what went wrong (NXDOMAIN, timeout...). */
async function txtAt(server: string, fqdn: string, timeoutMs: number): Promise<string[] | string> {
  const resolver = new Resolver({ timeout: timeoutMs, tries: 1 });
  resolver.setServers([server]);
  try {
    return (await resolver.resolveTxt(fqdn)).map((chunks) => chunks.join(''));
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ENODATA' || code === 'ENOTFOUND') return [];
    return code ?? (err as Error).message;
  }
}

/** `host[:port]` -> `ip[:port]` as Resolver.setServers wants it (it takes no host names). */
async function toAddress(server: string): Promise<string> {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(server) ?? /^([^:]+)(?::(\d+))?$/.exec(server);
  const host = m ? m[1]! : server; // a bare IPv6 address has several colons and no port
  const port = m?.[2];
  const ip = net.isIP(host) ? host : (await lookup(host.replace(/\.$/, ''))).address;
  if (!port) return ip;
  return net.isIPv6(ip) ? `[${ip}]:${port}` : `${ip}:${port}`;
}
