/**
 * `node --import tsx --import ./test/support/redirect-hosts-preload.mjs worker/main.ts ...`: installs
 * redirectHosts (redirect-hosts.ts) from CERTFLOW_TEST_REDIRECT_HOSTS (JSON { hosts, caPem }) before the program
 * starts; does nothing when it is unset. Tests and the chaos suite only.
 *
 * Plain JavaScript, and the TypeScript module imported only on the main thread: worker threads (Temporal's
 * workflow threads) run every `--import` again, where a `.ts` one fails to load (tsx's hooks do not reach the
 * thread's own preloads), and they make no TLS connections.
 */
import process from 'node:process';
import { isMainThread } from 'node:worker_threads';

const spec = process.env.CERTFLOW_TEST_REDIRECT_HOSTS;
if (spec && isMainThread) {
  const { redirectHosts } = await import('./redirect-hosts.ts');
  redirectHosts(JSON.parse(spec));
}
