/**
 * What the Docker image's /app would hold, measured without Docker (no engine here): the production install the
 * Dockerfile's deps stage makes (`npm ci --omit=dev --ignore-scripts`, from package-lock.json, in a scratch
 * directory), pruned by deploy/prune-node-modules.mjs, plus what the runtime stage copies (dist/, bin/,
 * package.json, the health check, the schema, the example config). Then it proves the pruned tree works: every
 * production dependency imports, and the CLI of dist/ runs. Writes bench/results/image-size.json.
 *
 *   npm run build && npx tsx bench/image-size.ts      # needs the npm registry (or a warm npm cache)
 *
 * The base image (node:22.23.2-bookworm-slim) is not counted: its size is Docker Hub's to report.
 */
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeResults } from './lib/results';
import { MiB } from './lib/stats';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** What the runtime stage of the Dockerfile copies besides node_modules (keep in step with it). */
const COPIED = ['dist', 'package.json', 'bin', 'deploy/healthcheck.mjs', 'schema', 'config.example.json'];

function bytes(p: string): number {
  const s = statSync(p, { throwIfNoEntry: false });
  if (!s) return 0;
  if (!s.isDirectory()) return s.size;
  return readdirSync(p).reduce((n, e) => n + bytes(path.join(p, e)), 0);
}

/** The largest packages (scoped ones by their scope/name). */
function largest(nodeModules: string, n = 10): Array<{ name: string; MiB: number }> {
  const pkgs: Array<{ name: string; MiB: number }> = [];
  for (const e of readdirSync(nodeModules)) {
    if (e.startsWith('.')) continue;
    const names = e.startsWith('@') ? readdirSync(path.join(nodeModules, e)).map((s) => `${e}/${s}`) : [e];
    for (const name of names) pkgs.push({ name, MiB: MiB(bytes(path.join(nodeModules, name))) });
  }
  return pkgs.sort((a, b) => b.MiB - a.MiB).slice(0, n);
}

if (!existsSync(path.join(root, 'dist/worker/main.js')))
  throw new Error('dist/ is missing: run `npm run build` first');
const app = mkdtempSync(path.join(os.tmpdir(), 'certflow-image-'));
try {
  cpSync(path.join(root, 'package.json'), path.join(app, 'package.json'));
  cpSync(path.join(root, 'package-lock.json'), path.join(app, 'package-lock.json'));
  console.log(`npm ci --omit=dev in ${app}`);
  execFileSync(
    'npm',
    ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'],
    {
      cwd: app,
      stdio: 'inherit',
    },
  );
  rmSync(path.join(app, 'package-lock.json'));
  const nodeModules = path.join(app, 'node_modules');
  const installed = bytes(nodeModules);
  const pruneLog = execFileSync(
    process.execPath,
    [path.join(root, 'deploy/prune-node-modules.mjs'), nodeModules],
    {
      encoding: 'utf8',
    },
  );
  process.stdout.write(pruneLog);
  const pruned = bytes(nodeModules);
  for (const c of COPIED) {
    mkdirSync(path.dirname(path.join(app, c)), { recursive: true });
    cpSync(path.join(root, c), path.join(app, c), { recursive: true });
  }

  // the pruned tree works: every production dependency imports (reflect-metadata first, as the worker does)
  const smoke = path.join(app, 'smoke.mjs');
  writeFileSync(
    smoke,
    `import { readFileSync } from 'node:fs';
await import('reflect-metadata');
const deps = Object.keys(JSON.parse(readFileSync('package.json', 'utf8')).dependencies);
const failed = [];
for (const d of deps) { try { await import(d); } catch (e) { failed.push(d + ': ' + e.message); } }
console.log(JSON.stringify({ imported: deps.length - failed.length, of: deps.length, failed }));
`,
  );
  const imports = JSON.parse(execFileSync(process.execPath, [smoke], { cwd: app, encoding: 'utf8' })) as {
    imported: number;
    of: number;
    failed: string[];
  };
  rmSync(smoke);
  const version = execFileSync(process.execPath, ['bin/certflow.mjs', '--version'], {
    cwd: app,
    encoding: 'utf8',
  });
  const help = execFileSync(process.execPath, ['bin/certflow.mjs', '--help'], { cwd: app, encoding: 'utf8' });

  const du = execFileSync('du', ['-sh', app], { encoding: 'utf8' }).split('\t')[0];
  const results = {
    measuredAt: new Date().toISOString(),
    platform: `${process.platform}-${process.arch}`,
    nodeModulesInstalledMiB: MiB(installed),
    nodeModulesPrunedMiB: MiB(pruned),
    prunedAwayMiB: MiB(installed - pruned),
    prune: pruneLog.trim().split('\n'),
    copiedMiB: Object.fromEntries(COPIED.map((c) => [c, MiB(bytes(path.join(app, c)))])),
    appTotalMiB: MiB(bytes(app)),
    duSh: du,
    largestPackages: largest(nodeModules),
    check: { ...imports, cli: version.trim(), helpLines: help.trim().split('\n').length },
    note: '/app of the image; the base image node:22.23.2-bookworm-slim comes on top',
  };
  if (imports.failed.length)
    throw new Error(`production dependencies do not import: ${imports.failed.join('; ')}`);
  console.log(
    `node_modules ${results.nodeModulesInstalledMiB} MiB installed -> ${results.nodeModulesPrunedMiB} MiB pruned; ` +
      `dist ${results.copiedMiB.dist} MiB; /app ${results.appTotalMiB} MiB (du -sh: ${du}); ` +
      `${imports.imported}/${imports.of} dependencies import, ${version.trim()} runs`,
  );
  console.log(`wrote ${await writeResults('image-size.json', results)}`);
} finally {
  rmSync(app, { recursive: true, force: true });
}
