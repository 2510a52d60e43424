/** The worker's HTTP endpoints and Certflow's Prometheus families, in-process on a loopback port. */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CertificateState } from '../../activities/types';
import { readBody, startHttpServer, type HttpServer } from '../../worker/http';
import { createMetrics, fetchSdkMetrics, metricsEndpoint } from '../../worker/metrics';
import { freePort } from '../support/proc';

const state = (id: string, notAfter: string | null) => ({ id, notAfter }) as CertificateState;

describe('metrics', () => {
  const at = new Date('2026-05-01T00:00:00.000Z');
  const bare = () => createMetrics({ defaultMetrics: false, now: () => at });

  it("renders Certflow's families in the text format, labels escaped", async () => {
    const m = bare();
    m.sink.observed(state('kv/a', '2026-06-01T00:00:00.000Z'));
    m.sink.observed(state('kv/"b"\\', '2026-07-01T00:00:00.000Z'));
    m.sink.renewed('kv/a');
    m.sink.renewed('kv/a');
    m.sink.failed('kv/a', 'AcmeRateLimited');
    m.sink.escalated?.('kv/a');
    m.sink.bindings('kv/a', [
      { target: 'nginx', binding: 'x', before: null, after: 'AB', status: 'bound', detail: '' },
      { target: 'nginx', binding: 'y', before: null, after: null, status: 'failed', detail: '' },
      { target: 'nginx', binding: 'x', before: 'AB', after: 'AB', status: 'bound', detail: '' },
    ]);
    const text = await m.render();
    expect(text).toContain('# TYPE certflow_certificate_expiration_timestamp_seconds gauge\n');
    expect(text).toContain(
      'certflow_certificate_expiration_timestamp_seconds{certificate="kv/a",vault="kv"} 1780272000\n',
    );
    expect(text).toContain(
      'certflow_certificate_expiration_timestamp_seconds{certificate="kv/\\"b\\"\\\\",vault="kv"} 1782864000\n',
    );
    expect(text).toContain('certflow_renewals_total{certificate="kv/a",vault="kv",result="success"} 2\n');
    expect(text).toContain('certflow_renewals_total{certificate="kv/a",vault="kv",result="failure"} 1\n');
    expect(text).toContain(
      'certflow_renewal_failures_total{certificate="kv/a",vault="kv",reason="AcmeRateLimited"} 1\n',
    );
    expect(text).toContain(
      'certflow_certificate_last_renewal_timestamp_seconds{certificate="kv/a",vault="kv"} 1777593600\n',
    );
    expect(text).toContain('certflow_escalations_total{certificate="kv/a",vault="kv"} 1\n');
    expect(text).toContain(
      'certflow_binding_syncs_total{certificate="kv/a",target="nginx",binding="x",result="bound"} 2\n',
    );
    expect(text).toContain(
      'certflow_binding_syncs_total{certificate="kv/a",target="nginx",binding="y",result="failed"} 1\n',
    );
    expect(text).toContain(
      'certflow_binding_failing_since_timestamp_seconds{certificate="kv/a",target="nginx",binding="y"} 1777593600\n',
    );
    expect(text).not.toMatch(/binding_failing_since[^\n]*binding="x"/);
  });

  it('keeps the first failure of a binding as its failing-since time, and drops it once the binding takes', async () => {
    let t = at;
    const m = createMetrics({ defaultMetrics: false, now: () => t });
    const out = (status: 'failed' | 'bound') => [
      { target: 'gw', binding: 'app-gateway', before: null, after: null, status, detail: '' },
    ];
    m.sink.bindings('kv/a', out('failed'));
    t = new Date(at.getTime() + 3_600_000);
    m.sink.bindings('kv/a', out('failed'));
    expect(await m.render()).toContain(
      'certflow_binding_failing_since_timestamp_seconds{certificate="kv/a",target="gw",binding="app-gateway"} 1777593600\n',
    );
    m.sink.bindings('kv/a', out('bound'));
    expect(await m.render()).not.toMatch(/^certflow_binding_failing_since_timestamp_seconds\{/m);
  });

  it('drops the expiry of a certificate that has none any more', async () => {
    const m = bare();
    m.sink.observed(state('kv/a', '2026-06-01T00:00:00.000Z'));
    m.sink.observed(state('kv/a', null));
    expect(await m.render()).not.toContain('certificate="kv/a"');
  });

  it('reads the fleet when scraped: phase, expiry and renewal time of every running lifecycle, cached', async () => {
    const m = bare();
    let calls = 0;
    const row = (id: string, phase: string | null, expiresAt: string | null) => ({
      certificateId: id,
      workflowId: `certificate:${id}`,
      vault: id.split('/')[0]!,
      issuer: 'acme',
      phase,
      expiresAt,
      renewAt: expiresAt ? '2026-05-20T00:00:00.000Z' : null,
      thumbprint: 'AB',
    });
    m.watchFleet({
      list: async () => {
        calls++;
        return [
          row('kv/a', 'Waiting', '2026-06-01T00:00:00.000Z'),
          row('kv/b', 'Failing', '2026-05-03T00:00:00.000Z'),
          row('kv/c', 'Waiting', null),
        ] as never;
      },
    });
    const text = await m.render();
    expect(text).toContain('certflow_certificates{phase="Waiting"} 2\n');
    expect(text).toContain('certflow_certificates{phase="Failing"} 1\n');
    expect(text).toContain('certflow_certificates{phase="Renewing"} 0\n');
    expect(text).toContain('certflow_certificate_phase{certificate="kv/b",vault="kv",phase="Failing"} 1\n');
    expect(text).toContain(
      'certflow_certificate_expiration_timestamp_seconds{certificate="kv/b",vault="kv"} 1777766400\n',
    );
    expect(text).toContain(
      'certflow_certificate_renewal_timestamp_seconds{certificate="kv/a",vault="kv"} 1779235200\n',
    );
    expect(text).not.toContain('certflow_certificate_expiration_timestamp_seconds{certificate="kv/c"');
    await m.render();
    expect(calls).toBe(1);
  });

  it('keeps an observed expiry the listing has not caught up with, and drops it when the lifecycle is gone', async () => {
    const m = bare();
    let rows = [
      {
        certificateId: 'kv/a',
        workflowId: 'certificate:kv/a',
        vault: 'kv',
        phase: 'Renewing',
        expiresAt: null,
      },
    ];
    m.watchFleet({ list: async () => rows as never, cacheSeconds: 0 });
    m.sink.observed(state('kv/a', '2026-06-01T00:00:00.000Z'));
    expect(await m.render()).toContain(
      'certflow_certificate_expiration_timestamp_seconds{certificate="kv/a",vault="kv"} 1780272000\n',
    );
    rows = [];
    expect(await m.render()).not.toContain('certflow_certificate_expiration_timestamp_seconds{');
  });

  it('keeps the last fleet and counts the error when visibility cannot be read or hangs', async () => {
    const m = bare();
    m.watchFleet({ list: () => Promise.reject(new Error('unavailable')), cacheSeconds: 0 });
    const text = await m.render();
    expect(text).toContain('certflow_fleet_listing_errors_total 1\n');
    m.watchFleet({ list: () => new Promise(() => {}), cacheSeconds: 0, timeoutMs: 50 });
    expect(await m.render()).toContain('certflow_fleet_listing_errors_total 2\n');
  });

  it('says whether each Worker polls', async () => {
    const m = bare();
    m.watchWorkers(() => [
      { taskQueue: 'certflow', polling: true },
      { taskQueue: 'certflow-issuer-acme', polling: false },
    ]);
    const text = await m.render();
    expect(text).toContain('certflow_worker_polling{task_queue="certflow"} 1\n');
    expect(text).toContain('certflow_worker_polling{task_queue="certflow-issuer-acme"} 0\n');
  });

  it('serves process and Node runtime metrics by default', async () => {
    const text = await createMetrics().render();
    for (const name of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_seconds',
    ])
      expect(text).toContain(`# TYPE ${name} `);
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
    expect(r.body).toMatch(/^# HELP certflow_/m);
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
