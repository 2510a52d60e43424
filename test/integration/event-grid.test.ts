/**
 * The Event Grid webhook on a real node:http server, with payloads shaped like the published Key Vault samples
 * (test/fixtures/eventgrid), signalling real lifecycles on the Temporal dev server. Activities and vault are
 * in-memory (test/support/fake-lifecycle.ts): the endpoint is under test here.
 */
import { Client, Connection } from '@temporalio/client';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createEventGridHandler, type EventGridHandler, type EventResult } from '../../client/event-grid';
import type { certificateLifecycle } from '../../workflows/lifecycle';
import { historyQuery, SA, statusQuery, workflowIdFor } from '../../workflows/messages';
import {
  createMemoryVault,
  fakeActivities,
  startFakeWorker,
  terminateVaultLifecycles,
} from '../support/fake-lifecycle';
import { freePort, waitFor } from '../support/proc';
import { repoRoot } from '../support/tools';

const address = inject('temporalAddress');
const namespace = inject('temporalNamespace');
const V = `eg${Date.now().toString(36)}`;
const taskQueue = `event-grid-test-${V}`;
const KEY = 'test-shared-key-of-32-characters-0123456789';
const MAX_BODY = 16 * 1024;

const vault = createMemoryVault(V);
for (const n of ['site', 'synced', 'lapsed', 'cloud', 'dup', 'batch-a', 'batch-b', 'old', 'cool'])
  vault.add(n);
const fake = fakeActivities(new Map([[V, vault]]));

type Entry = { level: string; message: string; fields?: Record<string, unknown> };
const logged: Entry[] = [];
const log = {
  info: (message: string, fields?: Record<string, unknown>) =>
    void logged.push({ level: 'info', message, fields }),
  warn: (message: string, fields?: Record<string, unknown>) =>
    void logged.push({ level: 'warn', message, fields }),
  error: (message: string, fields?: Record<string, unknown>) =>
    void logged.push({ level: 'error', message, fields }),
};

let client: Client;
let deadClient: Client;
let worker: { stop(): Promise<void> };
const servers: http.Server[] = [];

/** A server on a free loopback port; requests the handler does not take get 404. */
async function serve(handler: EventGridHandler): Promise<string> {
  const server = http.createServer((req, res) => {
    void handler(req, res).then((handled) => {
      if (!handled) {
        res.statusCode = 404;
        res.end();
      }
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  servers.push(server);
  return `http://127.0.0.1:${port}`;
}

const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(path.join(repoRoot, 'test/fixtures/eventgrid', name), 'utf8'));

/** A fixture's Key Vault event for another certificate, with an event id of its own. */
function eventFor(name: string, certificate: string, id: string): Record<string, unknown> {
  const raw = fixture(name);
  const e = structuredClone(Array.isArray(raw) ? raw[0] : raw) as Record<string, unknown> & {
    data: Record<string, unknown>;
  };
  e.id = id;
  e.subject = certificate;
  e.data.ObjectName = certificate;
  e.data.Id = String(e.data.Id).replace(/certificates\/[^/]+/, `certificates/${certificate}`);
  return e;
}

let base: string;
const url = (q = '') => `${base}/eventgrid${q}`;
/** A delivery with the key in the aeg-sas-key header (pass `{ 'aeg-sas-key': '' }` to send none). */
const post = (body: unknown, headers: Record<string, string> = {}, q?: string, to = base) =>
  fetch(`${to}/eventgrid${q ?? ''}`, {
    method: 'POST',
    headers: Object.fromEntries(
      Object.entries({ 'content-type': 'application/json', 'aeg-sas-key': KEY, ...headers }).filter(
        ([, v]) => v !== '',
      ),
    ),
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
const NO_KEY = { 'aeg-sas-key': '' };

/** The event as it comes for the certificate's current version (the fake vault's first version is v1). */
function current<T>(body: T, version = 'v1'): T {
  const copy = structuredClone(body) as unknown;
  for (const e of (Array.isArray(copy) ? copy : [copy]) as Array<{ data: Record<string, unknown> }>)
    e.data.Version = version;
  return copy as T;
}

async function enroll(name: string): Promise<void> {
  const id = `${V}/${name}`;
  const h = await client.workflow.start<typeof certificateLifecycle>('certificateLifecycle', {
    taskQueue,
    workflowId: workflowIdFor(id),
    args: [{ certificateId: id, issuer: 'test-ca' }],
    typedSearchAttributes: [{ key: SA.vault, value: V }],
  });
  // waiting, with the vault's current version observed (a renew event is acted on only for that version)
  await waitFor(`${name} to wait`, async () => {
    const st = await h.query(statusQuery);
    return st.phase === 'Waiting' && st.version ? true : undefined;
  });
}

const renewals = async (name: string) =>
  (await client.workflow.getHandle(workflowIdFor(`${V}/${name}`)).query(historyQuery)).filter(
    (o) => o.status === 'renewed',
  ).length;

beforeAll(async () => {
  worker = await startFakeWorker({ address, namespace, taskQueue, activities: fake.activities });
  client = new Client({ connection: await Connection.connect({ address }), namespace });
  // a client whose server is gone: Temporal calls fail, the endpoint must answer 503 so Event Grid retries
  deadClient = new Client({
    connection: Connection.lazy({ address: `127.0.0.1:${await freePort()}` }),
    namespace,
  });
  base = await serve(
    createEventGridHandler({
      client,
      key: KEY,
      verifyToken: async (t) => t === 'good-entra-token',
      maxBodyBytes: MAX_BODY,
      log,
      vaultNameFromUrl: (u) => (u === 'https://sample-kv.vault.azure.net' ? V : undefined),
    }),
  );
});

afterAll(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
  if (client) {
    await terminateVaultLifecycles(client, V);
    await client.connection.close();
  }
  await deadClient?.connection.close();
  await worker?.stop();
});

describe('Event Grid endpoint', () => {
  it('answers the Event Grid validation handshake with the code', async () => {
    const res = await post(fixture('eventgrid-subscription-validation.json'), {
      'aeg-event-type': 'SubscriptionValidation',
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ validationResponse: '3c9f2a6e-8d41-4b7a-a2f0-5e6d7c8b9a01' });
  });

  it('answers the CloudEvents OPTIONS handshake by echoing the origin', async () => {
    const res = await fetch(url(), {
      method: 'OPTIONS',
      headers: { 'WebHook-Request-Origin': 'eventgrid.azure.net', 'aeg-sas-key': KEY },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('webhook-allowed-origin')).toBe('eventgrid.azure.net');
    const noOrigin = await fetch(url(), { method: 'OPTIONS', headers: { 'aeg-sas-key': KEY } });
    expect(noOrigin.status).toBe(400);
  });

  it('refuses missing or wrong credentials with 401, accepts the key or a valid Entra token', async () => {
    const body = fixture('eventgrid-subscription-validation.json');
    expect((await post(body, NO_KEY)).status).toBe(401);
    expect((await post(body, { 'aeg-sas-key': `${KEY}x` })).status).toBe(401);
    expect((await post(body, { ...NO_KEY, 'x-certflow-key': `${KEY}x` })).status).toBe(401);
    const badToken = await post(body, { ...NO_KEY, authorization: 'Bearer forged' });
    expect(badToken.status).toBe(401);
    expect(badToken.headers.get('www-authenticate')).toBe('Bearer');
    expect((await post(body)).status).toBe(200);
    expect((await post(body, { ...NO_KEY, 'x-certflow-key': KEY })).status).toBe(200);
    expect((await post(body, { ...NO_KEY, authorization: 'Bearer good-entra-token' })).status).toBe(200);
    expect(JSON.stringify(logged)).not.toContain(KEY);
    expect(JSON.stringify(logged)).not.toContain('forged');
    expect(createEventGridHandler.bind(null, { client, log })).toThrow(/key or verifyToken is required/);
  });

  it('refuses a key shorter than 32 characters when the endpoint is made', () => {
    expect(() => createEventGridHandler({ client, log, key: 'short-key-0123456789' })).toThrow(
      /key: expected at least 32 characters/,
    );
  });

  it('refuses the key in the URL (?code=) unless allowKeyInUrl says otherwise', async () => {
    const body = fixture('eventgrid-subscription-validation.json');
    const refused = await post(body, NO_KEY, `?code=${KEY}`);
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { error: string }).error).toMatch(/aeg-sas-key header/);
    const lenient = await serve(createEventGridHandler({ client, key: KEY, allowKeyInUrl: true, log }));
    expect((await post(body, NO_KEY, `?code=${KEY}`, lenient)).status).toBe(200);
    expect((await post(body, NO_KEY, '?code=wrong', lenient)).status).toBe(401);
    expect(JSON.stringify(logged)).not.toContain(KEY);
  });

  it('refuses a body over the limit with 413, declared or streamed', async () => {
    const big = JSON.stringify([{ pad: 'x'.repeat(MAX_BODY) }]);
    expect((await post(big)).status).toBe(413);
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(
        url(),
        { method: 'POST', headers: { 'content-type': 'application/json', 'aeg-sas-key': KEY } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.write(big.slice(0, MAX_BODY / 2));
      req.end(big.slice(MAX_BODY / 2)); // chunked: no content-length to trust
    });
    expect(status).toBe(413);
  });

  it('rejects malformed deliveries with 400 and logs them', async () => {
    const nearExpiry = fixture('eventgrid-certificate-near-expiry.json') as Array<Record<string, unknown>>;
    const cases: Array<[unknown, RegExp]> = [
      ['{not json', /body: expected JSON/],
      [[], /body: expected at least one event/],
      [[{ ...nearExpiry[0], eventType: undefined }], /\[0\]\.eventType: expected a non-empty string/],
      [
        [{ ...nearExpiry[0], data: { VaultName: 'sample-kv' } }],
        /\[0\]\.data\.ObjectName: expected the certificate name/,
      ],
      [
        { ...(fixture('cloudevents-certificate-near-expiry.json') as object), specversion: '0.3' },
        /specversion: expected "1\.0"/,
      ],
    ];
    for (const [body, message] of cases) {
      const before = logged.length;
      const res = await post(body);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: string }).error).toMatch(message);
      expect(
        logged.slice(before).some((l) => l.level === 'warn' && message.test(String(l.fields?.error))),
      ).toBe(true);
    }
  });

  it('CertificateNearExpiry (Event Grid schema) renews the certificate', async () => {
    await enroll('site');
    const res = await post(current(fixture('eventgrid-certificate-near-expiry.json')));
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as { results: EventResult[] };
    expect(results).toEqual([
      {
        id: '2b8e4c1d-5a6f-4e3b-9c7d-1a2b3c4d5e6f',
        type: 'Microsoft.KeyVault.CertificateNearExpiry',
        certificateId: `${V}/site`,
        action: 'renew',
      },
    ]);
    await waitFor('site to be renewed', async () => ((await renewals('site')) === 1 ? true : undefined));
  });

  it('CertificateNearExpiry (CloudEvents schema, application/cloudevents+json) renews too', async () => {
    await enroll('cloud');
    const res = await post(current(fixture('cloudevents-certificate-near-expiry.json')), {
      'content-type': 'application/cloudevents+json; charset=utf-8',
    });
    expect(res.status).toBe(200);
    await waitFor('cloud to be renewed', async () => ((await renewals('cloud')) === 1 ? true : undefined));
  });

  it('CertificateNewVersionCreated makes the lifecycle look now: the new version is bound, nothing renewed', async () => {
    await enroll('synced');
    const syncs = () => fake.calls.sync.filter((id) => id === `${V}/synced`).length;
    const before = syncs();
    vault.renew('synced'); // the vault made a new version (its own renewal, or someone in the portal)
    const res = await post(fixture('eventgrid-certificate-new-version.json'));
    expect(res.status).toBe(200);
    expect(((await res.json()) as { results: EventResult[] }).results[0]!.action).toBe('observe');
    await waitFor('the sync to run', async () => (syncs() > before ? true : undefined));
    expect(fake.calls.issue.filter((id) => id === `${V}/synced`)).toHaveLength(0); // bound, not renewed
  });

  it('CertificateExpired renews and logs an error', async () => {
    await enroll('lapsed');
    const res = await post(current(fixture('eventgrid-certificate-expired.json')));
    expect(res.status).toBe(200);
    expect(logged.some((l) => l.level === 'error' && l.fields?.certificateId === `${V}/lapsed`)).toBe(true);
    await waitFor('lapsed to be renewed', async () => ((await renewals('lapsed')) === 1 ? true : undefined));
  });

  it('a certificate without a lifecycle gets 202 and a note; other event types are ignored', async () => {
    const res = await post([eventFor('eventgrid-certificate-near-expiry.json', 'nobody', 'e-nobody')]);
    expect(res.status).toBe(202);
    const [r] = ((await res.json()) as { results: EventResult[] }).results;
    expect(r).toMatchObject({ certificateId: `${V}/nobody`, action: 'no-lifecycle' });
    expect(r!.note).toContain(`certflow enroll ${V}/nobody`);

    const secret = await post(fixture('eventgrid-secret-new-version.json'));
    expect(secret.status).toBe(200);
    expect(((await secret.json()) as { results: EventResult[] }).results[0]!.action).toBe('ignored');

    const otherVault = eventFor('eventgrid-certificate-near-expiry.json', 'site', 'e-other-vault') as {
      data: Record<string, unknown>;
    };
    otherVault.data.VaultName = 'someone-elses';
    otherVault.data.Id = 'https://someone-elses.vault.azure.net/certificates/site/1';
    expect((await post([otherVault])).status).toBe(202);
  });

  it('a duplicate delivery (same event twice, also within one batch) renews once', async () => {
    await enroll('dup');
    const e = current(eventFor('eventgrid-certificate-near-expiry.json', 'dup', 'e-dup-1'));
    const first = (await (await post([e, e])).json()) as { results: EventResult[] };
    expect(first.results.map((r) => r.action)).toEqual(['renew', 'duplicate']);
    const again = (await (await post([e])).json()) as { results: EventResult[] };
    expect(again.results.map((r) => r.action)).toEqual(['duplicate']);
    await waitFor('dup to be renewed', async () => ((await renewals('dup')) === 1 ? true : undefined));
    await new Promise((r) => setTimeout(r, 2_000)); // a second renewal would have started by now
    expect(await renewals('dup')).toBe(1);
    expect(fake.calls.issue.filter((id) => id === `${V}/dup`)).toHaveLength(1);
  });

  it('a batch acts on each event in order', async () => {
    await enroll('batch-a');
    await enroll('batch-b');
    const res = await post([
      current(eventFor('eventgrid-certificate-near-expiry.json', 'batch-a', 'e-batch-a')),
      eventFor('eventgrid-certificate-new-version.json', 'batch-b', 'e-batch-b'),
    ]);
    const { results } = (await res.json()) as { results: EventResult[] };
    expect(results.map((r) => [r.certificateId, r.action])).toEqual([
      [`${V}/batch-a`, 'renew'],
      [`${V}/batch-b`, 'observe'],
    ]);
  });

  it('does not renew for an event about a version that is not the current one', async () => {
    await enroll('old');
    const e = eventFor('eventgrid-certificate-near-expiry.json', 'old', 'e-old-1'); // version 4f1e2d...
    const res = await post([e]);
    expect(res.status).toBe(200);
    const [r] = ((await res.json()) as { results: EventResult[] }).results;
    expect(r).toMatchObject({ certificateId: `${V}/old`, action: 'stale' });
    expect(r!.note).toContain('the current version of');
    const noVersion = current(eventFor('eventgrid-certificate-near-expiry.json', 'old', 'e-old-2'), '');
    expect(((await (await post([noVersion])).json()) as { results: EventResult[] }).results[0]!.action).toBe(
      'stale',
    );
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await renewals('old')).toBe(0);
  });

  it('acts on a certificate once per cooldown, even for new event ids about its new current version', async () => {
    await enroll('cool');
    const first = await post([
      current(eventFor('eventgrid-certificate-near-expiry.json', 'cool', 'e-cool-1')),
    ]);
    const firstResult = ((await first.json()) as { results: EventResult[] }).results[0]!;
    expect(firstResult.action, firstResult.note).toBe('renew');
    await waitFor('cool to be renewed', async () => ((await renewals('cool')) === 1 ? true : undefined));
    // a leaked key replays NearExpiry for the version just issued, with fresh event ids
    for (const id of ['e-cool-2', 'e-cool-3']) {
      const again = await post([
        current(eventFor('eventgrid-certificate-near-expiry.json', 'cool', id), 'v2'),
      ]);
      const [r] = ((await again.json()) as { results: EventResult[] }).results;
      expect(r).toMatchObject({ action: 'cooldown' });
      expect(r!.note).toMatch(/not acted on before/);
    }
    // a new version only makes the lifecycle look (no CA is asked): never held back by the cooldown
    const look = await post([eventFor('eventgrid-certificate-new-version.json', 'cool', 'e-cool-new')]);
    expect(((await look.json()) as { results: EventResult[] }).results[0]!.action).toBe('observe');
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(await renewals('cool')).toBe(1);
  });

  it('answers 503 when Temporal cannot be reached, so Event Grid delivers again', async () => {
    const down = await serve(
      createEventGridHandler({ client: deadClient, key: KEY, log, temporalTimeoutMs: 1_000 }),
    );
    const res = await fetch(`${down}/eventgrid`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'aeg-sas-key': KEY },
      body: JSON.stringify([eventFor('eventgrid-certificate-near-expiry.json', 'site', 'e-down')]),
    });
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: string }).error).toMatch(/^Temporal: /);
    expect((await fetch(`${down}/other`)).status).toBe(404);
  });
});
