/**
 * The embedded start's demo site: a small HTTPS server serving the certificate and key files that Certflow's
 * `files` binding writes, like nginx would. It runs as its own process; SIGHUP makes it load the files again
 * (the binding's reload command), and `--check` tests a certificate and key the way the server will load them
 * (the binding's validate command, like `nginx -t`).
 *
 *   demo-site.ts --host 127.0.0.1 --port 8443 --cert site.pem --key site.key
 *   demo-site.ts --check --cert site.pem --key site.key      exit 0 when they load, 1 with the reason
 *
 * Until the first certificate is written it refuses TLS handshakes; every page shows what it serves.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    check: { type: 'boolean', default: false },
    cert: { type: 'string' },
    key: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '8443' },
  },
});
if (!args.cert || !args.key) {
  process.stderr.write('demo-site: --cert <file> and --key <file> are required\n');
  process.exit(2);
}
const certFile = args.cert;
const keyFile = args.key;

interface Loaded {
  context: tls.SecureContextOptions;
  leaf: X509Certificate;
}

/** Reads both files and checks that they make a TLS context; the error says which part failed. */
function load(): Loaded {
  const cert = readFileSync(certFile);
  const key = readFileSync(keyFile);
  const context = { cert, key };
  tls.createSecureContext(context); // throws on a key that does not match the certificate
  return { context, leaf: new X509Certificate(cert) };
}

if (args.check) {
  try {
    const { leaf } = load();
    process.stdout.write(`ok: ${leaf.subject.replace(/\n/g, ', ')}, valid to ${leaf.validTo}\n`);
    process.exit(0);
  } catch (err) {
    process.stderr.write(`demo-site --check: ${(err as Error).message}\n`);
    process.exit(1);
  }
}

let current: Loaded | undefined;
const server = https.createServer({}, (req, res) => {
  const leaf = current?.leaf;
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>Certflow demo site</title><style>body{font:15px system-ui,sans-serif;margin:2em}</style>
<h1>Certflow demo site</h1>
<p>This page is served with a certificate that Certflow renews and re-binds by itself.</p>
<table><tr><td>SHA-1 thumbprint</td><td><code>${leaf?.fingerprint.replace(/:/g, '') ?? ''}</code></td></tr>
<tr><td>valid from</td><td>${leaf?.validFrom ?? ''}</td></tr>
<tr><td>valid to</td><td>${leaf?.validTo ?? ''}</td></tr>
<tr><td>serial</td><td><code>${leaf?.serialNumber ?? ''}</code></td></tr></table>`);
});

function reload(why: string): void {
  try {
    const next = load();
    server.setSecureContext(next.context);
    current = next;
    process.stdout.write(`${why}: serving ${next.leaf.fingerprint.replace(/:/g, '')}\n`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // before the first binding there is nothing to serve yet: not an error
    if (code === 'ENOENT') process.stdout.write(`${why}: no certificate yet (${certFile})\n`);
    else process.stderr.write(`${why}: keeping the previous certificate: ${(err as Error).message}\n`);
  }
}

process.on('SIGHUP', () => reload('reload'));
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
server.on('tlsClientError', () => undefined);
reload('start');
server.listen(Number(args.port), args.host, () => {
  process.stdout.write(`listening on https://${args.host}:${args.port}/\n`);
});
