/**
 * Where a file target's files live and its commands run. The file target's algorithm (generations, torn pairs,
 * validate, reload, probe, rollback, batching) is written once in file-reload.ts against this narrow interface;
 * `localFileHost` is the worker's own disk, `ssh-file-host.ts` a server reached over SSH.
 *
 * Both refuse what would let another account redirect a write or a read: a symbolic link where a certificate,
 * key or generation file belongs (a symlinked `key.pem` would have had its target copied into
 * `key.pem.previous`), and a directory that others may write (they could swap files between our steps).
 */
import { constants } from 'node:fs';
import { open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { cleanStderr, runProgram, type RunResult } from '../run-program';

export interface CommandSpec {
  command: string;
  args: string[];
  /** Default 30 s. */
  timeoutMs?: number;
}

export interface FileOwner {
  uid: number;
  gid: number;
}

export interface FileState {
  content: Buffer;
  /** Permission bits (0o777). */
  mode: number;
}

export interface CommandResult {
  ok: boolean;
  /** "'nginx -t' ok", "'nginx -t' exited with code 1: <stderr tail, PEM removed>". */
  detail: string;
}

export interface FileHost {
  /** Identity for grouping targets of one server: 'local', 'ssh:certflow@10.0.0.4:22'. */
  readonly id: string;
  /** Prefix for outcomes' binding names: '' on the worker's own disk, 'web-1:' on a host. */
  readonly label: string;
  /** A regular file's content and mode; null when it does not exist. Refuses a symlink or a non-file. */
  read(file: string): Promise<FileState | null>;
  /** Temp file in the same directory, exact mode and owner, fsync, rename over `file` (then fsync the dir where possible). */
  write(file: string, content: string | Buffer, mode: number, owner?: FileOwner): Promise<void>;
  /** false when `from` does not exist. */
  rename(from: string, to: string): Promise<boolean>;
  /** Nothing when the file does not exist. */
  remove(file: string): Promise<void>;
  /** Refuses a path that is not a directory, or a directory that its group or others may write (a missing one is the write's problem). */
  checkDir(dir: string): Promise<void>;
  /** Removes the temp files interrupted `write`s of these files (all in `dir`) left behind; returns how many. */
  removeStaleTemps(dir: string, files: string[]): Promise<number>;
  /** Runs a validate or reload command (no shell on the worker; a POSIX shell command line over SSH). */
  run(spec: CommandSpec): Promise<CommandResult>;
}

/** The temp name `write` uses next to `file`, and the pattern that finds ones left by an interrupted write. */
export const tempName = (file: string) =>
  path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
export const isTempOf = (file: string, entry: string) =>
  entry.startsWith(`.${path.basename(file)}.`) && /^\.[\s\S]+\.[0-9a-f]{12}\.tmp$/.test(entry);

export const symlinkRefused = (file: string) =>
  new Error(
    `refusing ${file}: it is a symbolic link (certificate, key and generation files must be regular files, ` +
      'so a link cannot send a read or a write elsewhere)',
  );
export const notAFile = (file: string) => new Error(`refusing ${file}: it is not a regular file`);
export const writableDir = (dir: string, mode: number) =>
  new Error(
    `refusing ${dir}: the directory is writable by its group or by others (mode ${(mode & 0o7777).toString(8).padStart(4, '0')}); ` +
      'another account could swap files in it: make it writable by its owner only (chmod go-w)',
  );

/** The label of a command for messages: the program and its leading flags ('nginx -t', 'nginx -s reload'). */
export function commandLabel(spec: CommandSpec): string {
  const lead: string[] = [];
  for (const a of spec.args) {
    if (a.includes('/')) {
      if (lead.at(-1)?.startsWith('-')) lead.pop(); // the flag that takes this path
      break;
    }
    if (lead.length === 3) break;
    lead.push(a);
  }
  return [path.basename(spec.command), ...lead.slice(0, 2)].join(' ');
}

/** One sentence for a command's result, the same for local and remote commands. */
export function describeRun(spec: CommandSpec, r: RunResult, timeoutMs: number): CommandResult {
  const label = commandLabel(spec);
  if (r.kind === 'exited' && r.code === 0) return { ok: true, detail: `'${label}' ok` };
  const how =
    r.kind === 'exited'
      ? `exited with code ${r.code}`
      : r.kind === 'timeout'
        ? `timed out after ${timeoutMs} ms (its process group was killed)`
        : r.kind === 'signaled'
          ? `was stopped by ${r.signal}`
          : r.kind === 'too-large'
            ? `wrote more than 1 MiB to ${r.stream} (stopped)`
            : `could not be started (${r.error.code ?? r.error.message})`;
  const said = 'stderr' in r ? cleanStderr(r.stderr) : '';
  return { ok: false, detail: `'${label}' ${how}${said ? `: ${said}` : ''}` };
}

/** The worker's own disk; commands run without a shell, with an allow-listed environment, in their own process group. */
export const localFileHost: FileHost = {
  id: 'local',
  label: '',
  async read(file) {
    let fh;
    try {
      // O_NOFOLLOW: a symlink in the last component fails with ELOOP instead of being followed
      fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return null;
      if (code === 'ELOOP') throw symlinkRefused(file);
      throw err;
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw notAFile(file);
      return { content: await fh.readFile(), mode: st.mode & 0o777 };
    } finally {
      await fh.close();
    }
  },
  async write(file, content, mode, owner) {
    const dir = path.dirname(file);
    const tmp = tempName(file);
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.chmod(mode); // the umask may have narrowed or widened nothing, but be exact
      if (owner) await fh.chown(owner.uid, owner.gid);
      await fh.writeFile(content);
      await fh.sync();
    } catch (err) {
      await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await fh.close();
    try {
      await rename(tmp, file);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  },
  async rename(from, to) {
    try {
      await rename(from, to);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  },
  async remove(file) {
    await unlink(file).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  },
  async checkDir(dir) {
    const st = await stat(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null; // the write fails and is undone like any failed write
      throw new Error(`cannot check ${dir}: ${err.message}`);
    });
    if (!st) return;
    if (!st.isDirectory()) throw new Error(`refusing ${dir}: not a directory`);
    if (st.mode & 0o022) throw writableDir(dir, st.mode);
  },
  async removeStaleTemps(dir, files) {
    const entries = await readdir(dir).catch(() => [] as string[]);
    const stale = entries.filter((e) => files.some((f) => isTempOf(f, e)));
    for (const e of stale) await unlink(path.join(dir, e)).catch(() => undefined);
    return stale.length;
  },
  async run(spec) {
    const timeoutMs = spec.timeoutMs ?? 30_000;
    const r = await runProgram({
      command: spec.command,
      args: spec.args,
      env: {},
      stdin: '',
      timeoutMs,
      maxOutputBytes: 1024 * 1024,
    });
    return describeRun(spec, r, timeoutMs);
  },
};
