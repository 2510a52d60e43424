/**
 * The local vault's file primitives. Every write goes to a new temporary file in the same directory (created
 * exclusively with mode 0600), is fsynced, renamed over the target, and the directory is fsynced: after a crash
 * a reader sees the old file or the new one, never a mix. Directories are 0700.
 */
import crypto from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

export interface LocalFiles {
  readonly root: string;
  /** Absolute path of a path relative to the vault directory. */
  pathOf(rel: string): string;
  /** Creates the directory and its parents below the root (and the root), each 0700. */
  mkdir(rel: string): Promise<void>;
  write(rel: string, data: Buffer | string): Promise<void>;
  /** The file's bytes, or null when it does not exist. */
  read(rel: string): Promise<Buffer | null>;
  remove(rel: string): Promise<void>;
  /** Names in a directory, without temporary files; empty when the directory does not exist. */
  entries(rel: string): Promise<string[]>;
}

const TMP_SUFFIX = '.tmp';

export function createLocalFiles(root: string): LocalFiles {
  const abs = path.resolve(root);
  const pathOf = (rel: string) => path.join(abs, rel);

  return {
    root: abs,
    pathOf,

    async mkdir(rel) {
      await fs.mkdir(path.dirname(abs), { recursive: true });
      let dir = abs;
      for (const part of ['', ...rel.split('/').filter(Boolean)]) {
        dir = path.join(dir, part);
        await fs.mkdir(dir, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err;
        });
        // also tightens a directory that existed with a looser mode (or was shaped by the umask)
        await fs.chmod(dir, 0o700);
      }
    },

    async write(rel, data) {
      const target = pathOf(rel);
      const tmp = `${target}.${crypto.randomBytes(6).toString('hex')}${TMP_SUFFIX}`;
      try {
        const fh = await fs.open(tmp, 'wx', 0o600);
        try {
          await fh.writeFile(data);
          await fh.chmod(0o600);
          await fh.sync();
        } finally {
          await fh.close();
        }
        await fs.rename(tmp, target);
      } catch (err) {
        await fs.rm(tmp, { force: true });
        throw err;
      }
      await syncDir(path.dirname(target));
    },

    async read(rel) {
      try {
        return await fs.readFile(pathOf(rel));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw err;
      }
    },

    async remove(rel) {
      await fs.rm(pathOf(rel), { force: true });
      await syncDir(path.dirname(pathOf(rel))).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    },

    async entries(rel) {
      try {
        return (await fs.readdir(pathOf(rel))).filter((n) => !n.endsWith(TMP_SUFFIX)).sort();
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw err;
      }
    },
  };
}

/** Makes a rename or unlink in the directory durable. */
async function syncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
