/**
 * A real nginx serving TLS on a free loopback port, with everything (config, pid, logs, temp dirs,
 * certificate files) inside its own scratch directory, so several test files can run one each.
 * `reloadArgs` target this instance only: `-p`/`-c` make nginx read our config, whose `pid` is ours.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Probe } from '../../activities/types';
import { probeTls, type ProbeOptions } from '../../activities/verify/probe';
import { freePort, startProcess, tcpOpen } from './proc';
import { scratchDir, tools } from './tools';

export interface NginxOptions {
  certPem: string;
  keyPem: string;
  serverNames?: string[];
}

export interface RunningNginx {
  port: number;
  dir: string;
  certPath: string;
  keyPath: string;
  configPath: string;
  pidFile: string;
  /** The nginx binary, for `execFile(command, testArgs)`. */
  command: string;
  /** argv for `nginx -t` against this instance's config (no shell). */
  testArgs: string[];
  /** argv for `nginx -s reload` that signals this instance (pid file from our config). */
  reloadArgs: string[];
  logFile: string;
  stop(): Promise<void>;
}

export async function startNginx(opts: NginxOptions): Promise<RunningNginx> {
  const command = tools.nginx();
  const dir = scratchDir('nginx');
  const tmp = path.join(dir, 'tmp');
  mkdirSync(tmp, { recursive: true });
  const port = await freePort();
  const certPath = path.join(dir, 'cert.pem');
  const keyPath = path.join(dir, 'key.pem');
  const configPath = path.join(dir, 'nginx.conf');
  const pidFile = path.join(dir, 'nginx.pid');
  writeFileSync(certPath, opts.certPem, { mode: 0o644 });
  writeFileSync(keyPath, opts.keyPem, { mode: 0o600 });
  const names = opts.serverNames?.length ? opts.serverNames.join(' ') : 'localhost';
  writeFileSync(
    configPath,
    `daemon off;
master_process on;
worker_processes 1;
pid ${pidFile};
error_log ${path.join(dir, 'error.log')} info;
events { worker_connections 512; }
http {
  access_log ${path.join(dir, 'access.log')};
  client_body_temp_path ${path.join(tmp, 'body')};
  proxy_temp_path ${path.join(tmp, 'proxy')};
  fastcgi_temp_path ${path.join(tmp, 'fastcgi')};
  uwsgi_temp_path ${path.join(tmp, 'uwsgi')};
  scgi_temp_path ${path.join(tmp, 'scgi')};
  server {
    listen 127.0.0.1:${port} ssl;
    server_name ${names};
    ssl_certificate ${certPath};
    ssl_certificate_key ${keyPath};
    # a page that needs no files: workers run as 'nobody' and need not read the scratch dir
    location / { default_type text/plain; return 200 "certflow test nginx\\n"; }
  }
}
`,
  );
  // -e: errors before the config is read go to our log too, not to the compiled-in default
  const base = ['-p', `${dir}/`, '-c', configPath, '-e', path.join(dir, 'error.log')];
  const proc = await startProcess({
    name: 'nginx',
    command,
    args: base,
    logDir: dir,
    // the pid file is written once nginx has bound its port: another test's server that took the same port
    // (freePort is free only when asked) answers tcpOpen too, but leaves no pid file of ours
    ready: async () => existsSync(pidFile) && tcpOpen(port),
    readyTimeoutMs: 15_000,
  });
  return {
    port,
    dir,
    certPath,
    keyPath,
    configPath,
    pidFile,
    command,
    testArgs: ['-t', ...base],
    reloadArgs: ['-s', 'reload', ...base],
    logFile: proc.logFile,
    stop: () => proc.stop(),
  };
}

/**
 * What a server serves once a reload has settled: after `nginx -s reload` the retiring worker may still take a
 * connection or two while it drains, so one probe showing `expected` is not enough; it must show it `times` in a
 * row. Returns what the last probe saw (the caller asserts on it).
 */
export async function settledThumbprint(
  probe: () => Promise<string | null | undefined>,
  expected: string,
  { times = 5, timeoutMs = 20_000 }: { times?: number; timeoutMs?: number } = {},
): Promise<string | null | undefined> {
  let inARow = 0;
  let last: string | null | undefined;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    last = await probe();
    inARow = last === expected ? inARow + 1 : 0;
    if (inARow >= times) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  return last;
}

/** A live probe taken once the server shows `expected` several times in a row (see settledThumbprint). */
export async function probeSettled(opts: ProbeOptions, expected: string | null | undefined): Promise<Probe> {
  let last: Probe | undefined;
  await settledThumbprint(async () => (last = await probeTls(opts)).servedThumbprint, expected ?? '');
  return last!;
}
