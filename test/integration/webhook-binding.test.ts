/**
 * The webhook binding target against a real HTTP server on loopback: the signature a consumer verifies
 * (with the standalone snippet of docs/webhook.md, not our own helper), retries on drops / 5xx / 429,
 * final failures reported as outcomes, and no key material anywhere near the request.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createWebhookTarget, type WebhookEvent } from '../../activities/bindings/webhook';
import type { BindingContext } from '../../activities/types';
import { startHttpSink, type HttpSink } from '../support/http-sink';

const SECRET = 'whsec-test-0123456789abcdef';
const OLD = '3F2A9C0D4B1E8A7765C4D3E2F1A0B9C8D7E6F504';
const NEW = 'A1B2C3D4E5F60718293A4B5C6D7E8F9001122334';

// docs/webhook.md, verbatim in substance: what a consumer runs
function verifyCertflow(secret: string, header: string, rawBody: string, toleranceSec = 300): boolean {
  const f = Object.fromEntries(header.split(',').map((kv) => kv.trim().split('=', 2)));
  const t = Number(f.t);
  if (!Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > toleranceSec) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${rawBody}`).digest();
  const given = Buffer.from(f.v1 ?? '', 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function context(): BindingContext & { material: ReturnType<typeof vi.fn> } {
  return {
    certificateId: 'kv-test/api-cert',
    version: '7f3e2d1c0b',
    thumbprint: NEW,
    previousThumbprint: OLD,
    secretId: 'https://kv-test.vault.azure.net/secrets/api-cert/7f3e2d1c0b',
    notAfter: '2027-02-01T12:00:00.000Z',
    material: vi.fn(async () => ({
      keyPem: '-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n',
      chainPem: [],
    })),
  };
}

let sink: HttpSink;
beforeAll(async () => {
  sink = await startHttpSink('/hooks/certflow?token=s3cr3t-path-token');
});
afterAll(async () => {
  await sink?.stop();
});
beforeEach(() => {
  sink.requests.length = 0;
  sink.reply = () => ({ status: 204 });
});

const target = (over: Partial<Parameters<typeof createWebhookTarget>[0]> = {}) =>
  createWebhookTarget({ name: 'cdn-puller', url: sink.url, secret: SECRET, backoffMs: 20, ...over });

describe('webhook binding target', () => {
  it('POSTs a signed event with references only, and the consumer verifies it', async () => {
    const ctx = context();
    const [outcome] = await target().sync(ctx);

    expect(outcome).toMatchObject({ target: 'cdn-puller', status: 'bound', before: OLD, after: NEW });
    expect(outcome!.binding).toBe(new URL(sink.url).origin);
    expect(JSON.stringify(outcome)).not.toContain('s3cr3t-path-token');
    expect(ctx.material).not.toHaveBeenCalled();

    expect(sink.requests).toHaveLength(1);
    const req = sink.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.headers['content-type']).toBe('application/json');
    const sig = String(req.headers['certflow-signature']);
    expect(sig).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifyCertflow(SECRET, sig, req.body)).toBe(true);
    expect(verifyCertflow('another-secret-0123456789', sig, req.body)).toBe(false);
    expect(verifyCertflow(SECRET, sig, req.body.replace(NEW, OLD))).toBe(false);

    const event = JSON.parse(req.body) as WebhookEvent;
    expect(event).toMatchObject({
      type: 'certflow.certificate.renewed',
      certificateId: 'kv-test/api-cert',
      version: '7f3e2d1c0b',
      thumbprint: NEW,
      previousThumbprint: OLD,
      secretId: ctx.secretId,
      notAfter: ctx.notAfter,
    });
    expect(req.headers['certflow-event-id']).toBe(event.id);
    expect(req.body).not.toContain('PRIVATE KEY');

    // the same certificate version is the same event for the consumer's dedupe
    await target().sync(context());
    expect((JSON.parse(sink.requests[1]!.body) as WebhookEvent).id).toBe(event.id);
  });

  it('retries a dropped connection, a 503 and a 429 with Retry-After, then reports bound', async () => {
    const script = [
      'drop' as const,
      { status: 503, body: 'maintenance' },
      { status: 429, headers: { 'retry-after': '1' } },
    ];
    sink.reply = (_req, n) => script[n] ?? { status: 200, body: 'ok' };
    const ctx = context();
    const t0 = performance.now();
    const [outcome] = await target().sync(ctx);
    const ms = performance.now() - t0;

    expect(outcome).toMatchObject({ status: 'bound', after: NEW });
    expect(outcome!.detail).toContain('attempt 4');
    expect(sink.requests).toHaveLength(4);
    expect(ms).toBeGreaterThanOrEqual(1000); // the Retry-After of the 429 was honoured
    for (const r of sink.requests)
      expect(verifyCertflow(SECRET, String(r.headers['certflow-signature']), r.body)).toBe(true);
    expect(new Set(sink.requests.map((r) => r.body)).size).toBe(1); // byte-identical body on every retry
    expect(ctx.material).not.toHaveBeenCalled();
  });

  it('reports failed with the status after maxAttempts when the consumer answers 500 forever', async () => {
    sink.reply = () => ({ status: 500, body: 'boom\r\ninjected' });
    const [outcome] = await target({ maxAttempts: 3 }).sync(context());
    expect(outcome).toMatchObject({ status: 'failed', before: OLD, after: null });
    expect(outcome!.detail).toContain('HTTP 500');
    expect(outcome!.detail).toContain('after 3 attempts');
    expect(outcome!.detail).not.toMatch(/[\r\n]/);
    expect(sink.requests).toHaveLength(3);
  });

  it('does not retry a 4xx other than 408/429, nor a redirect', async () => {
    sink.reply = () => ({ status: 404, body: 'no such hook' });
    const [notFound] = await target().sync(context());
    expect(notFound).toMatchObject({ status: 'failed' });
    expect(notFound!.detail).toContain('HTTP 404 "no such hook", not retried');

    sink.reply = () => ({ status: 307, headers: { location: 'http://127.0.0.1:1/elsewhere' } });
    const [redirected] = await target().sync(context());
    expect(redirected).toMatchObject({ status: 'failed' });
    expect(redirected!.detail).toContain('HTTP 307');
    expect(sink.requests).toHaveLength(2);
  });

  it('gives up at once when Retry-After asks for more than maxDelayMs', async () => {
    sink.reply = () => ({ status: 429, headers: { 'retry-after': '3600' } });
    const [outcome] = await target({ maxDelayMs: 5_000 }).sync(context());
    expect(outcome).toMatchObject({ status: 'failed' });
    expect(outcome!.detail).toContain('retry after 3600 s');
    expect(sink.requests).toHaveLength(1);
  });

  it('times out a consumer that never answers, and retries it', async () => {
    sink.reply = () => 'hang';
    const [outcome] = await target({ timeoutMs: 300, maxAttempts: 2 }).sync(context());
    expect(outcome).toMatchObject({ status: 'failed' });
    expect(outcome!.detail).toContain('did not answer (timeout after 300 ms), after 2 attempts');
    expect(sink.requests).toHaveLength(2);
  });

  it('refuses a weak secret and plain http to a remote host, naming the field but not the value', () => {
    expect(() => createWebhookTarget({ name: 'w', url: sink.url, secret: 'short-secret' })).toThrow(
      /webhook target "w": secret must be at least 16 characters/,
    );
    expect(() => createWebhookTarget({ name: 'w', url: sink.url, secret: 'short-secret' })).not.toThrow(
      /short-secret/,
    );
    expect(() =>
      createWebhookTarget({ name: 'w', url: 'http://consumer.example.com/hook?token=t0k', secret: SECRET }),
    ).toThrow(/url: expected an https URL .*got http:\/\/consumer\.example\.com$/);
  });
});
