/**
 * The live TLS probe: one real handshake with SNI, read the leaf the endpoint serves, check that it covers the
 * SNI name (tls.checkServerIdentity, with or without a trust anchor), compare its thumbprint with the one we expect. Network failures are answers here (ok: false), never exceptions,
 * because the caller is usually polling until a reload takes effect.
 */
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import type { Probe } from '../types';

export interface ProbeOptions {
  host: string;
  port: number;
  /** SNI name, and the name the served certificate must cover (tls.checkServerIdentity), always. */
  servername: string;
  /** SHA-1, any case, with or without colons. Without it the probe only reports what is served. */
  expectedThumbprint?: string;
  /** Trust anchors (PEM). When given, ok also requires a valid chain for `servername`. */
  caPem?: string;
  /** Default 5000 ms. */
  timeoutMs?: number;
}

// one way to name a certificate: activities/verify/thumbprint.ts (re-exported for the targets that probe)
import { normalizeThumbprint, thumbprintOf } from './thumbprint';
export { normalizeThumbprint, thumbprintOf };

/**
 * What tls.checkServerIdentity reads (subject CN and subjectaltname), from the leaf already in hand:
 * `getPeerCertificate()` answers {} once the peer has closed, which a probed server may do right away.
 */
function identityOf(leaf: X509Certificate): tls.PeerCertificate {
  const cn = /^CN=(.*)$/m.exec(leaf.subject)?.[1];
  return {
    subject: cn ? { CN: cn } : {},
    ...(leaf.subjectAltName ? { subjectaltname: leaf.subjectAltName } : {}),
  } as tls.PeerCertificate;
}

export async function probeTls(opts: ProbeOptions): Promise<Probe> {
  const where = `${opts.host}:${opts.port}`;
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  return new Promise<Probe>((resolve) => {
    let settled = false;
    const finish = (p: Omit<Probe, 'latencyMs'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...p, latencyMs: elapsed() });
    };
    // rejectUnauthorized is off so that a wrong or untrusted certificate can still be *reported*
    // (served thumbprint in the detail); trust is decided below from `authorized`, and no data is
    // ever sent over this connection.
    const socket = tls.connect({
      host: opts.host,
      port: opts.port,
      servername: opts.servername,
      // a fresh context per probe, on purpose: a context shared between probes could carry a TLS session, and a
      // resumed session reports the certificate of the session it resumes, not the one served now
      ca: opts.caPem,
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    });
    const timer = setTimeout(
      () =>
        finish({
          ok: false,
          servedThumbprint: null,
          detail: `TLS probe of ${where} (SNI ${opts.servername}) timed out after ${opts.timeoutMs ?? 5000} ms`,
        }),
      opts.timeoutMs ?? 5000,
    );
    socket.once('secureConnect', () => {
      const leaf = socket.getPeerX509Certificate();
      if (!leaf) {
        finish({
          ok: false,
          servedThumbprint: null,
          detail: `${where} completed a handshake without a certificate`,
        });
        return;
      }
      const served = thumbprintOf(leaf);
      const problems: string[] = [];
      // the served certificate must cover the name clients ask for, trusted chain or not
      const identity = tls.checkServerIdentity(opts.servername, identityOf(leaf));
      if (identity) problems.push(`certificate does not cover ${opts.servername}: ${identity.message}`);
      if (opts.expectedThumbprint !== undefined && normalizeThumbprint(opts.expectedThumbprint) !== served) {
        problems.push(`serves ${served}, expected ${normalizeThumbprint(opts.expectedThumbprint)}`);
      }
      if (opts.caPem !== undefined && !socket.authorized && !identity) {
        problems.push(`chain not trusted for ${opts.servername}: ${String(socket.authorizationError)}`);
      }
      finish({
        ok: problems.length === 0,
        servedThumbprint: served,
        detail: problems.length
          ? `${where} (SNI ${opts.servername}) ${problems.join('; ')}`
          : `${where} (SNI ${opts.servername}) serves ${served}${opts.caPem !== undefined ? ', chain trusted' : ''}`,
      });
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      const cause = err.code && !err.message.includes(err.code) ? `${err.code}: ${err.message}` : err.message;
      finish({
        ok: false,
        servedThumbprint: null,
        detail: `TLS probe of ${where} (SNI ${opts.servername}) failed: ${cause}`,
      });
    });
  });
}

/**
 * Reloads are asynchronous (new workers start, old ones drain; IIS picks up a binding in its own time): probe
 * until the expected thumbprint shows or `settleMs` (default 5000) runs out, and return the last answer.
 */
export async function probeUntil(
  p: Omit<ProbeOptions, 'expectedThumbprint' | 'timeoutMs'> & { settleMs?: number },
  expected: string,
): Promise<Probe> {
  const deadline = Date.now() + (p.settleMs ?? 5_000);
  for (;;) {
    const left = deadline - Date.now();
    const probe = await probeTls({
      ...p,
      expectedThumbprint: expected,
      timeoutMs: Math.max(250, Math.min(2_000, left)),
    });
    if (probe.ok || Date.now() >= deadline) return probe;
    await new Promise((r) => setTimeout(r, 50));
  }
}
