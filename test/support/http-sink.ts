/**
 * A real HTTP server on a free loopback port that records every request (headers and raw body) and answers
 * as the test scripts it: a status with headers and body, a dropped connection, or no answer at all.
 * Stands in for webhook consumers and for Slack / Teams incoming webhooks.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import { freePort } from './proc';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export type Reply =
  | { status: number; headers?: Record<string, string>; body?: string }
  /** Close the connection without an answer (a network error for the client). */
  | 'drop'
  /** Never answer (the client's timeout fires). */
  | 'hang';

export interface HttpSink {
  url: string;
  requests: ReceivedRequest[];
  /** Decides the answer to each request; `n` counts from 0. Default: 204. */
  reply: (req: ReceivedRequest, n: number) => Reply;
  stop(): Promise<void>;
}

export async function startHttpSink(path = '/hook'): Promise<HttpSink> {
  const sockets = new Set<Socket>();
  const sink: HttpSink = {
    url: '',
    requests: [],
    reply: () => ({ status: 204 }),
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const received: ReceivedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      sink.requests.push(received);
      const r = sink.reply(received, sink.requests.length - 1);
      if (r === 'drop') return req.socket.destroy();
      if (r === 'hang') return;
      res.writeHead(r.status, r.headers);
      res.end(r.body ?? '');
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await freePort();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  sink.url = `http://127.0.0.1:${port}${path}`;
  return sink;
}
