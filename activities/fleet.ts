/**
 * Fleet discovery's activities: what each configured vault holds, which lifecycles Temporal runs for it, and
 * starting / retiring lifecycles. Inputs and outputs are certificate ids only (public, and small in history even
 * for vaults with thousands of certificates).
 */
import { heartbeat } from '@temporalio/activity';
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { globMatch } from './globs';
import { runningIds, startLifecycle, type StartLifecycleOptions } from './lifecycles';
import { retireSignal, workflowIdFor } from '../workflows/messages';
import { mapLimit } from './bindings/concurrency';
import { parseCertificateId } from './ids';
import type { Vault } from './types';
import type { DriftWatchConfig } from '../workflows/lifecycle/drift';

export interface FleetActivityDeps {
  vaults: ReadonlyMap<string, Vault>;
  /** Talks to the namespace the lifecycles run in (the worker's own client). */
  client: Client;
  /** The workers' task queue, where new lifecycles are started. */
  taskQueue: string;
  /** Lifecycles started or signalled at once (default 8). */
  concurrency?: number;
  /** Discovery's opt-in tag: a certificate without it never matches, whatever a run's input says. */
  requiredTag?: TagFilter;
  /** Change control for the lifecycles discovery starts (config `changeControl`). */
  changeControl?: StartLifecycleOptions['changeControl'];
}

export interface TagFilter {
  name: string;
  value: string;
}

export interface VaultListing {
  vault: string;
  /** Every certificate of the vault, whatever its state: what "still exists" is judged against. */
  present: string[];
  /** Enabled certificates that match the pattern and tag: the ones that should have a lifecycle. */
  matching: string[];
  /** Matching but disabled in the vault: no lifecycle is started for them. */
  disabled: string[];
}

export interface FailedId {
  id: string;
  type: string;
  message: string;
}

export interface StartOutcome {
  started: string[];
  alreadyRunning: string[];
  failed: FailedId[];
}

export interface RetireOutcome {
  /** Signalled to finish: the vault confirmed the certificate does not exist. */
  retired: string[];
  /** The vault still has it (a listing that missed it): left alone. */
  stillPresent: string[];
  /** No running lifecycle any more (already retired, terminated). */
  notRunning: string[];
  failed: FailedId[];
}

/** The vault's answer to a read of a certificate that does not exist (local vault and Key Vault adapters). */
const NOT_FOUND = 'CertificateNotFound';

export function createFleetActivities(deps: FleetActivityDeps) {
  const limit = deps.concurrency ?? 8;

  const vaultNamed = (name: string): Vault => {
    const vault = deps.vaults.get(name);
    if (!vault)
      throw ApplicationFailure.create({
        message: `vault "${name}" is not configured on this worker (known: ${[...deps.vaults.keys()].join(', ') || 'none'})`,
        type: 'UnknownVault',
        nonRetryable: true,
      });
    return vault;
  };

  /** Runs `fn` over ids with a heartbeat each; an error becomes that id's failure instead of failing all. */
  const eachId = async <R>(ids: readonly string[], fn: (id: string) => Promise<R>) =>
    mapLimit(ids, limit, async (id) => {
      try {
        return await fn(id);
      } catch (err) {
        return { id, ...describe(err) };
      } finally {
        heartbeat();
      }
    });

  return {
    async listVaultCertificates(input: {
      vault: string;
      pattern?: string;
      tag?: TagFilter;
    }): Promise<VaultListing> {
      const vault = vaultNamed(input.vault);
      const out: VaultListing = { vault: input.vault, present: [], matching: [], disabled: [] };
      try {
        for await (const c of vault.list()) {
          heartbeat();
          const id = `${input.vault}/${c.name}`;
          out.present.push(id);
          if (input.pattern !== undefined && !globMatch(input.pattern, id)) continue;
          if (input.tag && c.tags[input.tag.name] !== input.tag.value) continue;
          if (deps.requiredTag && c.tags[deps.requiredTag.name] !== deps.requiredTag.value) continue;
          (c.enabled ? out.matching : out.disabled).push(id);
        }
      } catch (err) {
        throw listFailure(input.vault, err);
      }
      return out;
    },

    /** Running lifecycles of a vault, by our search attribute. Visibility lags a little behind starts and ends. */
    async listLifecycles(input: { vault: string }): Promise<string[]> {
      return (await runningIds(deps.client, { vault: input.vault }, () => heartbeat())).sort();
    },

    /** Idempotent: a lifecycle already running (started by enroll, or by a run whose answer was lost) stays. */
    async startLifecycles(input: {
      ids: string[];
      issuer: string;
      jitterMinutes?: number;
      driftWatch?: DriftWatchConfig;
    }): Promise<StartOutcome> {
      const out: StartOutcome = { started: [], alreadyRunning: [], failed: [] };
      const results = await eachId(input.ids, async (id) => {
        const { started } = await startLifecycle(deps.client, {
          certificateId: id,
          issuer: input.issuer,
          taskQueue: deps.taskQueue,
          ...(input.jitterMinutes !== undefined ? { jitterMinutes: input.jitterMinutes } : {}),
          ...(deps.changeControl ? { changeControl: deps.changeControl } : {}),
          ...(input.driftWatch ? { driftWatch: input.driftWatch } : {}),
        });
        return { id, started };
      });
      for (const r of results) {
        if ('type' in r) out.failed.push(r);
        else (r.started ? out.started : out.alreadyRunning).push(r.id);
      }
      return out;
    },

    /**
     * Retires the lifecycles of certificates gone from their vault. Each certificate is read once more first and
     * only a definite "not found" from the vault retires it: a listing that skipped it, or a vault that cannot be
     * read, never ends a lifecycle.
     */
    async retireLifecycles(input: { ids: string[]; reason: string }): Promise<RetireOutcome> {
      const out: RetireOutcome = { retired: [], stillPresent: [], notRunning: [], failed: [] };
      const results = await eachId(input.ids, async (id) => {
        const { vault, name } = parseCertificateId(id);
        if (await exists(vaultNamed(vault), name)) return { id, outcome: 'stillPresent' as const };
        try {
          await deps.client.workflow
            .getHandle(workflowIdFor(id))
            .signal(retireSignal, { reason: input.reason });
          return { id, outcome: 'retired' as const };
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) return { id, outcome: 'notRunning' as const };
          throw err;
        }
      });
      for (const r of results) {
        if ('type' in r) out.failed.push(r);
        else out[r.outcome].push(r.id);
      }
      return out;
    },
  };
}

export type FleetActivities = ReturnType<typeof createFleetActivities>;

async function exists(vault: Vault, name: string): Promise<boolean> {
  try {
    await vault.describe(name);
    return true;
  } catch (err) {
    if (err instanceof ApplicationFailure && err.type === NOT_FOUND) return false;
    throw err;
  }
}

function describe(err: unknown): { type: string; message: string } {
  if (err instanceof ApplicationFailure) return { type: err.type ?? 'Error', message: err.message };
  const e = err as Error;
  return { type: e?.name ?? 'Error', message: e?.message ?? String(err) };
}

/** Keeps the adapter's classification (authorization is not retryable, throttling is) and names the vault. */
function listFailure(vault: string, err: unknown): ApplicationFailure {
  const { type, message } = describe(err);
  const text = message.includes(vault)
    ? message
    : `cannot list the certificates of vault "${vault}": ${message}`;
  const app = err instanceof ApplicationFailure ? err : undefined;
  return ApplicationFailure.create({
    message: text,
    type: app ? type : 'VaultListFailed',
    nonRetryable: app?.nonRetryable ?? false,
    nextRetryDelay: app?.nextRetryDelay,
    cause: err instanceof Error ? err : undefined,
  });
}
