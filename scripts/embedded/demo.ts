/**
 * What the embedded start sets up in its data directory: the local vault's encryption key (made once, 0600),
 * the worker's configuration (`certflow.json`: a local vault, the dev CA, a files binding for the demo site,
 * e-mail to the sink), and the demo certificates in the vault (each with a policy and a Recipient tag).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SKEW_MS } from '../../activities/issuers/dev-ca';
import type { CertificatePolicySnapshot } from '../../activities/types';
import { createLocalVault, loadEncryptionKey, type LocalVault } from '../../activities/vault/local';
import { temporalAddressOf, type EmbeddedOptions } from './options';

export const VAULT = 'local';
export const ISSUER = 'dev-ca';
export const TASK_QUEUE = 'certflow';
/** The worker reads the vault key from this variable (the configuration holds only the reference). */
export const KEY_VARIABLE = 'CERTFLOW_LOCAL_VAULT_KEY';
/** The demo site's certificate; the others renew and mail, without a consumer. */
export const SITE = 'demo-site';
const SITE_NAME = 'localhost';

export interface DemoCertificate {
  name: string;
  dnsName: string;
  recipient: string;
  /** Renew at this share of the lifetime: staggered, so renewals do not all come at once. */
  lifetimePercentage: number;
}

export const DEMO_CERTIFICATES: DemoCertificate[] = [
  { name: SITE, dnsName: SITE_NAME, recipient: 'site-owner@certflow.test', lifetimePercentage: 50 },
  {
    name: 'demo-api',
    dnsName: 'api.certflow.test',
    recipient: 'api-team@certflow.test',
    lifetimePercentage: 60,
  },
  {
    name: 'demo-intranet',
    dnsName: 'intranet.certflow.test',
    recipient: 'it-desk@certflow.test',
    lifetimePercentage: 70,
  },
];

/**
 * When each demo certificate renews, as minutes:seconds after it was issued. The dev CA back-dates notBefore by a
 * minute (SKEW_MS), so a certificate issued for N minutes is valid N + 1 and the percentage applies to that.
 */
export function demoRenewalOffsets(validityMinutes: number): Array<{ name: string; after: string }> {
  const validMs = validityMinutes * 60_000 + SKEW_MS;
  return DEMO_CERTIFICATES.map((c) => {
    const s = Math.round(((validMs * c.lifetimePercentage) / 100 - SKEW_MS) / 1000);
    return { name: c.name, after: `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}` };
  });
}

export interface DataLayout {
  dir: string;
  keyFile: string;
  configFile: string;
  vaultDir: string;
  caDir: string;
  rootFile: string;
  mailDir: string;
  logDir: string;
  siteDir: string;
  /** What the demo site serves: the files binding writes them. */
  siteCert: string;
  siteKey: string;
  marker: string;
}

export function layout(dataDir: string): DataLayout {
  const at = (p: string) => path.join(dataDir, p);
  return {
    dir: dataDir,
    keyFile: at('vault.key'),
    configFile: at('certflow.json'),
    vaultDir: at('vault'),
    caDir: at('dev-ca'),
    rootFile: at('dev-ca-root.pem'),
    mailDir: at('mail'),
    logDir: at('logs'),
    siteDir: at('demo-site'),
    siteCert: at('demo-site/site.pem'),
    siteKey: at('demo-site/site.key'),
    marker: at('embedded.json'),
  };
}

/**
 * Makes the directories; refuses a directory that holds state of something else (an earlier `npm start` that
 * used other servers), since its workflows would point at vaults this one does not have.
 */
export function prepareDataDir(d: DataLayout): void {
  const fresh = !existsSync(d.dir) || !existsSync(path.join(d.dir, 'temporal.db'));
  if (!fresh && !existsSync(d.marker))
    throw new Error(
      `${d.dir} holds state this start did not make (an earlier version's?): move it away or delete it, or pass --data-dir`,
    );
  for (const dir of [d.dir, d.mailDir, d.logDir, d.siteDir]) mkdirSync(dir, { recursive: true });
  writeFileSync(d.marker, `${JSON.stringify({ madeBy: 'certflow npm start', version: 1 })}\n`);
}

/** The vault key: read from its file, or made (32 random bytes, base64) and saved 0600 on the first start. */
export function vaultKey(d: DataLayout): string {
  if (!existsSync(d.keyFile))
    writeFileSync(d.keyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  const key = readFileSync(d.keyFile, 'utf8').trim();
  loadEncryptionKey({ [d.keyFile]: key }, d.keyFile); // a damaged file says so now, not in the worker
  return key;
}

export interface SiteProcess {
  /** The validate and reload commands of the files binding. */
  check: { command: string; args: string[] };
  reload: { command: string; args: string[] };
}

export function workerConfig(o: EmbeddedOptions, d: DataLayout, site: SiteProcess): unknown {
  return {
    temporal: { address: temporalAddressOf(o), namespace: 'default', connectTimeoutSeconds: 30 },
    taskQueue: TASK_QUEUE,
    vaults: [{ kind: 'local', name: VAULT, dir: d.vaultDir, encryptionKey: { env: KEY_VARIABLE } }],
    issuers: [
      {
        kind: 'dev-ca',
        name: ISSUER,
        dir: d.caDir,
        validity: { minutes: o.validityMinutes },
        encryptionKey: { env: KEY_VARIABLE },
      },
    ],
    bindings: [
      {
        kind: 'files',
        name: 'demo-site',
        certificates: { ids: [`${VAULT}/${SITE}`] },
        certPath: d.siteCert,
        keyPath: d.siteKey,
        validate: site.check,
        reload: site.reload,
        probe: { host: '127.0.0.1', port: o.ports.demo, servername: SITE_NAME, caFile: d.rootFile },
      },
    ],
    defaults: { issuer: ISSUER },
    notify: { email: { host: '127.0.0.1', port: o.ports.smtp, from: 'Certflow <certflow@certflow.test>' } },
    http: { host: '127.0.0.1', port: o.ports.worker },
    shutdownGraceSeconds: 3,
    log: { level: 'info', format: 'json' },
    dataDir: path.join(d.dir, 'worker'),
  };
}

/** The key's bytes, as the worker will read them from KEY_VARIABLE. */
export const keyBytes = (key: string): Buffer => loadEncryptionKey({ [KEY_VARIABLE]: key }, KEY_VARIABLE);

export function openVault(d: DataLayout, key: string): LocalVault {
  return createLocalVault({ name: VAULT, dir: d.vaultDir, encryptionKey: keyBytes(key) });
}

/** Creates the demo certificates that are not in the vault yet; returns the names it created. */
export async function seedVault(vault: LocalVault): Promise<string[]> {
  const have = new Set<string>();
  for await (const c of vault.list()) have.add(c.name);
  const created: string[] = [];
  for (const c of DEMO_CERTIFICATES) {
    if (have.has(c.name)) continue;
    const policy: CertificatePolicySnapshot = {
      subject: `CN=${c.dnsName}`,
      dnsNames: [c.dnsName],
      issuerName: 'Unknown',
      key: { keyType: 'EC', curve: 'P-256', reuseKey: false, exportable: true },
      lifetimePercentage: c.lifetimePercentage,
    };
    await vault.create(c.name, policy, { Recipient: c.recipient });
    created.push(c.name);
  }
  return created;
}
