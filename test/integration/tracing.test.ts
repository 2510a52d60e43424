/**
 * Tracing, opt-in: the worker service with `tracing` configured exports OTLP/HTTP to an in-process receiver (an
 * HTTP server on 127.0.0.1 that decodes the OTLP JSON it is sent). The lifecycle's workflow and activity spans
 * arrive with the configured service name and the configured header (a secret reference, resolved at start),
 * and the header's value appears in no span. The worker runs as shipped (dist/, the build's prebuilt traced
 * workflow bundle: workflow spans need the interceptors inside the bundle). In this process, the Azure SDK's spans (@azure/core-tracing, as
 * Key Vault and ARM clients make them) reach the same exporter once tracing is started.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createTracingClient } from '@azure/core-tracing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTracing } from '../../worker/tracing';
import { freePort, startProcess, waitFor, type Started } from '../support/proc';
import { repoRoot, scratchDir } from '../support/tools';

const address = inject('temporalAddress');
const namespace = inject('temporalNamespace');
const dir = scratchDir('tracing');
const ID = `tr${process.pid}/site`;
const API_KEY = `otlp-key-${randomBytes(8).toString('hex')}`;

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
  spans: { name: string; service: string; attributes: Record<string, unknown> }[];
}
const received: Received[] = [];
let receiver: http.Server;
let receiverPort: number;
let worker: Started;

/** OTLP/HTTP JSON (ExportTraceServiceRequest): resourceSpans[].scopeSpans[].spans[]. */
function decode(body: string): Received['spans'] {
  type KV = { key: string; value: Record<string, unknown> };
  const req = JSON.parse(body) as {
    resourceSpans: {
      resource: { attributes: KV[] };
      scopeSpans: { spans: { name: string; attributes?: KV[] }[] }[];
    }[];
  };
  const value = (v: Record<string, unknown>) => Object.values(v)[0];
  return req.resourceSpans.flatMap((rs) => {
    const service = String(value(rs.resource.attributes.find((a) => a.key === 'service.name')?.value ?? {}));
    return rs.scopeSpans.flatMap((ss) =>
      ss.spans.map((s) => ({
        name: s.name,
        service,
        attributes: Object.fromEntries((s.attributes ?? []).map((a) => [a.key, value(a.value)])),
      })),
    );
  });
}

const spanNames = (service: string) =>
  new Set(received.flatMap((r) => r.spans.filter((s) => s.service === service).map((s) => s.name)));

beforeAll(async () => {
  mkdirSync(dir, { recursive: true });
  receiverPort = await freePort();
  receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces')
        received.push({ headers: req.headers, body, spans: decode(body) });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => receiver.listen(receiverPort, '127.0.0.1', r));
  const httpPort = await freePort();
  const config = {
    temporal: { address, namespace },
    taskQueue: `tracing-${process.pid}-${Date.now().toString(36)}`,
    vaults: [
      {
        kind: 'local',
        name: ID.split('/')[0],
        dir: path.join(dir, 'vault'),
        encryptionKey: { env: 'CERTFLOW_TEST_VAULT_KEY' },
      },
    ],
    issuers: [{ kind: 'dev-ca', name: 'dev', dir: path.join(dir, 'dev-ca'), validity: { days: 20 } }],
    certificates: [{ id: ID, issuer: 'dev', create: { dnsNames: ['site.test'], keyType: 'EC' } }],
    http: { host: '127.0.0.1', port: httpPort },
    tracing: {
      endpoint: `http://127.0.0.1:${receiverPort}/v1/traces`,
      serviceName: 'certflow-tracing-test',
      headers: { 'x-api-key': { env: 'CERTFLOW_TEST_OTLP_KEY' } },
    },
    shutdownGraceSeconds: 2,
    log: { level: 'info', format: 'json' },
  };
  writeFileSync(path.join(dir, 'worker.json'), JSON.stringify(config, null, 2));
  worker = await startProcess({
    name: 'worker',
    command: process.execPath,
    args: ['--enable-source-maps', 'dist/worker/main.js', '--config', path.join(dir, 'worker.json')],
    cwd: repoRoot,
    env: { CERTFLOW_TEST_VAULT_KEY: randomBytes(32).toString('hex'), CERTFLOW_TEST_OTLP_KEY: API_KEY },
    logDir: dir,
    ready: async () => (await fetch(`http://127.0.0.1:${httpPort}/readyz`)).status === 200,
    readyTimeoutMs: 180_000,
  });
}, 240_000);

afterAll(async () => {
  await worker?.stop();
  await new Promise((r) => receiver?.close(r));
});

describe('tracing (OTLP/HTTP to an in-process receiver)', () => {
  it("exports the lifecycle's workflow and activity spans with the service name and the configured header", async () => {
    await waitFor(
      'workflow and activity spans',
      async () => {
        const names = spanNames('certflow-tracing-test');
        return (
          names.has('RunWorkflow:certificateLifecycle') &&
          names.has('RunActivity:observe') &&
          names.has('StartActivity:observe')
        );
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    const names = spanNames('certflow-tracing-test');
    // from dist/, the workflows came from the prebuilt traced bundle (not bundled at start)
    const loaded = readFileSync(worker.logFile, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"workflow bundle loaded"'))
      .map((l) => JSON.parse(l) as { variant?: string });
    expect(loaded.map((l) => l.variant)).toEqual(['traced']);
    // the renewal's steps, each an activity span
    for (const step of ['prepareRenewal', 'verifyAndMerge'])
      expect(names, step).toContain(`RunActivity:${step}`);
    expect(received.every((r) => r.headers['x-api-key'] === API_KEY)).toBe(true);
    expect(received.every((r) => r.headers['content-type']?.startsWith('application/json'))).toBe(true);
    const span = received.flatMap((r) => r.spans).find((s) => s.name === 'RunWorkflow:certificateLifecycle');
    expect(span?.attributes.workflowId).toBe(`certificate:${ID}`);
    // the key is sent as a header only: never in a span, nor in the worker's log
    expect(received.some((r) => r.body.includes(API_KEY))).toBe(false);
    expect(readFileSync(worker.logFile, 'utf8')).not.toContain(API_KEY);
  }, 180_000);

  it("sends the Azure SDK's spans once tracing is started in a process", async () => {
    const tracing = startTracing({
      endpoint: `http://127.0.0.1:${receiverPort}/v1/traces`,
      serviceName: 'certflow-azure-sdk-test',
      azureSdk: true,
    });
    try {
      const azure = createTracingClient({
        namespace: 'Microsoft.KeyVault',
        packageName: '@azure/keyvault-certificates',
      });
      await azure.withSpan('CertificateClient.getCertificate', {}, async () => 'ok');
    } finally {
      await tracing.shutdown();
    }
    await waitFor(
      'the Azure SDK span',
      async () => spanNames('certflow-azure-sdk-test').has('CertificateClient.getCertificate'),
      {
        timeoutMs: 10_000,
      },
    );
  });
});
