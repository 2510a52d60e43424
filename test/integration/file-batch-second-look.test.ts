/**
 * A batch's probes meet a server where one site is still answered with its old certificate for a while after the
 * reload (a retiring worker of a large nginx under load), while the others already serve their new ones: that site
 * gets a second look before it is rolled back, and binds (file-reload.ts `secondLook`). The server is a small TLS
 * server of the test's own that reads each site's files at every handshake; the lagging site serves the files'
 * previous certificate until 2.5 s after they changed, longer than the probe's 1.5 s settle window.
 */
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileReloadTarget } from '../../activities/bindings/file-reload';
import { thumbprintOf } from '../../activities/verify/probe';
import { syncAsOneBatch } from '../support/file-batch';
import { createTestCa } from '../support/test-ca';
import { scratchDir } from '../support/tools';

const DOMAIN = 'lag.test';
const SITES = ['s1', 's2', 's3'];
const LAGGING = 's2';
const LAG_MS = 2_500;

const ca = createTestCa();
const pair = () => {
  const { certPem, keyPem } = ca.issueServerCert([`*.${DOMAIN}`], { keyType: 'ec' });
  return { certPem, keyPem, thumbprint: thumbprintOf(new X509Certificate(certPem)) };
};
const [from, to] = [pair(), pair()];
const dir = scratchDir('file-batch-second-look');
const files = (site: string) => ({
  certPath: path.join(dir, site, 'cert.pem'),
  keyPath: path.join(dir, site, 'key.pem'),
});

/** What the lagging site served last, and since when its files hold something else. */
const lag = { served: null as null | { cert: string; key: string }, changedAt: 0 };
let server: tls.Server;
let port: number;

beforeAll(async () => {
  for (const site of SITES) {
    mkdirSync(path.join(dir, site), { recursive: true });
    writeFileSync(files(site).certPath, from.certPem);
    writeFileSync(files(site).keyPath, from.keyPem, { mode: 0o600 });
  }
  server = tls.createServer({
    SNICallback: (name, cb) => {
      const site = name.split('.')[0]!;
      const onDisk = {
        cert: readFileSync(files(site).certPath, 'utf8'),
        key: readFileSync(files(site).keyPath, 'utf8'),
      };
      let serve = onDisk;
      if (site === LAGGING) {
        if (!lag.served) lag.served = onDisk;
        if (lag.served.cert !== onDisk.cert) {
          if (!lag.changedAt) lag.changedAt = Date.now();
          if (Date.now() - lag.changedAt < LAG_MS) serve = lag.served;
          else lag.served = onDisk;
        }
      }
      cb(null, tls.createSecureContext(serve));
    },
  });
  server.on('secureConnection', (s) => s.end());
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((r) => server?.close(r));
});

describe('a site still on its old certificate after the reload while the others serve their new ones', () => {
  it('gets a second look and binds instead of being rolled back', async () => {
    const noop = { command: '/bin/true', args: [], timeoutMs: 5_000 };
    const targets = SITES.map((site): FileReloadTarget => ({
      name: site,
      ...files(site),
      validate: noop,
      reload: noop,
      probe: {
        host: '127.0.0.1',
        port,
        servername: `${site}.${DOMAIN}`,
        caPem: ca.caCertPem,
        settleMs: 1_500,
      },
    }));
    const out = await syncAsOneBatch(targets, { from, to, name: 'lag' });
    expect(out.map((o) => [o.target, o.status, o.probe?.servedThumbprint])).toEqual(
      SITES.map((site) => [site, 'bound', to.thumbprint]),
    );
    expect(lag.changedAt).toBeGreaterThan(0); // the lagging site did serve its old certificate after the reload
  });
});
