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
 * The largest rate r (per second) whose worst case stays within the quota: Temporal's task-queue limiter is a
 * token bucket whose burst is its rate rounded up (at least 1), so a full bucket plus a window of steady rate is
 * ceil(r) + r × window, which must not pass the limit. 20 per 10 s → 1.8/s; 10 per 10 s → 0.9/s;
 * 300 per 3 h → 0.0277/s (one every 36 s).
 */
export function quotaRatePerSecond(q: Quota): number {
  if (!(Number.isInteger(q.limit) && q.limit >= 2))
    throw new Error(`quota limit: expected a whole number of at least 2, got ${q.limit}`);
  if (!(q.windowSeconds > 0)) throw new Error(`quota windowSeconds: expected > 0, got ${q.windowSeconds}`);
  let best = 0;
  for (let burst = 1; burst < q.limit; burst++) {
    const r = Math.min(burst, (q.limit - burst) / q.windowSeconds);
    if (r > burst - 1) best = Math.max(best, r);
  }
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
