/**
 * The remote-command binding target: Certflow runs a script on a server over SSH and the script re-binds the
 * server's own consumers, the way the command issuer lets any CA plug in. Windows/IIS is the first such script
 * (examples/bindings/iis/): it imports the PKCS#12 into LocalMachine\My and moves every IIS and http.sys binding
 * from the old thumbprint to the new. The contract (docs/hosts.md):
 *
 *   stdin   one JSON document, then end of input:
 *           { "version": 1, "certificateId", "thumbprint", "previousThumbprint" (or null),
 *             "pfx" (base64 PKCS#12, absent on a rollback: the certificate is already there), "password",
 *             "hostNames": [...] (bindings to move whatever they are on; may be empty),
 *             "removePreviousAfterDays" (or null) }
 *           The script moves every binding on `previousThumbprint`, and every binding of `hostNames`, to
 *           `thumbprint`; bindings already there are "unchanged".
 *   stdout  one JSON document: { "version": 1, "bindings": [ { "binding", "hostName" (or null), "before",
 *           "after", "status": "bound" | "unchanged" | "restored" | "failed", "detail" } ] }
 *   exit    0 when every binding is on the new thumbprint; non-zero when any failed, after putting every binding
 *           the run touched back where it was ("restored").
 *
 * Then Certflow probes each bound host name live (SNI, new thumbprint, trusted chain). When a probe fails it runs
 * the script again as a rollback (thumbprint and previousThumbprint swapped, no pfx), so the host is either wholly
 * on the new certificate or wholly back. The private key travels only inside the PKCS#12 on stdin, encrypted
 * with a password made for this run; neither is logged, returned or put in the command line. Between syncs the
 * drift watch probes each of `hostNames` on each host the same way (watch.ts `watchRemoteCommand`).
 */
import { ApplicationFailure } from '@temporalio/common';
import { heartbeatNow } from '../heartbeat';
import { watchRemoteCommand } from './watch';
import { sanitizedTail } from '../run-program';
import type { BindingContext, BindingOutcome, BindingTarget, Probe } from '../types';
import { normalizeThumbprint, probeUntil } from '../verify/probe';
import { mapLimit } from './concurrency';
import { newPkcs12Password, toPkcs12 } from './pkcs12';
import type { SshHost, SshPool } from './ssh-connection';

export interface RemoteCommandTargetOptions {
  name: string;
  hosts: SshHost[];
  /** The command line as the remote shell reads it (cmd.exe or PowerShell on Windows, sh on Linux). */
  command: string;
  /** Default 300 000 ms: an IIS server with many sites takes a while. */
  timeoutMs?: number;
  /** Bindings of these host names are moved whatever thumbprint they are on (drift); default none. */
  hostNames?: string[];
  /** Ask the script to remove the previous certificate from the store after this many days (it schedules it). */
  removePreviousAfterDays?: number;
  /** The live check of each bound host name; none when absent. */
  probe?: {
    port: number;
    /** Connect here instead of the host's address. */
    address?: string;
    caPem?: string;
    /** How long the server may take to show the new certificate (default 10 000 ms). */
    settleMs?: number;
  };
  /** Hosts at once (default 4). */
  maxHosts?: number;
  pool: SshPool;
}

export interface ScriptBinding {
  binding: string;
  hostName: string | null;
  before: string | null;
  after: string | null;
  status: 'bound' | 'unchanged' | 'restored' | 'failed';
  detail: string;
}

const STATUSES = new Set(['bound', 'unchanged', 'restored', 'failed']);

/** The script's stdout as the contract says, or why it is not. Tolerates text before and after the JSON. */
export function parseScriptAnswer(stdout: string): ScriptBinding[] | string {
  const start = stdout.indexOf('{');
  const end = stdout.lastIndexOf('}');
  if (start < 0 || end < start) return 'no JSON document on stdout';
  let doc: unknown;
  try {
    doc = JSON.parse(stdout.slice(start, end + 1));
  } catch (err) {
    return `stdout is not valid JSON (${(err as Error).message.replace(/ in JSON at position.*|".*/, '')})`;
  }
  const bindings = (doc as { bindings?: unknown }).bindings;
  if (!Array.isArray(bindings)) return 'expected { "bindings": [...] } on stdout';
  const out: ScriptBinding[] = [];
  for (const [i, b] of bindings.entries()) {
    const o = b as Record<string, unknown>;
    const str = (v: unknown) => (typeof v === 'string' && v.length ? v : null);
    if (!str(o.binding)) return `bindings[${i}].binding: expected a non-empty string`;
    if (typeof o.status !== 'string' || !STATUSES.has(o.status))
      return `bindings[${i}].status: expected "bound", "unchanged", "restored" or "failed"`;
    const thumb = (v: unknown) => (str(v) ? normalizeThumbprint(v as string) : null);
    out.push({
      binding: (o.binding as string).slice(0, 300),
      hostName: str(o.hostName),
      before: thumb(o.before),
      after: thumb(o.after),
      status: o.status as ScriptBinding['status'],
      detail: sanitizedTail(typeof o.detail === 'string' ? o.detail : '', 300),
    });
  }
  return out;
}

export function createRemoteCommandTarget(opts: RemoteCommandTargetOptions): BindingTarget {
  if (!opts.hosts.length)
    throw ApplicationFailure.create({
      type: 'BindingConfigInvalid',
      message: `binding target '${opts.name}': no hosts`,
      nonRetryable: true,
    });
  return {
    kind: 'remote-command',
    name: opts.name,
    // drift watch: each configured host name on each host, live (watch.ts)
    watch: (expectedThumbprint: string) => watchRemoteCommand(opts, expectedThumbprint),
    async sync(ctx: BindingContext): Promise<BindingOutcome[]> {
      const perHost = await mapLimit(opts.hosts, opts.maxHosts ?? 4, async (host) => {
        const out = await syncHost(opts, host, ctx).catch((err: Error) => [
          hostFailure(opts, host, ctx, err.message, err instanceof ApplicationFailure ? err.type : undefined),
        ]);
        heartbeatNow(`${opts.name}: host ${host.name} done`);
        return out;
      });
      return perHost.flat();
    },
  };
}

function hostFailure(
  opts: RemoteCommandTargetOptions,
  host: SshHost,
  ctx: BindingContext,
  detail: string,
  reason?: string | null,
): BindingOutcome {
  return {
    target: opts.name,
    binding: `${host.name}:`,
    before: ctx.previousThumbprint,
    after: null,
    status: 'failed',
    detail,
    ...(reason ? { reason } : {}),
  };
}

interface Run {
  bindings: ScriptBinding[];
  exitCode: number;
}

async function runScript(
  opts: RemoteCommandTargetOptions,
  host: SshHost,
  input: Record<string, unknown>,
): Promise<Run | string> {
  const timeoutMs = opts.timeoutMs ?? 300_000;
  const r = await opts.pool.use(host, (conn) =>
    conn.exec(opts.command, { stdin: `${JSON.stringify({ version: 1, ...input })}\n`, timeoutMs }),
  );
  const said = (stderr: string) => {
    const t = sanitizedTail(stderr, 500);
    return t ? `; stderr: ${t}` : '';
  };
  if (r.kind === 'timeout')
    return `the script ran longer than ${timeoutMs} ms and was stopped${said(r.stderr)}`;
  if (r.kind === 'signaled') return `the script was stopped by ${r.signal}${said(r.stderr)}`;
  if (r.kind === 'too-large') return `the script wrote more than 1 MiB to ${r.stream}`;
  if (r.kind === 'spawn-failed') return `the script could not be started: ${r.error.message}`;
  const bindings = parseScriptAnswer(r.stdout);
  if (typeof bindings === 'string')
    return `the script exited with code ${r.code} and its answer is unusable: ${bindings}${said(r.stderr)}`;
  if (r.code !== 0) {
    // the failed bindings carry why: the script's own word and the tail of its stderr (key blocks removed)
    for (const b of bindings)
      if (b.status === 'failed')
        b.detail = `${b.detail || 'failed'}; the script exited with code ${r.code}${said(r.stderr)}`;
    if (bindings.every((b) => b.status !== 'failed'))
      bindings.push({
        binding: '(script)',
        hostName: null,
        before: null,
        after: null,
        status: 'failed',
        detail: `exited with code ${r.code}${said(r.stderr)}`,
      });
  }
  return { bindings, exitCode: r.code };
}

async function syncHost(
  opts: RemoteCommandTargetOptions,
  host: SshHost,
  ctx: BindingContext,
): Promise<BindingOutcome[]> {
  const expected = normalizeThumbprint(ctx.thumbprint);
  const previous = ctx.previousThumbprint ? normalizeThumbprint(ctx.previousThumbprint) : null;
  const material = await ctx.material();
  const password = newPkcs12Password();
  const pfx = (await toPkcs12(material.keyPem, material.chainPem, password)).toString('base64');
  const outcome = (b: ScriptBinding, o: Partial<BindingOutcome> = {}): BindingOutcome => ({
    target: opts.name,
    binding: `${host.name}:${b.binding}`,
    before: b.before,
    after: b.after,
    status: b.status === 'restored' ? 'rolled-back' : b.status,
    detail: b.detail || b.status,
    ...(b.status === 'failed' || b.status === 'restored' ? { reason: 'CommandFailed' } : {}),
    ...o,
  });
  const ran = await runScript(opts, host, {
    certificateId: ctx.certificateId,
    thumbprint: expected,
    previousThumbprint: previous,
    pfx,
    password,
    hostNames: opts.hostNames ?? [],
    removePreviousAfterDays: opts.removePreviousAfterDays ?? null,
  });
  heartbeatNow(`${opts.name}: script ran on ${host.name}`);
  if (typeof ran === 'string') return [hostFailure(opts, host, ctx, ran, 'CommandFailed')];
  if (ran.exitCode !== 0) return ran.bindings.map((b) => outcome(b));

  // every binding is on the new certificate: see it served, name by name
  const names = [
    ...new Set(
      ran.bindings
        .filter((b) => b.status === 'bound' || b.status === 'unchanged')
        .map((b) => b.hostName)
        .filter((h): h is string => !!h && !h.startsWith('*')),
    ),
  ];
  const probes = new Map<string, Probe>();
  if (opts.probe) {
    const p = opts.probe;
    await mapLimit(names, 8, async (name) => {
      const where = { host: p.address ?? host.address, port: p.port, servername: name };
      probes.set(
        name,
        await probeUntil(
          { ...where, settleMs: p.settleMs ?? 10_000, ...(p.caPem ? { caPem: p.caPem } : {}) },
          expected,
        ),
      );
    });
  }
  const failedNames = [...probes].filter(([, p]) => !p.ok).map(([n]) => n);
  if (!failedNames.length)
    return ran.bindings.map((b) => {
      const probe = b.hostName ? probes.get(b.hostName) : undefined;
      return outcome(b, probe ? { probe, detail: `${b.detail || b.status}; ${probe.detail}` } : {});
    });

  // a name does not serve the new certificate: put the whole host back, so it never runs half on each
  const why = `probe failed for ${failedNames.join(', ')}`;
  if (!previous) {
    return ran.bindings.map((b) =>
      outcome(b, {
        status: 'failed',
        reason: 'ProbeMismatch',
        detail: `${why}; no previous thumbprint to roll back to: the bindings stay on ${expected}`,
        ...(b.hostName && probes.get(b.hostName) ? { probe: probes.get(b.hostName) } : {}),
      }),
    );
  }
  const back = await runScript(opts, host, {
    certificateId: ctx.certificateId,
    thumbprint: previous,
    previousThumbprint: expected,
    hostNames: [],
    removePreviousAfterDays: null,
  });
  heartbeatNow(`${opts.name}: rolled back on ${host.name}`);
  const movedBack = typeof back !== 'string' && back.exitCode === 0;
  // as the file target does after a rollback: confirm each probed name serves the previous certificate again
  const restored = new Map<string, Probe>();
  if (movedBack && opts.probe) {
    const p = opts.probe;
    await mapLimit([...probes.keys()], 8, async (name) => {
      const where = { host: p.address ?? host.address, port: p.port, servername: name };
      restored.set(
        name,
        await probeUntil(
          { ...where, settleMs: p.settleMs ?? 10_000, ...(p.caPem ? { caPem: p.caPem } : {}) },
          previous,
        ),
      );
    });
  }
  const notBack = [...restored].filter(([, p]) => !p.ok);
  return ran.bindings.map((b) => {
    const probe = b.hostName ? probes.get(b.hostName) : undefined;
    const detail = probe && !probe.ok ? `${why}: ${probe.detail}` : why;
    const back2 = b.hostName ? restored.get(b.hostName) : undefined;
    const ok = movedBack && !notBack.length;
    return outcome(b, {
      status: ok ? 'rolled-back' : 'failed',
      after: movedBack ? b.before : null,
      reason: 'ProbeMismatch',
      detail: !movedBack
        ? `${detail}; moving back to ${previous} failed too: ${typeof back === 'string' ? back : 'see the script output'}`
        : notBack.length
          ? `${detail}; moved back to ${previous}, but ${notBack.map(([n, p]) => `${n}: ${p.detail}`).join('; ')}`
          : `${detail}; moved back to ${previous}${back2 ? `, ${back2.detail}` : ''}`,
      ...(probe ? { probe } : {}),
    });
  });
}
