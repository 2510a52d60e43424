/**
 * Which renewals go first when a rate-limited queue (a vault's key creates, an issuer's orders) has a backlog:
 * Temporal task-queue priority (priorityKey 1 = first, 5 = last, unset = 3). Pure; shared by the lifecycle and
 * its tests. Checked on Temporal server 1.32 (CLI 1.9.1) with SDK 1.24: with one partition a priority-1 task
 * scheduled behind 16 routine ones ran next; with several partitions (the default) the order holds per partition.
 */
import type { Priority } from '@temporalio/common';

/** A person or a wave asked (Manual), or the certificate has none or is past expiry: ahead of routine work. */
const URGENT: Readonly<Record<string, number>> = { Manual: 1, Missing: 2, Expired: 2 };

/** The priority of an attempt's queued steps, from its trigger; routine triggers keep the default. */
export function priorityOf(triggerReason: string): Priority | undefined {
  // own keys only: an inherited name ("toString") is no priority
  const key = Object.hasOwn(URGENT, triggerReason) ? URGENT[triggerReason] : undefined;
  return key === undefined ? undefined : { priorityKey: key };
}
