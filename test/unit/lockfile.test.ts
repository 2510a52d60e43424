/**
 * package-lock.json comes out of `npm install` unchanged on npm 10 and npm 11 (npm 10 drops the `libc` fields
 * npm 11 writes: a lock in npm 11's form was rewritten by the first `npm start` on Node 20, and the next start
 * reinstalled). Each npm, pinned and installed by scripts/install-tools.sh into .tools/npm/, resolves the lock
 * again (`--package-lock-only`, offline, an empty cache: the lock alone decides) in a scratch copy.
 */
import { execFile } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, scratchDir } from '../support/tools';

const run = promisify(execFile);
const root = scratchDir('lockfile');
afterAll(() => fs.rm(root, { recursive: true, force: true }));

/** The versions scripts/install-tools.sh installs (LOCK_CHECK_NPM_VERSIONS). */
const VERSIONS = /LOCK_CHECK_NPM_VERSIONS="([^"]+)"/
  .exec(await fs.readFile(path.join(repoRoot, 'scripts/install-tools.sh'), 'utf8'))![1]!
  .split(' ');

describe('package-lock.json', () => {
  it('checks npm 10 and npm 11', () => {
    expect(VERSIONS.map((v) => v.split('.')[0])).toEqual(['10', '11']);
  });

  it.each(VERSIONS)(
    'survives npm install on npm %s unchanged',
    async (version) => {
      const cli = path.join(repoRoot, '.tools/npm', version, 'node_modules/npm/bin/npm-cli.js');
      expect(existsSync(cli), `${cli} missing: run bash scripts/install-tools.sh`).toBe(true);
      const dir = path.join(root, version);
      await fs.mkdir(dir, { recursive: true });
      for (const f of ['package.json', 'package-lock.json'])
        await fs.copyFile(path.join(repoRoot, f), path.join(dir, f));
      const before = await fs.readFile(path.join(dir, 'package-lock.json'), 'utf8');
      await run(
        process.execPath,
        [
          cli,
          'install',
          '--package-lock-only',
          '--ignore-scripts',
          '--offline',
          `--cache=${path.join(dir, 'cache')}`,
          '--no-audit',
          '--no-fund',
          '--loglevel=error',
        ],
        { cwd: dir, timeout: 120_000, env: { ...process.env, npm_config_update_notifier: 'false' } },
      );
      const after = await fs.readFile(path.join(dir, 'package-lock.json'), 'utf8');
      // the first line that differs, for whoever has to fix the lock
      const a = before.split('\n');
      const b = after.split('\n');
      const at = a.findIndex((l, i) => l !== b[i]);
      expect(
        at === -1 && a.length === b.length
          ? 'unchanged'
          : `line ${at + 1}: ${a[at]?.trim()} -> ${b[at]?.trim()}`,
        'regenerate the lock with npm 10: node .tools/npm/10.*/node_modules/npm/bin/npm-cli.js install --package-lock-only',
      ).toBe('unchanged');
    },
    150_000,
  );
});
