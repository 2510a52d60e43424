/**
 * Runs one external program for the command issuer: no shell, input on stdin, stdout and stderr collected up
 * to a byte limit, a deadline. On a timeout or an oversized output the program's whole process group is
 * killed (SIGKILL), so helpers it started (curl, certreq, a sleeping retry loop) do not outlive it.
 * The program gets a small, explicit environment: the worker's own (which may hold Azure or vault secrets)
 * is not passed on, only the variables a program needs to run at all.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface RunProgramOptions {
  command: string;
  args: string[];
  /** Added to the inherited basics (PATH, HOME, locale, temp dirs). */
  env: Record<string, string>;
  cwd?: string;
  stdin: string;
  timeoutMs: number;
  /** Per stream (stdout, stderr). */
  maxOutputBytes: number;
}

export type RunResult =
  | { kind: 'exited'; code: number; stdout: string; stderr: string }
  | { kind: 'signaled'; signal: string; stderr: string }
  | { kind: 'timeout'; stderr: string }
  | { kind: 'too-large'; stream: 'stdout' | 'stderr' }
  | { kind: 'spawn-failed'; error: NodeJS.ErrnoException };

/** What a program may see of the worker's environment (names compared case-insensitively, for Windows). */
const INHERITED = new Set(
  [
    'PATH',
    'HOME',
    'USER',
    'LOGNAME',
    'LANG',
    'LC_ALL',
    'LC_CTYPE',
    'TZ',
    'TMPDIR',
    'TEMP',
    'TMP',
    'SYSTEMROOT',
    'WINDIR',
    'COMSPEC',
    'PATHEXT',
    'USERPROFILE',
    'APPDATA',
    'LOCALAPPDATA',
    'PROGRAMDATA',
    'USERNAME',
    'USERDOMAIN',
    'COMPUTERNAME',
  ].map((n) => n.toUpperCase()),
);

export function programEnvironment(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && INHERITED.has(k.toUpperCase())) env[k] = v;
  return { ...env, ...extra };
}

const ownGroup = process.platform !== 'win32';

export function runProgram(opts: RunProgramOptions): Promise<RunResult> {
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn(opts.command, opts.args, {
        shell: false,
        cwd: opts.cwd,
        env: programEnvironment(opts.env),
        stdio: ['pipe', 'pipe', 'pipe'],
        // its own process group, so a timeout can kill everything it started
        detached: ownGroup,
        windowsHide: true,
      });
    } catch (err) {
      resolve({ kind: 'spawn-failed', error: err as NodeJS.ErrnoException });
      return;
    }
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    const size = { stdout: 0, stderr: 0 };
    let stopped: { kind: 'timeout' } | { kind: 'too-large'; stream: 'stdout' | 'stderr' } | undefined;
    let settled = false;
    const settle = (r: RunResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const stop = (why: NonNullable<typeof stopped>) => {
      if (stopped) return;
      stopped = why;
      killGroup(child);
    };
    const collect = (stream: 'stdout' | 'stderr', into: Buffer[]) => (chunk: Buffer) => {
      if (stopped) return;
      size[stream] += chunk.length;
      if (size[stream] > opts.maxOutputBytes) stop({ kind: 'too-large', stream });
      else into.push(chunk);
    };
    const text = (chunks: Buffer[]) => Buffer.concat(chunks).toString('utf8');

    const timer = setTimeout(() => stop({ kind: 'timeout' }), opts.timeoutMs);
    child.stdout!.on('data', collect('stdout', stdout));
    child.stderr!.on('data', collect('stderr', stderr));
    child.on('error', (error: NodeJS.ErrnoException) => {
      // after a successful spawn an 'error' only means a kill failed; 'close' still follows
      if (child.pid === undefined) settle({ kind: 'spawn-failed', error });
    });
    child.on('close', (code, signal) => {
      if (stopped?.kind === 'timeout') settle({ kind: 'timeout', stderr: text(stderr) });
      else if (stopped) settle(stopped);
      else if (code === null) settle({ kind: 'signaled', signal: signal ?? 'unknown', stderr: text(stderr) });
      else settle({ kind: 'exited', code, stdout: text(stdout), stderr: text(stderr) });
    });
    // a program that exits without reading its input is fine: ignore the broken pipe
    child.stdin!.on('error', () => {});
    child.stdin!.end(opts.stdin);
  });
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    if (ownGroup) process.kill(-child.pid, 'SIGKILL');
    else child.kill('SIGKILL');
  } catch (err) {
    // ESRCH: already gone
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') child.kill('SIGKILL');
  }
}

const PRIVATE_KEY_BLOCK =
  /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)/g;

/** The end of a program's stderr for an error message: private key blocks (even unterminated ones) removed first. */
export function sanitizedTail(stderr: string, max = 500): string {
  const clean = stderr
    .replace(PRIVATE_KEY_BLOCK, '[private key removed]')
    // eslint-disable-next-line no-control-regex
    .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '')
    .trim();
  return clean.length > max ? `…${clean.slice(-max)}` : clean;
}

/**
 * The end of a validate or reload command's stderr (a binding target's): every PEM block removed, not only keys
 * (a server that echoes its files back must not leak a key through us), then the tail as above.
 */
export function cleanStderr(stderr: string, max = 800): string {
  const noPem = stderr
    .replace(/-----BEGIN [^-]+-----[\s\S]*?(-----END [^-]+-----|$)/g, '[PEM removed]')
    .replace(/\s+\n/g, '\n');
  return sanitizedTail(noPem, max);
}
