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
import { enrollConfigured } from '../../worker/enroll-configured';
import { createLogger } from '../../worker/logger';
import { workflowIdFor } from '../../workflows/messages';

const address = inject('temporalAddress');
const namespace = inject('temporalNamespace');
const run = `${process.pid}-${Date.now().toString(36)}`;
const vault = `enroll-${Date.now().toString(36)}`;
let client: Client;

const configFor = (taskQueue: string, id: string) =>
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
    certificates: [{ id, issuer: 'none-needed' }],
  });

beforeAll(async () => {
  client = new Client({ connection: await Connection.connect({ address }), namespace });
});

afterAll(async () => {
  for (const id of [`${vault}/moved`, `${vault}/here`])
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
