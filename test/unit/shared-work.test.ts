/**
 * activities/shared-work.ts: callers at once share one piece of work; it is reused for a while after it ends,
 * then made anew; a failure is not kept.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { sharedWork } from '../../activities/shared-work';

beforeEach(() => vi.useFakeTimers({ now: Date.parse('2026-12-03T08:00:00Z') }));
afterEach(() => vi.useRealTimers());

describe('sharedWork', () => {
  it('joins work in flight, reuses it within the window, and makes it anew after', async () => {
    const shared = sharedWork<number>(1_000);
    let made = 0;
    const make = () => new Promise<number>((r) => setTimeout(() => r(++made), 100));
    const together = Promise.all([shared('k', make), shared('k', make), shared('other', make)]);
    await vi.advanceTimersByTimeAsync(100);
    expect(await together).toEqual([1, 1, 2]);
    await vi.advanceTimersByTimeAsync(999);
    const reused = shared('k', make);
    expect(await reused).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    const fresh = shared('k', make);
    await vi.advanceTimersByTimeAsync(100);
    expect(await fresh).toBe(3);
    expect(made).toBe(3);
  });

  it('forgets a failure at once: the next call tries again', async () => {
    const shared = sharedWork<string>(60_000);
    let calls = 0;
    const failing = () => (calls++, Promise.reject(new Error('throttled')));
    const [a, b] = [shared('k', failing), shared('k', failing)];
    await expect(a).rejects.toThrow('throttled');
    await expect(b).rejects.toThrow('throttled');
    expect(calls).toBe(1);
    expect(await shared('k', async () => 'ok')).toBe('ok');
  });

  it('does not join work that has been in flight too long (it may hang): makes it anew', async () => {
    const shared = sharedWork<string>(1_000, 5_000);
    const hung = shared('k', () => new Promise<string>(() => {}));
    await vi.advanceTimersByTimeAsync(4_999);
    expect(shared('k', async () => 'fresh')).toBe(hung);
    await vi.advanceTimersByTimeAsync(1);
    expect(await shared('k', async () => 'fresh')).toBe('fresh');
  });

  it('drops its answer once the reuse is over', async () => {
    const shared = sharedWork<object>(1_000);
    await shared('k', async () => ({}));
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(vi.getTimerCount()).toBe(0);
    let made = 0;
    await shared('k', async () => ({ n: ++made }));
    expect(made).toBe(1);
  });
});
