/**
 * `node --import tsx --import ./test/support/redirect-hosts-preload.ts worker/main.ts ...`: installs
 * redirectHosts (redirect-hosts.ts) from CERTFLOW_TEST_REDIRECT_HOSTS (JSON { hosts, caPem }) before the
 * program starts; does nothing when it is unset. Tests and the chaos suite only.
 */
import { REDIRECT_HOSTS_ENV, redirectHosts, type RedirectHosts } from './redirect-hosts';

const spec = process.env[REDIRECT_HOSTS_ENV];
if (spec) redirectHosts(JSON.parse(spec) as RedirectHosts);
