#!/usr/bin/env node
// The certflow CLI: the build (dist/client/bin.js, `npm run build`). In a checkout whose TypeScript sources are
// newer than that build (or with no build yet), the sources run through tsx instead (a development dependency),
// so a developer never runs stale code; an installed package or image ships dist/ alone and always runs it.
/* global process */
import { existsSync, readdirSync, statSync } from 'node:fs';
import module from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// Node 22.1+: compiled code cached on disk (in the temporary directory), so later runs compile less; absent on 20
module.enableCompileCache?.();

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const built = path.join(root, 'dist/client/bin.js');
const SOURCE_DIRS = ['client', 'worker', 'activities', 'workflows'];

/** The newest modification time of the TypeScript sources, or 0 where none are shipped. */
function newestSource() {
  let newest = 0;
  const walk = (dir) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  for (const d of SOURCE_DIRS) walk(path.join(root, d));
  return newest;
}

const builtAt = existsSync(built) ? statSync(built).mtimeMs : 0;
if (builtAt && newestSource() <= builtAt) {
  await import(pathToFileURL(built).href);
} else if (existsSync(path.join(root, 'client/bin.ts'))) {
  const { register } = await import('tsx/esm/api').catch(() => {
    process.stderr.write('certflow: no build in dist/ and tsx is not installed: run `npm run build`\n');
    process.exit(2);
  });
  register();
  await import('../client/bin.ts');
} else {
  process.stderr.write(`certflow: ${built} is missing: run \`npm run build\`\n`);
  process.exitCode = 2;
}
