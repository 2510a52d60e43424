/**
 * The walking skeleton, end to end through a running Worker and every server real:
 * Key Vault-compatible server (real Azure SDK, Unknown issuer, CSR in the vault) → pebble over ACME with real
 * DNS-01 (challtestsrv) → chain checked against the CSR → merged → nginx re-bound by file swap + reload and
 * verified by a TLS handshake → email received by an SMTP server. Triggered by `certflow renew` (update),
 * then by `certflow renew --no-wait` (signal).
 */
import type { Client } from '@temporalio/client';
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { certificateLifecycle } from '../../workflows/lifecycle';
import { SA, statusQuery, workflowIdFor, type RenewalOutcome } from '../../workflows/messages';
import { waitFor } from '../support/proc';
import type { LocalStack } from '../support/stack';
import { startStackWithWorker, type StackWithWorker } from '../support/stack-worker';
import { repoRoot } from '../support/tools';
import { probeSettled } from '../support/nginx';

const run = promisify(execFile);
const address = inject('temporalAddress');
const namespace = inject('temporalNamespace');
const taskQueue = `e2e-${process.pid}`;

let running: StackWithWorker;
let stack: LocalStack;
let client: Client;
let seededThumbprint: string;

beforeAll(async () => {
  running = await startStackWithWorker({ address, namespace, taskQueue }, { certName: 'site', seedDays: 90 });
  ({ stack, client } = running);
  seededThumbprint = (await stack.vault.describe('site')).thumbprint!;
});

afterAll(async () => {
  await running?.stop();
});

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      [path.join(repoRoot, 'bin/certflow.mjs'), ...args, '--address', address, '--namespace', namespace],
      { timeout: 120_000 },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('end-to-end renewal through a running worker', () => {
  it('waits for renewal time, then renews on `certflow renew` and proves every step against the real servers', async () => {
    const id = stack.certificateId;
    const handle = await client.workflow.start(certificateLifecycle, {
      taskQueue,
      workflowId: workflowIdFor(id),
      args: [{ certificateId: id, issuer: stack.issuerName }],
    });

    // the lifecycle observes the vault and waits: renewal is ~72 days away
    const waiting = await waitFor('the lifecycle to observe and wait', async () => {
      const st = await handle.query(statusQuery);
      return st.phase === 'Waiting' && st.thumbprint && st.nextRenewalAt ? st : undefined;
    });
    expect(waiting.thumbprint).toBe(seededThumbprint);
    expect(Date.parse(waiting.nextRenewalAt!) - Date.now()).toBeGreaterThan(60 * 86_400_000);

    const t0 = performance.now();
    const res = await cli('renew', id, '--json', '--reason', 'e2e test');
    const wallMs = performance.now() - t0;
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const outcome = JSON.parse(res.stdout) as RenewalOutcome;
    expect(outcome.status).toBe('renewed');
    expect(outcome.trigger).toBe('Manual');
    expect(outcome.oldThumbprint).toBe(seededThumbprint);
    expect(outcome.newThumbprint).toMatch(/^[0-9A-F]{40}$/);
    expect(outcome.newThumbprint).not.toBe(seededThumbprint);

    // merged into the vault
    const after = await stack.vault.describe('site');
    expect(after.thumbprint).toBe(outcome.newThumbprint);
    expect(after.tags.Recipient).toContain('ops@example.test');

    // nginx serves it, checked by our own TLS handshake with SNI against pebble's root
    expect(outcome.bindings).toHaveLength(1);
    expect(outcome.bindings[0]).toMatchObject({
      status: 'bound',
      before: seededThumbprint,
      after: outcome.newThumbprint,
    });
    const probe = await probeSettled(
      {
        host: '127.0.0.1',
        port: stack.nginx.port,
        servername: stack.dnsName,
        expectedThumbprint: outcome.newThumbprint!,
        caPem: stack.pebbleRootPem,
        timeoutMs: 5_000,
      },
      outcome.newThumbprint,
    );
    expect(probe.ok, probe.detail).toBe(true);

    // the people on the Recipient tag got one email naming both thumbprints
    const [mail] = await stack.smtp.waitForMessages(1, 10_000);
    expect(mail!.envelope.to.sort()).toEqual(['ops@example.test', 'owner@example.test']);
    expect(mail!.subject).toContain(id);
    expect(mail!.text).toContain(outcome.newThumbprint!);
    expect(mail!.text).toContain(seededThumbprint);
    expect(outcome.notified).toBe(true);

    const inWorkflowMs = Date.parse(outcome.finishedAt) - Date.parse(outcome.startedAt);
    console.log(
      `[e2e] manual renew → verified rebind + email: ${wallMs.toFixed(0)} ms wall with the CLI process, ` +
        `${inWorkflowMs} ms inside the renewal workflow`,
    );

    const release = process.env.CERTFLOW_RECORD_HISTORIES;
    if (release) {
      // fixtures for the replay test (test/workflows/replay.test.ts): the first lifecycle run (its renewal ran
      // inline) and the run it continued into, named by release (e.g. CERTFLOW_RECORD_HISTORIES=v2) so the histories of older code stay beside them
      const dir = path.join(repoRoot, 'test/fixtures/histories');
      mkdirSync(dir, { recursive: true });
      const first = client.workflow.getHandle(workflowIdFor(id), handle.firstExecutionRunId);
      writeFileSync(
        path.join(dir, `${release}-lifecycle-manual-renew.json`),
        historyToJSON(await first.fetchHistory()),
      );
      // release 3 renews inline: the second run holds the next cycle (continued from the first with v3 state)
      const next = (await first.fetchHistory()).events?.at(
        -1,
      )?.workflowExecutionContinuedAsNewEventAttributes;
      if (next?.newExecutionRunId)
        writeFileSync(
          path.join(dir, `${release}-lifecycle-continued.json`),
          historyToJSON(
            await client.workflow.getHandle(workflowIdFor(id), next.newExecutionRunId).fetchHistory(),
          ),
        );
    }

    // the UI's search attributes follow the vault
    await waitFor('search attributes to show the new thumbprint', async () => {
      const d = await handle.describe();
      return d.typedSearchAttributes.get(SA.thumbprint) === outcome.newThumbprint ? true : undefined;
    });
  }, 180_000);

  it('renews again on a fire-and-forget signal (`certflow renew --no-wait`)', async () => {
    const id = stack.certificateId;
    const handle = client.workflow.getHandle(workflowIdFor(id));
    const before = await handle.query(statusQuery);
    // renewed by the test before: the renewal-loop guard holds renewals back unless forced
    const res = await cli('renew', id, '--no-wait', '--force');
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('requested');
    const st = await waitFor(
      'the signalled renewal to finish',
      async () => {
        const s = await handle.query(statusQuery);
        return s.cycle > before.cycle && s.phase === 'Waiting' ? s : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    expect(st.previousThumbprint).toBe(before.thumbprint);
    expect(st.thumbprint).not.toBe(before.thumbprint);
    expect((await stack.vault.describe('site')).thumbprint).toBe(st.thumbprint);
  }, 120_000);

  it('keeps every secret out of workflow history', async () => {
    const id = stack.certificateId;
    const { events } = await client.workflow.getHandle(workflowIdFor(id)).fetchHistory();
    const text = JSON.stringify(events);
    expect(text.length).toBeGreaterThan(1000);
    // payloads are base64 JSON: decode every data field we can find and search it too
    const decoded = [...text.matchAll(/"data":"([A-Za-z0-9+/=]+)"/g)].map((m) =>
      Buffer.from(m[1]!, 'base64').toString(),
    );
    for (const t of [text, ...decoded]) {
      expect(t).not.toMatch(/PRIVATE KEY/);
      expect(t).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.eyJ/); // no bearer token (JWT)
    }
    // and every earlier run of the lifecycle (each cycle is a run; its attempt runs inline)
    const children = client.workflow.list({ query: `WorkflowId = '${workflowIdFor(id)}'` });
    let n = 0;
    for await (const wf of children) {
      const h = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
      const s = JSON.stringify(h.events);
      const dec = [...s.matchAll(/"data":"([A-Za-z0-9+/=]+)"/g)].map((m) =>
        Buffer.from(m[1]!, 'base64').toString(),
      );
      expect([s, ...dec].join('\n')).not.toMatch(/PRIVATE KEY/);
      n++;
    }
    expect(n).toBeGreaterThanOrEqual(2);
  });
});
