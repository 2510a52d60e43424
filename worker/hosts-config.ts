/**
 * The `hosts` section of the configuration: the servers Certflow reaches over SSH (docs/hosts.md), and the
 * selector with which an `ssh-files` or `remote-command` binding picks them (by name, by tag, or both). The schemas
 * are in config-schema.ts (`sshHostSchema`, `hostSelectorSchema`); what they cannot check is here.
 *
 *   "hosts": [{ "name": "web-1", "address": "10.0.0.4", "user": "certflow",
 *               "privateKey": { "env": "CERTFLOW_SSH_KEY" }, "hostKeys": ["SHA256:..."], "tags": ["web"] }]
 *
 * A host key must be pinned: an unknown or changed host key is always refused, and there is no setting to accept
 * any. The private key (and its passphrase) come by secret reference only.
 */
import type { ConfigIssue } from './config';
import type { HostSelector, SshHostConfig } from './config-schema';

/** The hosts a selector picks, in configuration order. */
export function selectHosts(hosts: SshHostConfig[], s: HostSelector): SshHostConfig[] {
  return hosts.filter((h) => s.names?.includes(h.name) || (s.tag !== undefined && h.tags?.includes(s.tag)));
}

/** What the schema cannot see: unique host names, and selectors that name unknown hosts or match none. */
export function hostIssues(
  hosts: SshHostConfig[],
  bindings: ReadonlyArray<{ kind: string; hosts?: HostSelector }>,
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const seen = new Set<string>();
  hosts.forEach((h, i) => {
    if (seen.has(h.name))
      issues.push({ path: `hosts[${i}].name`, message: `expected a unique name: "${h.name}" appears twice` });
    seen.add(h.name);
  });
  const known = [...seen].map((n) => `"${n}"`).join(', ') || 'none';
  bindings.forEach((b, i) => {
    const s = b.hosts;
    if (!s) return;
    s.names?.forEach((n, k) => {
      if (!seen.has(n))
        issues.push({
          path: `bindings[${i}].hosts.names[${k}]`,
          message: `expected a configured host (known: ${known})`,
        });
    });
    if (s.tag !== undefined && !hosts.some((h) => h.tags?.includes(s.tag!)))
      issues.push({
        path: `bindings[${i}].hosts.tag`,
        message: `expected a tag that some configured host has: none has "${s.tag}"`,
      });
  });
  return issues;
}
