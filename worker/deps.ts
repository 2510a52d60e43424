/**
 * Turns the validated configuration into the activities' dependencies: vaults, issuers (with their trust
 * anchors), binding targets, notifiers, metrics. Secrets are resolved here, from their references, and handed
 * straight to the clients. Every problem (unreadable file, unset secret variable, a value an adapter refuses) is
 * collected and thrown as one ConfigError, so an operator fixes them all in one go.
 * Adapters are loaded by kind, here, once, when the configuration uses them (deps-*.ts): a worker with no Azure
 * resource never loads the Azure SDK, one with no SSH host never loads ssh2 (start-up time).
 */
import type { ActivityDeps } from '../activities/index';
import type { CertificateOrders } from '../activities/bindings/app-service-certificate-orders';
import type { Issuer, Vault } from '../activities/types';
import type { CertflowConfig } from './config';
import { createCredentials } from './deps-azure';
import { buildBindings, buildCertificateOrders } from './deps-bindings';
import { createCollector } from './deps-collector';
import { buildIssuer } from './deps-issuers';
import { buildChat, buildEmail } from './deps-notify';
import { buildVaults } from './deps-vaults';
import type { CertflowLogger } from './logger';
import type { MetricsSink } from './metrics';
import { lifecycleSettingsFor } from './lifecycle-settings';

export interface BuildDepsOptions {
  metrics?: MetricsSink;
  logger?: CertflowLogger;
  env?: NodeJS.ProcessEnv;
}

export type BuiltDeps = ActivityDeps & {
  /** Releases pooled connections (SMTP) and listeners (HTTP-01). */
  close(): Promise<void>;
};

/** The configured vaults only (no issuer, binding or mail secrets needed): for the CLI's `--config`. */
export async function openVaults(
  config: CertflowConfig,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ReadonlyMap<string, Vault>> {
  const c = createCollector(env);
  const vaults = await buildVaults(config.vaults, c, createCredentials(c));
  c.throwIfAny('vaults cannot be opened');
  return vaults;
}

/** The configured App Service Certificate orders only (for the CLI's `audit --config`); null when none. */
export async function openCertificateOrders(
  config: CertflowConfig,
  env: NodeJS.ProcessEnv = process.env,
): Promise<CertificateOrders | null> {
  const c = createCollector(env);
  const orders = await buildCertificateOrders(config, c, createCredentials(c));
  c.throwIfAny('certificate orders cannot be opened');
  return orders ?? null;
}

export async function buildDeps(config: CertflowConfig, opts: BuildDepsOptions = {}): Promise<BuiltDeps> {
  const c = createCollector(opts.env ?? process.env);
  const credentials = createCredentials(c);
  const closers: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const f of closers.splice(0)) await f();
  };

  const vaults = await buildVaults(config.vaults, c, credentials);
  const issuers = new Map<string, Issuer>();
  const trustAnchors = new Map<string, string[]>();
  const allowedNames = new Map<string, string[]>();
  const ctx = { c, credentials, vaults, closers, ...(opts.logger ? { logger: opts.logger } : {}) };
  for (const [i, iss] of config.issuers.entries()) {
    const built = await buildIssuer(iss, `issuers[${i}]`, ctx);
    if (!built) continue;
    issuers.set(iss.name, built.issuer);
    if (built.trustAnchors.length) trustAnchors.set(iss.name, built.trustAnchors);
    if (built.allowedNames) allowedNames.set(iss.name, built.allowedNames);
  }
  const certificateOrders = await buildCertificateOrders(config, c, credentials);
  // the orders are a vault of their own too (observe mode): their certificates get lifecycles like any other
  const allVaults = new Map<string, Vault>(vaults);
  if (certificateOrders && config.certificateOrders) {
    const name = config.certificateOrders.name;
    if (vaults.has(name))
      c.issues.push({
        path: 'certificateOrders.name',
        message: `"${name}" is also a configured vault: expected a name of its own for the orders' vault`,
      });
    else {
      const { createAppServiceCertificatesVault } =
        await import('../activities/vault/app-service-certificates');
      allVaults.set(name, createAppServiceCertificatesVault({ name, orders: certificateOrders }));
    }
  }
  const bindings = await buildBindings(config, c, credentials, closers, certificateOrders);
  const notifier = await buildEmail(config, c);
  if (notifier) closers.push(async () => notifier.close());
  const chat = await buildChat(config, c);

  try {
    c.throwIfAny('configuration cannot be used');
  } catch (err) {
    await close();
    throw err;
  }
  return {
    vaults: allVaults,
    issuers,
    bindings,
    ...(certificateOrders ? { certificateOrders } : {}),
    notifier,
    chat,
    ...(config.notify.email?.defaultRecipients
      ? { defaultRecipients: config.notify.email.defaultRecipients }
      : {}),
    trustAnchorsPem: (issuer) => trustAnchors.get(issuer),
    allowedNames: (issuer) => allowedNames.get(issuer),
    // `certflow enroll` asks a worker first: the lifecycle it starts carries this worker's configuration
    lifecycleSettings: (certificateId) => lifecycleSettingsFor(config, certificateId),
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
    close,
  };
}
