/**
 * Raw HTTPS requests to the test Key Vault, as the recordings show them (method, path, api-version, JSON body),
 * for the conformance tests: the SDK hides status codes, headers and which fields were present.
 */
import https from 'node:https';
import type { TestKeyVault } from './keyvault';

export const API_VERSION = '2025-07-01';

export interface RawAnswer {
  status: number;
  headers: Record<string, string | undefined>;
  // the service's JSON, whatever its shape: tests read fields out of it freely
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: Record<string, any>;
}

export type RawRequest = (
  method: string,
  path: string,
  body?: unknown,
  opts?: { token?: boolean; query?: string },
) => Promise<RawAnswer>;

/** `path` without the query; `opts.query` is appended after api-version; `token: false` sends none. */
export function rawKeyVault(kv: TestKeyVault): RawRequest {
  return (method, path, body, opts = {}) =>
    new Promise((resolve, reject) => {
      const url = path.startsWith('https://')
        ? new URL(path)
        : new URL(`${kv.url}${path}?api-version=${API_VERSION}${opts.query ? `&${opts.query}` : ''}`);
      const text = body === undefined ? undefined : JSON.stringify(body);
      const req = https.request(
        url,
        {
          method,
          ca: kv.caPem,
          headers: {
            Accept: 'application/json',
            ...(opts.token === false ? {} : { Authorization: `Bearer ${kv.entra.mintToken().token}` }),
            ...(text !== undefined
              ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }
              : { 'Content-Length': 0 }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const raw = Buffer.concat(chunks).toString('utf8');
            resolve({
              status: res.statusCode ?? 0,
              headers: Object.fromEntries(
                Object.entries(res.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : v]),
              ),
              body: raw ? (JSON.parse(raw) as Record<string, unknown>) : {},
            });
          });
        },
      );
      req.on('error', reject);
      req.end(text);
    });
}
