import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createSentLog } from '../../activities/notify/sent-log';

const dir = mkdtempSync(path.join(tmpdir(), 'sent-log-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('sent-log', () => {
  it('in memory without a path', async () => {
    const log = createSentLog();
    expect(await log.has('e1')).toBe(false);
    await log.add('e1');
    expect(await log.has('e1')).toBe(true);
    expect(await createSentLog().has('e1')).toBe(false);
  });

  it('a file of sha256 lines, 0600, shared with other processes (their appends seen on the next look-up)', async () => {
    const file = path.join(dir, 'sub', 'sent.log');
    const a = createSentLog(file);
    const b = createSentLog(file);
    expect(await b.has('e1')).toBe(false); // no file yet
    await a.add('e1');
    expect(await b.has('e1')).toBe(true);
    expect(readFileSync(file, 'utf8')).toBe(`${sha('e1')}\n`);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    appendFileSync(file, `${sha('e2')}\n${sha('e3').slice(0, 20)}`); // e3 is being written right now
    expect(await b.has('e2')).toBe(true);
    expect(await b.has('e3')).toBe(false);
    appendFileSync(file, `${sha('e3').slice(20)}\n`);
    expect(await b.has('e3')).toBe(true);
  });
});
