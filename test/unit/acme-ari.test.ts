/**
 * ARI (RFC 9773). Debian's pebble 2.4 has no renewalInfo endpoint (its directory lacks it; see the pebble
 * test asserting null), so the HTTP side is tested here against a small scripted ACME directory server of
 * ours; the certificate id is checked against RFC 9773's own example, rebuilt with openssl.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAcmeIssuer } from '../../activities/issuers/acme';
import { ariCertId } from '../../activities/issuers/acme-ari';
import { accountKey, failureOf } from '../support/acme';
import { freePort } from '../support/proc';
import { tools } from '../support/tools';

const run = promisify(execFile);
// RFC 9773 section 4.1: AKI keyIdentifier 69:88:5B:... and serial 0x87654321 (DER 00 87 65 43 21)
const RFC_AKI = '69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4';
const RFC_ID = 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE';

/** A leaf signed by a CA whose subject key id is `ski`, with the given serial (openssl, independent of us). */
async function leafWith(dir: string, ski: string, serial: string): Promise<string> {
  const openssl = tools.openssl();
  const f = (n: string) => path.join(dir, n);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await run(openssl, [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
    '-days',
    '1',
    '-subj',
    '/CN=ari test CA',
    '-addext',
    `subjectKeyIdentifier=${ski}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
  ]);
  await run(openssl, [
    'req',
    '-new',
    ...ec,
    '-keyout',
    f('leaf.key'),
    '-out',
    f('leaf.csr'),
    '-subj',
    '/CN=ari.example',
  ]);
  await writeFile(f('leaf.ext'), 'authorityKeyIdentifier=keyid:always\nsubjectAltName=DNS:ari.example\n');
  await run(openssl, [
    'x509',
    '-req',
    '-in',
    f('leaf.csr'),
    '-CA',
    f('ca.pem'),
    '-CAkey',
    f('ca.key'),
    '-set_serial',
    serial,
    '-days',
    '1',
    '-extfile',
    f('leaf.ext'),
    '-out',
    f('leaf.pem'),
  ]);
  return readFile(f('leaf.pem'), 'utf8');
}

describe('ARI certificate id', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'certflow-ari-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("matches RFC 9773's example (serial with the top bit set keeps its 0x00 sign byte)", async () => {
    expect(ariCertId(await leafWith(dir, RFC_AKI, '0x87654321'))).toBe(RFC_ID);
  });

  it('a serial without the top bit set has no extra byte', async () => {
    expect(ariCertId(await leafWith(dir, RFC_AKI, '0x12345678'))).toBe('aYhba4dGQEHhs3uEe6CuLN4ByNQ.EjRWeA');
  });

  it('garbage is refused non-retryable', () => {
    let err: unknown;
    try {
      ariCertId('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    } catch (e) {
      err = e;
    }
    expect((err as { type?: string }).type).toBe('AriBadCertificate');
  });
});

describe('renewalWindow against a scripted ACME server with renewalInfo', () => {
  let server: http.Server;
  let base: string;
  let leafPem: string;
  let dir: string;
  let withAri = true;
  let answer: { status: number; body?: unknown; retryAfter?: string } = { status: 200 };
  const seen: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'certflow-ari-'));
    leafPem = await leafWith(dir, RFC_AKI, '0x87654321');
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    server = http.createServer((req, res) => {
      req.resume();
      seen.push(req.url ?? '');
      res.setHeader('content-type', 'application/json');
      if (req.url === '/dir') {
        res.end(
          JSON.stringify({
            newNonce: `${base}/nonce`,
            newAccount: `${base}/acct`,
            newOrder: `${base}/order`,
            ...(withAri ? { renewalInfo: `${base}/renewal-info/` } : {}),
          }),
        );
        return;
      }
      res.statusCode = answer.status;
      if (answer.retryAfter) res.setHeader('retry-after', answer.retryAfter);
      if (answer.status >= 400) res.setHeader('content-type', 'application/problem+json');
      res.end(JSON.stringify(answer.body ?? {}));
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  });
  afterAll(async () => {
    await new Promise((r) => server?.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  const issuer = () =>
    createAcmeIssuer({
      name: 'ari',
      directoryUrl: `${base}/dir`,
      accountKeyPem: accountKey(),
      dns: { present: async () => {}, cleanup: async () => {} },
    });
  const window = { start: '2030-01-02T00:00:00Z', end: '2030-01-03T12:00:00Z' };

  it('returns the suggested window, explanation URL and Retry-After, from GET <renewalInfo>/<cert id>', async () => {
    withAri = true;
    answer = {
      status: 200,
      retryAfter: '21600',
      body: { suggestedWindow: window, explanationURL: 'https://ca.example/incident/1' },
    };
    seen.length = 0;
    expect(await issuer().renewalWindow(leafPem)).toEqual({
      start: '2030-01-02T00:00:00.000Z',
      end: '2030-01-03T12:00:00.000Z',
      explanationUrl: 'https://ca.example/incident/1',
      retryAfterSeconds: 21600,
    });
    expect(seen).toEqual(['/dir', `/renewal-info/${RFC_ID}`]);
  });

  it('without Retry-After, asks again in 6 hours; one issuer reads the directory once', async () => {
    answer = { status: 200, body: { suggestedWindow: window } };
    seen.length = 0;
    const ari = issuer();
    const w = await ari.renewalWindow(leafPem);
    expect(w?.retryAfterSeconds).toBe(21600);
    expect(w?.explanationUrl).toBeUndefined();
    await ari.renewalWindow(leafPem);
    expect(seen.filter((u) => u === '/dir')).toHaveLength(1);
  });

  it('404 (the CA does not know this certificate) gives null', async () => {
    answer = {
      status: 404,
      body: { type: 'urn:ietf:params:acme:error:malformed', detail: 'unknown cert', status: 404 },
    };
    expect(await issuer().renewalWindow(leafPem)).toBeNull();
  });

  it('a 503 with Retry-After is retryable with nextRetryDelay; a malformed window is retryable AriBadAnswer', async () => {
    answer = {
      status: 503,
      retryAfter: '30',
      body: { type: 'urn:ietf:params:acme:error:serverInternal', detail: 'ARI is resting', status: 503 },
    };
    const f = await failureOf(issuer().renewalWindow(leafPem));
    expect(f.type).toBe('AcmeServerInternal');
    expect(f.nonRetryable).toBe(false);
    expect(String(f.nextRetryDelay)).toBe('30s');
    expect(f.message).toContain('ARI is resting');
    expect(f.message).toContain(`/renewal-info/${RFC_ID}`);

    answer = { status: 200, body: { suggestedWindow: { start: window.end, end: window.start } } };
    const bad = await failureOf(issuer().renewalWindow(leafPem));
    expect(bad.type).toBe('AriBadAnswer');
    expect(bad.nonRetryable).toBe(false);
  });

  it('a directory without renewalInfo gives null and no ARI request', async () => {
    withAri = false;
    seen.length = 0;
    expect(await issuer().renewalWindow(leafPem)).toBeNull();
    expect(seen).toEqual(['/dir']);
  });
});
