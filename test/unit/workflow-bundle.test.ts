/**
 * The prebuilt workflow bundle's check (worker/workflow-bundle.ts): the header records the code's hash, the SDK and
 * every source; the worker uses the bundle only when all three still fit, names what changed otherwise, and from
 * dist/ refuses (rebuild) rather than run workflows other than the sources'. Run in a scratch package root.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tracingBundlerPlugins } from '../../worker/tracing';
import {
  BUNDLE_FILE,
  BUNDLE_VARIANTS,
  bundleWorkflows,
  installedVersion,
  installedWorkflowSdk,
  loadWorkflowBundle,
  packageRoot,
  readBundleText,
  staleness,
  variantPackages,
  WorkflowBundleError,
  writeBundleText,
} from '../../worker/workflow-bundle';
import { repoRoot, scratchDir } from '../support/tools';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const CODE = 'module.exports = { workflows: true };\n';
const INDEX = "export * from './lifecycle';\n";
const LIFECYCLE = 'export async function certificateLifecycle() {}\n';

let root: string;
let sdk: string;
const write = (rel: string, text: string) => {
  mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  writeFileSync(path.join(root, rel), text);
};
const sources = () => ({ 'workflows/index.ts': sha(INDEX), 'workflows/lifecycle.ts': sha(LIFECYCLE) });

beforeEach(() => {
  // inside the repository, so that @temporalio/workflow resolves from the scratch root as from the real one
  root = scratchDir('workflow-bundle');
  rmSync(root, { recursive: true, force: true });
  write('package.json', JSON.stringify({ name: 'certflow', version: '0.0.0' }));
  write('workflows/index.ts', INDEX);
  write('workflows/lifecycle.ts', LIFECYCLE);
  sdk = installedWorkflowSdk(root);
  write(BUNDLE_FILE, writeBundleText(CODE, sources(), sdk));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('workflow bundle header', () => {
  it('round-trips the manifest and the code', () => {
    const { manifest, code } = readBundleText(writeBundleText(CODE, sources(), '1.2.3'));
    expect(code).toBe(CODE);
    expect(manifest).toEqual({ format: 1, sdk: '1.2.3', codeSha256: sha(CODE), sources: sources() });
  });

  it('refuses code that does not match its recorded hash, and a file without a header', () => {
    const text = writeBundleText(CODE, sources(), sdk);
    expect(() => readBundleText(text.replace('workflows: true', 'workflows: false'))).toThrow(
      /does not match the hash in its header \(edited or truncated\): rebuild it \(npm run build\)/,
    );
    expect(() => readBundleText(CODE)).toThrow(/has no certflow-workflow-bundle header/);
    expect(() => readBundleText(text.slice(0, -5))).toThrow(WorkflowBundleError);
  });
});

describe('staleness', () => {
  const manifest = () => readBundleText(writeBundleText(CODE, sources(), sdk)).manifest;

  it('is null while sources and SDK are those it was built from', () => {
    expect(staleness(manifest(), root)).toBeNull();
  });

  it('names each changed or deleted source', () => {
    write('workflows/lifecycle.ts', LIFECYCLE + '// changed\n');
    expect(staleness(manifest(), root)).toBe(
      'the workflow sources changed since it was built: workflows/lifecycle.ts',
    );
    rmSync(path.join(root, 'workflows/lifecycle.ts'));
    expect(staleness(manifest(), root)).toMatch(/workflows\/lifecycle\.ts \(deleted\)/);
  });

  it('names an SDK other than the one bundled', () => {
    expect(staleness(manifest(), root, '9.9.9')).toBe(
      `it bundles @temporalio/workflow ${sdk}, the installed SDK is 9.9.9`,
    );
  });

  it('does not compare sources where none are shipped (an image: dist/ alone)', () => {
    rmSync(path.join(root, 'workflows'), { recursive: true });
    expect(staleness(manifest(), root)).toBeNull();
    expect(staleness(manifest(), root, '0.0.1')).toMatch(/installed SDK is 0\.0\.1/);
  });
});

describe('loadWorkflowBundle', () => {
  it('uses the prebuilt bundle when it fits, without bundling', async () => {
    const loaded = await loadWorkflowBundle({ root, fromSources: false });
    expect(loaded).toEqual({ code: CODE, origin: 'prebuilt' });
  });

  it('from dist/: refuses a stale bundle, naming the changed file and the fix', async () => {
    write('workflows/index.ts', INDEX + "export * from './fleet';\n");
    const err = await loadWorkflowBundle({ root, fromSources: false }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(WorkflowBundleError);
    expect((err as Error).message).toBe(
      `cannot use the workflow bundle: ${BUNDLE_FILE} is out of date: the workflow sources changed since it was ` +
        `built: workflows/index.ts. Rebuild with \`npm run build\` (it writes dist/ and ${BUNDLE_FILE} together), ` +
        'or run the worker from the sources.',
    );
  });

  it('from dist/: refuses a missing or tampered bundle', async () => {
    write(BUNDLE_FILE, writeBundleText(CODE, sources(), sdk).replace('true', 'false'));
    await expect(loadWorkflowBundle({ root, fromSources: false })).rejects.toThrow(/does not match the hash/);
    rmSync(path.join(root, BUNDLE_FILE));
    await expect(loadWorkflowBundle({ root, fromSources: false })).rejects.toThrow(
      `cannot use the workflow bundle: ${BUNDLE_FILE} is missing`,
    );
  });
});

describe('the traced variant (tracing on: workflow interceptors inside the bundle)', () => {
  const OTEL = '@temporalio/interceptors-opentelemetry';
  const TRACED = BUNDLE_VARIANTS.traced.file;
  const tracedText = (packages = variantPackages('traced', root)) =>
    writeBundleText(CODE, sources(), sdk, { variant: 'traced', packages });

  it('records its variant and the OpenTelemetry package; a plain bundle records neither', () => {
    const { manifest } = readBundleText(tracedText());
    expect(manifest.variant).toBe('traced');
    expect(manifest.packages).toEqual({ [OTEL]: installedVersion(root, OTEL) });
    const plain = readBundleText(writeBundleText(CODE, sources(), sdk)).manifest;
    expect(plain).not.toHaveProperty('variant');
    expect(plain).not.toHaveProperty('packages');
  });

  it('never serves one variant for the other, and names a package version other than the installed one', () => {
    const traced = readBundleText(tracedText()).manifest;
    const plain = readBundleText(writeBundleText(CODE, sources(), sdk)).manifest;
    expect(staleness(traced, root, sdk, 'traced')).toBeNull();
    expect(staleness(traced, root, sdk, 'plain')).toBe('it is the traced bundle, not the plain one');
    expect(staleness(plain, root, sdk, 'traced')).toBe('it is the plain bundle, not the traced one');
    const old = readBundleText(tracedText({ [OTEL]: '0.0.1' })).manifest;
    expect(staleness(old, root, sdk, 'traced')).toBe(
      `it bundles ${OTEL} 0.0.1, the installed one is ${installedVersion(root, OTEL)}`,
    );
  });

  it('from dist/: loads the traced file when asked for it, and refuses when only the plain one is there', async () => {
    await expect(loadWorkflowBundle({ root, fromSources: false, variant: 'traced' })).rejects.toThrow(
      `cannot use the workflow bundle: ${TRACED} is missing. Rebuild with \`npm run build\` (it writes dist/ and ${TRACED} together)`,
    );
    write(TRACED, tracedText());
    expect(await loadWorkflowBundle({ root, fromSources: false, variant: 'traced' })).toEqual({
      code: CODE,
      origin: 'prebuilt',
    });
    // the plain worker keeps the plain file
    expect((await loadWorkflowBundle({ root, fromSources: false })).origin).toBe('prebuilt');
  });

  it("bundled with the build's plugins, the code carries the OpenTelemetry workflow interceptors", async () => {
    const interceptors = /interceptors-opentelemetry[\\/]lib[\\/]workflow-interceptors/;
    const traced = await bundleWorkflows(root, undefined, tracingBundlerPlugins());
    expect(traced.code).toMatch(interceptors);
    expect(Object.keys(traced.sources)).toEqual(['workflows/index.ts', 'workflows/lifecycle.ts']);
    expect((await bundleWorkflows(root)).code).not.toMatch(interceptors);
  }, 60_000);
});

describe('packageRoot', () => {
  it("finds certflow's package.json above the sources and above dist/", () => {
    expect(packageRoot(path.join(repoRoot, 'worker', 'workflow-bundle.ts'))).toBe(repoRoot);
    expect(packageRoot(path.join(repoRoot, 'dist', 'chunks', 'chunk-X.js'))).toBe(repoRoot);
    expect(packageRoot(path.join(root, 'dist', 'worker', 'main.js'))).toBe(root);
  });
});
