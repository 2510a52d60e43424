/**
 * A real OpenSSH server (Debian's openssh-server, installed by scripts/install-tools.sh) for the SSH host target's
 * tests: its own config, host key and authorized_keys in a scratch directory, a free loopback port, the current
 * user, public-key authentication only. Started in the foreground (`sshd -D -e`) and stopped by PID like every
 * other test server. `restart({ newHostKey: true })` brings it back on the same port with a different host key
 * (a re-installed or swapped server).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, startProcess, tcpOpen, type Started } from './proc';
import { scratchDir } from './tools';

export interface RunningSshd {
  port: number;
  dir: string;
  user: string;
  /** The client's private key (OpenSSH format, unencrypted): a throwaway made for this server. */
  clientKey: string;
  /** The host key as a .pub line (`ssh-ed25519 AAAA...`) and as its SHA256 fingerprint. */
  hostPublicKey: string;
  hostFingerprint: string;
  /** A key the server does not accept. */
  strangerKey: string;
  restart(opts?: { newHostKey?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

const SSHD = process.env.CERTFLOW_SSHD_BIN ?? '/usr/sbin/sshd';
const KEYGEN = process.env.CERTFLOW_SSH_KEYGEN_BIN ?? '/usr/bin/ssh-keygen';

function keygen(file: string): void {
  rmSync(file, { force: true });
  rmSync(`${file}.pub`, { force: true });
  execFileSync(KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-C', 'certflow-test', '-f', file]);
}

const fingerprintOf = (pubFile: string) =>
  execFileSync(KEYGEN, ['-l', '-E', 'sha256', '-f', pubFile], { encoding: 'utf8' }).split(' ')[1]!;

export async function startSshd(opts: { maxSessions?: number } = {}): Promise<RunningSshd> {
  if (!existsSync(SSHD))
    throw new Error(`${SSHD} not found; run 'npm run setup' (Debian package openssh-server)`);
  const dir = scratchDir('sshd');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // sshd refuses to start without its privilege separation directory (a system path Debian creates at boot)
  if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const user = os.userInfo().username;
  const hostKey = path.join(dir, 'ssh_host_ed25519_key');
  const clientKey = path.join(dir, 'client_ed25519');
  const stranger = path.join(dir, 'stranger_ed25519');
  keygen(hostKey);
  keygen(clientKey);
  keygen(stranger);
  writeFileSync(path.join(dir, 'authorized_keys'), readFileSync(`${clientKey}.pub`), { mode: 0o600 });
  const port = await freePort();
  const config = path.join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      // the scratch directory belongs to the test, not to a login account
      'StrictModes no',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'UsePAM no',
      'Subsystem sftp internal-sftp',
      `MaxSessions ${opts.maxSessions ?? 64}`,
      'MaxStartups 100:30:200',
      'LogLevel VERBOSE',
      '',
    ].join('\n'),
  );
  let proc: Started | undefined;
  const start = async () => {
    proc = await startProcess({
      name: 'sshd',
      command: SSHD,
      args: ['-D', '-e', '-f', config],
      logDir: dir,
      ready: () => tcpOpen(port),
      readyTimeoutMs: 15_000,
    });
  };
  await start();
  const running: RunningSshd = {
    port,
    dir,
    user,
    clientKey: readFileSync(clientKey, 'utf8'),
    strangerKey: readFileSync(stranger, 'utf8'),
    hostPublicKey: readFileSync(`${hostKey}.pub`, 'utf8').trim(),
    hostFingerprint: fingerprintOf(`${hostKey}.pub`),
    async restart({ newHostKey = false } = {}) {
      await proc?.stop();
      if (newHostKey) {
        keygen(hostKey);
        running.hostPublicKey = readFileSync(`${hostKey}.pub`, 'utf8').trim();
        running.hostFingerprint = fingerprintOf(`${hostKey}.pub`);
      }
      await start();
    },
    stop: async () => {
      await proc?.stop();
    },
  };
  return running;
}
