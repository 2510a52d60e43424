/**
 * The certificates named in the configuration get their lifecycle at worker start: created in their vault first
 * when the entry has a `create` block and the vault does not hold them yet (issuer Unknown: the vault makes the key
 * and CSR, and the lifecycle's first renewal issues it). Idempotent: a running lifecycle is not started again (its
 * change control and drift watch follow the configuration through its looks: lifecycle-settings.ts); one that
 * runs on another task queue than this worker's (the configuration's `taskQueue` changed, or another deployment
 * has it) is left too, but said loudly: no worker of this configuration serves it, so it would never renew here.
 * What each lifecycle carries (policy, mode, drift watch, change control) comes from lifecycle-settings.ts, as for
 * `certflow enroll`.
 */
import type { Client } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import { parseCertificateId } from '../activities/ids';
import type { CertificatePolicySnapshot, Vault } from '../activities/types';
import { startLifecycle } from '../activities/lifecycles';
import { workflowIdFor } from '../workflows/messages';
import type { CertflowConfig } from './config';
import type { CertflowLogger } from './logger';
import { lifecycleSettingsFor } from './lifecycle-settings';

export interface EnrolledCertificate {
  certificateId: string;
  status: 'started' | 'already-running' | 'failed';
  created: boolean;
  detail?: string;
}

type EnrollDeps = { client: Client; vaults: ReadonlyMap<string, Vault>; logger: CertflowLogger };

/** A configuration mistake (fixed only by a new configuration), as opposed to a vault or server that may answer later. */
const CONFIG_PROBLEM = /^certificates: /;

export async function enrollConfigured(
  config: CertflowConfig,
  deps: EnrollDeps,
  /** Only these certificate ids (a retry of the ones that failed); default all configured. */
  only?: ReadonlySet<string>,
): Promise<EnrolledCertificate[]> {
  const results: EnrolledCertificate[] = [];
  for (const c of config.certificates) {
    if (only && !only.has(c.id)) continue;
    let created = false;
    try {
      const issuer = c.issuer ?? config.defaults.issuer;
      if (!issuer) throw new Error(`certificates: ${c.id} has no issuer and defaults.issuer is not set`);
      if (c.create) created = await createIfMissing(c.id, c.create, deps.vaults);
      const { started } = await startLifecycle(deps.client, {
        certificateId: c.id,
        issuer,
        taskQueue: config.taskQueue,
        ...lifecycleSettingsFor(config, c.id),
      });
      const elsewhere = started ? undefined : await runsElsewhere(deps.client, c.id, config.taskQueue);
      if (elsewhere)
        deps.logger.warn(
          'a configured certificate is already kept by a lifecycle on another task queue, which this worker does not poll: it is not renewed by this worker',
          { certificateId: c.id, lifecycleTaskQueue: elsewhere, workerTaskQueue: config.taskQueue },
        );
      results.push({
        certificateId: c.id,
        status: started ? 'started' : 'already-running',
        created,
        ...(elsewhere
          ? {
              detail: `its lifecycle runs on task queue "${elsewhere}", not this worker's "${config.taskQueue}"`,
            }
          : {}),
      });
    } catch (err) {
      // one certificate that cannot be enrolled must not keep the others (or the worker) from running
      const detail = (err as Error).message;
      deps.logger.error('could not enroll a configured certificate', { certificateId: c.id, error: detail });
      results.push({ certificateId: c.id, status: 'failed', created, detail });
    }
  }
  if (results.length) deps.logger.info('configured certificates enrolled', { results });
  return results;
}

/**
 * Enrols every configured certificate, then keeps trying the ones that failed for a passing reason (the vault
 * throttled or unreachable while creating them, Temporal not answering) on a backoff, 5 s doubling to 5 min,
 * until they are enrolled or `stopped()`: a worker that started during a vault's 429 burst must not leave those
 * certificates without a lifecycle until its next restart. Configuration mistakes are not retried. Resolves with
 * the first pass's results; the retries go on in the background (`retries`).
 */
export async function enrollConfiguredWithRetries(
  config: CertflowConfig,
  deps: EnrollDeps,
  opts: { stopped: () => boolean; firstDelayMs?: number; maxDelayMs?: number },
): Promise<{ first: EnrolledCertificate[]; retries: Promise<EnrolledCertificate[]> }> {
  const first = await enrollConfigured(config, deps);
  const retryable = (r: EnrolledCertificate) => r.status === 'failed' && !CONFIG_PROBLEM.test(r.detail ?? '');
  const retries = (async () => {
    const done: EnrolledCertificate[] = [];
    let left = new Set(first.filter(retryable).map((r) => r.certificateId));
    let delay = opts.firstDelayMs ?? 5_000;
    while (left.size > 0 && !opts.stopped()) {
      deps.logger.info('retrying the enrolment of configured certificates that failed', {
        certificates: left.size,
        inSeconds: delay / 1000,
      });
      await new Promise((r) => setTimeout(r, delay).unref());
      if (opts.stopped()) break;
      const again = await enrollConfigured(config, deps, left);
      done.push(...again.filter((r) => r.status !== 'failed'));
      left = new Set(again.filter(retryable).map((r) => r.certificateId));
      delay = Math.min(delay * 2, opts.maxDelayMs ?? 5 * 60_000);
    }
    return done;
  })();
  return { first, retries };
}

/** The task queue of the running lifecycle when it is not `taskQueue` (undefined when it is, or when unknown). */
async function runsElsewhere(client: Client, id: string, taskQueue: string): Promise<string | undefined> {
  try {
    const described = await client.workflow.getHandle(workflowIdFor(id)).describe();
    return described.taskQueue && described.taskQueue !== taskQueue ? described.taskQueue : undefined;
  } catch {
    return undefined; // a check only: the lifecycle is there, as startLifecycle found
  }
}

type CreateBlock = NonNullable<CertflowConfig['certificates'][number]['create']>;

async function createIfMissing(
  id: string,
  create: CreateBlock,
  vaults: ReadonlyMap<string, Vault>,
): Promise<boolean> {
  const { vault: vaultName, name } = parseCertificateId(id);
  const vault = vaults.get(vaultName);
  if (!vault) throw new Error(`certificates: vault "${vaultName}" of ${id} is not configured`);
  try {
    await vault.describe(name);
    return false;
  } catch (err) {
    if ((err as ApplicationFailure).type !== 'CertificateNotFound') throw err;
  }
  const ec = create.keyType.startsWith('EC');
  const policy: CertificatePolicySnapshot = {
    subject: create.subject ?? `CN=${create.dnsNames[0]}`,
    dnsNames: create.dnsNames,
    issuerName: 'Unknown',
    key: {
      keyType: create.keyType,
      ...(ec ? { curve: create.curve ?? 'P-256' } : { keySize: create.keySize ?? 2048 }),
      reuseKey: false,
      exportable: create.exportable,
    },
    ...(create.validityInMonths ? { validityInMonths: create.validityInMonths } : {}),
  };
  await vault.create(name, policy, create.tags ?? {});
  return true;
}
