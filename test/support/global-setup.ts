/**
 * vitest global setup: one real Temporal server for the whole run (the dev server; or, with CERTFLOW_TEST_CLUSTER,
 * a real cluster on PostgreSQL; or, with CERTFLOW_TEST_TEMPORAL=host:port, an existing server: temporal-target.ts) (tests isolate themselves by task
 * queue and workflow id), with Certflow's search attributes registered. Stopped by PID at the end, also when
 * tests fail. Per-file servers (vault, pebble, nginx, SMTP) are started by the files that need them.
 */
import type { TestProject } from 'vitest/node';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { startTemporalTarget, type TemporalKind } from './temporal-target';
import { repoRoot, scratchDir, toolsDir } from './tools';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    temporalNamespace: string;
    /** 'dev-server', 'cluster' or 'existing': tests that need the dev server's own features skip elsewhere. */
    temporalKind: TemporalKind;
  }
}

/** Scratch folders (logs, configs, test certificates) of runs more than a day old. */
function pruneOldScratch(): void {
  const root = path.join(toolsDir, 'run');
  let entries: string[] = [];
  try {
    entries = readdirSync(root);
  } catch {
    return;
  }
  const cutoff = Date.now() - 86_400_000;
  for (const e of entries) {
    const p = path.join(root, e);
    if (statSync(p).mtimeMs < cutoff) rmSync(p, { recursive: true, force: true });
  }
}

/**
 * The build (dist/ and the workflow bundle), as `npm start` and `npm test` make it: tests that run the worker or the
 * CLI as operators do use it. Once per run, before any file (seconds; the bundle is kept when it still fits).
 */
function build(): void {
  const t0 = Date.now();
  execFileSync(process.execPath, ['--import', 'tsx', 'scripts/build.ts'], { cwd: repoRoot, stdio: 'pipe' });
  console.log(`[global-setup] built dist/ in ${Date.now() - t0} ms`);
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  pruneOldScratch();
  build();
  const dir = scratchDir('temporal');
  mkdirSync(dir, { recursive: true });
  const t0 = Date.now();
  const server = await startTemporalTarget({ dir });
  console.log(
    `[global-setup] Temporal ${server.kind} ${server.address} (pids ${server.pids().join(' ') || 'none: not ours'}) ready in ${Date.now() - t0} ms`,
  );
  project.provide('temporalAddress', server.address);
  project.provide('temporalNamespace', server.namespace);
  project.provide('temporalKind', server.kind);
  return async () => {
    await server.stop();
  };
}
