/**
 * State and JSON shapes of the FAKE Azure Resource Manager App Service API (see arm-appservice.ts): web apps,
 * slots, host name bindings, App Service certificates, plans (serverfarms), and the Key Vault secrets those
 * certificates import from. Resource names are case-insensitive as in ARM; JSON follows the documented
 * Microsoft.Web resource shapes (envelope with id/name/type/location and a `properties` bag).
 */
import { X509Certificate } from 'node:crypto';

export type SslState = 'Disabled' | 'SniEnabled' | 'IpBasedEnabled';

export interface FakeBinding {
  hostName: string;
  sslState: SslState;
  thumbprint?: string;
}

export interface FakeApp {
  subscriptionId: string;
  resourceGroup: string;
  /** The web app's name; for a slot, the slot's app. */
  site: string;
  slot: string | null;
  location: string;
  serverFarmId: string;
  bindings: Map<string, FakeBinding>;
}

export interface FakeCertificate {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  location: string;
  serverFarmId?: string;
  keyVaultId?: string;
  keyVaultSecretName?: string;
  thumbprint: string;
  subjectName?: string;
  hostNames: string[];
  expirationDate?: string;
  issueDate?: string;
  /** App Service's view of the Key Vault secret: `Initialized` while an import runs, then `Succeeded` or a failure. */
  keyVaultSecretStatus?: string;
  /** An import App Service has not finished: what it will show, after how many more reads, or the failure. */
  importing?: {
    thumbprint: string;
    facts: Pick<FakeCertificate, 'subjectName' | 'hostNames' | 'issueDate' | 'expirationDate'>;
    pollsLeft: number;
    fail?: string;
  };
}

export interface KeyMaterial {
  certPem: string;
  keyPem?: string;
}

export const key = (...parts: string[]) => parts.join('/').toLowerCase();
export const region = (location: string) => location.replace(/\s+/g, '').toLowerCase();

export function createArmState() {
  const plans = new Map<string, { id: string; location: string; name: string }>();
  const apps = new Map<string, FakeApp>(); // key(sub, rg, site) or key(sub, rg, site, 'slots', slot)
  const certificates = new Map<string, FakeCertificate>(); // key(sub, rg, name)
  const secrets = new Map<string, KeyMaterial>(); // key(keyVaultId, secretName)
  const material = new Map<string, KeyMaterial>(); // thumbprint (upper) → PEM, for the TLS front end

  const remember = (m: KeyMaterial): X509Certificate => {
    const x = new X509Certificate(m.certPem);
    material.set(thumbprintOf(x), m);
    return x;
  };

  const importFailures = new Map<string, string>(); // key(keyVaultId, secretName) → failed keyVaultSecretStatus
  const state = {
    plans,
    apps,
    certificates,
    secrets,
    material,
    importFailures,
    /** Reads of a certificate before App Service finishes importing it (0: done by the first read after the PUT). */
    importPolls: 1,
    clear() {
      for (const m of [plans, apps, certificates, secrets, material, importFailures]) m.clear();
      state.importPolls = 1;
    },
    /** One read of a certificate: an import in progress moves on, and ends after its reads. */
    advanceImport(c: FakeCertificate): FakeCertificate {
      const i = c.importing;
      if (!i) return c;
      if (i.pollsLeft > 0) {
        i.pollsLeft--;
        return c;
      }
      c.importing = undefined;
      if (i.fail) c.keyVaultSecretStatus = i.fail;
      else Object.assign(c, i.facts, { thumbprint: i.thumbprint, keyVaultSecretStatus: 'Succeeded' });
      return c;
    },
    app(subscriptionId: string, resourceGroup: string, site: string, slot: string | null = null) {
      return apps.get(
        slot
          ? key(subscriptionId, resourceGroup, site, 'slots', slot)
          : key(subscriptionId, resourceGroup, site),
      );
    },
    addApp(a: FakeApp) {
      const k = a.slot
        ? key(a.subscriptionId, a.resourceGroup, a.site, 'slots', a.slot)
        : key(a.subscriptionId, a.resourceGroup, a.site);
      apps.set(k, a);
    },
    /** Removes the app and all its slots, as deleting a web app does. */
    deleteSite(subscriptionId: string, resourceGroup: string, site: string) {
      const k = key(subscriptionId, resourceGroup, site);
      for (const name of [...apps.keys()])
        if (name === k || name.startsWith(`${k}/slots/`)) apps.delete(name);
    },
    setSecret(keyVaultId: string, secretName: string, m: KeyMaterial): string {
      secrets.set(key(keyVaultId, secretName), m);
      return thumbprintOf(remember(m));
    },
    /** What App Service reads when it imports: the secret's current version. */
    readSecret(keyVaultId: string, secretName: string): { x509: X509Certificate; thumbprint: string } | null {
      const m = secrets.get(key(keyVaultId, secretName));
      if (!m) return null;
      const x509 = remember(m);
      return { x509, thumbprint: thumbprintOf(x509) };
    },
    rememberMaterial: (m: KeyMaterial) => thumbprintOf(remember(m)),
  };
  return state;
}

export type ArmState = ReturnType<typeof createArmState>;

export function thumbprintOf(x: X509Certificate): string {
  return x.fingerprint.replace(/:/g, '').toUpperCase();
}

export function siteArmId(a: Pick<FakeApp, 'subscriptionId' | 'resourceGroup' | 'site' | 'slot'>): string {
  const id = `/subscriptions/${a.subscriptionId}/resourceGroups/${a.resourceGroup}/providers/Microsoft.Web/sites/${a.site}`;
  return a.slot ? `${id}/slots/${a.slot}` : id;
}

export function certificateArmId(
  c: Pick<FakeCertificate, 'subscriptionId' | 'resourceGroup' | 'name'>,
): string {
  return `/subscriptions/${c.subscriptionId}/resourceGroups/${c.resourceGroup}/providers/Microsoft.Web/certificates/${c.name}`;
}

export function planArmId(subscriptionId: string, resourceGroup: string, name: string): string {
  return `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.Web/serverfarms/${name}`;
}

const defaultHost = (a: FakeApp) => `${a.slot ? `${a.site}-${a.slot}` : a.site}.azurewebsites.net`;

export function siteJson(a: FakeApp) {
  const custom = [...a.bindings.values()];
  const host = defaultHost(a);
  const scm = host.replace('.azurewebsites.net', '.scm.azurewebsites.net');
  return {
    id: siteArmId(a),
    name: a.slot ? `${a.site}/${a.slot}` : a.site,
    type: a.slot ? 'Microsoft.Web/sites/slots' : 'Microsoft.Web/sites',
    kind: 'app',
    location: a.location,
    properties: {
      name: a.slot ? `${a.site}(${a.slot})` : a.site,
      state: 'Running',
      hostNames: [host, ...custom.map((b) => b.hostName)],
      enabledHostNames: [host, scm, ...custom.map((b) => b.hostName)],
      // explicit nulls, as the real service sends them
      hostNameSslStates: [
        { name: host, hostType: 'Standard' },
        { name: scm, hostType: 'Repository' },
        ...custom.map((b) => ({
          name: b.hostName,
          sslState: b.sslState,
          thumbprint: b.thumbprint,
          hostType: 'Standard',
        })),
      ].map((x) => ({
        name: x.name,
        sslState: 'sslState' in x ? x.sslState : 'Disabled',
        ipBasedSslResult: null,
        virtualIP: null,
        virtualIPv6: null,
        thumbprint: ('thumbprint' in x ? x.thumbprint : undefined) ?? null,
        certificateResourceId: null,
        toUpdate: null,
        toUpdateIpBasedSsl: null,
        ipBasedSslState: 'NotConfigured',
        hostType: x.hostType,
      })),
      serverFarmId: a.serverFarmId,
      resourceGroup: a.resourceGroup,
      defaultHostName: host,
      httpsOnly: true,
      enabled: true,
      siteScopedCertificatesEnabled: false,
      keyVaultReferenceIdentity: 'SystemAssigned',
    },
  };
}

export function bindingJson(a: FakeApp, b: FakeBinding) {
  const app = a.slot ? `${a.site}/${a.slot}` : a.site;
  return {
    id: `${siteArmId(a)}/hostNameBindings/${b.hostName}`,
    name: `${app}/${b.hostName}`,
    type: a.slot ? 'Microsoft.Web/sites/slots/hostNameBindings' : 'Microsoft.Web/sites/hostNameBindings',
    properties: {
      siteName: a.slot ? `${a.site}(${a.slot})` : a.site,
      azureResourceType: 'Website',
      customHostNameDnsRecordType: 'CName',
      hostNameType: 'Verified',
      sslState: b.sslState,
      ...(b.thumbprint ? { thumbprint: b.thumbprint } : {}),
    },
  };
}

export function certificateJson(c: FakeCertificate) {
  return {
    id: certificateArmId(c),
    name: c.name,
    type: 'Microsoft.Web/certificates',
    location: c.location,
    properties: {
      friendlyName: '',
      subjectName: c.subjectName,
      hostNames: c.hostNames,
      issueDate: c.issueDate,
      expirationDate: c.expirationDate,
      thumbprint: c.thumbprint,
      ...(c.keyVaultId
        ? {
            keyVaultId: c.keyVaultId,
            keyVaultSecretName: c.keyVaultSecretName,
            keyVaultSecretStatus: c.keyVaultSecretStatus ?? 'Succeeded',
          }
        : {}),
      serverFarmId: c.serverFarmId,
      valid: true,
    },
  };
}

export function planJson(id: string, p: { location: string; name: string }) {
  return {
    id,
    name: p.name,
    type: 'Microsoft.Web/serverfarms',
    kind: 'app',
    location: p.location,
    sku: { name: 'P1v3', tier: 'PremiumV3', size: 'P1v3', family: 'Pv3', capacity: 1 },
    properties: { status: 'Ready' },
  };
}

/** Certificate metadata App Service derives from the X.509 it imported. */
export function describeX509(
  x: X509Certificate,
): Pick<FakeCertificate, 'subjectName' | 'hostNames' | 'issueDate' | 'expirationDate'> {
  const hostNames = (x.subjectAltName ?? '')
    .split(', ')
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4));
  return {
    subjectName: x.subject.replace(/\n/g, ', '),
    hostNames,
    issueDate: new Date(x.validFrom).toISOString(),
    expirationDate: new Date(x.validTo).toISOString(),
  };
}
