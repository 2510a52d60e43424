/** Writes a benchmark's figures as JSON, formatted the way the repository's `prettier --check` expects. */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import prettier from 'prettier';

export const resultsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'results');

export async function writeResults(name: string, data: unknown): Promise<string> {
  const file = path.join(resultsDir, name);
  await mkdir(resultsDir, { recursive: true });
  const options = { ...(await prettier.resolveConfig(file)), parser: 'json' };
  // written whole to a temporary name first: an interrupted run never leaves half a results file
  const tmp = `${file}.tmp`;
  await writeFile(tmp, await prettier.format(JSON.stringify(data), options));
  await rename(tmp, file);
  return path.relative(process.cwd(), file);
}

/** The results a previous run wrote (null when there are none or they do not parse). */
export async function readResults<T>(name: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(path.join(resultsDir, name), 'utf8')) as T;
  } catch {
    return null;
  }
}

/** Stops the servers a benchmark started (by PID) when it is interrupted, then exits. */
export function stopOnSignals(stop: () => Promise<void>): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      console.error(`${sig}: stopping what the benchmark started`);
      void stop().finally(() => process.exit(130));
    });
  }
}
