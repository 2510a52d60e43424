/**
 * Azure App Service binding target. App Service picks up a renewed Key Vault certificate by itself only
 * within 24-48 hours; this target does it now:
 * 1. discover every web app and slot, in the configured subscriptions and resource groups, whose host name
 *    bindings use the previous thumbprint, the new one, or the thumbprint of an App Service certificate that
 *    references this Key Vault secret (thumbprints compared case-insensitively);
 * 2. per webspace (subscription + resource group + region) import or refresh the App Service certificate from
 *    the Key Vault secret: `certificates.createOrUpdate` with keyVaultId / keyVaultSecretName / serverFarmId.
 *    Re-sending an existing certificate's body makes App Service fetch the current secret version now. The import
 *    completes asynchronously (`keyVaultSecretStatus` `Initialized` → `Succeeded`): the certificate is read until
 *    it is done (bounded by `importTimeoutMs`); a failed status (`AzureServiceUnauthorizedToAccessKeyVault`,
 *    `KeyVaultSecretDoesNotExist`, …) fails the bindings of that webspace with the role to grant;
 * 3. re-bind each host name through the documented per-binding route, `webApps.createOrUpdateHostNameBinding`
 *    (`…Slot` for slots): PUT `…/hostNameBindings/{hostName}` with `sslState: 'SniEnabled'` and the new
 *    thumbprint. (An IP-based SSL binding stays `IpBasedEnabled`: switching it to SNI would move its IP
 *    address and break A records.) Bindings already on the new thumbprint are left alone (`unchanged`);
 * 4. optionally probe each host name live (TLS with SNI) where `probe(hostName)` gives an endpoint.
 * 429 (with Retry-After) and 5xx are retried by the SDK's retry policy (default 3 retries, tunable with
 * `clientOptions.retryOptions`); what still fails is a `failed` outcome for the bindings concerned only.
 */
import {
  WebSiteManagementClient,
  type Certificate,
  type WebSiteManagementClientOptionalParams,
} from '@azure/arm-appservice';
import type { TokenCredential } from '@azure/identity';
import type { BindingContext, BindingOutcome, BindingTarget } from '../types';
import { normalizeThumbprint } from '../verify/probe';
import {
  keyVaultSecretStatus,
  perSubscription,
  secretNameOf,
  withProbe,
  type ProbeEndpoint,
} from './arm-common';
import { mapLimit } from './concurrency';
import {
  describeArmError,
  siteId,
  statusOf,
  takeInventory,
  type AppServiceCertificate,
  type AppServiceScope,
  type HostBinding,
  type Inventory,
} from './app-service-inventory';

export type AppServiceProbeEndpoint = ProbeEndpoint;

export interface AppServiceTargetOptions {
  name: string;
  credential: TokenCredential;
  subscriptions: AppServiceScope[];
  /** ARM id of the Key Vault that holds the certificate (`/subscriptions/…/providers/Microsoft.KeyVault/vaults/<name>`). */
  keyVaultResourceId: (certificateId: string) => string;
  /** ARM calls in flight at once (default 8). */
  concurrency?: number;
  /** Passed to WebSiteManagementClient (endpoint, tlsOptions, retryOptions, …). */
  clientOptions?: WebSiteManagementClientOptionalParams;
  /** Where to check a host name live; undefined skips the probe for that host name. */
  probe?: (hostName: string) => AppServiceProbeEndpoint | undefined;
  /** How long a re-bound host name may take to serve the new certificate (default 30 000 ms). */
  probeSettleMs?: number;
  /** How long App Service may take to finish importing from Key Vault (default 120 000 ms), read every `importPollMs` (2 000). */
  importTimeoutMs?: number;
  importPollMs?: number;
}

export function createAppServiceTarget(opts: AppServiceTargetOptions): BindingTarget {
  const concurrency = Math.max(1, opts.concurrency ?? 8);
  const clientFor = perSubscription(
    (sub) => new WebSiteManagementClient(opts.credential, sub, opts.clientOptions),
  );

  return {
    kind: 'app-service',
    name: opts.name,
    async sync(ctx: BindingContext): Promise<BindingOutcome[]> {
      const expected = normalizeThumbprint(ctx.thumbprint);
      const secret = { keyVaultId: opts.keyVaultResourceId(ctx.certificateId), name: secretNameOf(ctx) };

      const inventory: Inventory = { bindings: [], certificates: [], problems: [] };
      for (const scope of opts.subscriptions) {
        const part = await takeInventory(clientFor(scope.subscriptionId), scope, concurrency);
        inventory.bindings.push(...part.bindings);
        inventory.certificates.push(...part.certificates);
        inventory.problems.push(...part.problems);
      }
      const linked = inventory.certificates.filter((c) => references(c, secret));
      const wanted = new Set(
        [expected, ctx.previousThumbprint, ...linked.map((c) => c.thumbprint)]
          .filter((t): t is string => !!t)
          .map(normalizeThumbprint),
      );
      const found = inventory.bindings.filter((b) => wanted.has(normalizeThumbprint(b.thumbprint)));

      const importer = createImporter(clientFor, inventory.certificates, secret, expected, {
        timeoutMs: opts.importTimeoutMs ?? 120_000,
        intervalMs: opts.importPollMs ?? 2_000,
      });
      const bind = (b: HostBinding) => bindOne(b, { clientFor, importer, expected, opts });
      const outcomes = await mapLimit(found, concurrency, bind);
      const problems = inventory.problems.map((p): BindingOutcome => ({
        target: opts.name,
        binding: p.where,
        before: null,
        after: null,
        status: 'failed',
        detail: `${p.detail}; bindings there were not checked`,
      }));
      return [...problems, ...outcomes];
    },
  };
}

interface SecretRef {
  keyVaultId: string;
  name: string;
}

const same = (a: string | undefined | null, b: string | undefined | null) =>
  !!a && !!b && a.toLowerCase() === b.toLowerCase();
const region = (location: string) => location.replace(/\s+/g, '').toLowerCase();

function references(c: AppServiceCertificate, secret: SecretRef): boolean {
  return same(c.keyVaultId, secret.keyVaultId) && same(c.keyVaultSecretName, secret.name);
}

type ClientFor = (subscriptionId: string) => WebSiteManagementClient;

/**
 * One import per webspace (certificates are visible to the apps of one resource group and region), shared by
 * every binding there. A webspace that already holds a certificate with the new thumbprint needs no import:
 * the Key Vault one was refreshed earlier, or the same certificate was uploaded (a second import would be
 * refused as a duplicate thumbprint).
 */
function createImporter(
  clientFor: ClientFor,
  inventory: AppServiceCertificate[],
  secret: SecretRef,
  expected: string,
  wait: ImportWait,
): (b: HostBinding) => Promise<string> {
  const pending = new Map<string, Promise<string>>();
  const importFor = async (b: HostBinding): Promise<string> => {
    const { subscriptionId, resourceGroup, location, serverFarmId } = b.site;
    const inSpace = inventory.filter(
      (c) =>
        same(c.subscriptionId, subscriptionId) &&
        same(c.resourceGroup, resourceGroup) &&
        region(c.location) === region(location),
    );
    const present = inSpace.find((c) => c.thumbprint === expected);
    if (present) return present.thumbprint as string;
    const existing = inSpace.find((c) => references(c, secret));
    const farm = existing?.serverFarmId ?? serverFarmId;
    if (!farm) throw new Error(`${siteId(b.site)} reports no App Service plan (serverFarmId)`);
    const name = existing?.name ?? freshName(inventory, b, secret);
    const where = `App Service certificate '${name}' in resource group '${resourceGroup}' (${location})`;
    let cert;
    const certificates = clientFor(subscriptionId).certificates;
    try {
      cert = await certificates.createOrUpdate(resourceGroup, name, {
        location: existing?.location ?? location,
        keyVaultId: secret.keyVaultId,
        keyVaultSecretName: secret.name,
        serverFarmId: farm,
      });
      cert = await importFinished(cert, () => certificates.get(resourceGroup, name), wait);
    } catch (err) {
      throw new Error(
        `importing ${where} from Key Vault secret '${secret.name}' failed: ${err instanceof ImportError ? err.message : describeArmError(err)}`,
      );
    }
    const got = cert.thumbprint ? normalizeThumbprint(cert.thumbprint) : null;
    if (got !== expected) {
      throw new Error(
        `${where} has thumbprint ${got ?? '(none)'} after import from Key Vault secret '${secret.name}', ` +
          `expected ${expected}: App Service did not read the new secret version (check that its principal ` +
          'may read the vault’s secrets, and that the new version is enabled)',
      );
    }
    inventory.push({ subscriptionId, resourceGroup, name, location, thumbprint: got, serverFarmId: farm });
    return got;
  };
  return (b) => {
    const key = `${b.site.subscriptionId}/${b.site.resourceGroup}/${region(b.site.location)}`.toLowerCase();
    let p = pending.get(key);
    if (!p) {
      p = importFor(b);
      pending.set(key, p);
    }
    return p;
  };
}

interface ImportWait {
  timeoutMs: number;
  intervalMs: number;
}

class ImportError extends Error {}

/**
 * App Service imports from Key Vault asynchronously: the PUT answers `keyVaultSecretStatus: Initialized` (a re-sent
 * certificate still shows its old thumbprint) and the certificate turns `Succeeded` once App Service has read the
 * secret, or carries a failed status (`AzureServiceUnauthorizedToAccessKeyVault`, `KeyVaultSecretDoesNotExist`, …).
 * Reads the certificate until it is done, for at most `timeoutMs`; a failed status names what to grant or fix.
 */
async function importFinished(
  first: Certificate,
  read: () => Promise<Certificate>,
  wait: ImportWait,
): Promise<Certificate> {
  const started = Date.now();
  let cert = first;
  for (;;) {
    // no status: an uploaded certificate, or an API that does not report one: nothing to wait for
    if (cert.keyVaultSecretStatus === undefined) return cert;
    const s = keyVaultSecretStatus(cert.keyVaultSecretStatus);
    if (s.state === 'succeeded') return cert;
    if (s.state === 'failed') throw new ImportError(`App Service reports keyVaultSecretStatus ${s.hint}`);
    if (Date.now() - started >= wait.timeoutMs)
      throw new ImportError(
        `App Service has not finished reading the secret after ${Math.round(wait.timeoutMs / 1000)} s (keyVaultSecretStatus ${cert.keyVaultSecretStatus}); retried later`,
      );
    await new Promise((r) => setTimeout(r, wait.intervalMs));
    cert = await read();
  }
}

/** `<vault>-<secret>`, plus the region when that name is already taken in the resource group. */
function freshName(certificates: AppServiceCertificate[], b: HostBinding, secret: SecretRef): string {
  const vault = secret.keyVaultId.split('/').filter(Boolean).pop() ?? 'keyvault';
  const base = `${vault}-${secret.name}`;
  const taken = certificates.some(
    (c) =>
      same(c.subscriptionId, b.site.subscriptionId) &&
      same(c.resourceGroup, b.site.resourceGroup) &&
      same(c.name, base),
  );
  return taken ? `${base}-${region(b.site.location)}` : base;
}

interface BindDeps {
  clientFor: ClientFor;
  importer: (b: HostBinding) => Promise<string>;
  expected: string;
  opts: AppServiceTargetOptions;
}

async function bindOne(b: HostBinding, deps: BindDeps): Promise<BindingOutcome> {
  const { expected, opts } = deps;
  const { subscriptionId, resourceGroup, site, slot } = b.site;
  const app = slot ? `${site}/${slot}` : site;
  const before = normalizeThumbprint(b.thumbprint);
  const outcome = (o: Omit<BindingOutcome, 'target' | 'binding'>): BindingOutcome => ({
    target: opts.name,
    binding: `${siteId(b.site)}/hostNameBindings/${b.hostName}`,
    ...o,
  });
  const failed = (detail: string) => outcome({ before, after: before, status: 'failed', detail });

  if (before === expected) {
    return verified(
      outcome({
        before,
        after: expected,
        status: 'unchanged',
        detail: `${b.hostName} on ${app} already on ${expected}`,
      }),
      b,
      opts,
    );
  }
  let thumbprint: string;
  try {
    thumbprint = await deps.importer(b);
  } catch (err) {
    return failed(`not re-bound: ${(err as Error).message}`);
  }
  const body = {
    sslState: b.sslState === 'IpBasedEnabled' ? b.sslState : ('SniEnabled' as const),
    thumbprint,
  };
  let after: string | null;
  try {
    const webApps = deps.clientFor(subscriptionId).webApps;
    const res = slot
      ? await webApps.createOrUpdateHostNameBindingSlot(resourceGroup, site, b.hostName, slot, body)
      : await webApps.createOrUpdateHostNameBinding(resourceGroup, site, b.hostName, body);
    after = res.thumbprint ? normalizeThumbprint(res.thumbprint) : null;
  } catch (err) {
    if (statusOf(err) === 404) {
      return failed(
        `site was deleted between discovery and bind: ${app} in resource group '${resourceGroup}' is gone (${describeArmError(err)})`,
      );
    }
    return failed(`re-binding ${b.hostName} on ${app} failed: ${describeArmError(err)}`);
  }
  if (after !== expected) {
    return outcome({
      before,
      after,
      status: 'failed',
      detail: `App Service accepted the re-bind of ${b.hostName} on ${app} but reports thumbprint ${after ?? '(none)'}, expected ${expected}`,
    });
  }
  const ssl = body.sslState === 'SniEnabled' ? 'SNI' : 'IP-based SSL';
  return verified(
    outcome({
      before,
      after,
      status: 'bound',
      detail: `${b.hostName} on ${app} re-bound (${ssl}) from ${before} to ${after}`,
    }),
    b,
    opts,
  );
}

/** Adds the live probe where there is an endpoint; a host name that does not serve the new leaf fails. */
function verified(o: BindingOutcome, b: HostBinding, opts: AppServiceTargetOptions): Promise<BindingOutcome> {
  return withProbe(o, opts.probe?.(b.hostName), opts.probeSettleMs ?? 30_000);
}
