/**
 * The notifications already sent, so an activity retried after a lost completion (the mail went out, the
 * worker died or its answer to Temporal was lost) does not send again. With a path: an append-only file of
 * sha256(event id) lines, shared by every worker process on the host and surviving restarts; lines other
 * processes append are picked up on the next look-up. Without one: a set in this process's memory.
 * One short line per append, so concurrent appenders (O_APPEND) never interleave inside a line.
 */
import { createHash } from 'node:crypto';
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';

export interface SentLog {
  has(eventId: string): Promise<boolean>;
  add(eventId: string): Promise<void>;
}

const digest = (eventId: string): string => createHash('sha256').update(eventId).digest('hex');

export function createSentLog(file?: string): SentLog {
  const seen = new Set<string>();
  if (!file) {
    return {
      has: async (id) => seen.has(digest(id)),
      add: async (id) => void seen.add(digest(id)),
    };
  }
  let readUpTo = 0;

  /** Reads what was appended since the last look (by us or another process). */
  async function catchUp(): Promise<void> {
    const handle = await open(file!, 'r').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw new Error(`sent-log ${file}: cannot read it (${err.code ?? err.message})`);
    });
    if (!handle) return;
    try {
      const { size } = await handle.stat();
      if (size <= readUpTo) return;
      const buf = Buffer.alloc(size - readUpTo);
      await handle.read(buf, 0, buf.length, readUpTo);
      const text = buf.toString('latin1');
      const complete = text.lastIndexOf('\n') + 1; // a line being written right now is read next time
      for (const line of text.slice(0, complete).split('\n')) if (line) seen.add(line);
      readUpTo += complete;
    } finally {
      await handle.close();
    }
  }

  return {
    async has(id) {
      const key = digest(id);
      if (seen.has(key)) return true;
      await catchUp();
      return seen.has(key);
    },
    async add(id) {
      const key = digest(id);
      await mkdir(path.dirname(file), { recursive: true });
      const handle = await open(file, 'a', 0o600);
      try {
        await handle.write(`${key}\n`);
      } finally {
        await handle.close();
      }
      seen.add(key);
    },
  };
}
