/**
 * Service quotas as Temporal task-queue rates (pure): a vault's key creates and an ACME account's new orders are
 * rate-limited by the server on their own task queue (worker/vault-workers.ts, worker/issuer-workers.ts), the one
 * scheme that holds across every worker. One source for the defaults and the conversion.
 */

/** At most `limit` operations in any `windowSeconds`. */
export interface Quota {
  limit: number;
  windowSeconds: number;
}

/** Key Vault: 20 key creates per 10 s per vault for software keys, 10 for HSM keys (service limits). */
export const KEY_VAULT_KEY_CREATES: Quota = { limit: 20, windowSeconds: 10 };
export const KEY_VAULT_HSM_KEY_CREATES: Quota = { limit: 10, windowSeconds: 10 };
/** Let's Encrypt: 300 new orders per account per 3 hours. */
export const LETS_ENCRYPT_NEW_ORDERS: Quota = { limit: 300, windowSeconds: 3 * 3600 };

/**
 * Task-queue partitions Temporal gives a queue by default (`matching.numTaskqueueReadPartitions`): the rate is
 * split between them and each has a token bucket of its own, at least one token deep.
 */
export const DEFAULT_PARTITIONS = 4;

/**
 * The largest rate r (per second) whose worst case stays within the quota: Temporal's task-queue limiter gives each
 * of the queue's partitions r / partitions with a bucket of ceil(r / partitions) tokens (at least 1), so a full
 * burst of every partition plus a window of steady rate is partitions × ceil(r / partitions) + r × window, which
 * must not pass the limit. With 4 partitions: 20 per 10 s → 1.6/s; 10 per 10 s → 0.6/s; 300 per 3 h → 0.0274/s.
 * (Measured: 50 key creates asked of one vault at once, at 1.8/s (one bucket assumed) drew four 429s; the
 * partitions' buckets were the difference.)
 */
export function quotaRatePerSecond(q: Quota, partitions = DEFAULT_PARTITIONS): number {
  if (!(Number.isInteger(q.limit) && q.limit >= 2))
    throw new Error(`quota limit: expected a whole number of at least 2, got ${q.limit}`);
  if (!(q.windowSeconds > 0)) throw new Error(`quota windowSeconds: expected > 0, got ${q.windowSeconds}`);
  if (!(Number.isInteger(partitions) && partitions >= 1))
    throw new Error(`partitions: expected a whole number of at least 1, got ${partitions}`);
  let best = 0;
  // per-partition bucket depth d: burst = partitions × d, and each partition's rate r / partitions ∈ (d - 1, d]
  for (let d = 1; partitions * d < q.limit; d++) {
    const r = Math.min(d * partitions, (q.limit - partitions * d) / q.windowSeconds);
    if (r / partitions > d - 1) best = Math.max(best, r);
  }
  if (best <= 0)
    throw new Error(
      `quota ${q.limit} per ${q.windowSeconds} s is too small for ${partitions} task-queue partitions: give the queue one partition`,
    );
  return Math.floor(best * 1e6) / 1e6;
}

/** The tighter of an explicit rate and a quota's rate; undefined when neither is set. */
export function tighterRate(perSecond: number | undefined, quota: Quota | undefined): number | undefined {
  const fromQuota = quota ? quotaRatePerSecond(quota) : undefined;
  if (perSecond === undefined) return fromQuota;
  return fromQuota === undefined ? perSecond : Math.min(perSecond, fromQuota);
}

/** The key-create quota of a configured vault: its own, else Key Vault's default (HSM or not); none for local. */
export function keyCreateQuotaOf(v: {
  kind: string;
  keyCreateQuota?: Quota;
  hsm?: boolean;
}): Quota | undefined {
  if (v.keyCreateQuota) return v.keyCreateQuota;
  if (v.kind !== 'azure') return undefined;
  return v.hsm ? KEY_VAULT_HSM_KEY_CREATES : KEY_VAULT_KEY_CREATES;
}
