/**
 * A real ACME CA for tests: pebble with real DNS-01 validation through pebble-challtestsrv.
 * Each start gets its own free loopback ports, its own throwaway TLS CA and its own scratch directory,
 * so test files can run in parallel. Both processes are stopped by PID.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { promisify } from 'node:util';
import { createAcmeIssuer } from '../../activities/issuers/acme';
import { createChalltestsrvDns } from '../../activities/issuers/dns-challtestsrv';
import { freePort, startProcess, tcpOpen, type Started } from './proc';
import { scratchDir, tools } from './tools';

const run = promisify(execFile);

export interface PebbleOptions {
  /** Lifetime of issued certificates, for short-lived lifecycles. Pebble's default is 5 years. */
  certificateValidityPeriodSeconds?: number;
  /**
   * Certificate profiles (draft-ietf-acme-profiles), name to description and validity in seconds. Needs a pebble
   * that has them (2.7+: tools.pebbleProfiles(), built by scripts/install-tools.sh); Debian's 2.4.0 ignores them.
   */
  profiles?: Record<string, { description: string; validityPeriod: number }>;
  /** The pebble binary; default Debian's (tools.pebble()). */
  binary?: string;
  /** Percentage of good nonces pebble rejects as bad (PEBBLE_WFE_NONCEREJECT). Default 0. */
  nonceRejectPercent?: number;
  /** Require External Account Binding; kid -> base64url HMAC key (pebble's `externalAccountMACKeys`). */
  externalAccountMACKeys?: Record<string, string>;
  /** Port pebble's VA connects to for HTTP-01 (on 127.0.0.1, via challtestsrv's A records). Default: challtestsrv's. */
  http01Port?: number;
}

export interface Pebble {
  /** `https://127.0.0.1:<port>/dir` */
  directoryUrl: string;
  /** The throwaway CA behind pebble's own HTTPS (ACME API and management), not the issuing CA. */
  caBundlePem: string;
  /** The issuing root, from management `/roots/0` (pebble makes a new one on every start). */
  rootsPem(): Promise<string>;
  /** pebble-challtestsrv's management API, `http://127.0.0.1:<port>`. */
  challtestsrvUrl: string;
  /** The DNS server pebble validates DNS-01 against (challtestsrv), on 127.0.0.1 (UDP and TCP). */
  dnsPort: number;
  /** Process ids of pebble and challtestsrv (benchmarks read their CPU use). */
  pids: { pebble: number; challtestsrv: number };
  stop(): Promise<void>;
}

export async function startPebble(opts: PebbleOptions = {}): Promise<Pebble> {
  const dir = scratchDir('pebble');
  mkdirSync(dir, { recursive: true });
  const tls = await makeTlsCertificate(dir);

  const [mgmtPort, dnsPort, httpPort, acmePort, pebbleMgmtPort] = await distinctFreePorts(5);
  const started: Started[] = [];
  const stop = async () => {
    await Promise.all(started.map((p) => p.stop()));
  };
  try {
    started.push(
      await startProcess({
        name: 'challtestsrv',
        command: tools.challtestsrv(),
        args: [
          '-management',
          `127.0.0.1:${mgmtPort}`,
          '-dns01',
          `127.0.0.1:${dnsPort}`,
          '-http01',
          `127.0.0.1:${httpPort}`,
          '-https01',
          '',
          '-tlsalpn01',
          '',
          '-defaultIPv4',
          '127.0.0.1',
          '-defaultIPv6',
          '',
        ],
        logDir: dir,
        ready: async () => (await tcpOpen(mgmtPort)) && tcpOpen(dnsPort),
      }),
    );

    const configFile = path.join(dir, 'pebble-config.json');
    writeFileSync(
      configFile,
      JSON.stringify(
        {
          pebble: {
            listenAddress: `127.0.0.1:${acmePort}`,
            managementListenAddress: `127.0.0.1:${pebbleMgmtPort}`,
            certificate: tls.certFile,
            privateKey: tls.keyFile,
            // validation ports for HTTP-01 / TLS-ALPN-01: challtestsrv's unless a test serves HTTP-01 itself
            httpPort: opts.http01Port ?? httpPort,
            tlsPort: httpPort,
            ocspResponderURL: '',
            externalAccountBindingRequired: !!opts.externalAccountMACKeys,
            ...(opts.externalAccountMACKeys ? { externalAccountMACKeys: opts.externalAccountMACKeys } : {}),
            ...(opts.certificateValidityPeriodSeconds
              ? { certificateValidityPeriod: opts.certificateValidityPeriodSeconds }
              : {}),
            ...(opts.profiles ? { profiles: opts.profiles } : {}),
          },
        },
        null,
        2,
      ),
    );
    started.push(
      await startProcess({
        name: 'pebble',
        command: opts.binary ?? tools.pebble(),
        args: ['-config', configFile, '-dnsserver', `127.0.0.1:${dnsPort}`],
        env: {
          PEBBLE_VA_NOSLEEP: '1',
          PEBBLE_WFE_NONCEREJECT: String(opts.nonceRejectPercent ?? 0),
          PEBBLE_AUTHZREUSE: '0',
          PEBBLE_VA_ALWAYS_VALID: '0', // must stay off, also if the caller's env has it: validation is real DNS-01
        },
        logDir: dir,
        ready: async () => (await tcpOpen(acmePort)) && tcpOpen(pebbleMgmtPort),
      }),
    );
  } catch (err) {
    await stop();
    throw err;
  }

  const get = (url: string) => httpsGet(url, tls.caPem);
  return {
    directoryUrl: `https://127.0.0.1:${acmePort}/dir`,
    caBundlePem: tls.caPem,
    rootsPem: () => get(`https://127.0.0.1:${pebbleMgmtPort}/roots/0`),
    challtestsrvUrl: `http://127.0.0.1:${mgmtPort}`,
    dnsPort,
    pids: { challtestsrv: started[0]!.pid, pebble: started[1]!.pid },
    stop,
  };
}

async function distinctFreePorts(n: 5): Promise<[number, number, number, number, number]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports] as [number, number, number, number, number];
}

/** A throwaway CA and a 127.0.0.1/localhost server certificate for pebble's HTTPS, made fresh per start. */
async function makeTlsCertificate(
  dir: string,
): Promise<{ caPem: string; certFile: string; keyFile: string }> {
  const openssl = tools.openssl();
  const f = (name: string) => path.join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await run(openssl, [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    f('tls-ca.key'),
    '-out',
    f('tls-ca.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=certflow test pebble TLS CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await run(openssl, [
    'req',
    '-new',
    ...ec,
    '-keyout',
    f('tls.key'),
    '-out',
    f('tls.csr'),
    '-subj',
    '/CN=localhost',
  ]);
  writeFileSync(
    f('tls.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n',
  );
  await run(openssl, [
    'x509',
    '-req',
    '-in',
    f('tls.csr'),
    '-CA',
    f('tls-ca.pem'),
    '-CAkey',
    f('tls-ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    f('tls.ext'),
    '-out',
    f('tls.pem'),
  ]);
  return { caPem: readFileSync(f('tls-ca.pem'), 'utf8'), certFile: f('tls.pem'), keyFile: f('tls.key') };
}

function httpsGet(url: string, caPem: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca: caPem }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () =>
          res.statusCode === 200 ? resolve(body) : reject(new Error(`GET ${url} answered ${res.statusCode}`)),
        );
      })
      .on('error', reject);
  });
}

/** An ACME issuer on this pebble: DNS-01 through its challtestsrv, a fresh account key (pebble forgets accounts). */
export function pebbleIssuer(pebble: Pebble, name: string): ReturnType<typeof createAcmeIssuer> {
  return createAcmeIssuer({
    name,
    directoryUrl: pebble.directoryUrl,
    accountKeyPem: generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString(),
    contactEmail: 'ops@example.test',
    dns: createChalltestsrvDns({ managementUrl: pebble.challtestsrvUrl }),
    caBundlePem: pebble.caBundlePem,
  });
}
