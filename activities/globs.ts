/**
 * Glob patterns over certificate ids (`<vault>/<name>`): `*` any run of characters but `/`, `**` anything, `?` one
 * character but `/`; the whole id must match, ignoring case (Key Vault's vault and certificate names ignore case).
 * The one dialect of Certflow: fleet discovery, binding selectors and the CLI's `--pattern` all use it.
 */
export function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*' && pattern[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 'i');
}

export function globMatch(pattern: string, id: string): boolean {
  return globToRegExp(pattern).test(id);
}
