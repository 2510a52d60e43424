/**
 * `certflow --help` loads no command and no Temporal package (client/cli.ts imports each command when it runs),
 * and a command loads its own module only. Checked in a child process (a fresh module cache), through tsx as in
 * development: CommonJS packages imported from ESM show in require.cache.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../support/tools';

function loadedAfter(argv: string[]): { modules: string[]; out: string } {
  const script = `
    import { createRequire } from 'node:module';
    const { runCli } = await import('./client/cli.ts');
    let out = '';
    const sink = { write: (t) => ((out += t), true) };
    await runCli(${JSON.stringify(argv)}, { out: sink, err: sink });
    const cached = Object.keys(createRequire(import.meta.url).cache);
    process.stdout.write(JSON.stringify({ modules: cached, out }));
  `;
  const stdout = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  return JSON.parse(stdout) as { modules: string[]; out: string };
}

const temporal = (mods: string[]) => mods.filter((m) => m.includes('@temporalio'));

describe('the CLI loads only what a command needs', () => {
  it('--help lists every command without loading Temporal', () => {
    const { modules, out } = loadedAfter(['--help']);
    expect(out).toContain('status <vault>/<name>');
    expect(temporal(modules)).toEqual([]);
  });

  it('help <command> loads that command (its options), and with it the Temporal client', () => {
    const { modules, out } = loadedAfter(['help', 'policy']);
    expect(out).toMatch(/--percent N\s+renew at N % of the lifetime/);
    expect(temporal(modules).length).toBeGreaterThan(0);
  });
});
