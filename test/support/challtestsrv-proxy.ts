/**
 * pebble-challtestsrv's management API behind a recording proxy: every DNS-01 answer published (`/set-txt`) is kept
 * (one per ACME order: pebble makes new authorizations per order, so distinct values count orders), and publishing
 * can be held back (`holding`) to stop an issuance at that step. Used by the crash-recovery test and the chaos suite.
 */
import http from 'node:http';
import { freePort } from './proc';

export interface PublishedTxt {
  at: number;
  host: string;
  value: string;
}

export interface ChalltestsrvProxy {
  /** The management URL to configure (`dns.managementUrl`). */
  url: string;
  /** Every TXT answer published through the proxy, in order. */
  txt: PublishedTxt[];
  /** While true, `/set-txt` calls wait (unanswered) until `release()`. */
  holding: boolean;
  /** How many `/set-txt` calls wait. */
  held(): number;
  /** Sends the waiting calls on. */
  release(): void;
  close(): Promise<void>;
}

export async function startChalltestsrvProxy(upstreamUrl: string): Promise<ChalltestsrvProxy> {
  const upstream = new URL(upstreamUrl);
  const waiting: Array<() => void> = [];
  const proxy: ChalltestsrvProxy = {
    url: '',
    txt: [],
    holding: false,
    held: () => waiting.length,
    release: () => {
      for (const send of waiting.splice(0)) send();
    },
    close: () =>
      new Promise<void>((r) => {
        proxy.release();
        server.close(() => r());
      }),
  };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const forward = () => {
        if (req.url === '/set-txt') {
          const b = JSON.parse(body) as { host?: string; value?: string };
          proxy.txt.push({ at: Date.now(), host: String(b.host), value: String(b.value) });
        }
        const out = http.request(
          {
            host: upstream.hostname,
            port: upstream.port,
            path: req.url,
            method: req.method,
            headers: req.headers,
          },
          (r) => {
            res.writeHead(r.statusCode ?? 502, r.headers);
            r.pipe(res);
          },
        );
        out.on('error', () => res.destroy());
        out.end(body);
      };
      if (proxy.holding && req.url === '/set-txt') waiting.push(forward);
      else forward();
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  proxy.url = `http://127.0.0.1:${port}`;
  return proxy;
}
