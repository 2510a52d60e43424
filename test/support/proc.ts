/**
 * Process and port helpers for the servers that tests start (Temporal, pebble, nginx, ...).
 * Every process runs in its own process group and is stopped by PID, also when a test fails:
 * `stopAll()` runs on process exit as a last resort.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export interface Started {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  stop(): Promise<void>;
  exited(): boolean;
}

const running = new Set<Started>();

/** A loopback TCP port that was free a moment ago (the kernel picks it, so parallel files do not collide). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Polls `probe` until it gives a value. A probe call that hangs (e.g. a workflow query lost while the workflow
 * continues as new) is abandoned after `probeTimeoutMs` and tried again, so the deadline always holds.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  {
    timeoutMs = 20_000,
    intervalMs = 50,
    probeTimeoutMs = 5_000,
  }: { timeoutMs?: number; intervalMs?: number; probeTimeoutMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      let timer: NodeJS.Timeout | undefined;
      const abandoned = new Promise<undefined>((resolve) => {
        timer = setTimeout(() => {
          lastError = new Error(`a probe took over ${probeTimeoutMs} ms`);
          resolve(undefined);
        }, probeTimeoutMs);
      });
      const v = await Promise.race([probe(), abandoned]).finally(() => clearTimeout(timer));
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const cause = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export async function tcpOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  logDir: string;
  /** Resolves truthy once the server answers. */
  ready: () => Promise<unknown>;
  readyTimeoutMs?: number;
}

export async function startProcess(opts: StartOptions): Promise<Started> {
  mkdirSync(opts.logDir, { recursive: true });
  const logFile = path.join(opts.logDir, `${opts.name}.log`);
  const log = createWriteStream(logFile, { flags: 'a' });
  const child: ChildProcess = spawn(opts.command, opts.args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    detached: true, // own process group: stop() signals the whole group
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // both streams write into one log: neither may end it; it ends when the child's stdio has closed
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  let exitCode: number | null | undefined;
  child.once('exit', (code, signal) => {
    exitCode = code ?? (signal ? -1 : 0);
  });
  const exitPromise = new Promise<void>((resolve) => {
    child.once('close', (code, signal) => {
      exitCode ??= code ?? (signal ? -1 : 0);
      log.end();
      resolve();
    });
    child.once('error', (err) => {
      log.write(`spawn error: ${err.message}\n`);
      exitCode = -2;
      resolve();
    });
  });
  const pid = child.pid ?? -1;
  const handle: Started = {
    name: opts.name,
    pid,
    logFile,
    exited: () => exitCode !== undefined,
    async stop() {
      running.delete(handle);
      if (exitCode === undefined && pid > 0) {
        signalGroup(pid, 'SIGTERM');
        const killed = await Promise.race([
          exitPromise.then(() => true),
          new Promise<boolean>((r) => setTimeout(() => r(false), 5_000)),
        ]);
        if (!killed) signalGroup(pid, 'SIGKILL');
        await exitPromise;
      }
      // a daemon may leave children in its group (nginx workers): make sure none survive, and wait until they
      // are gone, so that "stopped" means no process of the group exists any more
      signalGroup(pid, 'SIGKILL');
      await waitFor(`the process group of ${opts.name} to be gone`, async () => !groupAlive(pid), {
        timeoutMs: 5_000,
        intervalMs: 20,
      }).catch(() => undefined);
    },
  };
  running.add(handle);
  try {
    await waitFor(
      `${opts.name} to be ready (log: ${logFile})`,
      async () => {
        if (exitCode !== undefined) throw new Error(`${opts.name} exited with ${exitCode}; see ${logFile}`);
        return opts.ready();
      },
      { timeoutMs: opts.readyTimeoutMs ?? 30_000 },
    );
  } catch (err) {
    await handle.stop();
    throw err;
  }
  return handle;
}

function groupAlive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  if (pid <= 0) return;
  try {
    process.kill(-pid, sig);
  } catch {
    /* already gone */
  }
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((h) => h.stop()));
}

process.once('exit', () => {
  for (const h of running) signalGroup(h.pid, 'SIGKILL');
});
