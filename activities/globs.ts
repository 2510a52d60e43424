/**
 * Certflow's one glob dialect, in two flavours, pure (no I/O). Written by hand rather than taken from a glob
 * library because file-path globs (minimatch, picomatch) know neither DNS labels nor wildcard certificate names.
 *
 * Certificate ids (`<vault>/<name>`): fleet discovery, binding selectors and the CLI's `--pattern` all use it.
 * The whole id must match, ignoring case (Key Vault's vault and certificate names ignore case).
 *   `*`   any run of characters but `/`     `**`  anything, `/` included     `?`  one character but `/`
 *
 * DNS names (`allowedNames` of an issuer): matched label by label, ignoring case and one trailing dot.
 *   `*`   any run of characters inside one label (`*.example.com` is one label deep: a.example.com, not
 *         a.b.example.com and not example.com; `api-*.example.com` matches api-1.example.com)
 *   `**`  one or more whole labels, only as a whole label (`**.example.com`: any depth below example.com)
 *   `?`   one character inside a label
 *   A requested wildcard name (`*.example.com`) is allowed only where the pattern has `*` or `**` as that
 *   whole label: `*.example.com` and `**.example.com` allow it, `api-*.example.com` does not.
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

/** Whether a certificate id (or a bare certificate name) matches an id glob. */
export function globMatch(pattern: string, id: string): boolean {
  return globToRegExp(pattern).test(id);
}

const LABEL_GLOB = /^(\*\*|[A-Za-z0-9*?](?:[A-Za-z0-9*?-]*[A-Za-z0-9*?])?)$/;

/** Why a DNS-name glob is not one (null when it is): for configuration errors. */
export function dnsGlobProblem(pattern: string): string | null {
  if (typeof pattern !== 'string' || pattern.trim() === '') return 'expected a DNS name glob';
  const labels = splitName(pattern);
  if (labels.length === 0 || labels.some((l) => l === '')) return 'expected labels separated by single dots';
  const bad = labels.find((l) => !LABEL_GLOB.test(l) || (l.includes('**') && l !== '**'));
  if (bad !== undefined)
    return `label "${bad}": expected letters, digits, dashes, * and ?, or ** as a whole label`;
  if (labels.every((l) => l === '*' || l === '**'))
    return 'expected at least one literal label (a pattern of wildcards only would allow every name)';
  return null;
}

/** Whether a DNS name (possibly a wildcard name like `*.example.com`) is covered by the pattern. */
export function matchDnsName(pattern: string, name: string): boolean {
  const p = splitName(pattern);
  const n = splitName(name);
  // empty labels, or a wildcard anywhere but as the whole leftmost label, are not names a CA issues
  if (n.some((l, k) => l === '' || (l.includes('*') && (l !== '*' || k !== 0)))) return false;
  return matchLabels(p, 0, n, 0);
}

/** The names no pattern covers (empty: all allowed). */
export function namesNotAllowed(names: readonly string[], patterns: readonly string[]): string[] {
  return names.filter((n) => !patterns.some((p) => matchDnsName(p, n)));
}

function splitName(name: string): string[] {
  return name.trim().toLowerCase().replace(/\.$/, '').split('.');
}

function matchLabels(p: string[], i: number, n: string[], j: number): boolean {
  if (i === p.length) return j === n.length;
  const pat = p[i]!;
  if (pat === '**') {
    for (let k = j + 1; k <= n.length; k++) if (matchLabels(p, i + 1, n, k)) return true;
    return false;
  }
  if (j === n.length) return false;
  const label = n[j]!;
  // a wildcard name covers every label there: only a whole-label wildcard in the pattern may allow it
  const ok = label.includes('*') ? label === '*' && pat === '*' : matchLabel(pat, label);
  return ok && matchLabels(p, i + 1, n, j + 1);
}

function matchLabel(pattern: string, label: string): boolean {
  const re = pattern
    .split('')
    .map((c) => (c === '*' ? '[^.]*' : c === '?' ? '[^.]' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${re}$`).test(label);
}
