/**
 * The certificates named in the configuration get their lifecycle at worker start: created in their vault first
 * when the entry has a `create` block and the vault does not hold them yet (issuer Unknown: the vault makes the key
 * and CSR, and the lifecycle's first renewal issues it). Idempotent: a running lifecycle is left as it is; one that
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

export async function enrollConfigured(
  config: CertflowConfig,
  deps: { client: Client; vaults: ReadonlyMap<string, Vault>; logger: CertflowLogger },
): Promise<EnrolledCertificate[]> {
  const results: EnrolledCertificate[] = [];
  for (const c of config.certificates) {
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
