/**
 * Issuer over any external program: an enterprise CA's client (AD CS certreq, PowerShell on a hybrid worker),
 * `step ca sign`, or any script. The program runs without a shell; full contract in docs/command-issuer.md.
 *
 * Input
 *   stdin                      the CSR, PEM (also on a poll)
 *   CERTFLOW_ACTION            `submit` or `poll` (or `revoke`, below)
 *   CERTFLOW_CERTIFICATE_ID    `<vault>/<name>`
 *   CERTFLOW_DNS_NAMES         the names to certify, comma-separated
 *   CERTFLOW_REQUEST_KEY       stable for one renewal attempt across retries (a retry after a crash has the same
 *                              key): a program that cannot answer "pending" with a ref deduplicates by it
 *   CERTFLOW_REQUEST_REF       on a poll: the ref the program printed when it answered "pending"
 *   arguments                  the configured args; a poll appends `--poll`
 *   environment                only PATH, HOME, locale and temp-dir variables of the worker, plus `env`
 * Exit code
 *   0   issued: stdout holds the chain as PEM certificates, leaf first (other text is ignored)
 *   75  pending (EX_TEMPFAIL): stdout has a line `ref <request-id>` (required on submit; on a poll the old ref
 *       stays when absent) and optionally `retry-after <seconds>` (default 60); the workflow waits, then polls
 *   69  CA unavailable (EX_UNAVAILABLE): retried later, after `retry-after <seconds>` when printed
 *   any other code: the CA refused; not retried. The end of stderr is shown (private key blocks removed).
 * Revoke (an emergency re-issue's `--revoke-old`): CERTFLOW_ACTION=revoke, the certificate (PEM) on stdin,
 * CERTFLOW_REVOKE_REASON (`keyCompromise`, `superseded`) and CERTFLOW_REVOKE_REASON_CODE (RFC 5280: 1, 4); the
 * configured args with `--revoke` appended. Exit 0 revoked (a line `already` on stdout: revoked before), 64
 * (EX_USAGE) the program cannot revoke (reported as unsupported), 69 unavailable (retried), anything else refused.
 * A run longer than timeoutMs is killed with its process group and retried; output over maxOutputBytes is
 * refused. A program that cannot be started (not found, not executable) is a configuration error.
 */
import { ApplicationFailure } from '@temporalio/common';
import { existsSync } from 'node:fs';
import type { Issued, Issuer, IssueRequest, PendingIssue } from '../types';
import { splitPemChain } from '../verify/x509';
import { runProgram, sanitizedTail, type RunResult } from '../run-program';

export { sanitizedTail };

export interface CommandIssuerOptions {
  name: string;
  /** Path of the program (or a name found on PATH). */
  command: string;
  args?: string[];
  /** Extra environment for the program (e.g. STEPPATH); not shown in errors. */
  env?: Record<string, string>;
  /** Default 120 000. */
  timeoutMs?: number;
  /** Per stream. Default 1 MiB. */
  maxOutputBytes?: number;
  cwd?: string;
}

export const EXIT_ISSUED = 0;
export const EXIT_UNAVAILABLE = 69;
export const EXIT_PENDING = 75;
/** The program has no revoke verb (EX_USAGE). */
export const EXIT_NO_REVOKE = 64;
const DEFAULT_RETRY_AFTER_SECONDS = 60;
const MAX_RETRY_AFTER_SECONDS = 86_400;
/** The ref is kept in workflow history: an id, not a document. */
const MAX_REF_LENGTH = 1024;

export function createCommandIssuer(opts: CommandIssuerOptions): Issuer {
  const who = `command issuer '${opts.name}'`;
  if (!opts.name) throw new Error('command issuer: name is required');
  if (typeof opts.command !== 'string' || !opts.command.trim())
    throw new Error(`${who}: command is required (the path of the program to run)`);
  const args = opts.args ?? [];
  if (!Array.isArray(args) || args.some((a) => typeof a !== 'string'))
    throw new Error(`${who}: args must be a list of strings`);
  const timeoutMs = positive(opts.timeoutMs ?? 120_000, `${who}: timeoutMs`);
  const maxOutputBytes = positive(opts.maxOutputBytes ?? 1024 * 1024, `${who}: maxOutputBytes`);
  const program = `'${opts.command}'`;

  async function run(req: IssueRequest, poll: { ref: string } | null): Promise<Issued | PendingIssue> {
    const result = await runProgram({
      command: opts.command,
      args: poll ? [...args, '--poll'] : args,
      env: {
        ...opts.env,
        CERTFLOW_ACTION: poll ? 'poll' : 'submit',
        CERTFLOW_CERTIFICATE_ID: req.certificateId,
        CERTFLOW_DNS_NAMES: req.dnsNames.join(','),
        ...(req.requestKey ? { CERTFLOW_REQUEST_KEY: req.requestKey } : {}),
        ...(poll ? { CERTFLOW_REQUEST_REF: poll.ref } : {}),
      },
      cwd: opts.cwd,
      stdin: req.csrPem,
      timeoutMs,
      maxOutputBytes,
    });
    return interpret(result, poll?.ref);
  }

  function interpret(r: RunResult, previousRef: string | undefined): Issued | PendingIssue {
    switch (r.kind) {
      case 'spawn-failed':
        throw spawnFailure(r.error);
      case 'timeout':
        throw failure(
          'CommandIssuerTimeout',
          `${program} ran longer than ${timeoutMs} ms and was killed${tail(r.stderr)}`,
          false,
        );
      case 'too-large':
        throw failure(
          'CommandIssuerOutputTooLarge',
          `${program} wrote more than ${maxOutputBytes} bytes to ${r.stream} and was killed`,
          true,
        );
      case 'signaled':
        throw failure('CommandIssuerKilled', `${program} was killed by ${r.signal}${tail(r.stderr)}`, false);
    }
    const { code, stdout, stderr } = r;
    if (code === EXIT_ISSUED) {
      const chainPem = splitPemChain(stdout);
      if (chainPem.length === 0)
        throw failure(
          'CommandIssuerNoChain',
          `${program} exited 0 but printed no certificate on stdout (${Buffer.byteLength(stdout)} bytes; expected '-----BEGIN CERTIFICATE-----' blocks, leaf first)`,
          true,
        );
      return { status: 'issued', chainPem };
    }
    const lines = keyValueLines(stdout);
    if (code === EXIT_PENDING) {
      const ref = lines.get('ref') ?? previousRef;
      if (!ref || ref.length > MAX_REF_LENGTH)
        throw failure(
          'CommandIssuerBadPending',
          `${program} exited ${EXIT_PENDING} (pending) without a 'ref <request-id>' line of at most ${MAX_REF_LENGTH} characters on stdout`,
          true,
        );
      return { status: 'pending', ref, retryAfterSeconds: retryAfter(lines) ?? DEFAULT_RETRY_AFTER_SECONDS };
    }
    if (code === EXIT_UNAVAILABLE) {
      const delay = retryAfter(lines);
      throw ApplicationFailure.create({
        message: `${who}: ${program} says the CA is unavailable (exit ${EXIT_UNAVAILABLE})${tail(stderr)}`,
        type: 'CommandIssuerUnavailable',
        nonRetryable: false,
        ...(delay ? { nextRetryDelay: `${delay}s` } : {}),
      });
    }
    throw failure('CommandIssuerRejected', `${program} exited ${code}${tail(stderr)}`, true);
  }

  function spawnFailure(error: NodeJS.ErrnoException): ApplicationFailure {
    if (error.code === 'ENOENT' && opts.cwd && !existsSync(opts.cwd))
      return failure('CommandIssuerMisconfigured', `working directory '${opts.cwd}' does not exist`, true);
    if (error.code === 'ENOENT' || error.code === 'EACCES' || error.code === 'ENOTDIR')
      return failure(
        'CommandIssuerMisconfigured',
        `${program} could not be started (${error.code}): expected an executable file, by path or on PATH`,
        true,
      );
    return failure('CommandIssuerSpawnFailed', `${program} could not be started: ${error.message}`, false);
  }

  function failure(type: string, message: string, nonRetryable: boolean): ApplicationFailure {
    return ApplicationFailure.create({ message: `${who}: ${message}`, type, nonRetryable });
  }

  async function revoke(
    certPem: string,
    reason: { code: number; name: string },
  ): Promise<{ already: boolean }> {
    const r = await runProgram({
      command: opts.command,
      args: [...args, '--revoke'],
      env: {
        ...opts.env,
        CERTFLOW_ACTION: 'revoke',
        CERTFLOW_REVOKE_REASON: reason.name,
        CERTFLOW_REVOKE_REASON_CODE: String(reason.code),
      },
      cwd: opts.cwd,
      stdin: certPem,
      timeoutMs,
      maxOutputBytes,
    });
    if (r.kind === 'spawn-failed') throw spawnFailure(r.error);
    if (r.kind !== 'exited') return interpret(r, undefined) as never; // timeout, killed, too large: thrown there
    if (r.code === EXIT_ISSUED) return { already: /^\s*already\s*$/m.test(r.stdout) };
    if (r.code === EXIT_NO_REVOKE)
      throw failure('RevokeUnsupported', `${program} cannot revoke (exit ${EXIT_NO_REVOKE})`, true);
    if (r.code === EXIT_UNAVAILABLE)
      throw failure(
        'CommandIssuerUnavailable',
        `${program} says the CA is unavailable (exit ${EXIT_UNAVAILABLE})${tail(r.stderr)}`,
        false,
      );
    throw failure('RevokeRefused', `${program} exited ${r.code} on revoke${tail(r.stderr)}`, true);
  }

  return {
    name: opts.name,
    submit: (req) => run(req, null),
    poll: (ref, req) => run(req, { ref }),
    revoke,
  };
}

function positive(n: number, field: string): number {
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${field} must be a positive number (got ${n})`);
  return n;
}

/** `ref`, `retry-after` and the like: the first word of each stdout line and the rest of it. */
function keyValueLines(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of stdout.split(/\r?\n/)) {
    const m = /^\s*([a-z-]+)\s+(\S.*?)\s*$/i.exec(line);
    if (m && !out.has(m[1]!.toLowerCase())) out.set(m[1]!.toLowerCase(), m[2]!);
  }
  return out;
}

function retryAfter(lines: Map<string, string>): number | undefined {
  const v = lines.get('retry-after');
  if (!v || !/^\d+$/.test(v)) return undefined;
  return Math.min(Math.max(Number(v), 1), MAX_RETRY_AFTER_SECONDS);
}

function tail(stderr: string): string {
  const t = sanitizedTail(stderr);
  return t ? `; stderr: ${t}` : '';
}
