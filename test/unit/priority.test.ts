/**
 * Wave and manual priority (workflows/priority.ts): which renewals go ahead on the rate-limited vault and issuer
 * queues. Every trigger reason is named here, so a new one has to be placed on purpose.
 */
import { describe, expect, it } from 'vitest';
import type { TriggerReason } from '../../workflows/lifecycle/triggers';
import { priorityOf } from '../../workflows/priority';

const ALL: Record<TriggerReason, number | undefined> = {
  Manual: 1,
  Missing: 2,
  Expired: 2,
  PolicyChanged: undefined,
  Retry: undefined,
  NearingRenewal: undefined,
};

describe('priorityOf', () => {
  it.each(Object.entries(ALL))('%s → priorityKey %s', (reason, key) => {
    expect(priorityOf(reason)).toEqual(key === undefined ? undefined : { priorityKey: key });
  });

  it('a person or a wave (Manual) goes ahead of a missing or expired certificate, and both ahead of routine', () => {
    // Temporal: a lower key runs first; unset means the default 3
    const key = (r: TriggerReason) => priorityOf(r)?.priorityKey ?? 3;
    expect(key('Manual')).toBeLessThan(key('Missing'));
    expect(key('Missing')).toBe(key('Expired'));
    expect(key('Expired')).toBeLessThan(key('NearingRenewal'));
    for (const r of Object.keys(ALL) as TriggerReason[]) {
      expect(key(r)).toBeGreaterThanOrEqual(1);
      expect(key(r)).toBeLessThanOrEqual(5);
    }
  });

  it('routine and unknown reasons keep the default (no priority sent)', () => {
    expect(priorityOf('NearingRenewal')).toBeUndefined();
    expect(priorityOf('Retry')).toBeUndefined();
    expect(priorityOf('SomethingNew')).toBeUndefined();
    // an inherited property name is not a priority
    expect(priorityOf('toString')).toBeUndefined();
    expect(priorityOf('constructor')).toBeUndefined();
  });
});
