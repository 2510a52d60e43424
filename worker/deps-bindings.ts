/**
 * The configured binding targets (files + reload, App Service, webhook), built once, and the selection of the
 * targets that consume a certificate (by id, id pattern or tag) for each sync.
 */
import type { BindingTarget } from '../activities/types';
import { createAppServiceTarget, type AppServiceTargetOptions } from '../activities/bindings/app-service';
import { createFileReloadTarget, type FileBindingTarget } from '../activities/bindings/file-reload';
import { createWebhookTarget } from '../activities/bindings/webhook';
import { parseCertificateId } from '../activities/ids';
import { selectBindings, type BindingConfig, type CertflowConfig } from './config';
import type { SelectorConfig } from './config-schema';
import { ARM, type Credentials } from './deps-azure';
import type { Collector } from './deps-collector';

type FilesConfig = Extract<BindingConfig, { kind: 'files' }>;
type AppServiceConfig = Extract<BindingConfig, { kind: 'app-service' }>;

/** The file target's settings as the adapter takes them. */
export function fileTarget(b: FilesConfig, path: string, c: Collector): FileBindingTarget {
  return {
    name: b.name,
    ...(b.combinedPath ? { combinedPath: b.combinedPath } : { certPath: b.certPath, keyPath: b.keyPath }),
    ...(b.mode ? { fileMode: parseInt(b.mode, 8) } : {}),
    ...(b.owner ? { owner: b.owner } : {}),
    ...(b.keepPrevious !== undefined ? { keepPrevious: b.keepPrevious } : {}),
    validate: b.validate,
    reload: b.reload,
    ...(b.probe
      ? {
          probe: {
            host: b.probe.host,
            port: b.probe.port,
            servername: b.probe.servername,
            ...(b.probe.caFile ? { caPem: c.file(b.probe.caFile, `${path}.probe.caFile`) } : {}),
          },
        }
      : {}),
  };
}

const hostKey = (h: string) => h.toLowerCase().replace(/\.$/, '');

/** The App Service live probe as the adapter takes it: where to connect for each re-bound host name. */
export function appServiceProbe(
  b: AppServiceConfig,
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

function appServiceTarget(
  b: AppServiceConfig,
  path: string,
  config: CertflowConfig,
  c: Collector,
  credentials: Credentials,
): BindingTarget | undefined {
  const azure = config.vaults.flatMap((v, i) => (v.kind === 'azure' ? [{ v, i }] : []));
  const resourceIds = new Map(azure.flatMap(({ v }) => (v.resourceId ? [[v.name, v.resourceId]] : [])));
  for (const { v, i } of azure)
    if (!v.resourceId && vaultsOf(b.certificates, [v.name]).length)
      c.issues.push({
        path: `vaults[${i}].resourceId`,
        message: `missing: expected the vault's ARM id (/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.KeyVault/vaults/<name>): ${path} (app-service) imports certificates from it`,
      });
  const probe = appServiceProbe(b, path, c);
  const credential = credentials.get(b.credential, b.cloud, `${path}.credential`);
  if (!credential) return undefined;
  return c.build(path, () =>
    createAppServiceTarget({
      name: b.name,
      credential,
      subscriptions: b.subscriptions,
      keyVaultResourceId: (certificateId) => {
        const { vault } = parseCertificateId(certificateId);
        const id = resourceIds.get(vault);
        // configuration checks make this unreachable for configured vaults
        if (!id) throw new Error(`vault "${vault}" has no resourceId: App Service cannot import from it`);
        return id;
      },
      clientOptions: { cloudSetting: ARM[b.cloud].appServiceCloud },
      ...probe,
    }),
  );
}

function buildTarget(
  b: BindingConfig,
  path: string,
  config: CertflowConfig,
  c: Collector,
  credentials: Credentials,
): BindingTarget | undefined {
  switch (b.kind) {
    case 'files':
      return createFileReloadTarget(fileTarget(b, path, c));
    case 'app-service':
      return appServiceTarget(b, path, config, c, credentials);
    case 'webhook': {
      const secret = c.secret(b.secret, `${path}.secret`);
      if (!secret) return undefined;
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

/** Builds every target now; the returned function picks those that consume a certificate. */
export function buildBindings(
  config: CertflowConfig,
  c: Collector,
  credentials: Credentials,
): (certificateId: string, tags: Record<string, string>) => BindingTarget[] {
  const targets = new Map<string, BindingTarget>();
  config.bindings.forEach((b, i) => {
    const target = buildTarget(b, `bindings[${i}]`, config, c, credentials);
    if (target) targets.set(b.name, target);
  });
  return (certificateId, tags) =>
    selectBindings(config, certificateId, tags)
      .map((b) => targets.get(b.name))
      .filter((t): t is BindingTarget => t !== undefined);
}
