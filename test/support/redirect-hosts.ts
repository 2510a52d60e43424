/**
 * This process's TLS connections to named hosts brought to local test servers: a `tls.connect` (which https
 * agents, the Azure SDK's Node HTTP client and undici all call) to one of `hosts` goes to 127.0.0.1:<port>
 * instead. Only the address changes: the server name sent and checked stays the host's, and the chain must lead
 * to `caPem` (trusted beside the system roots, for these connections only). Other connections are untouched.
 *
 * For a process of ours that takes no agent from a test, only its configuration: the worker service
 * (worker/main.ts) started with `--import ./test/support/redirect-hosts-preload.mjs` and
 * CERTFLOW_TEST_REDIRECT_HOSTS, so that a production-style vault (https://<name>.vault.azure.net) and Entra ID's
 * token endpoint (https://login.microsoftonline.com) are the test Key Vault and the test Entra.
 */
import tls from 'node:tls';

export interface RedirectHosts {
  /** Host name (lower case) to the local port serving it. */
  hosts: Record<string, number>;
  /** The CA that issued the local servers' TLS certificates (PEM). */
  caPem: string;
}

type Connect = (...args: unknown[]) => tls.TLSSocket;

/** Installs the redirect; returns the function that removes it. */
export function redirectHosts(r: RedirectHosts): () => void {
  const hosts = new Map(Object.entries(r.hosts).map(([h, p]) => [h.toLowerCase(), p]));
  const original = tls.connect as unknown as Connect;
  const patched: Connect = (...args) => {
    const [first, ...rest] = args;
    if (first && typeof first === 'object') {
      const o = first as tls.ConnectionOptions;
      const host = (o.host ?? '').toLowerCase();
      const port = hosts.get(host);
      if (port !== undefined) {
        const ca = o.ca ? [o.ca].flat() : [...tls.rootCertificates];
        return original(
          { ...o, host: '127.0.0.1', port, servername: o.servername || host, ca: [...ca, r.caPem] },
          ...rest,
        );
      }
    }
    return original(...args);
  };
  (tls as unknown as { connect: Connect }).connect = patched;
  return () => {
    if ((tls as unknown as { connect: Connect }).connect === patched)
      (tls as unknown as { connect: Connect }).connect = original;
  };
}

/** The environment variable the preload reads: JSON of RedirectHosts. */
export const REDIRECT_HOSTS_ENV = 'CERTFLOW_TEST_REDIRECT_HOSTS';
