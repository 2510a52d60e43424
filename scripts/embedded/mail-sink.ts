/**
 * The embedded start's mail sink: an SMTP server on loopback that accepts every message, saves it as
 * `<dir>/<time>-<id>.eml` (the raw message, written aside then renamed), and a small web page listing the saved
 * mails newest first (date, to, subject) with a link to each one's text and to the raw message.
 * Mails saved by earlier runs are listed too: the page reads the directory.
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rename, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { simpleParser, type AddressObject } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { escapeHtml } from '../../activities/notify/templates';

export interface SavedMail {
  file: string;
  subject: string;
  to: string;
  date: string;
  text: string;
}

export interface MailSinkOptions {
  dir: string;
  host: string;
  smtpPort: number;
  webPort: number;
  /** Told of each message once it is saved. */
  onMail?: (mail: SavedMail) => void;
}

export interface MailSink {
  webUrl: string;
  stop(): Promise<void>;
}

const FILE = /^[\w.-]+\.eml$/;

const addresses = (a: AddressObject | AddressObject[] | undefined): string =>
  (Array.isArray(a) ? a : a ? [a] : []).map((x) => x.text).join(', ');

async function readMail(dir: string, file: string): Promise<SavedMail> {
  const parsed = await simpleParser(await readFile(path.join(dir, file)));
  return {
    file,
    subject: parsed.subject ?? '(no subject)',
    to: addresses(parsed.to),
    date: (parsed.date ?? new Date(0)).toISOString(),
    text: parsed.text ?? '',
  };
}

interface Listener {
  listen(port: number, host: string, cb: () => void): unknown;
  once(event: 'error', cb: (err: Error) => void): unknown;
  off(event: 'error', cb: (err: Error) => void): unknown;
}

function listen(server: Listener, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

export async function startMailSink(opts: MailSinkOptions): Promise<MailSink> {
  const cache = new Map<string, SavedMail>();
  const mail = async (file: string) => {
    const known = cache.get(file);
    if (known) return known;
    const m = await readMail(opts.dir, file);
    cache.set(file, m);
    return m;
  };

  const smtp = new SMTPServer({
    secure: false,
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    disableReverseLookup: true,
    logger: false,
    closeTimeout: 500,
    onData(stream, _session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const file = `${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(3).toString('hex')}.eml`;
        const target = path.join(opts.dir, file);
        writeFile(`${target}.tmp`, Buffer.concat(chunks))
          .then(() => rename(`${target}.tmp`, target))
          .then(() => mail(file))
          .then((m) => {
            cb();
            opts.onMail?.(m);
          })
          .catch((err: Error) => cb(err));
      });
    },
  });
  smtp.on('error', () => undefined); // a client that goes away mid-message is its own problem

  const page = async (): Promise<string> => {
    const files = (await readdir(opts.dir))
      .filter((f) => FILE.test(f))
      .sort()
      .reverse();
    const rows = await Promise.all(files.map((f) => mail(f).catch(() => null)));
    const tr = rows
      .filter((m): m is SavedMail => m !== null)
      .map(
        (m) =>
          `<tr><td>${escapeHtml(m.date.replace('T', ' ').slice(0, 19))}</td><td>${escapeHtml(m.to)}</td>` +
          `<td><a href="/mail/${m.file}">${escapeHtml(m.subject)}</a></td><td><a href="/raw/${m.file}">.eml</a></td></tr>`,
      )
      .join('\n');
    return `<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="10">
<title>Certflow mail sink</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}td,th{padding:.3em .8em;text-align:left;border-bottom:1px solid #ddd}</style>
<h1>Mail sent by Certflow</h1><p>${files.length} message(s), newest first; saved in ${escapeHtml(opts.dir)}. This page refreshes itself.</p>
<table><tr><th>date (UTC)</th><th>to</th><th>subject</th><th></th></tr>
${tr}
</table>`;
  };

  const web = http.createServer((req, res) => {
    const [, kind, file] = /^\/(mail|raw)\/([^/?]+)$/.exec(req.url ?? '') ?? [];
    const answer = async (): Promise<[number, string, string]> => {
      if (req.url === '/' || req.url === '/index.html') return [200, 'text/html', await page()];
      if (!file || !FILE.test(file)) return [404, 'text/plain', 'not found\n'];
      if (kind === 'raw') return [200, 'message/rfc822', await readFile(path.join(opts.dir, file), 'utf8')];
      const m = await mail(file);
      return [200, 'text/plain', `To: ${m.to}\nDate: ${m.date}\nSubject: ${m.subject}\n\n${m.text}`];
    };
    answer()
      .catch((): [number, string, string] => [404, 'text/plain', 'not found\n'])
      .then(([status, type, body]) => {
        res.writeHead(status, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store' });
        res.end(body);
      });
  });

  await listen(smtp, opts.smtpPort, opts.host);
  try {
    await listen(web, opts.webPort, opts.host);
  } catch (err) {
    await new Promise<void>((r) => smtp.close(() => r()));
    throw err;
  }
  return {
    webUrl: `http://${opts.host}:${opts.webPort}/`,
    async stop() {
      web.closeAllConnections();
      await Promise.all([
        new Promise<void>((r) => web.close(() => r())),
        new Promise<void>((r) => smtp.close(() => r())),
      ]);
    },
  };
}
