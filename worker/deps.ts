/**
 * Turns the validated configuration into the activities' dependencies: vault clients, issuers, binding
 * targets, the notifier. Secrets are resolved here, from their references, and handed straight to the clients.
 * Every problem (unreadable file, unset secret variable, a kind not wired yet) is collected and thrown as one
 * ConfigError, so an operator fixes them all in one go.
 *
 * Extension points (marked NOT WIRED YET below): the 'local' vault, the 'dev-ca' and 'command' issuers, Azure
 * DNS for ACME, 'app-service' and 'webhook' bindings, and chat notifications.
 */
import { readFileSync } from 'node:fs';
import {
  AzureAuthorityHosts,
  ClientCertificateCredential,
  ClientSecretCredential,
  DefaultAzureCredential,
  WorkloadIdentityCredential,
  type TokenCredential,
} from '@azure/identity';
import type { ActivityDeps } from '../activities/index';
import type { Issuer, SecretStore, Vault } from '../activities/types';
import type { FileBindingTarget } from '../activities/bindings/file-reload';
import { createAzureKeyVault } from '../activities/vault/azure-key-vault';
import { createAcmeIssuer } from '../activities/issuers/acme';
import { createChalltestsrvDns } from '../activities/issuers/dns-challtestsrv';
import { createEmailNotifier } from '../activities/notify/email';
import { createKeyVaultSecretStore } from './azure-secret-store';
import {
  ConfigError,
  resolveSecret,
  selectBindings,
  type BindingConfig,
  type CertflowConfig,
  type ConfigIssue,
  type IssuerConfig,
  type SecretRef,
  type VaultConfig,
} from './config';
import type { CertflowLogger } from './logger';
import type { MetricsSink } from './metrics';

export interface BuildDepsOptions {
  metrics?: MetricsSink;
  logger?: CertflowLogger;
  env?: NodeJS.ProcessEnv;
}

export type BuiltDeps = ActivityDeps & {
  /** Releases pooled connections (SMTP). */
  close(): Promise<void>;
};

const AUTHORITY = {
  public: AzureAuthorityHosts.AzurePublicCloud,
  china: AzureAuthorityHosts.AzureChina,
  usgov: AzureAuthorityHosts.AzureGovernment,
} as const;

/** Collects problems instead of stopping at the first. */
function collector(env: NodeJS.ProcessEnv) {
  const issues: ConfigIssue[] = [];
  return {
    issues,
    notWired(path: string, what: string) {
      issues.push({
        path,
        message: `${what} is not wired into the worker yet (coming soon); remove it for now`,
      });
    },
    secret(ref: SecretRef, path: string): string {
      try {
        return resolveSecret(ref, env, path);
      } catch (err) {
        issues.push(...((err as ConfigError).issues ?? [{ path, message: (err as Error).message }]));
        return '';
      }
    },
    file(file: string, path: string): string {
      try {
        return readFileSync(file, 'utf8');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
        issues.push({ path, message: `expected a readable file ${file} (${code})` });
        return '';
      }
    },
  };
}
type Collector = ReturnType<typeof collector>;

function azureCredential(
  v: Extract<VaultConfig, { kind: 'azure' }>,
  path: string,
  c: Collector,
): TokenCredential {
  const authorityHost = AUTHORITY[v.cloud];
  const cred = v.credential;
  switch (cred.kind) {
    case 'default':
      return new DefaultAzureCredential({
        authorityHost,
        ...(cred.managedIdentityClientId ? { managedIdentityClientId: cred.managedIdentityClientId } : {}),
      });
    case 'client-secret':
      return new ClientSecretCredential(
        cred.tenantId,
        cred.clientId,
        c.secret(cred.clientSecret, `${path}.credential.clientSecret`),
        { authorityHost },
      );
    case 'client-certificate':
      return new ClientCertificateCredential(
        cred.tenantId,
        cred.clientId,
        { certificatePath: cred.certificateFile },
        { authorityHost },
      );
    case 'workload-identity':
      return new WorkloadIdentityCredential({
        authorityHost,
        ...(cred.tenantId ? { tenantId: cred.tenantId } : {}),
        ...(cred.clientId ? { clientId: cred.clientId } : {}),
        ...(cred.tokenFile ? { tokenFilePath: cred.tokenFile } : {}),
      });
  }
}

interface BuiltVault {
  vault: Vault;
  secrets: SecretStore;
}

function buildVault(v: VaultConfig, path: string, c: Collector): BuiltVault | undefined {
  if (v.kind === 'azure') {
    const credential = azureCredential(v, path, c);
    return {
      vault: createAzureKeyVault({ name: v.name, url: v.url, credential }),
      secrets: createKeyVaultSecretStore({ url: v.url, credential }),
    };
  }
  // NOT WIRED YET: 'local' → createLocalVault({ name, dir, encryptionKey: Buffer from resolveSecret(encryptionKey) })
  c.notWired(`${path}.kind`, `vault kind "${v.kind}"`);
  return undefined;
}

function buildIssuer(
  i: IssuerConfig,
  path: string,
  c: Collector,
  vaults: ReadonlyMap<string, BuiltVault>,
  logger: CertflowLogger | undefined,
): Issuer | undefined {
  if (i.kind !== 'acme') {
    // NOT WIRED YET: 'dev-ca' (activities/issuers/dev-ca.ts) and 'command' issuers
    c.notWired(`${path}.kind`, `issuer kind "${i.kind}"`);
    return undefined;
  }
  if (i.dns.kind !== 'challtestsrv') {
    // NOT WIRED YET: Azure DNS provider for DNS-01
    c.notWired(`${path}.dns.kind`, `DNS provider "${i.dns.kind}"`);
    return undefined;
  }
  const store = (i.accountKeyVault ? vaults.get(i.accountKeyVault) : [...vaults.values()][0])?.secrets;
  if (!store) return undefined; // the vault itself failed to build and was reported
  const eab = i.eab ? { kid: i.eab.kid, hmacKey: c.secret(i.eab.hmacKey, `${path}.eab.hmacKey`) } : undefined;
  const caBundlePem = i.caBundleFile ? c.file(i.caBundleFile, `${path}.caBundleFile`) : undefined;
  return createAcmeIssuer({
    name: i.name,
    directoryUrl: i.directoryUrl,
    contactEmail: i.contactEmail,
    accountKey: { store, secretName: i.accountKeySecretName },
    dns: createChalltestsrvDns({ managementUrl: i.dns.managementUrl }),
    ...(eab ? { externalAccountBinding: eab } : {}),
    ...(caBundlePem ? { caBundlePem } : {}),
    ...(logger ? { logger: logger.child({ issuer: i.name }) } : {}),
  });
}

function fileTarget(
  b: Extract<BindingConfig, { kind: 'files' }>,
  path: string,
  c: Collector,
): FileBindingTarget {
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

function buildNotifier(config: CertflowConfig, c: Collector) {
  // NOT WIRED YET: notify.chat (Slack / Teams incoming webhook)
  if (config.notify.chat) c.notWired('notify.chat', 'chat notification');
  const e = config.notify.email;
  if (!e) return null;
  const pass = e.password ? c.secret(e.password, 'notify.email.password') : undefined;
  const ca = e.caFile ? c.file(e.caFile, 'notify.email.caFile') : undefined;
  return createEmailNotifier({
    transport: {
      host: e.host,
      port: e.port,
      secure: e.secure ?? e.port === 465,
      ...(e.requireTls !== undefined ? { requireTLS: e.requireTls } : {}),
      ...(e.user ? { auth: { user: e.user, pass: pass ?? '' } } : {}),
      ...(ca ? { tls: { ca } } : {}),
    },
    from: e.from,
    ...(e.defaultRecipients ? { defaultRecipients: e.defaultRecipients } : {}),
  });
}

export async function buildDeps(config: CertflowConfig, opts: BuildDepsOptions = {}): Promise<BuiltDeps> {
  const c = collector(opts.env ?? process.env);

  const builtVaults = new Map<string, BuiltVault>();
  config.vaults.forEach((v, i) => {
    const built = buildVault(v, `vaults[${i}]`, c);
    if (built) builtVaults.set(v.name, built);
  });

  const issuers = new Map<string, Issuer>();
  const trustAnchors = new Map<string, string[]>();
  config.issuers.forEach((iss, i) => {
    const built = buildIssuer(iss, `issuers[${i}]`, c, builtVaults, opts.logger);
    if (built) issuers.set(iss.name, built);
    if (iss.kind === 'acme' && iss.trustAnchorFiles)
      trustAnchors.set(
        iss.name,
        iss.trustAnchorFiles.map((f, j) => c.file(f, `issuers[${i}].trustAnchorFiles[${j}]`)),
      );
  });

  const fileTargets = new Map<string, FileBindingTarget>();
  config.bindings.forEach((b, i) => {
    if (b.kind === 'files') fileTargets.set(b.name, fileTarget(b, `bindings[${i}]`, c));
    // NOT WIRED YET: 'app-service' (activities/bindings/app-service.ts) and 'webhook' (createWebhookTarget)
    else c.notWired(`bindings[${i}].kind`, `binding kind "${b.kind}"`);
  });

  const notifier = buildNotifier(config, c);
  if (c.issues.length > 0) {
    notifier?.close();
    throw new ConfigError(c.issues, 'configuration cannot be used');
  }

  return {
    vaults: new Map([...builtVaults].map(([name, b]) => [name, b.vault])),
    issuers,
    // tag selectors need the certificate's tags, which this hook does not receive yet: ids and patterns apply
    fileBindings: (certificateId) =>
      selectBindings(config, certificateId)
        .map((b) => fileTargets.get(b.name))
        .filter((t): t is FileBindingTarget => t !== undefined),
    notifier,
    ...(config.notify.email?.defaultRecipients
      ? { defaultRecipients: config.notify.email.defaultRecipients }
      : {}),
    trustAnchorsPem: (issuer) => trustAnchors.get(issuer),
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
    async close() {
      notifier?.close();
    },
  };
}
