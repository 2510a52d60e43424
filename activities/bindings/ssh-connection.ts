/**
 * SSH connections to the servers Certflow binds on (Linux over OpenSSH, Windows over its OpenSSH server), with
 * the `ssh2` library: a pinned host key (an unknown or changed key is refused: there is no "accept any" mode),
 * public-key authentication with a key that comes by secret reference, one connection per host reused by every
 * binding of that host while it is in use (and a little after), and failures classified:
 *
 *   HostUnreachable        DNS, refused, reset, timed out: retryable
 *   AuthenticationRefused  the server refused our key or user: not retryable until someone fixes it
 *   HostKeyMismatch        the server's key is not a pinned one (a changed or swapped server): never retried
 *
 * Remote commands get no environment from the worker (nothing is sent with `env`), no pty, a deadline after which
 * they are signalled (KILL, which OpenSSH sends to the command's process group) and the channel closed.
 */
import { createHash } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import ssh2, { type ClientChannel, type ConnectConfig, type SFTPWrapper } from 'ssh2';
import type { RunResult } from '../run-program';

// ssh2 is CommonJS: under Node's own ESM loader only its default export is certain to be there
const { Client, utils: sshUtils } = ssh2;
type Client = InstanceType<typeof Client>;

export interface SshHost {
  /** The inventory name ('web-1'), shown in outcomes. */
  name: string;
  address: string;
  /** Default 22. */
  port?: number;
  user: string;
  /** OpenSSH or PEM private key text (resolved from its secret reference by the worker). */
  privateKey: string;
  passphrase?: string;
  /**
   * Pinned host keys: `SHA256:<base64>` fingerprints (as `ssh-keygen -lf` prints them) or public keys
   * `<type> <base64>` (a .pub file's line). At least one; the server must present one of them.
   */
  hostKeys: string[];
  /** Default 10 000 ms. */
  connectTimeoutMs?: number;
}

/** The first stderr line of a `posix` exec: the command's process (and process group) id. */
const PGID_TAG = 'certflow-pgid ';

export type SshFailureType = 'HostUnreachable' | 'AuthenticationRefused' | 'HostKeyMismatch';

/** `SHA256:...` of a host key blob, as OpenSSH prints it. */
export function sshFingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

interface Pins {
  fingerprints: Set<string>;
  /** Key types of the pinned public keys: the negotiation is limited to them so the pinned key is the one shown. */
  types: string[];
}

const PUBLIC_KEY =
  /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521))\s+([A-Za-z0-9+/]+={0,3})(?:\s.*)?$/;
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;

/** Parses the pins; throws (naming what is expected) on one that is neither form. */
export function parseHostKeys(pins: string[]): Pins {
  const fingerprints = new Set<string>();
  const types: string[] = [];
  let anyFingerprintOnly = false;
  for (const pin of pins.map((p) => p.trim())) {
    if (FINGERPRINT.test(pin)) {
      fingerprints.add(pin);
      anyFingerprintOnly = true;
      continue;
    }
    const m = PUBLIC_KEY.exec(pin);
    if (!m) {
      throw new Error(
        `expected a host key as "SHA256:<43 base64 characters>" (ssh-keygen -lf) or "<type> <base64>" (a .pub line), got "${pin.slice(0, 40)}"`,
      );
    }
    fingerprints.add(sshFingerprint(Buffer.from(m[2]!, 'base64')));
    if (m[1] === 'ssh-rsa') types.push('rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa');
    else types.push(m[1]!);
  }
  if (fingerprints.size === 0) throw new Error('expected at least one pinned host key');
  // a fingerprint alone does not say its type: then offer every type (ed25519 first, as OpenSSH does)
  return { fingerprints, types: anyFingerprintOnly ? [] : [...new Set(types)] };
}

/**
 * Throws (without the key) when ssh2 cannot use the key: an unsupported format (PKCS#8 "BEGIN PRIVATE KEY" is not
 * read: use the OpenSSH format ssh-keygen writes, or PKCS#1/SEC1 PEM), or an encrypted key without its passphrase.
 */
export function checkPrivateKey(privateKey: string, passphrase?: string): true {
  const parsed = sshUtils.parseKey(privateKey, passphrase);
  if (parsed instanceof Error)
    throw new Error(
      `the private key cannot be used (${parsed.message.replace(/-----BEGIN[\s\S]*/, '')}): expected an OpenSSH key ` +
        '("BEGIN OPENSSH PRIVATE KEY", as ssh-keygen writes it) or a PKCS#1/SEC1 PEM key, with its passphrase if encrypted',
    );
  return true;
}

export const sshTarget = (h: SshHost) => `${h.user}@${h.address}:${h.port ?? 22}`;

function failure(type: SshFailureType, host: SshHost, message: string): ApplicationFailure {
  return ApplicationFailure.create({
    type,
    message: `host ${host.name} (${sshTarget(host)}): ${message}`,
    nonRetryable: type !== 'HostUnreachable',
  });
}

/** An open, authenticated connection; `sftp()` opens one SFTP session on first use and keeps it. */
export class SshConnection {
  private sftpSession: Promise<SFTPWrapper> | undefined;
  private closed = false;

  private constructor(
    readonly host: SshHost,
    private readonly client: Client,
  ) {
    client.on('close', () => (this.closed = true));
    client.on('end', () => (this.closed = true));
  }

  get alive(): boolean {
    return !this.closed;
  }

  static open(host: SshHost): Promise<SshConnection> {
    const pins = parseHostKeys(host.hostKeys);
    const client = new Client();
    let presented: string | undefined;
    const config: ConnectConfig = {
      host: host.address,
      port: host.port ?? 22,
      username: host.user,
      privateKey: host.privateKey,
      ...(host.passphrase ? { passphrase: host.passphrase } : {}),
      readyTimeout: host.connectTimeoutMs ?? 10_000,
      keepaliveInterval: 15_000,
      // public-key authentication only: no password, keyboard-interactive or agent from the worker's environment
      tryKeyboard: false,
      agent: undefined,
      hostVerifier: (key: Buffer) => {
        presented = sshFingerprint(key);
        return pins.fingerprints.has(presented);
      },
      ...(pins.types.length ? { algorithms: { serverHostKey: pins.types as never } } : {}),
    };
    return new Promise((resolve, reject) => {
      const onError = (err: Error & { level?: string; code?: string }) => {
        client.removeListener('ready', onReady);
        client.end();
        reject(classify(host, err, presented, pins));
      };
      const onReady = () => {
        client.removeListener('error', onError);
        // later errors (a reset while idle) close the connection; the pool opens a new one
        client.on('error', () => client.end());
        resolve(new SshConnection(host, client));
      };
      client.once('error', onError);
      client.once('ready', onReady);
      try {
        client.connect(config);
      } catch (err) {
        // e.g. a private key ssh2 cannot parse (said without the key)
        reject(
          failure(
            'AuthenticationRefused',
            host,
            `the private key cannot be used: ${(err as Error).message.replace(/-----BEGIN[\s\S]*/, '')}`,
          ),
        );
      }
    });
  }

  sftp(): Promise<SFTPWrapper> {
    this.sftpSession ??= new Promise<SFTPWrapper>((resolve, reject) =>
      this.client.sftp((err, sftp) => (err ? reject(err) : resolve(sftp))),
    ).catch((err: Error) => {
      this.sftpSession = undefined;
      throw new Error(`host ${this.host.name}: the SFTP subsystem is not available: ${err.message}`);
    });
    return this.sftpSession;
  }

  /**
   * Runs a command line in the account's shell (no pty, no environment from us), `stdin` written then closed.
   * Output is collected up to `maxOutputBytes` per stream; past it, or past the deadline, the command is killed:
   * - with `posix`, the command line is run as `exec` from a shell that first reports its process id on stderr
   *   (sshd makes each command a session leader, so that id is its process group); to stop it Certflow runs
   *   `kill -KILL -- -<id>` over the same connection. This works for every account, root included.
   * - always, a `signal` request (KILL) that OpenSSH 8.1+ passes to the process group of a non-root session, then
   *   the channel is closed (Windows' OpenSSH server ends the process with it).
   */
  exec(
    commandLine: string,
    opts: { stdin?: string | Buffer; timeoutMs: number; maxOutputBytes?: number; posix?: boolean },
  ): Promise<RunResult> {
    const max = opts.maxOutputBytes ?? 1024 * 1024;
    const line = opts.posix ? `printf '${PGID_TAG}%d\\n' $$ >&2; exec ${commandLine}` : commandLine;
    return new Promise((resolve) => {
      this.client.exec(line, (err, channel: ClientChannel) => {
        if (err) {
          resolve({ kind: 'spawn-failed', error: Object.assign(err, { code: 'ECHANNEL' }) });
          return;
        }
        const out: Buffer[] = [];
        const errOut: Buffer[] = [];
        const size = { stdout: 0, stderr: 0 };
        let stopped: { kind: 'timeout' } | { kind: 'too-large'; stream: 'stdout' | 'stderr' } | undefined;
        let exit: { code: number | null; signal?: string } | undefined;
        let group: number | undefined;
        let head = opts.posix ? '' : undefined; // stderr until the process id line has been read
        const stop = (why: NonNullable<typeof stopped>) => {
          if (stopped) return;
          stopped = why;
          if (group) void this.exec(`kill -KILL -- -${group}`, { timeoutMs: 5_000 });
          // ssh2's channel.signal() does nothing once our stdin is closed (it checks `writable`), though the
          // protocol allows a signal after EOF: send the request through its protocol object, as signal() would
          const raw = channel as unknown as {
            outgoing?: { id: number; state: string };
            _client?: { _protocol?: { signal(id: number, name: string): void } };
          };
          try {
            if (raw.outgoing && ['open', 'eof'].includes(raw.outgoing.state))
              raw._client?._protocol?.signal(raw.outgoing.id, 'KILL');
          } catch {
            /* the channel is already closing */
          }
          channel.close();
        };
        const take = (stream: 'stdout' | 'stderr', into: Buffer[], chunk: Buffer) => {
          if (stopped) return;
          size[stream] += chunk.length;
          if (size[stream] > max) stop({ kind: 'too-large', stream });
          else into.push(chunk);
        };
        const timer = setTimeout(() => stop({ kind: 'timeout' }), opts.timeoutMs);
        channel.on('data', (chunk: Buffer) => take('stdout', out, chunk));
        channel.stderr.on('data', (chunk: Buffer) => {
          if (head === undefined) return take('stderr', errOut, chunk);
          head += chunk.toString('latin1');
          const nl = head.indexOf('\n');
          if (nl < 0 && head.length < 64) return;
          const m = new RegExp(`^${PGID_TAG}(\\d+)$`).exec(head.slice(0, nl < 0 ? undefined : nl));
          if (m) group = Number(m[1]);
          const rest = m ? head.slice(nl + 1) : head;
          head = undefined;
          if (rest) take('stderr', errOut, Buffer.from(rest, 'latin1'));
        });
        channel.on('exit', (code: number | null, signal?: string) => {
          exit = { code, ...(signal ? { signal } : {}) };
        });
        channel.on('close', () => {
          clearTimeout(timer);
          const text = (chunks: Buffer[]) => Buffer.concat(chunks).toString('utf8');
          if (stopped?.kind === 'timeout') resolve({ kind: 'timeout', stderr: text(errOut) });
          else if (stopped) resolve(stopped);
          else if (exit?.signal)
            resolve({ kind: 'signaled', signal: `SIG${exit.signal}`, stderr: text(errOut) });
          else if (typeof exit?.code === 'number')
            resolve({ kind: 'exited', code: exit.code, stdout: text(out), stderr: text(errOut) });
          else resolve({ kind: 'signaled', signal: 'the connection closing', stderr: text(errOut) });
        });
        channel.on('error', () => undefined);
        channel.end(opts.stdin ?? '');
      });
    });
  }

  close(): void {
    this.closed = true;
    this.client.end();
  }
}

function classify(
  host: SshHost,
  err: Error & { level?: string; code?: string },
  presented: string | undefined,
  pins: Pins,
): ApplicationFailure {
  if (/Host denied/.test(err.message) || (presented && !pins.fingerprints.has(presented))) {
    return failure(
      'HostKeyMismatch',
      host,
      `the server's host key ${presented ?? '(none)'} is not pinned (expected ${[...pins.fingerprints].join(' or ')}); ` +
        'refusing to connect: if the server was re-installed on purpose, pin its new key in hosts[].hostKeys',
    );
  }
  if (err.level === 'client-authentication') {
    return failure(
      'AuthenticationRefused',
      host,
      `the server refused public-key authentication for user "${host.user}" (is our public key in its authorized_keys?)`,
    );
  }
  if (err.level === 'client-timeout') {
    return failure('HostUnreachable', host, `no SSH handshake within ${host.connectTimeoutMs ?? 10_000} ms`);
  }
  if (err.level === 'client-socket' || err.level === 'client-dns' || err.code) {
    return failure(
      'HostUnreachable',
      host,
      `cannot connect: ${err.code ?? ''} ${err.message}`.replace(/\s+/g, ' '),
    );
  }
  if (/no matching (host key|key exchange)/i.test(err.message)) {
    return failure(
      'HostKeyMismatch',
      host,
      `the server offers no host key of a pinned type (${pins.types.join(', ')}): ${err.message}`,
    );
  }
  return failure('HostUnreachable', host, `SSH handshake failed: ${err.message}`);
}

/**
 * One connection per host, shared by every binding of that host while any uses it, kept `idleMs` after the last
 * release (a renewal wave reaches the same hosts for many certificates) and closed after. A failed connect is
 * remembered for `failureMs`, so 200 sites of an unreachable host fail at once instead of trying 200 times.
 */
export class SshPool {
  private readonly entries = new Map<
    string,
    { conn?: Promise<SshConnection>; users: number; timer?: NodeJS.Timeout; failedAt?: number }
  >();

  constructor(private readonly opts: { idleMs?: number; failureMs?: number } = {}) {}

  async use<T>(host: SshHost, fn: (conn: SshConnection) => Promise<T>): Promise<T> {
    // a digest of the key, not the key: another key for the same account is another connection
    const keyId = createHash('sha256').update(host.privateKey).digest('hex');
    const key = JSON.stringify([sshTarget(host), host.hostKeys, keyId]);
    let e = this.entries.get(key);
    if (!e) this.entries.set(key, (e = { users: 0 }));
    const entry = e;
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = undefined;
    const stale =
      entry.conn &&
      (await entry.conn.then(
        (c) => !c.alive,
        () => true,
      ));
    const failedRecently =
      entry.failedAt !== undefined && Date.now() - entry.failedAt < (this.opts.failureMs ?? 5_000);
    if (!entry.conn || (stale && !failedRecently)) {
      entry.failedAt = undefined;
      entry.conn = SshConnection.open(host);
      entry.conn.catch(() => (entry.failedAt = Date.now()));
    }
    entry.users++;
    try {
      return await fn(await entry.conn);
    } finally {
      entry.users--;
      if (entry.users === 0) {
        entry.timer = setTimeout(() => this.drop(key), this.opts.idleMs ?? 30_000);
        entry.timer.unref();
      }
    }
  }

  private drop(key: string): void {
    const e = this.entries.get(key);
    if (!e || e.users > 0) return;
    this.entries.delete(key);
    void e.conn?.then(
      (c) => c.close(),
      () => undefined,
    );
  }

  /** Closes every connection (worker shutdown, the end of a test or benchmark). */
  async close(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    for (const e of all) {
      if (e.timer) clearTimeout(e.timer);
      await e.conn?.then(
        (c) => c.close(),
        () => undefined,
      );
    }
  }
}
