/**
 * The lifecycle on the time-skipping test server with in-memory activities: the workflow is what is under test
 * here (the real vault, CA, nginx and SMTP are exercised in test/integration). One server per test, because time
 * skipping is global to a server.
 */
import { WorkflowNotFoundError, WorkflowUpdateStage, type WorkflowHandle } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import { randomUUID } from 'node:crypto';
import { temporal } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { Activities, NotifyInput } from '../../activities/index';
import type {
  BindingOutcome,
  BindingProbe,
  CertificatePolicySnapshot,
  CertificateState,
  Issued,
  PendingIssue,
  RenewalWindow,
} from '../../activities/types';
import { certificateLifecycle, type LifecycleInput } from '../../workflows/lifecycle';
import { workflowIdFor } from '../../workflows/messages';
import { repoRoot, tools } from '../support/tools';

const require = createRequire(import.meta.url);
export const DAY = 86_400_000;
export const HOUR = 3_600_000;

export async function startTestEnv(): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: tools.temporalTestServer() } },
  });
}

export interface FakeHooks {
  observe?: () => Promise<void>;
  /** Return a result to override the default "issued at once"; throw to fail. */
  issue?: (n: number) => Promise<Issued | PendingIssue | void>;
  poll?: (n: number) => Promise<Issued | PendingIssue | void>;
  syncBindings?: (input: { version: string; thumbprint: string }) => Promise<BindingOutcome[]>;
  /** Drift watch: what the bindings serve; default none configured. Throw to fail the probe. */
  probeBindings?: (input: { thumbprint: string }) => Promise<BindingProbe[]>;
  notify?: (input: NotifyInput) => Promise<void>;
  /** The CA's renewal window (ARI); default none. */
  renewalWindow?: () => Promise<RenewalWindow | null>;
  /** Observe mode: the vault was asked to renew (certflow renew); default: it starts and says inProgress. */
  renewInVault?: () => Promise<void>;
}

export interface FakeOptions {
  lifetimeMs?: number;
  policy?: Partial<CertificatePolicySnapshot>;
  dnsNames?: string[];
  hooks?: FakeHooks;
}

/** An in-memory vault + CA whose clock is the test server's (time-skipped) clock. */
export function fakeActivities(env: TestWorkflowEnvironment, opts: FakeOptions = {}) {
  const hooks = opts.hooks ?? {};
  const lifetime = opts.lifetimeMs ?? 90 * DAY;
  let version = 1;
  let issues = 0;
  let polls = 0;
  const calls: string[] = [];
  const notifies: NotifyInput[] = [];
  const policy: CertificatePolicySnapshot = {
    subject: 'CN=site.test',
    dnsNames: ['site.test'],
    issuerName: 'Unknown',
    key: { keyType: 'RSA', keySize: 2048, reuseKey: false, exportable: true },
    ...opts.policy,
  };
  const stateAt = (v: number, nbMs: number, names: string[]): CertificateState => ({
    id: 'kv/site',
    vault: 'kv',
    name: 'site',
    version: `v${v}`,
    thumbprint: `THUMB${v}`,
    notBefore: new Date(nbMs).toISOString(),
    notAfter: new Date(nbMs + lifetime).toISOString(),
    subject: 'CN=site.test',
    dnsNames: names,
    tags: { Recipient: 'ops@example.test' },
    policy,
    key: { type: 'RSA', size: 2048 },
    pendingOperation: false,
  });
  let current: Promise<CertificateState> | null = null;
  const now = async () => Number(await env.currentTimeMs());
  /** The vault makes a new version by itself (observe mode: its own auto-renew), issued now. */
  const vaultRenews = async (): Promise<CertificateState> => {
    version += 1;
    current = now().then((t) => stateAt(version, t, policy.dnsNames));
    return current;
  };
  const acts: Partial<Activities> = {
    async renewInVault() {
      calls.push('renewInVault');
      await hooks.renewInVault?.();
      return { started: true, status: 'inProgress' };
    },
    async observe() {
      calls.push('observe');
      await hooks.observe?.();
      current ??= now().then((t) => stateAt(version, t, opts.dnsNames ?? policy.dnsNames));
      return current;
    },
    async beginRenewal() {
      calls.push('beginRenewal');
      return { csrPem: 'CSR', reused: false };
    },
    async prepareRenewal() {
      calls.push('beginRenewal');
      const before = await (current ??= now().then((t) =>
        stateAt(version, t, opts.dnsNames ?? policy.dnsNames),
      ));
      return { before, csrPem: 'CSR', reused: false, dnsNames: policy.dnsNames };
    },
    async verifyAndMerge() {
      calls.push('verify', 'merge');
      version += 1;
      current = now().then((t) => stateAt(version, t, policy.dnsNames));
      return { ...(await current), verifiedThumbprint: `THUMB${version}` };
    },
    async issue() {
      calls.push('issue');
      issues += 1;
      return (await hooks.issue?.(issues)) ?? { status: 'issued', chainPem: ['LEAF'] };
    },
    async pollIssuance() {
      calls.push('pollIssuance');
      polls += 1;
      return (await hooks.poll?.(polls)) ?? { status: 'issued', chainPem: ['LEAF'] };
    },
    async verify() {
      calls.push('verify');
      return { thumbprint: `THUMB${version + 1}` } as Awaited<ReturnType<Activities['verify']>>;
    },
    async merge() {
      calls.push('merge');
      version += 1;
      current = now().then((t) => stateAt(version, t, policy.dnsNames));
      return current;
    },
    async syncBindings(input) {
      calls.push('syncBindings');
      return (await hooks.syncBindings?.(input)) ?? [];
    },
    async probeBindings(input) {
      calls.push('probeBindings');
      return (await hooks.probeBindings?.(input)) ?? [];
    },
    async cancelRenewal() {
      calls.push('cancelRenewal');
    },
    async renewalWindow() {
      calls.push('renewalWindow');
      return (await hooks.renewalWindow?.()) ?? null;
    },
    async notify(input) {
      calls.push(`notify:${input.kind}`);
      await hooks.notify?.(input);
      notifies.push(input);
      return { sent: true, invalidRecipients: [] };
    },
  };
  return {
    acts: acts as Activities,
    calls,
    notifies,
    policy,
    version: () => version,
    issues: () => issues,
    vaultRenews,
    now,
  };
}

export type LifecycleHandle = WorkflowHandle<typeof certificateLifecycle>;

/**
 * Waits (bounded) until the workflow's latest run has no workflow task scheduled or running. The time-skipping
 * test server loses a query that arrives while a workflow task runs, typically the one continuing a lifecycle as
 * new right after an update returned; the lost query then keeps time locked, and the next env.sleep never returns.
 * Reading the history does not involve the worker, so it is safe while a task runs.
 */
async function idle(h: LifecycleHandle): Promise<void> {
  const E = temporal.api.enums.v1.EventType;
  // a task scheduled or running, or a run that just continued as new (its successor's first task is due)
  const busy = new Set<number>([
    E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    E.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
  ]);
  const until = Date.now() + 10_000;
  let quietSince: string | undefined;
  while (Date.now() < until) {
    const events = (await h.fetchHistory()).events ?? [];
    const last = events.at(-1);
    const mark = `${events.length}:${String(last?.eventId)}`;
    if (busy.has(Number(last?.eventType ?? 0))) quietSince = undefined;
    else if (quietSince === mark)
      return; // idle in two reads in a row, nothing new in between
    else quietSince = mark;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Updates the current run has accepted so far (its history's UpdateAccepted events). */
export async function acceptedUpdates(h: LifecycleHandle): Promise<number> {
  const accepted = temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED;
  return ((await h.fetchHistory()).events ?? []).filter((e) => e.eventType === accepted).length;
}

/** Below waitFor's 5 s probe limit, so a slow query ends on its own before waitFor gives up on it. */
const QUERY_DEADLINE_MS = 4_000;

/** Runs `fn` against a lifecycle of kv/site (workflow id per test) on a worker of its own, then terminates it. */
export async function withLifecycle(
  env: TestWorkflowEnvironment,
  acts: Activities,
  name: string,
  fn: (h: LifecycleHandle) => Promise<void>,
  input: Partial<LifecycleInput> = {},
): Promise<void> {
  const taskQueue = `tq-${name}-${Date.now()}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowsPath: require.resolve('../../workflows/index.ts'),
    activities: acts,
  });
  // Probes that waitFor or update() gave up on may still be in flight when the test ends. Left alone, they fail
  // UNAVAILABLE when the test server stops, and the client's retry timer then calls into the closed channel: an
  // uncaught "Channel has been shut down". Aborting them here ends them CANCELLED, which is never retried.
  const inFlight = new AbortController();
  try {
    await worker.runUntil(() =>
      env.connection.withAbortSignal(inFlight.signal, async () => {
        const handle = await env.client.workflow.start(certificateLifecycle, {
          taskQueue,
          workflowId: workflowIdFor(`kv/${name}`),
          // no drift watch unless a test asks for it (drift-watch.test.ts): a probe a simulated day would slow
          // the year-long tests and change the event counts they assert
          args: [
            {
              certificateId: 'kv/site',
              issuer: 'test',
              searchAttributes: false,
              driftWatch: { everyMinutes: 0 },
              ...input,
            },
          ],
        });
        // a query the test server does not answer is cut off by its deadline (DEADLINE_EXCEEDED, not retried)
        // instead of lingering after waitFor gave up on it
        const query: LifecycleHandle['query'] = async (def, ...args) => {
          await idle(handle);
          return env.connection.withDeadline(Date.now() + QUERY_DEADLINE_MS, () =>
            handle.query(def, ...args),
          );
        };
        await fn({ ...handle, query });
        // a lifecycle the test let finish (retired) has nothing to terminate
        await handle.terminate('test done').catch(() => undefined);
      }),
    );
  } finally {
    inFlight.abort();
  }
}

/**
 * `executeUpdate` whose wait for the result cannot hang: the time-skipping test server now and then loses the
 * long poll for an update's result when the workflow continues as new right after answering it (the same as
 * lost queries, see waitFor). The update is sent once with a known id; only the wait for its result is retried.
 */
export async function update<Ret, Args extends [unknown, ...unknown[]]>(
  h: LifecycleHandle,
  def: UpdateDefinition<Ret, Args>,
  args: Args,
): Promise<Ret> {
  const updateId = randomUUID();
  // renew and sync requests carry their id, as the CLI's do: a repeat is answered from the lifecycle's records
  const first = args[0];
  const sent = (
    first && typeof first === 'object' && !('requestId' in first) && /^(renewNow|syncNow)$/.test(def.name)
      ? [{ ...first, requestId: updateId }, ...args.slice(1)]
      : args
  ) as Args;
  await idle(h);
  const started = await h.startUpdate(def, {
    args: sent,
    updateId,
    waitForStage: WorkflowUpdateStage.ACCEPTED,
  });
  const runPin = started.workflowRunId ? { workflowRunId: started.workflowRunId } : undefined;
  for (let attempt = 1; ; attempt++) {
    let timer: NodeJS.Timeout | undefined;
    const lost = new Promise<'lost'>((r) => (timer = setTimeout(() => r('lost'), 15_000)));
    const result = await Promise.race([
      h
        .getUpdateHandle<Ret>(updateId, runPin)
        .result()
        .catch((err: unknown) => {
          // the run that answered continued as new before the result was read (the test server forgets it):
          // ask the latest run, which answers a known request id from its carried records
          if (err instanceof WorkflowNotFoundError)
            return idle(h).then(() =>
              h.executeUpdate(def, { args: sent, updateId: `${updateId}:again${attempt}` }),
            );
          throw err;
        }),
      lost,
    ]).finally(() => clearTimeout(timer));
    if (result !== 'lost') return result as Ret;
    if (attempt >= 3)
      throw new Error(`no result for update ${def.name} after ${attempt} polls; ${await whereIs(h)}`);
  }
}

/** Where a workflow stands (status, pending work, the last events), for a failure message; bounded in time. */
async function whereIs(h: LifecycleHandle): Promise<string> {
  const within = <T>(p: Promise<T>) =>
    Promise.race([
      p,
      new Promise<never>((_, no) => setTimeout(() => no(new Error('no answer in 5 s')), 5_000)),
    ]);
  try {
    const d = await within(h.describe());
    const history = await within(h.fetchHistory());
    const events = (history.events ?? [])
      .slice(-15)
      .map((e) => String(temporal.api.enums.v1.EventType[e.eventType ?? 0]).replace('EVENT_TYPE_', ''));
    return (
      `workflow ${d.status.name}, ${d.raw.pendingActivities?.length ?? 0} pending activities ` +
      `(${(d.raw.pendingActivities ?? []).map((a) => a.activityType?.name).join(', ')}), ` +
      `${d.raw.pendingChildren?.length ?? 0} pending children; last events: ${events.join(' ')}`
    );
  } catch (err) {
    return `could not describe the workflow: ${(err as Error).message}`;
  }
}

/** The message a refused update (its validator threw) carries. */
export async function refusal(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e as Error & { cause?: Error },
  );
  if (!err) throw new Error('expected the update to be refused');
  return err.cause?.message ?? err.message;
}

/** Every run of a lifecycle, oldest first, following continue-as-new back from the latest (no visibility needed). */
export async function runsOf(env: TestWorkflowEnvironment, h: LifecycleHandle): Promise<string[]> {
  const runs = [(await h.describe()).runId];
  for (;;) {
    const events = (await env.client.workflow.getHandle(h.workflowId, runs[0]).fetchHistory()).events ?? [];
    const previous = events[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId;
    if (!previous) return runs;
    runs.unshift(previous);
  }
}

/**
 * With CERTFLOW_RECORD_HISTORIES=<release>, writes every run of this lifecycle as replay fixtures
 * (test/fixtures/histories/<release>-lifecycle-<name>-<n>.json), so later changes are replay-checked against it.
 */
export async function recordRuns(
  env: TestWorkflowEnvironment,
  h: LifecycleHandle,
  name: string,
): Promise<void> {
  const release = process.env.CERTFLOW_RECORD_HISTORIES;
  if (!release) return;
  const dir = path.join(repoRoot, 'test/fixtures/histories');
  let n = 0;
  for (const runId of await runsOf(env, h)) {
    n += 1;
    const history = await env.client.workflow.getHandle(h.workflowId, runId).fetchHistory();
    writeFileSync(path.join(dir, `${release}-lifecycle-${name}-${n}.json`), historyToJSON(history));
  }
}
