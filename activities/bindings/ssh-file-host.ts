/**
 * A FileHost on a server reached over SSH: files through SFTP, validate and reload commands through `exec`, so the
 * file target's whole algorithm (generations, torn pairs, batching, rollback) runs unchanged on a remote server.
 *
 * - Writes: a temp file in the same directory created exclusively with the final mode, chmod and chown on the
 *   handle, fsync (the `fsync@openssh.com` extension, where the server has it), then an atomic replace
 *   (`posix-rename@openssh.com`). SFTP cannot fsync a directory, so the rename itself is as durable as the remote
 *   filesystem makes it.
 * - Reads: `lstat` first, and a symlink or anything not a regular file is refused, as on the worker's own disk.
 * - Commands: a POSIX shell command line built from `{ command, args }` with every word single-quoted, run in the
 *   account's login shell with no environment from the worker.
 */
import path from 'node:path';
import type { SFTPWrapper, Stats } from 'ssh2';
import {
  describeRun,
  isTempOf,
  notAFile,
  symlinkRefused,
  tempName,
  writableDir,
  type FileHost,
  type FileState,
} from './file-host';
import { sshTarget, type SshConnection, type SshHost, type SshPool } from './ssh-connection';

/** SFTP status codes (draft-ietf-secsh-filexfer-02). */
const NO_SUCH_FILE = 2;

/** One word for a POSIX shell: single-quoted, with embedded quotes closed, escaped and reopened. */
export const shellQuote = (word: string): string =>
  /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;

const call = <T>(fn: (cb: (err: Error | undefined | null, v?: T) => void) => void): Promise<T> =>
  new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))));

const missing = (err: unknown) => (err as { code?: number }).code === NO_SUCH_FILE;

async function lstatOrNull(sftp: SFTPWrapper, file: string): Promise<Stats | null> {
  try {
    return await call<Stats>((cb) => sftp.lstat(file, cb));
  } catch (err) {
    if (missing(err)) return null;
    throw err;
  }
}

async function writeAll(sftp: SFTPWrapper, handle: Buffer, content: Buffer): Promise<void> {
  const CHUNK = 32 * 1024;
  for (let pos = 0; pos < content.length; pos += CHUNK) {
    const len = Math.min(CHUNK, content.length - pos);
    await call((cb) => sftp.write(handle, content, pos, len, pos, cb));
  }
}

export function sshFileHost(host: SshHost, pool: SshPool): FileHost {
  const withSftp = <T>(fn: (sftp: SFTPWrapper, conn: SshConnection) => Promise<T>) =>
    pool.use(host, async (conn) => fn(await conn.sftp(), conn));
  const where = (file: string) => `${host.name}:${file}`;
  return {
    id: `ssh:${sshTarget(host)}`,
    label: `${host.name}:`,
    read: (file) =>
      withSftp(async (sftp): Promise<FileState | null> => {
        const st = await lstatOrNull(sftp, file);
        if (!st) return null;
        if (st.isSymbolicLink()) throw symlinkRefused(where(file));
        if (!st.isFile()) throw notAFile(where(file));
        const content = await call<Buffer>((cb) => sftp.readFile(file, cb));
        return { content, mode: st.mode & 0o777 };
      }),
    write: (file, content, mode, owner) =>
      withSftp(async (sftp) => {
        const tmp = tempName(file);
        const body = typeof content === 'string' ? Buffer.from(content) : content;
        const handle = await call<Buffer>((cb) => sftp.open(tmp, 'wx', { mode }, cb));
        try {
          await call((cb) => sftp.fchmod(handle, mode, cb));
          if (owner) await call((cb) => sftp.fchown(handle, owner.uid, owner.gid, cb));
          await writeAll(sftp, handle, body);
          await new Promise<void>((resolve, reject) => {
            try {
              sftp.ext_openssh_fsync(handle, (err) => (err ? reject(err) : resolve()));
            } catch {
              resolve(); // the server has no fsync extension: the data is as durable as its close makes it
            }
          });
        } catch (err) {
          await call((cb) => sftp.close(handle, cb)).catch(() => undefined);
          await call((cb) => sftp.unlink(tmp, cb)).catch(() => undefined);
          throw new Error(`writing ${where(file)} failed: ${(err as Error).message}`);
        }
        await call((cb) => sftp.close(handle, cb));
        try {
          await call((cb) => sftp.ext_openssh_rename(tmp, file, cb));
        } catch (err) {
          await call((cb) => sftp.unlink(tmp, cb)).catch(() => undefined);
          throw new Error(`replacing ${where(file)} failed: ${(err as Error).message}`);
        }
      }),
    rename: (from, to) =>
      withSftp(async (sftp) => {
        try {
          await call((cb) => sftp.ext_openssh_rename(from, to, cb));
          return true;
        } catch (err) {
          if (missing(err)) return false;
          throw err;
        }
      }),
    remove: (file) =>
      withSftp(async (sftp) => {
        await call((cb) => sftp.unlink(file, cb)).catch((err) => {
          if (!missing(err)) throw err;
        });
      }),
    checkDir: (dir) =>
      withSftp(async (sftp) => {
        const st = await call<Stats>((cb) => sftp.stat(dir, cb)).catch((err) => {
          if (missing(err)) return null; // the write fails and is undone like any failed write
          throw new Error(`cannot check ${where(dir)}: ${(err as Error).message}`);
        });
        if (!st) return;
        if (!st.isDirectory()) throw new Error(`refusing ${where(dir)}: not a directory`);
        if (st.mode & 0o022) throw writableDir(where(dir), st.mode);
      }),
    removeStaleTemps: (dir, files) =>
      withSftp(async (sftp) => {
        const list = await call<{ filename: string }[]>((cb) => sftp.readdir(dir, cb)).catch(() => []);
        const stale = list.map((e) => e.filename).filter((e) => files.some((f) => isTempOf(f, e)));
        for (const e of stale)
          await call((cb) => sftp.unlink(path.posix.join(dir, e), cb)).catch(() => undefined);
        return stale.length;
      }),
    run: (spec) =>
      pool.use(host, async (conn) => {
        const timeoutMs = spec.timeoutMs ?? 30_000;
        const line = [spec.command, ...spec.args].map(shellQuote).join(' ');
        return describeRun(spec, await conn.exec(line, { timeoutMs, posix: true }), timeoutMs);
      }),
  };
}
