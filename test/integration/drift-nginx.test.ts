/**
 * Drift watch end to end, through a running worker and every server real: the lifecycle renews the certificate
 * (pebble, Key Vault server) and binds it to nginx; then someone puts another certificate behind the site (the
 * vault's previous version, written over the files and reloaded, as a restored backup would). The next probe finds
 * nginx serving it, and the lifecycle re-binds the vault's current certificate (reason BindingDrift), verified by
 * our own TLS handshake. A site that stops answering then shows as such in status, not as healthy.
 */
import type { Client } from '@temporalio/client';
import { execFile } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { probeTls } from '../../activities/verify/probe';
import { certificateLifecycle } from '../../workflows/lifecycle';
import { renewNowUpdate, statusQuery, workflowIdFor } from '../../workflows/messages';
import { settledThumbprint } from '../support/nginx';
import { waitFor } from '../support/proc';
import type { LocalStack } from '../support/stack';
import { startStackWithWorker, type StackWithWorker } from '../support/stack-worker';
import { repoRoot } from '../support/tools';

const run = promisify(execFile);
const address = inject('temporalAddress');
const namespace = inject('temporalNamespace');
const taskQueue = `drift-${process.pid}`;

let running: StackWithWorker;
let stack: LocalStack;
let client: Client;

beforeAll(async () => {
  running = await startStackWithWorker(
    { address, namespace, taskQueue },
    { certName: 'drift', seedDays: 90 },
  );
  ({ stack, client } = running);
});

afterAll(async () => {
  await running?.stop();
});

const served = async () =>
  (
    await probeTls({
      host: '127.0.0.1',
      port: stack.nginx.port,
      servername: stack.dnsName,
      timeoutMs: 5_000,
    })
  ).servedThumbprint;

describe('drift watch against a real nginx', () => {
  it('a site swapped to another certificate is re-bound to the vault’s current one (BindingDrift)', async () => {
    const id = stack.certificateId;
    const seeded = await stack.vault.describe('drift');
    const handle = await client.workflow.start(certificateLifecycle, {
      taskQueue,
      workflowId: workflowIdFor(id),
      // probes every 6 s here (daily by default), no jitter
      args: [
        {
          certificateId: id,
          issuer: stack.issuerName,
          driftWatch: { everyMinutes: 0.1, jitterMinutes: 0, onWakeMinutes: 0.1 },
        },
      ],
    });
    const outcome = await handle.executeUpdate(renewNowUpdate, { args: [{ reason: 'drift test' }] });
    expect(outcome.status).toBe('renewed');
    const current = outcome.newThumbprint!;
    expect(await settledThumbprint(served, current)).toBe(current);

    // a run continued after the renewal: it probes, and finds nginx serving the current certificate
    const healthy = await waitFor(
      'a probe finding nginx on the current certificate',
      async () => {
        const st = await client.workflow.getHandle(workflowIdFor(id)).query(statusQuery);
        return st.drift?.checkedAt && st.drift.bindings[0]?.state === 'serving' ? st : undefined;
      },
      { timeoutMs: 60_000 },
    );
    expect(healthy.drift!.bindings[0]).toMatchObject({ target: 'nginx', served: current });
    expect(healthy.drift!.bindings[0]!.detail).toMatch(/chain trusted/);

    // someone restores an old backup: the seeded certificate and its key behind the site, nginx reloaded
    const old = await stack.vault.exportSecret('drift', seeded.version!);
    writeFileSync(`${stack.nginx.keyPath}.swap`, old.keyPem, { mode: 0o600 });
    writeFileSync(`${stack.nginx.certPath}.swap`, old.chainPem.join('\n'), { mode: 0o644 });
    renameSync(`${stack.nginx.keyPath}.swap`, stack.nginx.keyPath);
    renameSync(`${stack.nginx.certPath}.swap`, stack.nginx.certPath);
    await run(stack.nginx.command, stack.nginx.reloadArgs);
    await waitFor('nginx serving the swapped certificate', async () =>
      (await served()) === seeded.thumbprint ? true : undefined,
    );

    const fixed = await waitFor(
      'the lifecycle re-binding the current certificate',
      async () => {
        const st = await client.workflow.getHandle(workflowIdFor(id)).query(statusQuery);
        return st.drift?.lastDrift ? st : undefined;
      },
      { timeoutMs: 60_000 },
    );
    expect(fixed.drift!.lastDrift).toMatchObject({ resynced: true });
    expect(fixed.drift!.lastDrift!.bindings[0]).toMatch(/^nginx /);
    expect(fixed.bindings[0]).toMatchObject({ status: 'bound', before: seeded.thumbprint, after: current });
    expect(fixed.thumbprint).toBe(current); // re-bound, not renewed
    expect(fixed.notes!.join('\n')).toMatch(/BindingDrift at .*served another certificate; re-synced/);
    // the re-sync verified it live; our own probe may still meet the worker nginx is retiring, for a moment
    expect(await settledThumbprint(served, current)).toBe(current);

    // the site stops answering: status says the binding did not answer, instead of showing it healthy
    await stack.nginx.stop();
    const down = await waitFor(
      'the unanswered probe in status',
      async () => {
        const st = await client.workflow.getHandle(workflowIdFor(id)).query(statusQuery);
        return st.drift?.bindings[0]?.state === 'unreachable' ? st : undefined;
      },
      { timeoutMs: 60_000 },
    );
    expect(down.notes!.join('\n')).toMatch(/binding nginx .* did not answer the probe at .*ECONNREFUSED/);
    const latest = client.workflow.getHandle(workflowIdFor(id));
    await latest.terminate('test done');

    const release = process.env.CERTFLOW_RECORD_HISTORIES;
    if (release) {
      // a fixture for the replay test: the run that probed, found drift, re-bound it and saw nginx go away
      const dir = path.join(repoRoot, 'test/fixtures/histories');
      mkdirSync(dir, { recursive: true });
      writeFileSync(
        path.join(dir, `${release}-lifecycle-drift-resync.json`),
        historyToJSON(await latest.fetchHistory()),
      );
      // and its first run: marked `drift-watch`, renewed on request, continued as new
      const first = client.workflow.getHandle(workflowIdFor(id), handle.firstExecutionRunId);
      writeFileSync(
        path.join(dir, `${release}-lifecycle-drift-first.json`),
        historyToJSON(await first.fetchHistory()),
      );
    }
  }, 180_000);
});
