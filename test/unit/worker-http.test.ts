/** The worker's HTTP endpoints and Certflow's Prometheus families, in-process on a loopback port. */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CertificateState } from '../../activities/types';
import { readBody, startHttpServer, type HttpServer } from '../../worker/http';
import { createMetrics, fetchSdkMetrics, metricsEndpoint } from '../../worker/metrics';
import { freePort } from '../support/proc';

const state = (id: string, notAfter: string | null) => ({ id, notAfter }) as CertificateState;

describe('metrics', () => {
  it('renders the four families in the text format, labels escaped', () => {
    const m = createMetrics();
    m.sink.observed(state('kv/a', '2026-06-01T00:00:00.000Z'));
    m.sink.observed(state('kv/"b"\\', '2026-07-01T00:00:00.000Z'));
    m.sink.renewed('kv/a');
    m.sink.renewed('kv/a');
    m.sink.failed('kv/a', 'AcmeRateLimited');
    m.sink.bindings('kv/a', [
      { target: 'nginx', binding: 'x', before: null, after: 'AB', status: 'bound', detail: '' },
      { target: 'nginx', binding: 'y', before: null, after: null, status: 'failed', detail: '' },
      { target: 'nginx', binding: 'z', before: 'AB', after: 'AB', status: 'bound', detail: '' },
    ]);
    const text = m.render();
    expect(text).toContain('# TYPE certflow_certificate_expiry_timestamp_seconds gauge\n');
    expect(text).toContain('certflow_certificate_expiry_timestamp_seconds{certificate="kv/a"} 1780272000\n');
    expect(text).toContain(
      'certflow_certificate_expiry_timestamp_seconds{certificate="kv/\\"b\\"\\\\"} 1782864000\n',
    );
    expect(text).toContain('certflow_renewals_total{certificate="kv/a",status="renewed"} 2\n');
    expect(text).toContain('certflow_renewals_total{certificate="kv/a",status="failed"} 1\n');
    expect(text).toContain('certflow_renewal_failures_total{reason="AcmeRateLimited"} 1\n');
    expect(text).toContain('certflow_binding_syncs_total{target="nginx",status="bound"} 2\n');
    expect(text).toContain('certflow_binding_syncs_total{target="nginx",status="failed"} 1\n');
  });

  it('drops the expiry of a certificate that has none any more', () => {
    const m = createMetrics();
    m.sink.observed(state('kv/a', '2026-06-01T00:00:00.000Z'));
    m.sink.observed(state('kv/a', null));
    expect(m.render()).not.toContain('certificate="kv/a"');
  });

  it('says so in a comment when the SDK exporter cannot be read', async () => {
    const port = await freePort();
    expect(await fetchSdkMetrics(`http://127.0.0.1:${port}/metrics`)).toMatch(
      /^# temporal SDK metrics unavailable: .+\n$/,
    );
  });
});

describe('startHttpServer', () => {
  let server: HttpServer;
  let ready = { ok: false, detail: 'starting' };
  let sdk: http.Server;

  beforeAll(async () => {
    const sdkPort = await freePort();
    sdk = http.createServer((_req, res) => res.end('temporal_worker_start{task_queue="q"} 1'));
    await new Promise<void>((r) => sdk.listen(sdkPort, '127.0.0.1', r));
    const metrics = createMetrics();
    server = await startHttpServer({
      host: '127.0.0.1',
      port: await freePort(),
      ready: () => ready,
      metrics: metricsEndpoint(metrics, `http://127.0.0.1:${sdkPort}/metrics`),
      maxBodyBytes: 64,
      routes: [
        async (req, res) => {
          if (req.url !== '/echo') return false;
          const body = await readBody(req, 64);
          res.end(body);
          return true;
        },
      ],
    });
  });
  afterAll(async () => {
    await server?.close();
    await new Promise((r) => sdk?.close(r));
  });

  const call = async (path: string, init?: RequestInit) => {
    const res = await fetch(`${server.url}${path}`, init);
    return { status: res.status, body: await res.text(), type: res.headers.get('content-type') };
  };

  it('answers /healthz always and /readyz by the readiness function', async () => {
    expect(await call('/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
    expect(await call('/readyz')).toMatchObject({ status: 503, body: 'not ready: starting\n' });
    ready = { ok: true, detail: 'polling q' };
    expect(await call('/readyz')).toMatchObject({ status: 200, body: 'ready: polling q\n' });
  });

  it('serves Certflow metrics followed by the SDK text', async () => {
    const r = await call('/metrics');
    expect(r.type).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(r.body).toMatch(/^# HELP certflow_/);
    expect(r.body.endsWith('temporal_worker_start{task_queue="q"} 1\n')).toBe(true);
  });

  it('hands other paths to the routes, and 404s what nobody handles', async () => {
    expect(await call('/echo', { method: 'POST', body: 'hello' })).toMatchObject({
      status: 200,
      body: 'hello',
    });
    expect((await call('/nope')).status).toBe(404);
    expect((await call('/metrics', { method: 'POST', body: 'x' })).status).toBe(405);
  });

  it('logs a failed request by its path, never its query (a ?code= key)', async () => {
    const warned: string[] = [];
    const s = await startHttpServer({
      host: '127.0.0.1',
      port: await freePort(),
      routes: () => {
        throw new Error('boom');
      },
      logger: { warn: (m, meta) => void warned.push(`${m} ${JSON.stringify(meta)}`) },
    });
    try {
      const res = await fetch(`${s.url}/eventgrid?code=key-that-must-not-be-logged-0123456789`);
      expect(res.status).toBe(500);
      expect(warned.join('\n')).toContain('"path":"/eventgrid"');
      expect(warned.join('\n')).not.toContain('key-that-must-not-be-logged');
      // a server without ready and metrics serves its routes only: no /metrics, /healthz or /readyz
      for (const p of ['/metrics', '/healthz', '/readyz'])
        expect((await fetch(`${s.url}${p}`)).status).toBe(500); // handed to the (throwing) route
    } finally {
      await s.close();
    }
  });

  it('refuses bodies over the limit, declared or streamed', async () => {
    expect((await call('/echo', { method: 'POST', body: 'x'.repeat(65) })).status).toBe(413);
    const streamed = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode('y'.repeat(40)));
        c.enqueue(new TextEncoder().encode('y'.repeat(40)));
        c.close();
      },
    });
    const r = await call('/echo', { method: 'POST', body: streamed, duplex: 'half' } as RequestInit);
    expect(r.status).toBe(413);
  });
});
