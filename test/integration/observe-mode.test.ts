/**
 * Observe mode end to end through a running worker on the real dev server: a Key Vault certificate whose policy
 * names an integrated CA (DigiCert) with AutoRenew, served by a real nginx. Our Key Vault server renews it by
 * itself, as real Key Vault does, and tells Certflow through Event Grid (CertificateNewVersionCreated, delivered to
 * the real Event Grid endpoint). Certflow notices the new version within seconds, binds it, verifies it live and
 * tells people, and never touches the policy or the issuer: no CA is even configured.
 */
import type { Client } from '@temporalio/client';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { CertificateClient, type CertificatePolicy } from '@azure/keyvault-certificates';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createActivities } from '../../activities/index';
import { lifecycleStatus, startLifecycle } from '../../activities/lifecycles';
import type { FileBindingTarget } from '../../activities/bindings/file-reload';
import { createEventGridHandler } from '../../client/event-grid';
import { createCertflowWorker } from '../../worker/worker';
import { historyQuery } from '../../workflows/messages';
import { startTestKeyVault, type TestKeyVault } from '../support/keyvault';
import { probeSettled, startNginx, type RunningNginx } from '../support/nginx';
import { freePort, waitFor } from '../support/proc';
import { startSmtpSink, type SmtpSink } from '../support/smtp';
import { createEmailNotifier } from '../../activities/notify/email';

const address = inject('temporalAddress');
const namespace = inject('temporalNamespace');
const taskQueue = `observe-${process.pid}`;
const KEY = 'observe-mode-event-grid-key-0123456789abcdef';
const NAME = 'digicert-site';
const HOST = `${NAME}.example.test`;

let kv: TestKeyVault;
let nginx: RunningNginx;
let smtp: SmtpSink;
let client: Client;
let worker: Worker;
let running: Promise<void>;
let native: NativeConnection;
let events: http.Server;
let caPem: string;
const id = () => `${kv.vaultName}/${NAME}`;

beforeAll(async () => {
  const eventPort = await freePort();
  kv = await startTestKeyVault({
    server: {
      issuanceDelayMs: 300,
      issuedValiditySeconds: 3600,
      // the key as Event Grid sends a secret delivery property (the endpoint refuses it in the URL)
      eventGrid: { url: `http://127.0.0.1:${eventPort}/eventgrid`, sasKey: KEY },
    },
  });
  // a DigiCert certificate with Key Vault's own auto-renew: the vault issues it (after the issuance delay)
  const certs = new CertificateClient(kv.url, kv.credential, kv.clientOptions);
  await certs.beginCreateCertificate(
    NAME,
    {
      issuerName: 'DigiCert',
      subject: `CN=${HOST}`,
      subjectAlternativeNames: { dnsNames: [HOST] },
      keyType: 'EC',
      keyCurveName: 'P-256',
      contentType: 'application/x-pem-file',
      lifetimeActions: [{ action: 'AutoRenew', lifetimePercentage: 80 }],
    } as CertificatePolicy,
    { tags: { Recipient: 'ops@example.test' } },
  );
  const vault = kv.adapter(kv.vaultName);
  const first = await waitFor(
    'the vault to issue it',
    async () => (await vault.describe(NAME)).version ?? undefined,
    {
      timeoutMs: 30_000,
    },
  );
  const material = await vault.exportSecret(NAME, first);
  caPem = await kv.server.issuingCaPem();
  nginx = await startNginx({
    certPem: material.chainPem.join('\n'),
    keyPem: material.keyPem,
    serverNames: [HOST],
  });
  smtp = await startSmtpSink();

  const binding: FileBindingTarget = {
    name: 'nginx',
    certPath: nginx.certPath,
    keyPath: nginx.keyPath,
    validate: { command: nginx.command, args: nginx.testArgs },
    reload: { command: nginx.command, args: nginx.reloadArgs },
    probe: { host: '127.0.0.1', port: nginx.port, servername: HOST, caPem },
  };
  const notifier = createEmailNotifier({
    transport: { host: '127.0.0.1', port: smtp.port, secure: false },
    from: 'Certflow <certflow@example.test>',
  });
  native = await NativeConnection.connect({ address });
  worker = await createCertflowWorker({
    connection: native,
    namespace,
    taskQueue,
    // no issuer at all: an observed certificate never goes to a CA
    activities: createActivities({
      vaults: new Map([[kv.vaultName, vault]]),
      issuers: new Map(),
      fileBindings: (cid) => (cid === id() ? [binding] : []),
      notifier,
    }),
  });
  running = worker.run();
  client = new TemporalClient({ connection: await Connection.connect({ address }), namespace });
  const handler = createEventGridHandler({
    client,
    key: KEY,
    log: { info: () => {}, warn: () => {}, error: () => {} },
    vaultNameFromUrl: (u) =>
      u.replace(/\/+$/, '') === kv.url.replace(/\/+$/, '') ? kv.vaultName : undefined,
  });
  events = http.createServer((req, res) => void handler(req, res));
  await new Promise<void>((r) => events.listen(eventPort, '127.0.0.1', r));
}, 120_000);

afterAll(async () => {
  await client?.workflow
    .getHandle(`certificate:${id()}`)
    .terminate('test done')
    .catch(() => undefined);
  if (worker?.getState() === 'RUNNING') worker.shutdown();
  await running;
  await native?.close();
  await client?.connection.close();
  await new Promise((r) => events?.close(r));
  await nginx?.stop();
  await smtp?.stop();
  await kv?.stop();
});

describe('observe mode (a certificate the vault renews itself)', () => {
  it('the vault’s own renewal is bound, verified live and announced within seconds; policy and issuer untouched', async () => {
    await startLifecycle(client, { certificateId: id(), issuer: 'none', taskQueue });
    const before = await waitFor('the first observation', async () => {
      const st = await lifecycleStatus(client, id());
      return st.thumbprint && st.nextRenewalAt ? st : undefined;
    });
    expect(before.mode).toBe('observe');
    expect(before.nextRenewalReason).toMatch(/^VaultRenewal/);

    // Key Vault's auto-renew, now (the policy's trigger is 80 % of an hour away)
    const t0 = Date.now();
    await kv.server.autoRenewNow(NAME);
    const after = await waitFor(
      'the new version bound',
      async () => {
        const st = await lifecycleStatus(client, id());
        return st.thumbprint !== before.thumbprint && st.phase === 'Waiting' ? st : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 200 },
    );
    const seconds = (Date.now() - t0) / 1000;
    // printed, not asserted (load stretches it); bench/azure-consumers-bind.ts measures how soon
    console.log(
      `observe mode: the vault's new version bound and verified ${seconds.toFixed(1)} s after its renewal began`,
    );
    expect(kv.server.deliveries.some((d) => d.status === 200)).toBe(true);
    expect(after.previousThumbprint).toBe(before.thumbprint);
    expect(after.bindings.map((b) => b.status)).toEqual(['bound']);

    const served = await probeSettled(
      { host: '127.0.0.1', port: nginx.port, servername: HOST, caPem },
      after.thumbprint,
    );
    expect(served.servedThumbprint).toBe(after.thumbprint);
    const [last] = await client.workflow.getHandle(`certificate:${id()}`).query(historyQuery);
    expect(last).toMatchObject({
      status: 'renewed',
      trigger: 'VaultRenewed',
      newThumbprint: after.thumbprint,
    });
    await waitFor('the mail', async () =>
      smtp.messages.some((m) => /renewed/i.test(m.subject ?? '')) ? true : undefined,
    );

    // the vault's policy is exactly as it was: Certflow never changed it
    const policy = (await kv.adapter(kv.vaultName).describe(NAME)).policy;
    expect(policy).toMatchObject({
      issuerName: 'DigiCert',
      lifetimeAction: 'AutoRenew',
      lifetimePercentage: 80,
    });
  });
});
