// A static check of the PowerShell scripts Certflow ships (examples/): PowerShell cannot run here and `pwsh` is not
// installable from the registries CI reaches, so each script is parsed with the tree-sitter PowerShell grammar
// (WebAssembly, no native build): no syntax errors, no missing tokens. Where `pwsh` happens to be on PATH, its own
// parser is asked too. The IIS script's contract is exercised over SSH by test/integration/remote-command.test.ts
// with a POSIX stand-in; this only checks that the script parses and keeps the contract's visible promises.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Language, Parser, type Node } from 'web-tree-sitter';
import { repoRoot } from '../support/tools';

const scripts = ['examples/bindings/iis', 'examples/issuers'].flatMap((dir) =>
  readdirSync(path.join(repoRoot, dir))
    .filter((f) => f.endsWith('.ps1'))
    .map((f) => path.join(dir, f)),
);

let parser: Parser;
beforeAll(async () => {
  await Parser.init();
  const wasm = createRequire(import.meta.url).resolve('tree-sitter-powershell/tree-sitter-powershell.wasm');
  parser = new Parser();
  parser.setLanguage(await Language.load(wasm));
});

/** Where the grammar could not parse: ERROR nodes and tokens it had to invent (MISSING). */
function problems(source: string): string[] {
  const tree = parser.parse(source);
  const out: string[] = [];
  const walk = (n: Node) => {
    if (n.type === 'ERROR' || n.isMissing)
      out.push(
        `${n.isMissing ? `missing ${n.type}` : 'syntax error'} at line ${n.startPosition.row + 1}: ` +
          source.slice(n.startIndex, Math.min(n.endIndex, n.startIndex + 80)).replace(/\s+/g, ' '),
      );
    for (const c of n.children) if (c) walk(c);
  };
  if (tree) walk(tree.rootNode);
  return out;
}

const pwsh = (() => {
  try {
    execFileSync('pwsh', ['-NoProfile', '-Command', '$PSVersionTable.PSVersion.Major'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('PowerShell scripts shipped in examples/', () => {
  it('finds the scripts', () => {
    expect(scripts).toContain('examples/bindings/iis/iis-rebind.ps1');
  });

  it('tells a broken script apart (the check can fail)', () => {
    expect(problems('function Move-It { if ($a) { "b" ')).not.toEqual([]);
  });

  it.each(scripts)('%s parses without errors (tree-sitter PowerShell grammar)', (file) => {
    expect(problems(readFileSync(path.join(repoRoot, file), 'utf8'))).toEqual([]);
  });

  it.runIf(pwsh).each(scripts)('%s parses with PowerShell itself', (file) => {
    const errors = execFileSync(
      'pwsh',
      [
        '-NoProfile',
        '-Command',
        `$e = $null; [void][System.Management.Automation.Language.Parser]::ParseFile('${path.join(repoRoot, file)}', [ref]$null, [ref]$e); $e | ForEach-Object { $_.ToString() }`,
      ],
      { encoding: 'utf8' },
    );
    expect(errors.trim()).toBe('');
  });

  it('the IIS script keeps the visible promises of the contract', () => {
    const ps = readFileSync(path.join(repoRoot, 'examples/bindings/iis/iis-rebind.ps1'), 'utf8');
    expect(ps).toContain('[Console]::In.ReadToEnd()'); // the JSON request on stdin
    expect(ps).toMatch(/version = 1; bindings = /); // the JSON answer on stdout
    for (const status of ['bound', 'unchanged', 'restored', 'failed'])
      expect(ps).toContain(`status = '${status}'`);
    expect(ps).toMatch(/Exit-WithAnswer \$answer 1/); // a failure exits non-zero after restoring
    // the PKCS#12 is imported from memory and neither it nor its password is written anywhere
    expect(ps).not.toMatch(/WriteAllBytes|Out-File|Set-Content|Export-PfxCertificate/);
    expect(ps).not.toMatch(/Write-\w+[^\n]*\$request\.(password|pfx)/);
  });
});
