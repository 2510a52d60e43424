/**
 * vitest global setup: one real Temporal dev server for the whole run (tests isolate themselves by task
 * queue and workflow id), with Certflow's search attributes registered. Stopped by PID at the end, also when
 * tests fail. Per-file servers (vault, pebble, nginx, SMTP) are started by the files that need them.
 */
import type { TestProject } from 'vitest/node';
import { mkdirSync } from 'node:fs';
import { startDevServer } from './temporal';
import { scratchDir } from './tools';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    temporalNamespace: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = scratchDir('temporal');
  mkdirSync(dir, { recursive: true });
  const t0 = Date.now();
  const server = await startDevServer({ dir });
  console.log(
    `[global-setup] Temporal dev server ${server.address} (pid ${server.process.pid}) ready in ${Date.now() - t0} ms`,
  );
  project.provide('temporalAddress', server.address);
  project.provide('temporalNamespace', server.namespace);
  return async () => {
    await server.stop();
  };
}
