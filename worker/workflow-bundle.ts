/**
 * The workflow bundles: made once at build time (`npm run build`) and loaded by the worker, so a worker starts
 * without webpack. Two variants of the same workflows: `plain` (dist/workflow-bundle.js) and `traced`
 * (dist/workflow-bundle-traced.js: with the OpenTelemetry plugin's workflow interceptors, which must be inside
 * the bundle for workflow spans; the worker loads it when `tracing` is configured). The file's first line records
 * what it was built from:
 *
 *   // certflow-workflow-bundle {"format":1,"sdk":"1.24.0","codeSha256":"…","sources":{"workflows/index.ts":"…",…}}
 *
 * `sources` are the repository files webpack read (node_modules excluded), each with its SHA-256; `sdk` is the
 * @temporalio/workflow version bundled in; `codeSha256` the hash of the code after the first line; a traced
 * bundle adds `variant` and the version of each package whose workflow code it adds (`packages`).
 * At start the worker checks the code against `codeSha256`, the installed SDK (and packages) against the recorded
 * versions, and, where the sources are present (a checkout, not the image), every listed source against its hash:
 * a mismatch names the files. Running from dist/ the worker refuses a stale bundle ("run npm run build"); running
 * from the TypeScript sources (tsx: tests, development) it bundles the workflows itself instead, as before.
 */
import type { BundleOptions } from '@temporalio/worker';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '@temporalio/common';

export type BundleVariant = 'plain' | 'traced';

/** Each variant's file, and the packages besides the SDK whose workflow code it bundles (versions checked). */
export const BUNDLE_VARIANTS: Record<BundleVariant, { file: string; packages: readonly string[] }> = {
  plain: { file: 'dist/workflow-bundle.js', packages: [] },
  traced: { file: 'dist/workflow-bundle-traced.js', packages: ['@temporalio/interceptors-opentelemetry'] },
};
export const BUNDLE_FILE = BUNDLE_VARIANTS.plain.file;
const HEADER = '// certflow-workflow-bundle ';
const FORMAT = 1;

export interface BundleManifest {
  format: number;
  /** @temporalio/workflow version in the bundle. */
  sdk: string;
  codeSha256: string;
  /** absent: plain */
  variant?: BundleVariant;
  /** package → version, for the variant's packages (absent: none) */
  packages?: Record<string, string>;
  /** repository-relative path (forward slashes) → SHA-256 of the file */
  sources: Record<string, string>;
}

export class WorkflowBundleError extends Error {
  override readonly name = 'WorkflowBundleError';
}

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

/** The package's root: the nearest directory above `from` holding certflow's package.json (sources or dist/). */
export function packageRoot(from: string = fileURLToPath(import.meta.url)): string {
  for (let dir = path.dirname(from); ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file) && (JSON.parse(readFileSync(file, 'utf8')) as { name?: string }).name === 'certflow')
      return dir;
    if (path.dirname(dir) === dir) throw new Error(`no certflow package.json above ${from}`);
  }
}

/** True when this module runs from the TypeScript sources (tsx), false from the build (dist/). */
export const runningFromSources = (): boolean => fileURLToPath(import.meta.url).endsWith('.ts');

/** A package's version as installed beside the package root. */
export function installedVersion(root: string, pkg: string): string {
  const require = createRequire(path.join(root, 'package.json'));
  return (require(`${pkg}/package.json`) as { version: string }).version;
}

/** The @temporalio/workflow version installed beside the worker. */
export const installedWorkflowSdk = (root: string): string => installedVersion(root, '@temporalio/workflow');

/** The versions of a variant's packages installed under root (recorded in its header). */
export const variantPackages = (variant: BundleVariant, root: string): Record<string, string> =>
  Object.fromEntries(BUNDLE_VARIANTS[variant].packages.map((p) => [p, installedVersion(root, p)]));

/** The bundle file's text: the header line, then the code. */
export function writeBundleText(
  code: string,
  sources: Record<string, string>,
  sdk: string,
  variant: { variant: BundleVariant; packages: Record<string, string> } = { variant: 'plain', packages: {} },
): string {
  const manifest: BundleManifest = {
    format: FORMAT,
    sdk,
    ...(variant.variant === 'plain' ? {} : { variant: variant.variant, packages: variant.packages }),
    codeSha256: sha256(code),
    sources,
  };
  return `${HEADER}${JSON.stringify(manifest)}\n${code}`;
}

/** Splits a bundle file into manifest and code, checking the code against its recorded hash. */
export function readBundleText(text: string, file = BUNDLE_FILE): { manifest: BundleManifest; code: string } {
  const nl = text.indexOf('\n');
  if (!text.startsWith(HEADER) || nl < 0)
    throw new WorkflowBundleError(
      `${file} has no certflow-workflow-bundle header: rebuild it (npm run build)`,
    );
  let manifest: BundleManifest;
  try {
    manifest = JSON.parse(text.slice(HEADER.length, nl)) as BundleManifest;
  } catch {
    throw new WorkflowBundleError(`${file}: its header is not valid JSON: rebuild it (npm run build)`);
  }
  if (manifest.format !== FORMAT)
    throw new WorkflowBundleError(
      `${file} has header format ${manifest.format}, this worker reads ${FORMAT}: rebuild it (npm run build)`,
    );
  const code = text.slice(nl + 1);
  if (sha256(code) !== manifest.codeSha256)
    throw new WorkflowBundleError(
      `${file} does not match the hash in its header (edited or truncated): rebuild it (npm run build)`,
    );
  return { manifest, code };
}

/** Hashes of the listed sources as they are now under root (null: missing). */
function currentHashes(root: string, files: string[]): Map<string, string | null> {
  return new Map(
    files.map((f) => {
      const p = path.join(root, f);
      return [f, existsSync(p) ? sha256(readFileSync(p)) : null];
    }),
  );
}

/**
 * Why the bundle does not fit this installation, or null when it does. Sources are compared only when the
 * workflow sources are present under root (a checkout); an image ships dist/ alone.
 */
export function staleness(
  manifest: BundleManifest,
  root: string,
  sdk = installedWorkflowSdk(root),
  variant: BundleVariant = 'plain',
): string | null {
  const built = manifest.variant ?? 'plain';
  if (built !== variant) return `it is the ${built} bundle, not the ${variant} one`;
  if (manifest.sdk !== sdk)
    return `it bundles @temporalio/workflow ${manifest.sdk}, the installed SDK is ${sdk}`;
  for (const pkg of BUNDLE_VARIANTS[variant].packages) {
    let installed: string;
    try {
      installed = installedVersion(root, pkg);
    } catch {
      installed = '(not installed)';
    }
    if (manifest.packages?.[pkg] !== installed)
      return `it bundles ${pkg} ${manifest.packages?.[pkg] ?? '(none)'}, the installed one is ${installed}`;
  }
  if (!existsSync(path.join(root, 'workflows', 'index.ts'))) return null;
  const now = currentHashes(root, Object.keys(manifest.sources));
  const changed = [...now]
    .filter(([f, h]) => h !== manifest.sources[f])
    .map(([f, h]) => (h ? f : `${f} (deleted)`));
  if (!changed.length) return null;
  const shown =
    changed.slice(0, 5).join(', ') + (changed.length > 5 ? `, and ${changed.length - 5} more` : '');
  return `the workflow sources changed since it was built: ${shown}`;
}

/** Webpack's statistics are for developers: debug, not info. */
function quietLogger(logger: Logger): Logger {
  return {
    ...logger,
    info: logger.debug,
    log: (l, m, meta) => logger.log(l === 'INFO' ? 'DEBUG' : l, m, meta),
  };
}

/** Warnings and errors to stderr, nothing else (the build's own lines say what was made). */
const SILENT: Logger = {
  log: (level, message) => void (level === 'WARN' || level === 'ERROR' ? console.error(message) : undefined),
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (m) => console.error(m),
  error: (m) => console.error(m),
};

/** Bundles workflows/index.ts now (webpack), returning the code and the repository files it read. */
export async function bundleWorkflows(
  root: string,
  logger: Logger = SILENT,
  /** Temporal plugins that add to the bundle (tracing's workflow interceptors). */
  temporalPlugins?: BundleOptions['plugins'],
): Promise<{ code: string; sources: Record<string, string> }> {
  const { bundleWorkflowCode } = await import('@temporalio/worker');
  const read = new Set<string>();
  const { code } = await bundleWorkflowCode({
    workflowsPath: path.join(root, 'workflows', 'index.ts'),
    ...(temporalPlugins?.length ? { plugins: temporalPlugins } : {}),
    logger: quietLogger(logger),
    webpackConfigHook: (config) => ({
      ...config,
      plugins: [
        ...(config.plugins ?? []),
        {
          apply(compiler) {
            compiler.hooks.done.tap('certflow-sources', (stats) => {
              for (const f of stats.compilation.fileDependencies) read.add(f);
            });
          },
        },
      ],
    }),
  });
  const sources: Record<string, string> = {};
  for (const f of [...read].sort()) {
    const rel = path.relative(root, f);
    if (rel.startsWith('..') || path.isAbsolute(rel) || rel.split(path.sep).includes('node_modules'))
      continue;
    // package.json is read for module resolution only; what it pins that matters here (the SDK) is recorded apart
    if (path.basename(rel) === 'package.json') continue;
    if (!existsSync(f)) continue; // directories and probed-but-absent paths
    try {
      sources[rel.split(path.sep).join('/')] = sha256(readFileSync(f));
    } catch {
      // a directory webpack watched: not a source
    }
  }
  if (!sources['workflows/index.ts'])
    throw new Error('bundling recorded no workflow sources (webpack reported no file dependencies)');
  return { code, sources };
}

export interface LoadedBundle {
  code: string;
  /** where it came from: the prebuilt file, or bundled at this start */
  origin: 'prebuilt' | 'bundled-at-start';
  /** why the prebuilt bundle was not used (bundled-at-start only) */
  reason?: string;
}

/** The prebuilt bundle of a variant under root when it exists and fits; else why not. */
export function prebuiltBundle(
  root: string,
  variant: BundleVariant = 'plain',
): { text: string; code: string } | { reason: string } {
  const rel = BUNDLE_VARIANTS[variant].file;
  const file = path.join(root, rel);
  if (!existsSync(file)) return { reason: `${rel} is missing` };
  try {
    const text = readFileSync(file, 'utf8');
    const { manifest, code } = readBundleText(text, rel);
    const stale = staleness(manifest, root, installedWorkflowSdk(root), variant);
    return stale ? { reason: `${rel} is out of date: ${stale}` } : { text, code };
  } catch (err) {
    if (!(err instanceof WorkflowBundleError)) throw err;
    return { reason: err.message };
  }
}

/**
 * The workflow code for the Worker: the prebuilt bundle of the variant when it fits; otherwise, from the
 * sources, bundled now (with `plugins`, which add the variant's interceptors); from dist/, a WorkflowBundleError
 * naming what does not fit and how to fix it.
 */
export async function loadWorkflowBundle(
  opts: {
    root?: string;
    fromSources?: boolean;
    logger?: Logger;
    variant?: BundleVariant;
    plugins?: BundleOptions['plugins'];
  } = {},
): Promise<LoadedBundle> {
  const root = opts.root ?? packageRoot();
  const fromSources = opts.fromSources ?? runningFromSources();
  const variant = opts.variant ?? 'plain';
  const prebuilt = prebuiltBundle(root, variant);
  if ('code' in prebuilt) return { code: prebuilt.code, origin: 'prebuilt' };
  if (!fromSources)
    throw new WorkflowBundleError(
      `cannot use the workflow bundle: ${prebuilt.reason}. Rebuild with \`npm run build\` (it writes dist/ and ${BUNDLE_VARIANTS[variant].file} together), or run the worker from the sources.`,
    );
  const { code } = await bundleWorkflows(root, opts.logger, opts.plugins);
  return { code, origin: 'bundled-at-start', reason: prebuilt.reason };
}
