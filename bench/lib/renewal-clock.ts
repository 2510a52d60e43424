/**
 * Wraps the worker's activities to timestamp each certificate's renewal as the worker itself sees it: when the
 * new version is merged into the vault, and when the attempt's final step (the notification) is done.
 * The wrapped activities behave exactly as the real ones; only the clock readings are added.
 */
import type { Activities } from '../../activities/index';

export interface RenewalClock {
  /** performance.now() when the merge of each certificate last completed. */
  mergedAt: Map<string, number>;
  /** performance.now() when each certificate's attempt finished (its notify activity returned), renewed or not. */
  doneAt: Map<string, number>;
  /** Certificates whose attempt ended in anything but 'renewed' (kind of the last notification). */
  notRenewed: Map<string, string>;
  reset(): void;
}

const ATTEMPT_KINDS = new Set(['renewed', 'partially-synced', 'renewal-failed']);

export function withRenewalClock(activities: Activities): { activities: Activities; clock: RenewalClock } {
  const clock: RenewalClock = {
    mergedAt: new Map(),
    doneAt: new Map(),
    notRenewed: new Map(),
    reset() {
      this.mergedAt.clear();
      this.doneAt.clear();
      this.notRenewed.clear();
    },
  };
  // release 3 merges with verifyAndMerge, release 2 with merge (the benchmark also runs on release 2's code)
  const merged = (id: string) => clock.mergedAt.set(id, performance.now());
  const acts = activities as Activities & Partial<Pick<Activities, 'verifyAndMerge'>>;
  return {
    clock,
    activities: {
      ...activities,
      async merge(input) {
        const state = await activities.merge(input);
        merged(input.certificateId);
        return state;
      },
      ...(acts.verifyAndMerge
        ? {
            async verifyAndMerge(input: Parameters<Activities['verifyAndMerge']>[0]) {
              const state = await acts.verifyAndMerge!(input);
              merged(input.certificateId);
              return state;
            },
          }
        : {}),
      async notify(input) {
        const sent = await activities.notify(input);
        if (ATTEMPT_KINDS.has(input.kind)) {
          clock.doneAt.set(input.certificateId, performance.now());
          if (input.kind === 'renewed') clock.notRenewed.delete(input.certificateId);
          else clock.notRenewed.set(input.certificateId, input.kind);
        }
        return sent;
      },
    },
  };
}
