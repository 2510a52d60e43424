/**
 * `npm run build`: dist/ for the worker and the CLI, and the workflow bundle the worker loads.
 *
 * - dist/worker/main.js and dist/client/bin.js (+ dist/chunks/): esbuild, ESM for Node 20, our code bundled,
 *   every npm package left external (node_modules is installed beside dist/), with code splitting so each CLI
 *   command is a chunk loaded only when it runs. esbuild rather than tsc: the sources import without file
 *   extensions (moduleResolution "Bundler"), which Node's ESM loader needs spelled out; a bundler resolves them,
 *   and builds all of it in well under a second (tsc still type-checks: `npm run typecheck`).
 *   A CommonJS package (the whole Temporal SDK, protobufjs, prom-client, ssh2...) is loaded with `require`
 *   (createRequire), not `import`: Node's ESM loader would first parse each such file and every file it
 *   re-exports to find its export names (cjs-module-lexer), about 0.15 s of CPU for @temporalio/client alone,
 *   on every start. Only where `import` and `require` load the very same CommonJS file, so the same code runs;
 *   dual packages (an ESM build for `import`) and ESM-only packages stay `import`s.
 * - dist/workflow-bundle.js and dist/workflow-bundle-traced.js (the same workflows with the OpenTelemetry
 *   plugin's workflow interceptors, loaded when tracing is on): bundleWorkflowCode (webpack, the SDK's own
 *   bundler) with a header recording the SDK version, the code's hash and every source file it was built from
 *   (worker/workflow-bundle.ts checks it at worker start). Each is kept when the existing one still matches its
 *   sources and packages (--force: always rebuilt).
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { tracingBundlerPlugins } from '../worker/tracing';
import {
  BUNDLE_VARIANTS,
  bundleWorkflows,
  installedWorkflowSdk,
  packageRoot,
  prebuiltBundle,
  variantPackages,
  writeBundleText,
  type BundleVariant,
} from '../worker/workflow-bundle';

const root = packageRoot();
const force = process.argv.includes('--force');
const outdir = path.join(root, 'dist');
const say = (m: string) => process.stdout.write(`[build] ${m}\n`);

/** The prebuilt workflow bundles, kept across builds when they still fit (bundling takes seconds, esbuild not). */
function freshBundle(variant: BundleVariant): string | null {
  if (force) return null;
  const prebuilt = prebuiltBundle(root, variant);
  return 'text' in prebuilt ? prebuilt.text : null;
}

/**
 * Packages stay external, but a deep import without an extension (`@temporalio/common/lib/search-attributes`)
 * resolves under a bundler or tsx and not under Node's ESM loader: spell out the file Node's require finds.
 */
const deepImports: Plugin = {
  name: 'deep-import-extensions',
  setup(b) {
    const require = createRequire(path.join(root, 'package.json'));
    b.onResolve({ filter: /^[^./][^:]*\/./ }, (args) => {
      const segments = args.path.split('/').length;
      if (segments < (args.path.startsWith('@') ? 3 : 2) || path.extname(args.path)) return undefined;
      const file = require.resolve(args.path);
      return { path: args.path + path.extname(file), external: true };
    });
  },
};

/** The `type` of the package.json nearest above a file. */
function packageTypeOf(file: string): string | undefined {
  for (let dir = path.dirname(file); path.dirname(dir) !== dir; dir = path.dirname(dir)) {
    const pj = path.join(dir, 'package.json');
    if (existsSync(pj)) return (JSON.parse(readFileSync(pj, 'utf8')) as { type?: string }).type;
  }
  return undefined;
}

/**
 * The file a bare specifier loads when it is the same under `import` and `require` and is CommonJS; else null
 * (a dual package, an ESM-only one, or one that does not resolve).
 */
function commonJsFile(specifier: string, require: NodeJS.Require): string | null {
  try {
    const byRequire = require.resolve(specifier);
    const byImport = fileURLToPath(import.meta.resolve(specifier));
    if (byRequire !== byImport) return null;
    const ext = path.extname(byRequire);
    if (ext === '.cjs') return byRequire;
    return ext === '.js' && packageTypeOf(byRequire) !== 'module' ? byRequire : null;
  } catch {
    return null;
  }
}

const REQUIRE_NS = 'certflow-require';
/**
 * In every output file (entry points and chunks): the `require` the CommonJS packages are loaded with. Under
 * --enable-source-maps (the image's entry point) Node reads and parses the source map of every module it loads,
 * about 0.25 s of CPU at worker start for the packages' 1,300 maps (the Temporal SDK, rxjs...): they are loaded
 * with source maps off, so stack traces show our code mapped to the TypeScript sources and the packages' frames
 * as their JavaScript (node_modules/.../lib/*.js), which is what they ship.
 */
const REQUIRE_BANNER = `import { createRequire as __certflowCreateRequire } from 'node:module';
const __certflowRequire = ((req) => (id) => {
  const maps = process.sourceMapsEnabled;
  if (maps) process.setSourceMapsEnabled(false);
  try {
    return req(id);
  } finally {
    if (maps) process.setSourceMapsEnabled(true);
  }
})(__certflowCreateRequire(import.meta.url));`;

/** CommonJS packages through `require` (see the top of this file); everything else as `packagesExternal`. */
const commonJsByRequire: Plugin = {
  name: 'commonjs-by-require',
  setup(b) {
    const require = createRequire(path.join(root, 'package.json'));
    const builtins = new Set(builtinModules);
    const seen = new Map<string, string | null>();
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      // a static import only: an `import()` keeps Node's loader, which gives it the package's named exports
      // (esbuild's chunk for it would have a default export only); the same module instance either way
      if (args.kind !== 'import-statement' || args.path.startsWith('node:') || builtins.has(args.path))
        return undefined;
      if (!seen.has(args.path)) seen.set(args.path, commonJsFile(args.path, require));
      return seen.get(args.path) ? { path: args.path, namespace: REQUIRE_NS } : undefined;
    });
    b.onLoad({ filter: /.*/, namespace: REQUIRE_NS }, (args) => ({
      contents: `module.exports = __certflowRequire(${JSON.stringify(args.path)});`,
      loader: 'js',
    }));
  },
};

const t0 = Date.now();
const variants = Object.keys(BUNDLE_VARIANTS) as BundleVariant[];
const kept = new Map(variants.map((v) => [v, freshBundle(v)]));
rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });

await build({
  absWorkingDir: root,
  entryPoints: ['worker/main.ts', 'client/bin.ts'],
  outdir: 'dist',
  outbase: '.',
  entryNames: '[dir]/[name]',
  // every chunk sits two levels below the package root, like the entry points (dist/chunks/x.js)
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  // keep names: logs and errors name classes and functions (e.g. ConfigError) as in the sources
  keepNames: true,
  logLevel: 'warning',
  banner: { js: REQUIRE_BANNER },
  plugins: [commonJsByRequire, deepImports],
});
say(`dist/worker/main.js, dist/client/bin.js (esbuild, ${Date.now() - t0} ms)`);

for (const variant of variants) {
  const rel = BUNDLE_VARIANTS[variant].file;
  const text = kept.get(variant);
  if (text) {
    writeFileSync(path.join(root, rel), text);
    say(`${rel} unchanged: it matches the workflow sources`);
    continue;
  }
  const t1 = Date.now();
  const plugins = variant === 'traced' ? tracingBundlerPlugins() : undefined;
  const { code, sources } = await bundleWorkflows(root, undefined, plugins);
  const recorded = { variant, packages: variantPackages(variant, root) };
  writeFileSync(path.join(root, rel), writeBundleText(code, sources, installedWorkflowSdk(root), recorded));
  say(
    `${rel} (bundleWorkflowCode, ${Object.keys(sources).length} sources, ${Math.round(code.length / 1024)} KiB, ${Date.now() - t1} ms)`,
  );
}
