// Removes from a production node_modules what Node never loads on this machine:
// - the native binaries of other platforms, which npm installs anyway: Temporal's core bridge ships every
//   platform's library in one package (@temporalio/core-bridge/releases/<triple>, 25-30 MB each), and npm 10
//   installs both the glibc and the musl builds of packages split by libc (it ignores `libc`);
// - source maps and type declarations (*.map, *.d.ts: for debuggers and compilers, never required);
// - the browser and React Native builds of the Azure SDK packages (dist/browser, dist/react-native: Node resolves
//   their "node"/"import"/"require" exports, never these).
// Keeps this platform's binaries: run it where the image runs (the Dockerfile's deps stage, same platform).
//   node deploy/prune-node-modules.mjs [node_modules dir]     prints what it removed and the bytes saved
/* global process, console */
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';

const dir = path.resolve(process.argv[2] ?? 'node_modules');
const musl = !process.report?.getReport().header.glibcVersionRuntime;
const ARCH = { x64: 'x86_64', arm64: 'aarch64' }[process.arch];
const OS = {
  linux: musl ? 'unknown-linux-musl' : 'unknown-linux-gnu',
  darwin: 'apple-darwin',
  win32: 'pc-windows-msvc',
}[process.platform];
const keep = `${ARCH}-${OS}`;

function size(p) {
  const s = statSync(p, { throwIfNoEntry: false });
  if (!s) return 0;
  if (!s.isDirectory()) return s.size;
  return readdirSync(p).reduce((n, e) => n + size(path.join(p, e)), 0);
}

const removed = [];
const remove = (p) => {
  removed.push([path.relative(dir, p), size(p)]);
  rmSync(p, { recursive: true, force: true });
};

// the core bridge: every release but this platform's
const releases = path.join(dir, '@temporalio/core-bridge/releases');
if (existsSync(releases)) {
  if (!existsSync(path.join(releases, keep)))
    throw new Error(`no core bridge release for this platform (${keep}) in ${releases}: not pruning`);
  for (const r of readdirSync(releases)) if (r !== keep) remove(path.join(releases, r));
}

// packages split by libc (e.g. @swc/core-linux-x64-gnu / -musl): the other libc's build
const otherLibc = musl ? /-(gnu|gnueabihf)$/ : /-musl$/;
for (const scope of readdirSync(dir).filter((d) => d.startsWith('@'))) {
  for (const name of readdirSync(path.join(dir, scope)))
    if (otherLibc.test(name) && new RegExp(`-${process.platform}-`).test(name))
      remove(path.join(dir, scope, name));
}

// source maps and type declarations, everywhere; the Azure SDK's browser and React Native builds
let files = 0;
let fileBytes = 0;
const walk = (d) => {
  for (const e of readdirSync(d, { withFileTypes: true })) {
    const p = path.join(d, e.name);
    if (e.isDirectory()) {
      const parent = path.basename(d);
      if (
        parent === 'dist' &&
        (e.name === 'browser' || e.name === 'react-native') &&
        p.includes(`${path.sep}@azure${path.sep}`)
      )
        remove(p);
      else walk(p);
    } else if (/\.(map|d\.ts|d\.mts|d\.cts)$/.test(e.name)) {
      fileBytes += statSync(p).size;
      files += 1;
      rmSync(p);
    }
  }
};
walk(dir);
removed.push([`${files} source maps and type declarations`, fileBytes]);

const total = removed.reduce((n, [, b]) => n + b, 0);
const azure = removed.filter(([p]) => /dist[/\\](browser|react-native)$/.test(p));
for (const [p, b] of removed.filter((r) => !azure.includes(r)))
  console.log(`removed ${p} (${(b / 2 ** 20).toFixed(1)} MiB)`);
const azureBytes = azure.reduce((n, [, b]) => n + b, 0);
console.log(
  `removed ${azure.length} Azure SDK browser/react-native builds (${(azureBytes / 2 ** 20).toFixed(1)} MiB)`,
);
console.log(`kept ${keep}; ${(total / 2 ** 20).toFixed(1)} MiB saved`);
