/**
 * Work shared by the callers that ask for it at once, and reused for a short while after: a call for a key whose
 * work is in flight joins it; one within `reuseMs` of its end gets the same answer; then the answer is dropped
 * (nothing is held for the process's life); a failure is forgotten at once, so the next call tries again; work
 * in flight longer than `maxJoinMs` is not joined (a hung call must not hold every later one).
 * Hand-written: a dozen lines over a Map; a cache library would bring eviction policies this does not need.
 */
export function sharedWork<V>(
  reuseMs: number,
  /** Work in flight longer than this is not joined (it may hang): a new call makes it anew. */
  maxJoinMs = Infinity,
): (key: string, make: () => Promise<V>) => Promise<V> {
  const known = new Map<string, { work: Promise<V>; startedAt: number; doneAt?: number }>();
  return (key, make) => {
    const found = known.get(key);
    const now = Date.now();
    if (
      found &&
      (found.doneAt === undefined ? now - found.startedAt < maxJoinMs : now - found.doneAt < reuseMs)
    )
      return found.work;
    const entry: { work: Promise<V>; startedAt: number; doneAt?: number } = { work: make(), startedAt: now };
    const forget = () => void (known.get(key) === entry && known.delete(key));
    entry.work.then(() => {
      entry.doneAt = Date.now();
      setTimeout(forget, reuseMs).unref();
    }, forget);
    known.set(key, entry);
    return entry.work;
  };
}
