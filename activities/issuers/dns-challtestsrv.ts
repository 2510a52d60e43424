/**
 * DnsProvider over pebble-challtestsrv's management API (test DNS server that pebble validates against).
 * Its `/clear-txt` removes every value of a name, so parallel orders for the same name would clear each
 * other's answers; tests use distinct names.
 */
import type { DnsProvider } from './dns';

export interface ChalltestsrvDnsOptions {
  /** e.g. `http://127.0.0.1:8055` */
  managementUrl: string;
  timeoutMs?: number;
}

export function createChalltestsrvDns({
  managementUrl,
  timeoutMs = 5_000,
}: ChalltestsrvDnsOptions): DnsProvider {
  const base = managementUrl.replace(/\/+$/, '');
  async function post(path: string, body: object): Promise<void> {
    const url = `${base}${path}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      const cause = (err as { cause?: Error }).cause ?? (err as Error);
      throw new Error(`challtestsrv at ${url} unreachable: ${cause.message}`, { cause: err });
    }
    if (!res.ok)
      throw new Error(`challtestsrv ${url} answered HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`);
  }
  const host = (fqdn: string) => (fqdn.endsWith('.') ? fqdn : `${fqdn}.`);
  return {
    present: (fqdn, value) => post('/set-txt', { host: host(fqdn), value }),
    cleanup: (fqdn) => post('/clear-txt', { host: host(fqdn) }),
  };
}
