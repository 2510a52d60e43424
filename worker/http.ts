/**
 * The worker's HTTP side: /healthz (alive), /readyz (connected and polling), /metrics (Prometheus), and a hook
 * for more endpoints. A server without `ready` and `metrics` serves only its routes: the Event Grid webhook gets
 * such a listener of its own, so exposing it to Azure does not expose /metrics. Request bodies are bounded: a
 * declared length over the limit is refused before any handler runs, and `readBody` enforces it while reading.
 * Request URLs are logged without their query (a `?code=` key must never reach a log).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Handles the request and returns true, or returns false to let the next route (or a 404) answer. */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;

export interface Readiness {
  ok: boolean;
  detail: string;
}

export interface HttpServerOptions {
  host: string;
  port: number;
  /** /healthz and /readyz; without it neither is served. */
  ready?: () => Readiness;
  /** The /metrics body in the Prometheus text format; without it /metrics is not served. */
  metrics?: () => string | Promise<string>;
  routes?: RouteHandler | RouteHandler[];
  /** Default 1 MiB. */
  maxBodyBytes?: number;
  logger?: { warn(message: string, meta?: Record<string, unknown>): void };
}

export interface HttpServer {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

export class BodyTooLargeError extends Error {
  readonly status = 413;
}

/** Reads a request body, failing with BodyTooLargeError past `maxBytes`. */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      req.resume(); // drain the rest so the socket can answer
      throw new BodyTooLargeError(`request body exceeds ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

export async function startHttpServer(opts: HttpServerOptions): Promise<HttpServer> {
  const maxBody = opts.maxBodyBytes ?? 1024 * 1024;
  const routes = opts.routes === undefined ? [] : Array.isArray(opts.routes) ? opts.routes : [opts.routes];

  const { ready, metrics } = opts;
  const builtins: Record<string, (res: ServerResponse) => Promise<void> | void> = {
    ...(ready
      ? {
          '/healthz': (res: ServerResponse) => send(res, 200, 'ok\n'),
          '/readyz': (res: ServerResponse) => {
            const r = ready();
            send(res, r.ok ? 200 : 503, `${r.ok ? 'ready' : 'not ready'}: ${r.detail}\n`);
          },
        }
      : {}),
    ...(metrics
      ? {
          '/metrics': async (res: ServerResponse) =>
            send(res, 200, await metrics(), 'text/plain; version=0.0.4; charset=utf-8'),
        }
      : {}),
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxBody) {
      res.setHeader('connection', 'close');
      return send(res, 413, `request body exceeds ${maxBody} bytes\n`);
    }
    const path = (req.url ?? '/').split('?')[0]!;
    const builtin = Object.hasOwn(builtins, path) ? builtins[path] : undefined;
    if (builtin) {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('allow', 'GET, HEAD');
        return send(res, 405, `${path} answers GET only\n`);
      }
      return builtin(res);
    }
    for (const route of routes) if (await route(req, res)) return;
    send(res, 404, `no route for ${req.method} ${path}\n`);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: Error) => {
      const status = err instanceof BodyTooLargeError ? 413 : 500;
      const path = (req.url ?? '/').split('?')[0];
      opts.logger?.warn('HTTP request failed', { path, method: req.method, status, error: err });
      if (!res.headersSent) send(res, status, status === 413 ? `${err.message}\n` : 'internal error\n');
      else res.destroy();
    });
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    port,
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
