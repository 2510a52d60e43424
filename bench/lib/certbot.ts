/**
 * The peer of bench/wave.ts: Debian's certbot (bench/install-certbot.sh) renewing N lineages with
 * `certbot renew --force-renewal`, DNS-01 through pebble-challtestsrv (a manual auth hook that sets the TXT record
 * over challtestsrv's HTTP API, a cleanup hook that clears it), and a deploy hook per renewed lineage that swaps
 * the site's key and certificate files (copy, then rename) and runs `nginx -t` and `nginx -s reload`: the same work
 * Certflow's file target does for one site. With `reload: 'post'` the deploy hook swaps the files only and one
 * `--post-hook` validates and reloads once at the end.
 *
 * The lineages: one real `certbot certonly` (which also registers the ACME account) gives the renewal
 * configuration certbot itself writes; it is copied for each of the N names with that name's certificate, chain and
 * key (issued by the benchmark's dev CA, like Certflow's seeded versions), then the template lineage is removed.
 * So `renew` finds exactly N lineages in certbot's own format without N initial issuances (N × ~2 s, untimed work
 * the comparison does not need). Everything lives in the benchmark's temp dir (--config-dir/--work-dir/--logs-dir).
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const CERTBOT = process.env.CERTFLOW_CERTBOT_BIN ?? '/usr/bin/certbot';

export interface CertbotSetup {
  dir: string;
  directoryUrl: string;
  /** pebble's own HTTPS CA (for certbot's requests: REQUESTS_CA_BUNDLE). */
  caBundlePem: string;
  challtestsrvUrl: string;
  /** nginx: how the deploy hook validates and reloads it. */
  nginx: { command: string; testArgs: string[]; reloadArgs: string[] };
  /** The site's files for a lineage name (= its DNS name). */
  siteFiles: (dnsName: string) => { certPath: string; keyPath: string };
  /**
   * `deploy`: each lineage's deploy hook swaps its files, runs `nginx -t` and reloads (the per-certificate hook).
   * `post`: the deploy hook swaps the files only; one `--post-hook` runs `nginx -t` and reloads once after all
   * lineages (certbot's own way for many certificates on one server: a reload re-reads every site).
   */
  reload: 'deploy' | 'post';
}

export interface Lineage {
  dnsName: string;
  keyPem: string;
  /** Leaf first. */
  chainPem: string[];
}

export interface CertbotRun {
  exitCode: number;
  wallMs: number;
  /** CPU seconds of certbot and everything it ran (hooks, nginx -t, the reload command), from the shell's cutime. */
  cpuS: number | null;
  /** performance.now() at which each lineage's deploy hook finished (by DNS name). */
  deployedAt: Map<string, number>;
  stderrTail: string;
}

const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export function certbotPaths(dir: string) {
  return {
    config: path.join(dir, 'config'),
    work: path.join(dir, 'work'),
    logs: path.join(dir, 'logs'),
    hooks: path.join(dir, 'hooks'),
    deployLog: path.join(dir, 'deployed.log'),
    caFile: path.join(dir, 'pebble-tls-ca.pem'),
  };
}

function baseArgs(dir: string): string[] {
  const p = certbotPaths(dir);
  return ['--non-interactive', '--config-dir', p.config, '--work-dir', p.work, '--logs-dir', p.logs];
}

/** Writes the hooks; the deploy hook logs `<epoch-ms> <name>` so each lineage's finish time is known. */
async function writeHooks(
  s: CertbotSetup,
): Promise<{ auth: string; cleanup: string; deploy: string; post: string }> {
  const p = certbotPaths(s.dir);
  await mkdir(p.hooks, { recursive: true });
  const api = s.challtestsrvUrl.replace(/\/+$/, '');
  const auth = path.join(p.hooks, 'auth.sh');
  const cleanup = path.join(p.hooks, 'cleanup.sh');
  const deploy = path.join(p.hooks, 'deploy.sh');
  const post = path.join(p.hooks, 'post.sh');
  await writeFile(
    auth,
    [
      '#!/bin/sh',
      '# certbot --manual-auth-hook: publish the DNS-01 answer at challtestsrv (the DNS server pebble asks)',
      'set -e',
      `curl -sS --fail -X POST -d "{\\"host\\":\\"_acme-challenge.$CERTBOT_DOMAIN.\\",\\"value\\":\\"$CERTBOT_VALIDATION\\"}" ${sh(`${api}/set-txt`)} >/dev/null`,
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  await writeFile(
    cleanup,
    [
      '#!/bin/sh',
      `curl -sS --fail -X POST -d "{\\"host\\":\\"_acme-challenge.$CERTBOT_DOMAIN.\\"}" ${sh(`${api}/clear-txt`)} >/dev/null`,
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  // the site's files are found from the lineage name (its DNS name): written by the benchmark as a table
  const table = path.join(p.hooks, 'sites.tsv');
  const nginx = (args: string[]) => [s.nginx.command, ...args].map(sh).join(' ');
  await writeFile(
    deploy,
    [
      '#!/bin/sh',
      '# certbot --deploy-hook: swap the site files (copy beside, rename key then certificate), validate, reload',
      'set -e',
      'name=$(basename "$RENEWED_LINEAGE")',
      `line=$(grep -F "$name	" ${sh(table)} | head -n 1)`,
      'cert=$(printf "%s" "$line" | cut -f2)',
      'key=$(printf "%s" "$line" | cut -f3)',
      '[ -n "$cert" ] && [ -n "$key" ] || { echo "no site for $name" >&2; exit 1; }',
      'umask 077',
      'cp "$RENEWED_LINEAGE/privkey.pem" "$key.certbot-new"',
      'cp "$RENEWED_LINEAGE/fullchain.pem" "$cert.certbot-new"',
      'chmod 644 "$cert.certbot-new"',
      'mv -f "$key.certbot-new" "$key"',
      'mv -f "$cert.certbot-new" "$cert"',
      ...(s.reload === 'deploy' ? [`${nginx(s.nginx.testArgs)}`, `${nginx(s.nginx.reloadArgs)}`] : []),
      `echo "$(date +%s%3N) $name" >> ${sh(p.deployLog)}`,
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  await writeFile(
    post,
    [
      '#!/bin/sh',
      '# certbot --post-hook: once after every lineage was renewed and deployed: validate, reload',
      'set -e',
      `${nginx(s.nginx.testArgs)}`,
      `${nginx(s.nginx.reloadArgs)}`,
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  return { auth, cleanup, deploy, post };
}

function runCertbot(
  s: CertbotSetup,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string; cpuS: number | null }> {
  const p = certbotPaths(s.dir);
  // run under a shell that reports its children's CPU (cutime + cstime: certbot and everything it waited for)
  const script = `${sh(CERTBOT)} "$@"; rc=$?; read -r st < /proc/$$/stat; echo "CERTFLOW_BENCH_STAT $st"; exit $rc`;
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', script, 'certbot', ...args, ...baseArgs(s.dir)], {
      env: { ...process.env, REQUESTS_CA_BUNDLE: p.caFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)));
    child.on('error', reject);
    child.on('close', (code) => {
      const m = /CERTFLOW_BENCH_STAT .*\) (.*)$/m.exec(stdout);
      const f = m ? m[1]!.split(' ') : [];
      // after the ')' : state is field 0; cutime and cstime are fields 13 and 14
      const cpuS = f.length > 14 ? (Number(f[13]) + Number(f[14])) / 100 : null;
      resolve({ code: code ?? 1, stdout: stdout.replace(/CERTFLOW_BENCH_STAT.*\n?/, ''), stderr, cpuS });
    });
  });
}

/**
 * Registers the account and gets certbot's own renewal configuration with one real `certonly` for a template
 * name, then writes one lineage per entry of `lineages` in that format. Returns how long the template took.
 */
export async function prepareCertbotLineages(
  s: CertbotSetup,
  lineages: Lineage[],
  templateName: string,
): Promise<{ templateMs: number }> {
  const p = certbotPaths(s.dir);
  await mkdir(s.dir, { recursive: true });
  await writeFile(p.caFile, s.caBundlePem);
  const hooks = await writeHooks(s);
  await writeFile(
    path.join(p.hooks, 'sites.tsv'),
    lineages
      .map((l) => {
        const f = s.siteFiles(l.dnsName);
        return `${l.dnsName}\t${f.certPath}\t${f.keyPath}\n`;
      })
      .join(''),
  );
  const started = performance.now();
  const first = await runCertbot(s, [
    'certonly',
    '--agree-tos',
    '-m',
    'ops@example.test',
    '--server',
    s.directoryUrl,
    '--manual',
    '--preferred-challenges',
    'dns',
    '--manual-auth-hook',
    hooks.auth,
    '--manual-cleanup-hook',
    hooks.cleanup,
    '--key-type',
    'ecdsa',
    '-d',
    templateName,
  ]);
  const templateMs = performance.now() - started;
  if (first.code !== 0)
    throw new Error(
      `certbot certonly for the template lineage failed (${first.code}): ${first.stderr.slice(-2000)}`,
    );
  const templateConf = await readFile(path.join(p.config, 'renewal', `${templateName}.conf`), 'utf8');
  for (const l of lineages) {
    const archive = path.join(p.config, 'archive', l.dnsName);
    const live = path.join(p.config, 'live', l.dnsName);
    await mkdir(archive, { recursive: true });
    await mkdir(live, { recursive: true });
    const files: Record<string, string> = {
      cert: l.chainPem[0]!,
      chain: l.chainPem.slice(1).join(''),
      fullchain: l.chainPem.join(''),
      privkey: l.keyPem,
    };
    for (const [kind, pem] of Object.entries(files)) {
      await writeFile(path.join(archive, `${kind}1.pem`), pem, { mode: kind === 'privkey' ? 0o600 : 0o644 });
      await symlink(
        path.join('..', '..', 'archive', l.dnsName, `${kind}1.pem`),
        path.join(live, `${kind}.pem`),
      );
    }
    await writeFile(
      path.join(p.config, 'renewal', `${l.dnsName}.conf`),
      templateConf.split(templateName).join(l.dnsName),
    );
  }
  for (const d of ['archive', 'live'])
    await rm(path.join(p.config, d, templateName), { recursive: true, force: true });
  await rm(path.join(p.config, 'renewal', `${templateName}.conf`), { force: true });
  const confs = (await readdir(path.join(p.config, 'renewal'))).filter((f) => f.endsWith('.conf'));
  if (confs.length !== lineages.length)
    throw new Error(`expected ${lineages.length} certbot lineages, found ${confs.length}`);
  return { templateMs };
}

/** `certbot renew --force-renewal` over every lineage with the deploy hook; returns when certbot exits. */
export async function certbotRenewAll(s: CertbotSetup): Promise<CertbotRun> {
  const p = certbotPaths(s.dir);
  const hooks = path.join(p.hooks, 'deploy.sh');
  const post = s.reload === 'post' ? ['--post-hook', path.join(p.hooks, 'post.sh')] : [];
  await rm(p.deployLog, { force: true });
  const epochToPerf = Date.now() - performance.now();
  const started = performance.now();
  const r = await runCertbot(s, [
    'renew',
    '--force-renewal',
    '--no-random-sleep-on-renew',
    '--deploy-hook',
    hooks,
    ...post,
  ]);
  const wallMs = performance.now() - started;
  const deployedAt = new Map<string, number>();
  const log = await readFile(p.deployLog, 'utf8').catch(() => '');
  for (const line of log.split('\n')) {
    const [ms, name] = line.trim().split(' ');
    if (ms && name) deployedAt.set(name, Number(ms) - epochToPerf);
  }
  return { exitCode: r.code, wallMs, cpuS: r.cpuS, deployedAt, stderrTail: r.stderr.slice(-3000) };
}

/** The certificate certbot's live directory now points to (leaf first). */
export async function liveChain(s: CertbotSetup, dnsName: string): Promise<string> {
  return readFile(path.join(certbotPaths(s.dir).config, 'live', dnsName, 'cert.pem'), 'utf8');
}
