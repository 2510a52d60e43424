/**
 * In-memory stand-ins for tests where the client side is under test (the CLI, the Event Grid endpoint): a Vault
 * kept in memory and activities over it, run by a real Worker of `certificateLifecycle` on the real dev server.
 * The lifecycle workflow itself is tested in test/workflows, the real vault / CA / bindings in test/integration.
 */
import type { Client } from '@temporalio/client';
import { ApplicationFailure, type DataConverter } from '@temporalio/common';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Activities } from '../../activities/index';
import type { LifecycleSettings } from '../../activities/lifecycles';
import type { BindingOutcome, CertificateState, CertificateSummary, Vault } from '../../activities/types';
import { SA } from '../../workflows/messages';
import { liveSettingsOf, settingsAnswer } from '../../workflows/lifecycle/settings';

const require = createRequire(import.meta.url);
const DAY = 86_400_000;

interface MemoryCert {
  version: number;
  notBefore: number;
  lifetimeMs: number;
  enabled: boolean;
  tags: Record<string, string>;
  lifetimePercentage?: number;
  daysBeforeExpiry?: number;
  issuerName?: string;
  lifetimeAction?: 'AutoRenew' | 'EmailContacts';
}

export interface AddOptions {
  lifetimeDays?: number;
  /** How long ago the current version was issued. */
  ageDays?: number;
  enabled?: boolean;
  tags?: Record<string, string>;
  lifetimePercentage?: number;
  daysBeforeExpiry?: number;
  /** False: created in the vault, never issued (version null). */
  issued?: boolean;
  /** The policy's issuer [Unknown] and lifetime action [not reported] (observe-mode certificates, the audit). */
  issuerName?: string;
  lifetimeAction?: 'AutoRenew' | 'EmailContacts';
}

export type MemoryVault = Vault & {
  add(name: string, opts?: AddOptions): void;
  /** A new version issued now (what a merge does). */
  renew(name: string): CertificateState;
  thumbprintAfterRenewal(name: string): string;
};

const thumbprint = (id: string, v: number): string =>
  createHash('sha1').update(`${id}#${v}`).digest('hex').toUpperCase();

const notUsed = (what: string) => () => {
  throw new Error(`${what} is not used by the in-memory vault's tests`);
};

export function createMemoryVault(name: string): MemoryVault {
  const certs = new Map<string, MemoryCert>();
  const get = (n: string): MemoryCert => {
    const c = certs.get(n);
    if (!c)
      throw ApplicationFailure.create({
        message: `${name}/${n} not found`,
        type: 'NotFound',
        nonRetryable: true,
      });
    return c;
  };
  const state = (n: string): CertificateState => {
    const c = get(n);
    const id = `${name}/${n}`;
    const issued = c.version > 0;
    return {
      id,
      vault: name,
      name: n,
      version: issued ? `v${c.version}` : null,
      thumbprint: issued ? thumbprint(id, c.version) : null,
      notBefore: issued ? new Date(c.notBefore).toISOString() : null,
      notAfter: issued ? new Date(c.notBefore + c.lifetimeMs).toISOString() : null,
      subject: `CN=${n}.example.test`,
      dnsNames: [`${n}.example.test`],
      tags: { ...c.tags },
      policy: {
        subject: `CN=${n}.example.test`,
        dnsNames: [`${n}.example.test`],
        issuerName: c.issuerName ?? 'Unknown',
        key: { keyType: 'EC', curve: 'P-256', reuseKey: false, exportable: true },
        lifetimePercentage: c.lifetimePercentage,
        daysBeforeExpiry: c.daysBeforeExpiry,
        ...(c.lifetimeAction ? { lifetimeAction: c.lifetimeAction } : {}),
      },
      pendingOperation: false,
    };
  };
  return {
    name,
    add(n, o = {}) {
      const lifetimeMs = (o.lifetimeDays ?? 90) * DAY;
      certs.set(n, {
        version: o.issued === false ? 0 : 1,
        notBefore: Date.now() - (o.ageDays ?? 1) * DAY,
        lifetimeMs,
        enabled: o.enabled ?? true,
        tags: o.tags ?? {},
        lifetimePercentage: o.lifetimePercentage,
        daysBeforeExpiry: o.daysBeforeExpiry,
        issuerName: o.issuerName,
        lifetimeAction: o.lifetimeAction,
      });
    },
    renew(n) {
      const c = get(n);
      c.version += 1;
      c.notBefore = Date.now();
      return state(n);
    },
    thumbprintAfterRenewal: (n) => thumbprint(`${name}/${n}`, get(n).version + 1),
    describe: async (n) => state(n),
    async *list(): AsyncIterable<CertificateSummary> {
      for (const n of certs.keys()) {
        const s = state(n);
        yield {
          id: s.id,
          name: n,
          version: s.version,
          thumbprint: s.thumbprint,
          notAfter: s.notAfter,
          enabled: get(n).enabled,
          tags: s.tags,
        };
      }
    },
    secretIdOf: (n, v) => `https://${name}.vault.example.test/secrets/${n}/${v}`,
    create: notUsed('create'),
    beginRenewal: notUsed('beginRenewal'),
    merge: notUsed('merge'),
    cancelRenewal: notUsed('cancelRenewal'),
    exportSecret: notUsed('exportSecret'),
    certificatePem: async () => null,
  };
}

export interface FakeHooks {
  /** Slows issuance down (ms) so progress can be watched. */
  issueDelayMs?: (certificateId: string) => number;
  /** A non-retryable CA refusal of this type for this certificate. */
  issueFailure?: (certificateId: string) => string | undefined;
  bindings?: (certificateId: string, thumbprint: string) => BindingOutcome[];
  /** What the worker's configuration gives a lifecycle of this certificate (the enrolment check answers it). */
  lifecycleSettings?: (certificateId: string) => LifecycleSettings;
}

/** Activities over in-memory vaults; `calls` records what ran, by certificate id. */
export function fakeActivities(vaults: ReadonlyMap<string, MemoryVault>, hooks: FakeHooks = {}) {
  const calls = { issue: [] as string[], merge: [] as string[], sync: [] as string[] };
  const split = (id: string): [MemoryVault, string] => {
    const [v, n] = id.split('/') as [string, string];
    const vault = vaults.get(v);
    if (!vault)
      throw ApplicationFailure.create({
        message: `vault ${v} unknown`,
        type: 'UnknownVault',
        nonRetryable: true,
      });
    return [vault, n];
  };
  const acts: Partial<Activities> = {
    // as the real activity: the configuration's settings when they differ from what the lifecycle runs under
    observe: async (id: string, opts?: { settingsFingerprint?: string }) => {
      const [vault, n] = split(id);
      const state = await vault.describe(n);
      const current = hooks.lifecycleSettings ? liveSettingsOf(hooks.lifecycleSettings(id)) : undefined;
      const settings = settingsAnswer(opts?.settingsFingerprint, current);
      return settings ? { ...state, settings } : state;
    },
    beginRenewal: async () => ({ csrPem: 'CSR', reused: false }),
    checkEnrollment: async (input) => {
      const [v, n] = input.certificateId.split('/') as [string, string];
      const vault = vaults.get(v);
      if (!vault)
        return { ok: false, problems: [`vault "${v}" is not configured`], mode: null, notIssuedYet: false };
      try {
        const st = await vault.describe(n);
        const settings = hooks.lifecycleSettings?.(input.certificateId);
        return {
          ok: true,
          problems: [],
          mode: 'issue',
          notIssuedYet: st.version === null,
          ...(settings ? { settings } : {}),
        };
      } catch {
        return {
          ok: false,
          problems: [`certificate "${n}" does not exist in vault "${v}"`],
          mode: null,
          notIssuedYet: false,
        };
      }
    },
    prepareRenewal: async (input) => {
      const [vault, n] = split(input.certificateId);
      const before = await vault.describe(n);
      return { before, csrPem: 'CSR', reused: false, dnsNames: before.dnsNames };
    },
    verifyAndMerge: async (input) => {
      calls.merge.push(input.certificateId);
      const [vault, n] = split(input.certificateId);
      const state = vault.renew(n);
      return { ...state, verifiedThumbprint: state.thumbprint ?? '' };
    },
    issue: async (req) => {
      calls.issue.push(req.certificateId);
      const delay = hooks.issueDelayMs?.(req.certificateId) ?? 0;
      if (delay) await new Promise((r) => setTimeout(r, delay));
      const type = hooks.issueFailure?.(req.certificateId);
      if (type)
        throw ApplicationFailure.create({
          message: `the CA refused ${req.certificateId}`,
          type,
          nonRetryable: true,
        });
      return { status: 'issued', chainPem: ['LEAF'] };
    },
    verify: async (input) => {
      const [vault, n] = split(input.certificateId);
      return { thumbprint: vault.thumbprintAfterRenewal(n) } as Awaited<ReturnType<Activities['verify']>>;
    },
    merge: async (input) => {
      calls.merge.push(input.certificateId);
      const [vault, n] = split(input.certificateId);
      return vault.renew(n);
    },
    syncBindings: async (input) => {
      calls.sync.push(input.certificateId);
      return hooks.bindings?.(input.certificateId, input.thumbprint) ?? [];
    },
    cancelRenewal: async () => {},
    bindingTargets: async (input) => [
      ...new Set((hooks.bindings?.(input.certificateId, '') ?? []).map((b) => b.target)),
    ],
    notify: async () => ({ sent: true, invalidRecipients: [] }),
    renewalWindow: async () => null,
  };
  return { activities: acts as Activities, calls };
}

/** A Worker of the real workflows with these activities, running until `stop()`. */
export async function startFakeWorker(opts: {
  address: string;
  namespace: string;
  taskQueue: string;
  activities: Activities;
  /** e.g. payload encryption (client/payload-codec.ts). */
  dataConverter?: DataConverter;
}): Promise<{ stop(): Promise<void> }> {
  const connection = await NativeConnection.connect({ address: opts.address });
  const worker = await Worker.create({
    connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    workflowsPath: require.resolve('../../workflows/index.ts'),
    activities: opts.activities,
    shutdownGraceTime: '2 seconds',
    ...(opts.dataConverter ? { dataConverter: opts.dataConverter } : {}),
  });
  const running = worker.run();
  return {
    async stop() {
      worker.shutdown();
      await running;
      await connection.close();
    },
  };
}

/** Terminates every running lifecycle of a test's vault (search attribute CertificateVault). */
export async function terminateVaultLifecycles(client: Client, vault: string): Promise<void> {
  const query = `${SA.vault.name} = '${vault}' AND ExecutionStatus = 'Running'`;
  for await (const w of client.workflow.list({ query }))
    await client.workflow.getHandle(w.workflowId).terminate('test done');
}
