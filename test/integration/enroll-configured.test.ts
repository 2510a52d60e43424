/**
 * enrollConfigured on a real Temporal server: a configured certificate whose lifecycle already runs on another task
 * queue (the configuration's taskQueue changed since, or another deployment has it) is named, in the result and in a
 * warning, instead of passing for "already running" here: no worker of this configuration polls that queue, so the
 * certificate would never be renewed. Found by the chaos suite, whose second run on one server met the first run's
 * lifecycles (same ids, the first run's task queue) and waited for them forever.
 */
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startLifecycle } from '../../activities/lifecycles';
import { parseConfig } from '../../worker/config';
import { ApplicationFailure } from '@temporalio/common';
import type { Vault } from '../../activities/types';
import { enrollConfigured, enrollConfiguredWithRetries } from '../../worker/enroll-configured';
import { createLogger } from '../../worker/logger';
import { workflowIdFor } from '../../workflows/messages';

const address = inject('temporalAddress');
const namespace = inject('temporalNamespace');
const run = `${process.pid}-${Date.now().toString(36)}`;
const vault = `enroll-${Date.now().toString(36)}`;
let client: Client;

const configFor = (taskQueue: string, id: string, create = false) =>
  parseConfig({
    temporal: { address, namespace },
    taskQueue,
    vaults: [
      { kind: 'local', name: vault, dir: '/nonexistent', encryptionKey: { env: 'CERTFLOW_TEST_UNUSED' } },
    ],
    issuers: [
      {
        kind: 'acme',
        name: 'none-needed',
        directoryUrl: 'https://127.0.0.1:14000/dir',
        contactEmail: 'pki@example.com',
        accountKeySecretName: 'acme-account',
        dns: { kind: 'challtestsrv', managementUrl: 'http://127.0.0.1:8055' },
      },
    ],
    certificates: [
      {
        id,
        issuer: 'none-needed',
        ...(create ? { create: { dnsNames: ['throttled.example.test'], keyType: 'EC' } } : {}),
      },
    ],
  });

beforeAll(async () => {
  client = new Client({ connection: await Connection.connect({ address }), namespace });
});

afterAll(async () => {
  for (const id of [`${vault}/moved`, `${vault}/here`, `${vault}/throttled`])
    await client.workflow
      .getHandle(workflowIdFor(id))
      .terminate('test over')
      .catch(() => undefined);
  await client?.connection.close();
});

describe('enrollConfigured', () => {
  it('says so when a configured certificate is kept by a lifecycle on another task queue', async () => {
    const id = `${vault}/moved`;
    // the lifecycle as an earlier configuration (task queue "old-<run>") started it; no worker polls that queue
    await startLifecycle(client, { certificateId: id, issuer: 'none-needed', taskQueue: `old-${run}` });
    const lines: string[] = [];
    const logger = createLogger({ format: 'json', out: { write: (l: string) => lines.push(l) } });

    const results = await enrollConfigured(configFor(`new-${run}`, id), {
      client,
      vaults: new Map(),
      logger,
    });

    expect(results).toEqual([
      {
        certificateId: id,
        status: 'already-running',
        created: false,
        detail: `its lifecycle runs on task queue "old-${run}", not this worker's "new-${run}"`,
      },
    ]);
    const warning = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.level === 'warn');
    expect(warning).toMatchObject({
      certificateId: id,
      lifecycleTaskQueue: `old-${run}`,
      workerTaskQueue: `new-${run}`,
    });
  });

  it('says nothing more for a lifecycle already running on its own task queue', async () => {
    const id = `${vault}/here`;
    await startLifecycle(client, { certificateId: id, issuer: 'none-needed', taskQueue: `same-${run}` });
    const lines: string[] = [];
    const logger = createLogger({ format: 'json', out: { write: (l: string) => lines.push(l) } });

    const results = await enrollConfigured(configFor(`same-${run}`, id), {
      client,
      vaults: new Map(),
      logger,
    });

    expect(results).toEqual([{ certificateId: id, status: 'already-running', created: false }]);
    expect(lines.some((l) => (JSON.parse(l) as { level?: string }).level === 'warn')).toBe(false);
  });
});

describe('enrollConfiguredWithRetries', () => {
  it('a certificate whose creation met a throttled vault at start is enrolled by the retries, not left without a lifecycle', async () => {
    const id = `${vault}/throttled`;
    let creates = 0;
    // the vault answers 429 to the first two creates (what a Key Vault does beyond its key-create quota)
    const throttled = {
      name: vault,
      describe: async () => {
        throw ApplicationFailure.create({ message: 'not found', type: 'CertificateNotFound' });
      },
      create: async () => {
        creates += 1;
        if (creates <= 2)
          throw ApplicationFailure.create({
            message: 'vault answered 429 Throttled',
            type: 'VaultThrottled',
          });
      },
    } as unknown as Vault;
    const lines: string[] = [];
    const logger = createLogger({ format: 'json', out: { write: (l: string) => lines.push(l) } });
    let stopped = false;

    const { first, retries } = await enrollConfiguredWithRetries(
      configFor(`retry-${run}`, id, true),
      { client, vaults: new Map([[vault, throttled]]), logger },
      { stopped: () => stopped, firstDelayMs: 50 },
    );
    expect(first).toMatchObject([{ certificateId: id, status: 'failed' }]);
    const later = await retries;
    stopped = true;
    expect(later).toEqual([{ certificateId: id, status: 'started', created: true }]);
    expect(creates).toBe(3);
    expect((await client.workflow.getHandle(workflowIdFor(id)).describe()).status.name).toBe('RUNNING');
    expect(lines.filter((l) => l.includes('retrying the enrolment'))).toHaveLength(2);
  });

  it('a configuration mistake is not retried', async () => {
    const id = `${vault}/nowhere`; // its vault is configured, but no adapter was made for it
    const logger = createLogger({ format: 'json', out: { write: () => undefined } });
    const { first, retries } = await enrollConfiguredWithRetries(
      configFor(`retry-${run}`, id, true),
      { client, vaults: new Map(), logger },
      { stopped: () => false, firstDelayMs: 50 },
    );
    expect(first[0]).toMatchObject({
      status: 'failed',
      detail: expect.stringMatching(/^certificates: vault/),
    });
    expect(await retries).toEqual([]);
  });
});
