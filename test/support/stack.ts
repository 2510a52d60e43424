/**
 * The whole local stack of real servers that a renewal touches, wired into Certflow's activities:
 * the Key Vault-compatible server (driven by the real Azure SDK), pebble + challtestsrv (ACME, real DNS-01),
 * nginx serving the certificate, and an SMTP server. Used by the end-to-end tests (`npm start` uses the local vault and dev CA instead).
 */
import { createActivities, type Activities, type ActivityDeps } from '../../activities/index';
import type { FileBindingTarget } from '../../activities/bindings/file-reload';
import { createEmailNotifier, type EmailNotifier } from '../../activities/notify/email';
import { createAzureKeyVault } from '../../activities/vault/azure-key-vault';
import type { Vault } from '../../activities/types';
import { startTestKeyVault, type TestKeyVault } from './keyvault';
import { startNginx, type RunningNginx } from './nginx';
import { pebbleIssuer, startPebble, type Pebble } from './pebble';
import { startSmtpSink, type SmtpSink } from './smtp';

export interface LocalStackOptions {
  /** Certificate name in the vault (the id is `<vault>/<name>`). */
  certName?: string;
  /** Recipient tag of the demo certificate. */
  recipients?: string;
  /** Lifetime of certificates pebble issues; short values make renewals come by themselves. */
  pebbleValiditySeconds?: number;
  /** Lifetime of the seeded first version. */
  seedDays?: number;
  seedMinutes?: number;
  /** Key Vault lifetime action for the demo certificate (percentage of lifetime). */
  lifetimePercentage?: number;
  vaultDataDir?: string;
  /** More consumers of the certificate than the nginx file target (e.g. Azure targets over ARM fakes). */
  bindings?: ActivityDeps['bindings'];
}

export interface LocalStack {
  certificateId: string;
  dnsName: string;
  issuerName: string;
  kv: TestKeyVault;
  vault: Vault;
  pebble: Pebble;
  pebbleRootPem: string;
  nginx: RunningNginx;
  smtp: SmtpSink;
  notifier: EmailNotifier;
  binding: FileBindingTarget;
  activities: Activities;
  stop(): Promise<void>;
}

export async function startLocalStack(opts: LocalStackOptions = {}): Promise<LocalStack> {
  const stops: Array<() => Promise<void> | void> = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s();
  };
  try {
    const certName = opts.certName ?? 'site';
    const dnsName = `${certName}.example.test`;
    const kv = await startTestKeyVault({ dataDir: opts.vaultDataDir });
    stops.push(() => kv.stop());
    const pebble = await startPebble({ certificateValidityPeriodSeconds: opts.pebbleValiditySeconds });
    stops.push(() => pebble.stop());
    const pebbleRootPem = await pebble.rootsPem();

    const vault = createAzureKeyVault({
      name: kv.vaultName,
      url: kv.url,
      credential: kv.credential,
      clientOptions: kv.clientOptions,
    });
    const certificateId = `${kv.vaultName}/${certName}`;
    // a persistent vault that already holds the certificate (second `npm start`) keeps it
    const existing = opts.vaultDataDir ? await vault.describe(certName).catch(() => null) : null;
    const version =
      existing?.version ??
      (
        await kv.seed(certName, {
          days: opts.seedDays,
          minutes: opts.seedMinutes,
          tags: { Recipient: opts.recipients ?? 'ops@example.test; owner@example.test' },
          policy: opts.lifetimePercentage
            ? { lifetimeActions: [{ action: 'EmailContacts', lifetimePercentage: opts.lifetimePercentage }] }
            : undefined,
        })
      ).version;
    const first = await vault.exportSecret(certName, version);
    const nginx = await startNginx({
      certPem: first.chainPem.join('\n'),
      keyPem: first.keyPem,
      serverNames: [dnsName],
    });
    stops.push(() => nginx.stop());
    const smtp = await startSmtpSink();
    stops.push(() => smtp.stop());

    const issuerName = 'pebble';
    const issuer = pebbleIssuer(pebble, issuerName);
    const binding: FileBindingTarget = {
      name: 'nginx',
      certPath: nginx.certPath,
      keyPath: nginx.keyPath,
      validate: { command: nginx.command, args: nginx.testArgs },
      reload: { command: nginx.command, args: nginx.reloadArgs },
      probe: { host: '127.0.0.1', port: nginx.port, servername: dnsName, caPem: pebbleRootPem },
    };
    const notifier = createEmailNotifier({
      transport: { host: '127.0.0.1', port: smtp.port, secure: false },
      from: 'Certflow <certflow@example.test>',
    });
    stops.push(() => notifier.close());
    const activities = createActivities({
      vaults: new Map([[kv.vaultName, vault]]),
      issuers: new Map([[issuerName, issuer]]),
      fileBindings: (id) => (id === certificateId ? [binding] : []),
      ...(opts.bindings ? { bindings: opts.bindings } : {}),
      notifier,
      trustAnchorsPem: (name) => (name === issuerName ? [pebbleRootPem] : undefined),
    });
    return {
      certificateId,
      dnsName,
      issuerName,
      kv,
      vault,
      pebble,
      pebbleRootPem,
      nginx,
      smtp,
      notifier,
      binding,
      activities,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
