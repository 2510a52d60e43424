/**
 * HTTP-01 answers for names whose port 80 we serve: files under a web server's document root
 * (`<webroot>/.well-known/acme-challenge/<token>`, written atomically), or a tiny built-in HTTP server
 * for hosts where nothing else listens on port 80 (or a reverse proxy forwards that path to it).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';

export interface Http01Provider {
  /** Serve `keyAuthorization` at `http://<host>/.well-known/acme-challenge/<token>`. Idempotent. */
  present(host: string, token: string, keyAuthorization: string): Promise<void>;
  /** Stop serving it. Idempotent. */
  cleanup(host: string, token: string): Promise<void>;
}

const PREFIX = '/.well-known/acme-challenge/';

/** ACME tokens are base64url (RFC 8555 8.1); anything else could escape the challenge directory. */
function checkedToken(token: string): string {
  if (!/^[A-Za-z0-9_-]{1,256}$/.test(token)) {
    throw ApplicationFailure.create({
      message: 'ACME HTTP-01 token is not base64url: refusing to use it as a file or path name',
      type: 'AcmeBadToken',
      nonRetryable: true,
    });
  }
  return token;
}

export interface WebrootHttp01Options {
  /** The document root of every name, or one per host name (lowercase); a host not listed is an error. */
  webroot: string | Record<string, string>;
}

export function createWebrootHttp01({ webroot }: WebrootHttp01Options): Http01Provider {
  function fileOf(host: string, token: string): string {
    const root = typeof webroot === 'string' ? webroot : webroot[host.toLowerCase()];
    if (!root) {
      throw ApplicationFailure.create({
        message: `HTTP-01 webroot has no document root for host '${host}' (configured: ${Object.keys(webroot).join(', ')})`,
        type: 'InvalidIssuerConfig',
        nonRetryable: true,
      });
    }
    return path.join(root, PREFIX, checkedToken(token));
  }
  return {
    async present(host, token, keyAuthorization) {
      const file = fileOf(host, token);
      await mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
      // a web server must never serve a half-written answer: write aside, then rename over
      const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
      try {
        await writeFile(tmp, keyAuthorization, { mode: 0o644 });
        await rename(tmp, file);
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
    },
    async cleanup(host, token) {
      await rm(fileOf(host, token), { force: true });
    },
  };
}

export interface Http01Server extends Http01Provider {
  /** `http://<host>:<port>` as bound. */
  url: string;
  port: number;
  close(): Promise<void>;
}

export interface Http01ServerOptions {
  /** Address to bind: '0.0.0.0' or '::' to answer the CA directly, 127.0.0.1 behind a reverse proxy. */
  host: string;
  /** 80 to answer the CA directly; 0 picks a free port. */
  port: number;
}

/** Serves only the answers presented to it (GET/HEAD on the challenge path); everything else is 404. */
export async function startHttp01Server(opts: Http01ServerOptions): Promise<Http01Server> {
  const answers = new Map<string, string>();
  const server = http.createServer((req, res) => {
    req.resume();
    const url = req.url ?? '';
    const answer = url.startsWith(PREFIX) ? answers.get(url.slice(PREFIX.length)) : undefined;
    if ((req.method !== 'GET' && req.method !== 'HEAD') || answer === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(answer) });
    res.end(req.method === 'HEAD' ? undefined : answer);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  const hostPart = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${hostPart}:${port}`,
    port,
    async present(_host, token, keyAuthorization) {
      answers.set(checkedToken(token), keyAuthorization);
    },
    async cleanup(_host, token) {
      answers.delete(token);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
