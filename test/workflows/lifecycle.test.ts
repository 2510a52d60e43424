/**
 * The lifecycle workflow on the time-skipping test server, with in-memory activities (the workflow is what is
 * under test here; the real vault, CA, nginx and SMTP are exercised in test/integration).
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index';
import type { CertificateState } from '../../activities/types';
import { certificateLifecycle } from '../../workflows/lifecycle';
import { renewNowUpdate, statusQuery, workflowIdFor } from '../../workflows/messages';
import { tools } from '../support/tools';
import { waitFor } from '../support/proc';

const require = createRequire(import.meta.url);
const DAY = 86_400_000;
let env: TestWorkflowEnvironment;

beforeAll(async () => {
  env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: tools.temporalTestServer() } },
  });
});
afterAll(async () => {
  await env?.teardown();
});

/** An in-memory vault + CA whose clock is the test server's (time-skipped) clock. */
function fakeActivities(lifetimeDays: number) {
  let version = 1;
  const calls: string[] = [];
  const stateAt = async (v: number, nbMs: number): Promise<CertificateState> => ({
    id: 'kv/site',
    vault: 'kv',
    name: 'site',
    version: `v${v}`,
    thumbprint: `THUMB${v}`,
    notBefore: new Date(nbMs).toISOString(),
    notAfter: new Date(nbMs + lifetimeDays * DAY).toISOString(),
    subject: 'CN=site',
    dnsNames: ['site.test'],
    tags: {},
    policy: null,
    pendingOperation: false,
  });
  let current: Promise<CertificateState> | null = null;
  const now = async () => Number(await env.currentTimeMs());
  const acts: Partial<Activities> = {
    async observe() {
      calls.push('observe');
      current ??= now().then((t) => stateAt(version, t));
      return current;
    },
    async beginRenewal() {
      calls.push('beginRenewal');
      return { csrPem: 'CSR', reused: false };
    },
    async issue() {
      calls.push('issue');
      return { status: 'issued', chainPem: ['LEAF'] };
    },
    async verify() {
      calls.push('verify');
      return { thumbprint: `THUMB${version + 1}` } as Awaited<ReturnType<Activities['verify']>>;
    },
    async merge() {
      calls.push('merge');
      version += 1;
      current = now().then((t) => stateAt(version, t));
      return current;
    },
    async syncBindings() {
      calls.push('syncBindings');
      return [];
    },
    async notify() {
      calls.push('notify');
      return { sent: true, invalidRecipients: [] };
    },
  };
  return { acts: acts as Activities, calls, version: () => version };
}

async function withWorker<T>(acts: Activities, taskQueue: string, fn: () => Promise<T>): Promise<T> {
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowsPath: require.resolve('../../workflows/index.ts'),
    activities: acts,
  });
  return worker.runUntil(fn);
}

describe('certificate lifecycle (time-skipping)', () => {
  it('waits until 80 % of lifetime, renews, and continues as new, several cycles in a row', async () => {
    const fake = fakeActivities(90);
    const taskQueue = `tq-cycles-${Date.now()}`;
    await withWorker(fake.acts, taskQueue, async () => {
      const handle = await env.client.workflow.start(certificateLifecycle, {
        taskQueue,
        workflowId: workflowIdFor('kv/site'),
        args: [{ certificateId: 'kv/site', issuer: 'test', searchAttributes: false }],
      });
      const first = await waitFor('the first observation', async () => {
        const st = await handle.query(statusQuery);
        return st.nextRenewalAt ? st : undefined;
      });
      expect(first.phase).toBe('Waiting');
      expect(first.thumbprint).toBe('THUMB1');
      // 72 days after issuance (80 % of 90), not before
      expect(Date.parse(first.nextRenewalAt!) - Date.parse(first.notBefore!)).toBe(72 * DAY);
      await env.sleep(71 * DAY);
      expect(fake.version()).toBe(1);
      await env.sleep(2 * DAY);
      expect(fake.version()).toBe(2);
      await env.sleep(2 * 72 * DAY);
      expect(fake.version()).toBe(4);
      const st = await handle.query(statusQuery);
      expect(st.cycle).toBe(3);
      expect(st.thumbprint).toBe('THUMB4');
      expect(st.previousThumbprint).toBe('THUMB3');
      await handle.terminate('test done');
    });
  });

  it('renews at once on a manual update and answers with the outcome', async () => {
    const fake = fakeActivities(90);
    const taskQueue = `tq-manual-${Date.now()}`;
    await withWorker(fake.acts, taskQueue, async () => {
      const handle = await env.client.workflow.start(certificateLifecycle, {
        taskQueue,
        workflowId: workflowIdFor('kv/manual'),
        args: [{ certificateId: 'kv/site', issuer: 'test', searchAttributes: false }],
      });
      const outcome = await handle.executeUpdate(renewNowUpdate, { args: [{ reason: 'test' }] });
      expect(outcome.status).toBe('renewed');
      expect(outcome.trigger).toBe('Manual');
      expect(outcome.oldThumbprint).toBe('THUMB1');
      expect(outcome.newThumbprint).toBe('THUMB2');
      expect(fake.calls).toEqual(
        expect.arrayContaining(['beginRenewal', 'issue', 'verify', 'merge', 'syncBindings', 'notify']),
      );
      await handle.terminate('test done');
    });
  });
});
