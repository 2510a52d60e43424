/**
 * The live TLS probe against in-process loopback servers: a closed port, a server that never speaks,
 * and a TLS server with two SNI names (so a probe that forgot SNI would read the wrong leaf).
 */
import net from 'node:net';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeTls } from '../../activities/verify/probe';
import { freePort } from '../support/proc';
import { createTestCa } from '../support/test-ca';

function issue(ca: ReturnType<typeof createTestCa>, name: string) {
  const { certPem, keyPem } = ca.issueServerCert([name]);
  return {
    cert: certPem,
    key: keyPem,
    caPem: ca.caCertPem,
    thumbprint: new X509Certificate(certPem).fingerprint.replace(/:/g, ''),
  };
}

type Cert = ReturnType<typeof issue>;
let a: Cert;
let b: Cert;
let otherCaPem: string;
let tlsServer: tls.Server;
let silent: net.Server;
let tlsPort: number;
let silentPort: number;
const held = new Set<net.Socket>();

async function listen(srv: net.Server): Promise<number> {
  const port = await freePort();
  await new Promise<void>((resolve) => srv.listen(port, '127.0.0.1', resolve));
  return port;
}

beforeAll(async () => {
  const ca = createTestCa();
  [a, b] = [issue(ca, 'a.test'), issue(ca, 'b.test')];
  otherCaPem = createTestCa({ commonName: 'Some other CA' }).caCertPem;
  const contexts = new Map([
    ['a.test', tls.createSecureContext({ cert: a.cert, key: a.key })],
    ['b.test', tls.createSecureContext({ cert: b.cert, key: b.key })],
  ]);
  tlsServer = tls.createServer(
    { cert: a.cert, key: a.key, SNICallback: (name, cb) => cb(null, contexts.get(name)) },
    (s) => s.end(),
  );
  silent = net.createServer((s) => held.add(s)); // accepts, never answers the ClientHello
  [tlsPort, silentPort] = await Promise.all([listen(tlsServer), listen(silent)]);
});

afterAll(async () => {
  const close = (srv?: net.Server) => new Promise<void>((r) => (srv ? srv.close(() => r()) : r()));
  for (const s of held) s.destroy();
  await Promise.all([close(tlsServer), close(silent)]);
});

describe('probeTls', () => {
  it('answers ok:false quickly for a closed port, naming host:port and the cause', async () => {
    const port = await freePort();
    const p = await probeTls({ host: '127.0.0.1', port, servername: 'a.test', timeoutMs: 3_000 });
    expect(p.ok).toBe(false);
    expect(p.servedThumbprint).toBeNull();
    expect(p.detail).toContain(`127.0.0.1:${port}`);
    expect(p.detail).toContain('ECONNREFUSED');
    expect(p.latencyMs).toBeLessThan(500);
  });

  it('times out on a server that never completes the handshake', async () => {
    const p = await probeTls({ host: '127.0.0.1', port: silentPort, servername: 'a.test', timeoutMs: 300 });
    expect(p.ok).toBe(false);
    expect(p.detail).toContain(`127.0.0.1:${silentPort}`);
    expect(p.detail).toContain('timed out after 300 ms');
    expect(p.latencyMs).toBeGreaterThanOrEqual(290);
    expect(p.latencyMs).toBeLessThan(2_000);
  });

  it('reads the leaf chosen by SNI and compares thumbprints case-insensitively', async () => {
    const expected = b.thumbprint.toLowerCase().replace(/(..)(?!$)/g, '$1:'); // aa:bb:.. form
    const p = await probeTls({
      host: '127.0.0.1',
      port: tlsPort,
      servername: 'b.test',
      expectedThumbprint: expected,
      timeoutMs: 2_000,
    });
    expect(p).toMatchObject({ ok: true, servedThumbprint: b.thumbprint });
    expect(p.servedThumbprint).toMatch(/^[0-9A-F]{40}$/);
    expect(p.latencyMs).toBeGreaterThan(0);
  });

  it('says what is served when it is not what was expected', async () => {
    const p = await probeTls({
      host: '127.0.0.1',
      port: tlsPort,
      servername: 'a.test',
      expectedThumbprint: b.thumbprint,
      timeoutMs: 2_000,
    });
    expect(p.ok).toBe(false);
    expect(p.servedThumbprint).toBe(a.thumbprint);
    expect(p.detail).toContain(`serves ${a.thumbprint}, expected ${b.thumbprint}`);
  });

  it('checks the chain and the name when given a CA', async () => {
    const trusted = await probeTls({
      host: '127.0.0.1',
      port: tlsPort,
      servername: 'a.test',
      caPem: a.caPem,
      timeoutMs: 2_000,
    });
    expect(trusted.ok, trusted.detail).toBe(true);
    expect(trusted.detail).toContain('chain trusted');

    const otherCa = await probeTls({
      host: '127.0.0.1',
      port: tlsPort,
      servername: 'a.test',
      caPem: otherCaPem,
      timeoutMs: 2_000,
    });
    expect(otherCa.ok).toBe(false);
    expect(otherCa.servedThumbprint).toBe(a.thumbprint);
    expect(otherCa.detail).toMatch(/chain not trusted for a\.test: \w+/);

    // an SNI name the server has no certificate for: it falls back to a.test's, which does not cover it
    const wrongName = await probeTls({
      host: '127.0.0.1',
      port: tlsPort,
      servername: 'c.test',
      caPem: a.caPem,
      timeoutMs: 2_000,
    });
    expect(wrongName.ok).toBe(false);
    expect(wrongName.servedThumbprint).toBe(a.thumbprint);
    expect(wrongName.detail).toContain('certificate does not cover c.test');
  });

  it('checks the name with tls.checkServerIdentity also without a CA, and when the thumbprint matches', async () => {
    const wrongName = await probeTls({
      host: '127.0.0.1',
      port: tlsPort,
      servername: 'c.test',
      expectedThumbprint: a.thumbprint,
      timeoutMs: 2_000,
    });
    expect(wrongName.ok).toBe(false);
    expect(wrongName.servedThumbprint).toBe(a.thumbprint);
    expect(wrongName.detail).toMatch(/certificate does not cover c\.test: .*c\.test/);
    const right = await probeTls({
      host: '127.0.0.1',
      port: tlsPort,
      servername: 'a.test',
      expectedThumbprint: a.thumbprint,
      timeoutMs: 2_000,
    });
    expect(right.ok, right.detail).toBe(true);
  });
});
