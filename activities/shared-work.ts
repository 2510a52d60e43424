/**
 * Work shared by the callers that ask for it at once, and reused for a short while after: a call for a key whose
 * work is in flight joins it; one within `reuseMs` of its end gets the same answer; then the answer is dropped
 * (nothing is held for the process's life); a failure is forgotten at once, so the next call tries again.
 * Hand-written: a dozen lines over a Map; a cache library would bring eviction policies this does not need.
 */
export function sharedWork<V>(reuseMs: number): (key: string, make: () => Promise<V>) => Promise<V> {
  const known = new Map<string, { work: Promise<V>; doneAt?: number }>();
  return (key, make) => {
    const found = known.get(key);
    if (found && (found.doneAt === undefined || Date.now() - found.doneAt < reuseMs)) return found.work;
    const entry: { work: Promise<V>; doneAt?: number } = { work: make() };
    const forget = () => void (known.get(key) === entry && known.delete(key));
    entry.work.then(() => {
      entry.doneAt = Date.now();
      setTimeout(forget, reuseMs).unref();
    }, forget);
    known.set(key, entry);
    return entry.work;
  };
}
