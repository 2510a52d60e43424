/**
 * Drift watch over binding targets: asks each target what its bindings serve now, without changing anything. A
 * file target (`files`, `ssh-files`: the file read on its host) reads its certificate file and probes its live
 * endpoint; a remote-command target probes each configured host name on each host (watchRemoteCommand); a target
 * kind without `watch` (the Azure consumers, webhooks) answers `unprobeable`, so status never shows it as healthy
 * by default.
 */
import { heartbeatNow } from '../heartbeat';
import type { BindingProbe, BindingTarget } from '../types';
import { normalizeThumbprint, probeTls } from '../verify/probe';
import { mapLimit } from './concurrency';
import { bindingLabel, fileLeafThumbprint, fileTargetOf, type FileReloadTarget } from './file-reload';
import type { RemoteCommandTargetOptions } from './remote-command';

/** A file target's answer: the file on disk, and the live endpoint when one is configured. */
export async function watchFileTarget(
  t: FileReloadTarget,
  expectedThumbprint: string,
): Promise<BindingProbe> {
  const expected = normalizeThumbprint(expectedThumbprint);
  const base = { target: t.name, binding: bindingLabel(t) };
  const file = t.combinedPath ?? t.certPath;
  let onDisk: string | null = null;
  let diskProblem = '';
  try {
    onDisk = file ? await fileLeafThumbprint(file, t.host) : null;
    if (!onDisk) diskProblem = `${file ?? 'no certificate file configured'} holds no certificate`;
  } catch (err) {
    diskProblem = `${file} could not be read: ${(err as Error).message}`;
  }
  const disk =
    onDisk === null ? diskProblem : onDisk === expected ? `${file} holds it` : `${file} holds ${onDisk}`;
  if (!t.probe) {
    // no live endpoint: a file holding another certificate is drift all the same (the next reload serves it)
    if (onDisk !== null && onDisk !== expected)
      return { ...base, state: 'drift', served: onDisk, detail: `${disk} (no live endpoint configured)` };
    return {
      ...base,
      state: 'unprobeable',
      served: onDisk,
      detail: `no live endpoint configured (probe); ${disk}`,
    };
  }
  const live = await probeTls({ ...t.probe, expectedThumbprint: expected, timeoutMs: 5_000 });
  if (live.servedThumbprint === null)
    return { ...base, state: 'unreachable', served: null, detail: `${live.detail}; ${disk}` };
  if (live.servedThumbprint !== expected || (onDisk !== null && onDisk !== expected))
    return { ...base, state: 'drift', served: live.servedThumbprint, detail: `${live.detail}; ${disk}` };
  if (!live.ok) return { ...base, state: 'invalid', served: live.servedThumbprint, detail: live.detail };
  return { ...base, state: 'serving', served: live.servedThumbprint, detail: `${live.detail}; ${disk}` };
}

/**
 * A remote-command target's answer: the script owns the server's state, so only the live endpoints tell, one per
 * host and configured host name (`hostNames`; the names a script binds otherwise are known only when it runs).
 * Drift is re-synced by running the script, which moves the bindings of `hostNames` whatever they are on.
 */
export async function watchRemoteCommand(
  opts: Pick<RemoteCommandTargetOptions, 'name' | 'hosts' | 'hostNames' | 'probe'>,
  expectedThumbprint: string,
): Promise<BindingProbe[]> {
  const expected = normalizeThumbprint(expectedThumbprint);
  const names = (opts.hostNames ?? []).filter((n) => !n.startsWith('*'));
  const p = opts.probe;
  if (!p || !names.length)
    return opts.hosts.map((h) => ({
      target: opts.name,
      binding: h.name,
      state: 'unprobeable' as const,
      served: null,
      detail: !p
        ? 'no live endpoint configured (probe)'
        : 'no host names configured (hostNames): the names the script binds are known only when it runs',
    }));
  const pairs = opts.hosts.flatMap((host) => names.map((name) => ({ host, name })));
  return mapLimit(pairs, 8, async ({ host, name }): Promise<BindingProbe> => {
    const base = { target: opts.name, binding: `${host.name}:${name}` };
    const live = await probeTls({
      host: p.address ?? host.address,
      port: p.port,
      servername: name,
      ...(p.caPem ? { caPem: p.caPem } : {}),
      expectedThumbprint: expected,
      timeoutMs: 5_000,
    });
    if (live.servedThumbprint === null)
      return { ...base, state: 'unreachable', served: null, detail: live.detail };
    if (live.servedThumbprint !== expected)
      return { ...base, state: 'drift', served: live.servedThumbprint, detail: live.detail };
    return {
      ...base,
      state: live.ok ? 'serving' : 'invalid',
      served: live.servedThumbprint,
      detail: live.detail,
    };
  });
}

/** Every target's answer; a target that cannot be watched, or whose watch throws, says so. */
export async function watchTargets(
  targets: BindingTarget[],
  expectedThumbprint: string,
  concurrency = 8,
): Promise<BindingProbe[]> {
  const answers = await mapLimit(targets, concurrency, async (t): Promise<BindingProbe[]> => {
    // a `files` or `ssh-files` target from the configuration: its file (over SSH for a host) and its endpoint
    const file = fileTargetOf(t);
    if (file) {
      const answer = await watchFileTarget(file, expectedThumbprint).catch((err: Error): BindingProbe => ({
        target: t.name,
        binding: bindingLabel(file),
        state: 'unreachable',
        served: null,
        detail: err.message,
      }));
      heartbeatNow(`${t.name}: probed`);
      return [answer];
    }
    if (!t.watch)
      return [
        {
          target: t.name,
          binding: t.kind,
          state: 'unprobeable',
          served: null,
          detail: `a ${t.kind} target is not probed between syncs: it is verified at each renewal and sync only`,
        },
      ];
    try {
      const out = await t.watch(expectedThumbprint);
      heartbeatNow(`${t.name}: probed`);
      return out;
    } catch (err) {
      return [
        {
          target: t.name,
          binding: t.kind,
          state: 'unreachable',
          served: null,
          detail: (err as Error).message,
        },
      ];
    }
  });
  return answers.flat();
}
