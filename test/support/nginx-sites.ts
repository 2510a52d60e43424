/**
 * One real nginx serving N TLS sites on one loopback port, told apart by SNI (`site-001.<domain>`, ...), each
 * site with its own certificate and key files, as a web server fronting many sites is set up. Config, pid,
 * logs and temp dirs live in the given directory; `reloadArgs` signal this instance only.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { freePort, startProcess, tcpOpen } from './proc';
import { tools } from './tools';

export interface Site {
  name: string;
  serverName: string;
  certPath: string;
  keyPath: string;
}

export interface NginxSites {
  port: number;
  pid: number;
  command: string;
  testArgs: string[];
  reloadArgs: string[];
  sites: Site[];
  errorLog: string;
  stop(): Promise<void>;
}

const TEMP_PATHS = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'];

export const siteName = (i: number): string => `site-${String(i).padStart(3, '0')}`;

export async function startNginxSites(opts: {
  dir: string;
  /** Site names (e.g. from siteName); each gets `<name>.<domain>` as its SNI name. */
  names: string[];
  domain: string;
  certPem: string;
  keyPem: string;
  /** Per-site certificate and key (e.g. one certificate per site); default: certPem/keyPem for every site. */
  materialOf?: (name: string) => { certPem: string; keyPem: string };
  /** error_log level; default `warn`. `notice` logs each reload ("reconfiguring"). */
  logLevel?: 'warn' | 'notice';
}): Promise<NginxSites> {
  const { dir } = opts;
  const port = await freePort();
  const sites: Site[] = [];
  for (const name of opts.names) {
    const siteDir = path.join(dir, 'sites', name);
    await mkdir(siteDir, { recursive: true });
    const site = {
      name,
      serverName: `${name}.${opts.domain}`,
      certPath: path.join(siteDir, 'cert.pem'),
      keyPath: path.join(siteDir, 'key.pem'),
    };
    const { certPem, keyPem } = opts.materialOf?.(name) ?? opts;
    await writeFile(site.certPath, certPem, { mode: 0o644 });
    await writeFile(site.keyPath, keyPem, { mode: 0o600 });
    sites.push(site);
  }
  const configPath = path.join(dir, 'nginx.conf');
  const errorLog = path.join(dir, 'error.log');
  const servers = sites.map(
    (s, i) => `  server {
    listen 127.0.0.1:${port} ssl${i === 0 ? ' default_server' : ''};
    server_name ${s.serverName};
    ssl_certificate ${s.certPath};
    ssl_certificate_key ${s.keyPath};
    location / { default_type text/plain; return 200 "${s.name}\\n"; }
  }`,
  );
  const temps = TEMP_PATHS.map((t) => `  ${t}_temp_path ${path.join(dir, 'tmp', t)};`);
  await mkdir(path.join(dir, 'tmp'), { recursive: true });
  await writeFile(
    configPath,
    [
      'daemon off;',
      'master_process on;',
      'worker_processes 1;',
      `pid ${path.join(dir, 'nginx.pid')};`,
      `error_log ${errorLog} ${opts.logLevel ?? 'warn'};`,
      'events { worker_connections 1024; }',
      'http {',
      '  access_log off;',
      // thousands of server names (the wave benchmark's 2,000 sites) need a larger hash than the default 512
      '  server_names_hash_max_size 8192;',
      '  server_names_hash_bucket_size 128;',
      ...temps,
      ...servers,
      '}',
      '',
    ].join('\n'),
  );
  const base = ['-p', `${dir}/`, '-c', configPath, '-e', errorLog];
  const command = tools.nginx();
  const proc = await startProcess({
    name: 'nginx-sites',
    command,
    args: base,
    logDir: dir,
    // the pid file is written once nginx has bound its port (another server on the same port answers tcpOpen too)
    ready: async () => existsSync(path.join(dir, 'nginx.pid')) && tcpOpen(port),
    readyTimeoutMs: 30_000,
  });
  return {
    port,
    pid: proc.pid,
    command,
    testArgs: ['-t', '-q', ...base],
    reloadArgs: ['-s', 'reload', ...base],
    sites,
    errorLog,
    stop: () => proc.stop(),
  };
}
