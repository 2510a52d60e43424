/**
 * The configured binding targets (files + reload, App Service, Application Gateway, Front Door, API Management,
 * App Service Certificate orders, webhook, files and scripts on SSH hosts), built once, and the selection of the
 * targets that consume a certificate (by id, id pattern or tag) for each sync.
 * Each kind's adapter is loaded at start when a binding of that kind is configured (the Azure SDK clients, ssh2):
 * a worker pays the load of what it uses only.
 */
import type { BindingTarget } from '../activities/types';
import type { AppServiceTargetOptions } from '../activities/bindings/app-service';
import type { CertificateOrders } from '../activities/bindings/app-service-certificate-orders';
import { createFileReloadTarget, type FileBindingTarget } from '../activities/bindings/file-reload';
import type { SshHost, SshPool } from '../activities/bindings/ssh-connection';
import { selectHosts } from './hosts-config';
import { parseCertificateId } from '../activities/ids';
import { selectBindings, type BindingConfig, type CertflowConfig } from './config';
import type { SelectorConfig } from './config-schema';
import { ARM, type Credentials } from './deps-azure';
import type { Collector } from './deps-collector';

type FilesConfig = Extract<BindingConfig, { kind: 'files' }>;
type AppServiceConfig = Extract<BindingConfig, { kind: 'app-service' }>;
type SshFilesConfig = Extract<BindingConfig, { kind: 'ssh-files' }>;
type RemoteCommandConfig = Extract<BindingConfig, { kind: 'remote-command' }>;
type ArmConsumerConfig = Extract<BindingConfig, { kind: 'app-gateway' | 'front-door' | 'api-management' }>;
type OrderTargetConfig = Extract<BindingConfig, { kind: 'app-service-certificate-order' }>;

/** What the `files` and `ssh-files` bindings share: the files, their mode and owner, the commands. */
function fileSettings(b: FilesConfig | SshFilesConfig): Omit<FileBindingTarget, 'probe' | 'host'> {
  return {
    name: b.name,
    ...(b.combinedPath ? { combinedPath: b.combinedPath } : { certPath: b.certPath, keyPath: b.keyPath }),
    ...(b.chainPath ? { chainPath: b.chainPath } : {}),
    ...(b.pkcs12Path ? { pkcs12Path: b.pkcs12Path } : {}),
    ...(b.pkcs12PasswordPath ? { pkcs12PasswordPath: b.pkcs12PasswordPath } : {}),
    ...(b.mode ? { fileMode: parseInt(b.mode, 8) } : {}),
    ...(b.owner ? { owner: b.owner } : {}),
    ...(b.keepPrevious !== undefined ? { keepPrevious: b.keepPrevious } : {}),
    validate: b.validate,
    reload: b.reload,
  };
}

/** The file target's settings as the adapter takes them. */
export function fileTarget(b: FilesConfig, path: string, c: Collector): FileBindingTarget {
  return {
    ...fileSettings(b),
    ...(b.probe
      ? {
          probe: {
            host: b.probe.host,
            port: b.probe.port,
            servername: b.probe.servername,
            settleMs: b.probe.settleSeconds * 1000,
            reloadMs: b.probe.reloadSeconds * 1000,
            ...(b.probe.caFile ? { caPem: c.file(b.probe.caFile, `${path}.probe.caFile`) } : {}),
          },
        }
      : {}),
  };
}

const hostKey = (h: string) => h.toLowerCase().replace(/\.$/, '');

/** The App Service live probe as the adapter takes it: where to connect for each re-bound host name. */
export function appServiceProbe(
  b: Pick<AppServiceConfig, 'probe'>,
  path: string,
  c: Collector,
): Pick<AppServiceTargetOptions, 'probe' | 'probeSettleMs'> {
  const p = b.probe;
  if (!p) return {};
  const caPem = p.caFile ? c.file(p.caFile, `${path}.probe.caFile`) : undefined;
  const only = p.hostNames && new Set(p.hostNames.map(hostKey));
  return {
    probe: (hostName) =>
      // a wildcard binding has no name to connect to or to send as SNI
      hostName.startsWith('*.') || (only && !only.has(hostKey(hostName)))
        ? undefined
        : { host: p.address ?? hostName, port: p.port, servername: hostName, ...(caPem ? { caPem } : {}) },
    probeSettleMs: p.settleSeconds * 1000,
  };
}

/** The vaults a selector can pick certificates from: named ones (ids, a pattern's literal vault), else all. */
function vaultsOf(s: SelectorConfig, all: string[]): string[] {
  if (s.tag) return all;
  const named = new Set((s.ids ?? []).map((id) => id.split('/')[0]!));
  if (s.pattern !== undefined) {
    const vault = s.pattern.split('/')[0]!;
    if (/[*?]/.test(vault)) return all;
    named.add(vault);
  }
  return all.filter((v) => named.has(v));
}

/** The ARM id of each vault a binding imports from; a vault it selects without `resourceId` is a config issue. */
function vaultResourceIds(
  b: AppServiceConfig | ArmConsumerConfig,
  path: string,
  config: CertflowConfig,
  c: Collector,
): (certificateId: string) => string {
  const azure = config.vaults.flatMap((v, i) => (v.kind === 'azure' ? [{ v, i }] : []));
  const resourceIds = new Map(azure.flatMap(({ v }) => (v.resourceId ? [[v.name, v.resourceId]] : [])));
  for (const { v, i } of azure)
    if (!v.resourceId && vaultsOf(b.certificates, [v.name]).length)
      c.issues.push({
        path: `vaults[${i}].resourceId`,
        message: `missing: expected the vault's ARM id (/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.KeyVault/vaults/<name>): ${path} (${b.kind}) imports certificates from it`,
      });
  return (certificateId) => {
    const { vault } = parseCertificateId(certificateId);
    const id = resourceIds.get(vault);
    // configuration checks make this unreachable for configured vaults
    if (!id) throw new Error(`vault "${vault}" has no resourceId: ${b.kind} cannot import from it`);
    return id;
  };
}

async function appServiceTarget(
  b: AppServiceConfig,
  path: string,
  config: CertflowConfig,
  c: Collector,
  credentials: Credentials,
): Promise<BindingTarget | undefined> {
  const keyVaultResourceId = vaultResourceIds(b, path, config, c);
  const probe = appServiceProbe(b, path, c);
  const credential = await credentials.get(b.credential, b.cloud, `${path}.credential`);
  if (!credential) return undefined;
  const { createAppServiceTarget } = await import('../activities/bindings/app-service');
  return c.build(path, () =>
    createAppServiceTarget({
      name: b.name,
      credential,
      subscriptions: b.subscriptions,
      keyVaultResourceId,
      clientOptions: { cloudSetting: ARM[b.cloud].appServiceCloud },
      ...probe,
    }),
  );
}

/** Application Gateway, Front Door, API Management: the same settings, one SDK client each. */
async function armConsumerTarget(
  b: ArmConsumerConfig,
  path: string,
  config: CertflowConfig,
  c: Collector,
  credentials: Credentials,
): Promise<BindingTarget | undefined> {
  const probe = appServiceProbe(b, path, c);
  const keyVaultResourceId = b.kind === 'front-door' ? vaultResourceIds(b, path, config, c) : undefined;
  const credential = await credentials.get(b.credential, b.cloud, `${path}.credential`);
  if (!credential) return undefined;
  const endpoint = ARM[b.cloud].endpoint;
  const common = {
    name: b.name,
    credential,
    subscriptions: b.subscriptions,
    clientOptions: { $host: endpoint, endpoint, credentialScopes: [`${endpoint}/.default`] },
    ...(b.pollIntervalSeconds ? { pollIntervalMs: b.pollIntervalSeconds * 1000 } : {}),
    ...probe,
  };
  switch (b.kind) {
    case 'app-gateway': {
      const { createAppGatewayTarget } = await import('../activities/bindings/app-gateway');
      return c.build(path, () => createAppGatewayTarget(common));
    }
    case 'api-management': {
      const { createApiManagementTarget } = await import('../activities/bindings/api-management');
      return c.build(path, () => createApiManagementTarget(common));
    }
    case 'front-door': {
      const { createFrontDoorTarget } = await import('../activities/bindings/front-door');
      return c.build(path, () =>
        createFrontDoorTarget({ ...common, keyVaultResourceId: keyVaultResourceId! }),
      );
    }
  }
}

/** The top-level `certificateOrders`: App Service Certificate orders to discover, show and renew. */
export async function buildCertificateOrders(
  config: CertflowConfig,
  c: Collector,
  credentials: Credentials,
): Promise<CertificateOrders | undefined> {
  const o = config.certificateOrders;
  if (!o) return undefined;
  const credential = await credentials.get(o.credential, o.cloud, 'certificateOrders.credential');
  if (!credential) return undefined;
  const { createCertificateOrders } = await import('../activities/bindings/app-service-certificate-orders');
  return c.build('certificateOrders', () =>
    createCertificateOrders({
      credential,
      subscriptions: o.subscriptions,
      clientOptions: { cloudSetting: ARM[o.cloud].appServiceCloud },
    }),
  );
}

async function orderTarget(
  b: OrderTargetConfig,
  path: string,
  c: Collector,
  credentials: Credentials,
  orders: CertificateOrders | undefined,
): Promise<BindingTarget | undefined> {
  const probe = appServiceProbe(b, path, c);
  const credential = await credentials.get(b.credential, b.cloud, `${path}.credential`);
  if (!orders) {
    c.issues.push({
      path: 'certificateOrders',
      message: `missing: expected { subscriptions, credential? } of the App Service Certificate orders: ${path} (app-service-certificate-order) re-binds their apps`,
    });
    return undefined;
  }
  if (!credential) return undefined;
  const { createCertificateOrderTarget } =
    await import('../activities/bindings/app-service-certificate-orders');
  return c.build(path, () =>
    createCertificateOrderTarget({
      name: b.name,
      orders,
      credential,
      subscriptions: b.subscriptions,
      clientOptions: { cloudSetting: ARM[b.cloud].appServiceCloud },
      ...probe,
    }),
  );
}

interface SshContext {
  hosts: Map<string, SshHost>;
  pool: SshPool;
}

/**
 * The SSH hosts as the connection takes them, key and passphrase resolved from their references, and the pool
 * of their connections; built once. Null when no host is configured (ssh2 is not loaded then).
 */
async function sshContext(config: CertflowConfig, c: Collector): Promise<SshContext | null> {
  if (!config.hosts.length) return null;
  const { checkPrivateKey, parseHostKeys, SshPool } = await import('../activities/bindings/ssh-connection');
  const out = new Map<string, SshHost>();
  config.hosts.forEach((h, i) => {
    const path = `hosts[${i}]`;
    const privateKey = c.secret(h.privateKey, `${path}.privateKey`);
    const passphrase = h.passphrase ? c.secret(h.passphrase, `${path}.passphrase`) : undefined;
    const pinned = c.build(`${path}.hostKeys`, () => (parseHostKeys(h.hostKeys), true));
    const usable = privateKey && c.build(`${path}.privateKey`, () => checkPrivateKey(privateKey, passphrase));
    if (!usable || !pinned) return;
    out.set(h.name, {
      name: h.name,
      address: h.address,
      port: h.port,
      user: h.user,
      privateKey,
      ...(passphrase ? { passphrase } : {}),
      hostKeys: h.hostKeys,
      connectTimeoutMs: h.connectTimeoutSeconds * 1000,
    });
  });
  return { hosts: out, pool: new SshPool() };
}

const hostsOf = (b: SshFilesConfig | RemoteCommandConfig, config: CertflowConfig, ssh: SshContext | null) =>
  ssh ? selectHosts(config.hosts, b.hosts).flatMap((h) => ssh.hosts.get(h.name) ?? []) : [];

/** One file target per selected host: the whole file algorithm over SFTP and exec, probed at the host. */
async function sshFileTargets(
  b: SshFilesConfig,
  path: string,
  config: CertflowConfig,
  c: Collector,
  ssh: SshContext | null,
): Promise<BindingTarget[]> {
  const caPem = b.probe?.caFile ? c.file(b.probe.caFile, `${path}.probe.caFile`) : undefined;
  const hosts = hostsOf(b, config, ssh);
  if (!ssh || !hosts.length) return [];
  const { sshFileHost } = await import('../activities/bindings/ssh-file-host');
  return hosts.map((host) =>
    createFileReloadTarget({
      ...fileSettings(b),
      host: sshFileHost(host, ssh.pool),
      ...(b.probe
        ? {
            probe: {
              host: b.probe.address ?? host.address,
              port: b.probe.port,
              servername: b.probe.servername,
              settleMs: b.probe.settleSeconds * 1000,
              reloadMs: b.probe.reloadSeconds * 1000,
              ...(caPem ? { caPem } : {}),
            },
          }
        : {}),
    }),
  );
}

async function remoteCommandTarget(
  b: RemoteCommandConfig,
  path: string,
  config: CertflowConfig,
  c: Collector,
  ssh: SshContext | null,
): Promise<BindingTarget | undefined> {
  const caPem = b.probe?.caFile ? c.file(b.probe.caFile, `${path}.probe.caFile`) : undefined;
  const hosts = hostsOf(b, config, ssh);
  // the host's own problem (a secret, a pin) is reported under hosts[]
  if (!ssh || !hosts.length) return undefined;
  const { createRemoteCommandTarget } = await import('../activities/bindings/remote-command');
  return c.build(path, () =>
    createRemoteCommandTarget({
      name: b.name,
      hosts,
      command: b.command,
      timeoutMs: b.timeoutSeconds * 1000,
      ...(b.hostNames ? { hostNames: b.hostNames } : {}),
      ...(b.removePreviousAfterDays !== undefined
        ? { removePreviousAfterDays: b.removePreviousAfterDays }
        : {}),
      ...(b.probe
        ? {
            probe: {
              port: b.probe.port,
              ...(b.probe.address ? { address: b.probe.address } : {}),
              ...(caPem ? { caPem } : {}),
              settleMs: b.probe.settleSeconds * 1000,
            },
          }
        : {}),
      maxHosts: b.maxHosts,
      pool: ssh.pool,
    }),
  );
}

async function buildTarget(
  b: BindingConfig,
  path: string,
  config: CertflowConfig,
  c: Collector,
  credentials: Credentials,
  ssh: SshContext | null,
  orders: CertificateOrders | undefined,
): Promise<BindingTarget | BindingTarget[] | undefined> {
  switch (b.kind) {
    case 'ssh-files':
      return sshFileTargets(b, path, config, c, ssh);
    case 'remote-command':
      return remoteCommandTarget(b, path, config, c, ssh);
    case 'app-gateway':
    case 'front-door':
    case 'api-management':
      return armConsumerTarget(b, path, config, c, credentials);
    case 'app-service-certificate-order':
      return orderTarget(b, path, c, credentials, orders);
    case 'files':
      return createFileReloadTarget(fileTarget(b, path, c));
    case 'app-service':
      return appServiceTarget(b, path, config, c, credentials);
    case 'webhook': {
      const secret = c.secret(b.secret, `${path}.secret`);
      if (!secret) return undefined;
      const { createWebhookTarget } = await import('../activities/bindings/webhook');
      return c.build(path, () =>
        createWebhookTarget({
          name: b.name,
          url: b.url,
          secret,
          ...(b.allowHttp !== undefined ? { allowHttp: b.allowHttp } : {}),
        }),
      );
    }
  }
}

/**
 * Builds every target now; the returned function picks those that consume a certificate. An `ssh-files` binding
 * is one target per host. SSH connections are pooled across bindings and closed by `closers` (worker shutdown).
 */
export async function buildBindings(
  config: CertflowConfig,
  c: Collector,
  credentials: Credentials,
  closers?: Array<() => Promise<void>>,
  orders?: CertificateOrders,
): Promise<(certificateId: string, tags: Record<string, string>) => BindingTarget[]> {
  const ssh = await sshContext(config, c);
  if (ssh) closers?.push(() => ssh.pool.close());
  const targets = new Map<string, BindingTarget[]>();
  // one at a time: the problems are reported in the configuration's order
  for (const [i, b] of config.bindings.entries()) {
    const target = await buildTarget(b, `bindings[${i}]`, config, c, credentials, ssh, orders);
    if (target) targets.set(b.name, [target].flat());
  }
  return (certificateId, tags) =>
    selectBindings(config, certificateId, tags).flatMap((b) => targets.get(b.name) ?? []);
}
