/**
 * What App Service has in the configured scopes: every web app and slot with its host name SSL states, and
 * every App Service certificate (the ones imported from Key Vault carry `keyVaultId` + `keyVaultSecretName`).
 * The site listing already carries `hostNameSslStates` (name, sslState, thumbprint), so discovery costs one
 * listing per scope plus one slot listing per app, not one call per host name.
 */
import type { Certificate, Site, SslState, WebSiteManagementClient } from '@azure/arm-appservice';
import { normalizeThumbprint } from '../verify/probe';
import { codeOf, statusOf } from './arm-common';
import { mapLimit } from './concurrency';

export interface AppServiceScope {
  subscriptionId: string;
  /** Only these resource groups; all of the subscription when absent. */
  resourceGroups?: string[];
}

export interface SiteRef {
  subscriptionId: string;
  resourceGroup: string;
  site: string;
  slot: string | null;
  location: string;
  serverFarmId: string | undefined;
}

export interface HostBinding {
  site: SiteRef;
  hostName: string;
  sslState: SslState;
  /** As App Service reports it (any case). */
  thumbprint: string;
}

export interface AppServiceCertificate {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  location: string;
  thumbprint: string | null;
  keyVaultId?: string;
  keyVaultSecretName?: string;
  serverFarmId?: string;
}

export interface Inventory {
  bindings: HostBinding[];
  certificates: AppServiceCertificate[];
  /** Scopes or apps that could not be listed: `where` is an ARM id, `detail` says what failed. */
  problems: { where: string; detail: string }[];
}

export async function takeInventory(
  client: WebSiteManagementClient,
  scope: AppServiceScope,
  concurrency: number,
): Promise<Inventory> {
  const inv: Inventory = { bindings: [], certificates: [], problems: [] };
  const subId = `/subscriptions/${scope.subscriptionId}`;
  const groups: (string | null)[] = scope.resourceGroups?.length ? scope.resourceGroups : [null];
  const where = (rg: string | null) => (rg === null ? subId : `${subId}/resourceGroups/${rg}`);

  const sites: Site[] = [];
  await mapLimit(groups, concurrency, async (rg) => {
    const [siteList, certList] = await Promise.all([
      collect(rg === null ? client.webApps.list() : client.webApps.listByResourceGroup(rg)),
      collect(rg === null ? client.certificates.list() : client.certificates.listByResourceGroup(rg)),
    ]);
    if (siteList.ok) sites.push(...siteList.items);
    else if (siteList.code === 'ResourceGroupNotFound')
      // real ARM answers 404 for a listing in a group that does not exist: a scope we cannot check, not "no apps"
      inv.problems.push({
        where: where(rg),
        detail: `resource group '${rg}' does not exist in subscription ${scope.subscriptionId} (mistyped or deleted?): listing web apps failed: ${siteList.detail}`,
      });
    else inv.problems.push({ where: where(rg), detail: `listing web apps failed: ${siteList.detail}` });
    if (certList.ok) inv.certificates.push(...certList.items.flatMap((c) => toCertificate(c) ?? []));
    else if (certList.code === 'ResourceGroupNotFound' && !siteList.ok)
      return; // said once above
    else
      inv.problems.push({
        where: where(rg),
        detail: `listing App Service certificates failed: ${certList.detail}`,
      });
  });

  await mapLimit(sites, concurrency, async (site) => {
    const ref = toSiteRef(site);
    if (!ref) return;
    inv.bindings.push(...bindingsOf(site, ref));
    const slots = await collect(client.webApps.listSlots(ref.resourceGroup, ref.site));
    // 404: the app went away while we were listing; nothing of it is left to re-bind
    if (!slots.ok && slots.status !== 404) {
      inv.problems.push({ where: siteId(ref), detail: `listing deployment slots failed: ${slots.detail}` });
    }
    for (const slot of slots.ok ? slots.items : []) {
      const slotRef = toSiteRef(slot);
      if (slotRef) inv.bindings.push(...bindingsOf(slot, slotRef));
    }
  });
  return inv;
}

/** `/subscriptions/…/providers/Microsoft.Web/sites/<app>[/slots/<slot>]`. */
export function siteId(ref: SiteRef): string {
  const app = `/subscriptions/${ref.subscriptionId}/resourceGroups/${ref.resourceGroup}/providers/Microsoft.Web/sites/${ref.site}`;
  return ref.slot ? `${app}/slots/${ref.slot}` : app;
}

/** Host names with SSL on; the default *.azurewebsites.net names have sslState Disabled and no thumbprint. */
function bindingsOf(site: Site, ref: SiteRef): HostBinding[] {
  return (site.hostNameSslStates ?? []).flatMap((s) =>
    s.name && s.thumbprint && s.sslState && s.sslState !== 'Disabled'
      ? [{ site: ref, hostName: s.name, sslState: s.sslState, thumbprint: s.thumbprint }]
      : [],
  );
}

const SITE_ID =
  /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Web\/sites\/([^/]+)(?:\/slots\/([^/]+))?$/i;

function toSiteRef(site: Site): SiteRef | null {
  const m = SITE_ID.exec(site.id ?? '');
  if (!m) return null;
  return {
    subscriptionId: m[1] as string,
    resourceGroup: m[2] as string,
    site: m[3] as string,
    slot: m[4] ?? null,
    location: site.location,
    serverFarmId: site.serverFarmId,
  };
}

const RG_OF = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\//i;

function toCertificate(c: Certificate): AppServiceCertificate | null {
  const m = RG_OF.exec(c.id ?? '');
  if (!m || !c.name) return null;
  return {
    subscriptionId: m[1] as string,
    resourceGroup: m[2] as string,
    name: c.name,
    location: c.location,
    thumbprint: c.thumbprint ? normalizeThumbprint(c.thumbprint) : null,
    keyVaultId: c.keyVaultId,
    keyVaultSecretName: c.keyVaultSecretName,
    serverFarmId: c.serverFarmId,
  };
}

type Listed<T> =
  | { ok: true; items: T[] }
  | { ok: false; status: number | undefined; code: string | undefined; detail: string };

async function collect<T>(pages: AsyncIterable<T>): Promise<Listed<T>> {
  const items: T[] = [];
  try {
    for await (const item of pages) items.push(item);
    return { ok: true, items };
  } catch (err) {
    return { ok: false, status: statusOf(err), code: codeOf(err), detail: describeArmError(err) };
  }
}

export { statusOf };

/** One line a person can act on: HTTP status, ARM error code, message, and for 401/403 the role we need. */
export function describeArmError(err: unknown): string {
  const status = statusOf(err);
  const code = codeOf(err);
  const message = err instanceof Error ? err.message : String(err);
  const head = status ? `HTTP ${status}${typeof code === 'string' && code ? ` ${code}` : ''}: ` : '';
  const hint =
    status === 401 || status === 403
      ? ' (Certflow’s identity needs the Website Contributor role on these apps and their certificates)'
      : '';
  return `${head}${message}${hint}`;
}
