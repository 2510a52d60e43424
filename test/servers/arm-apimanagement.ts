/**
 * A FAKE of Azure Resource Manager's API Management API (Microsoft.ApiManagement, api-version 2024-05-01, what
 * `@azure/arm-apimanagement` 10 speaks), on the common fake ARM core (arm-fake.ts):
 * - GET   /subscriptions/{s}[/resourceGroups/{rg}]/providers/Microsoft.ApiManagement/service          (paged)
 * - GET   …/service/{name}
 * - PATCH …/service/{name} with `hostnameConfigurations`: a long-running update (202 + Location, the service
 *   `Updating` meanwhile, as the real one does for many minutes). Each hostname configuration with a `keyVaultId`
 *   loads that Key Vault secret (a versioned id: that version; a versionless one: the latest, which the real
 *   service otherwise polls every 4 hours) and reports it in `certificate` (thumbprint, expiry, subject). A secret it
 *   cannot read fails the operation and the service keeps its previous configurations.
 * - GET   …/service/{name}/certificates (paged), GET …/certificates/{id}, PUT …/certificates/{id} (keyVault
 *   `secretIdentifier`), POST …/certificates/{id}/refreshSecret: certificates backed by a Key Vault secret, with
 *   `keyVault.lastStatus`.
 * A TLS front end serves each hostname configuration's loaded certificate by SNI.
 * Not modelled: APIs, products, gateways, the developer portal, sku and network changes.
 */
import { X509Certificate } from 'node:crypto';
import {
  ArmError,
  noRoute,
  resourceNotFound,
  startFakeArmCore,
  topLevel,
  type ArmCall,
  type FakeArmCore,
  type KeyMaterial,
} from './arm-fake';

export const APIM_API_VERSION = '2024-05-01';

export interface FakeHostname {
  type: 'Proxy' | 'Portal' | 'Management' | 'Scm' | 'DeveloperPortal' | 'ConfigurationApi';
  hostName: string;
  keyVaultId?: string;
  /** Loaded certificate's thumbprint. */
  thumbprint: string | null;
}

export interface FakeApimCertificate {
  id: string;
  secretIdentifier?: string;
  thumbprint: string | null;
  lastStatus: { code: string; message: string };
}

export interface FakeApim {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  provisioningState: 'Succeeded' | 'Updating';
  hostnames: FakeHostname[];
  certificates: Map<string, FakeApimCertificate>;
}

export interface FakeApiManagement extends FakeArmCore {
  services: Map<string, FakeApim>;
  addService(s: {
    subscriptionId: string;
    resourceGroup: string;
    name: string;
    hostnames: Array<{
      type?: FakeHostname['type'];
      hostName: string;
      keyVaultId?: string;
      uploaded?: KeyMaterial;
    }>;
    certificates?: Array<{ id: string; secretIdentifier: string }>;
  }): Promise<FakeApim>;
  service(subscriptionId: string, resourceGroup: string, name: string): FakeApim | undefined;
  startGateway(): Promise<number>;
}

const k = (...p: string[]) => p.join('/').toLowerCase();

export async function startFakeApiManagement(): Promise<FakeApiManagement> {
  const services = new Map<string, FakeApim>();
  const facts = new Map<string, X509Certificate>();

  const load = async (core: FakeArmCore, uri: string): Promise<string> => {
    const u = new URL(uri);
    const parts = u.pathname.split('/').filter(Boolean);
    const v = await core.vault.read(u.host.toLowerCase(), parts[1] ?? '', parts[2] ?? null);
    if (!v?.enabled) {
      throw new ArmError(
        400,
        'InvalidParameters',
        `Failed to access KeyVault Secret ${uri} using Managed Service Identity. Make sure the secret exists and the service's identity has secrets/get permission.`,
      );
    }
    facts.set(v.thumbprint, new X509Certificate(v.certPem));
    return v.thumbprint;
  };

  const handle = async (call: ArmCall) => {
    const top = topLevel(call, 'Microsoft.ApiManagement', 'service', services, (x) => serviceJson(x, facts));
    if ('listed' in top) return top.listed;
    const { path: p, item: svc } = top;
    const { rg, types, names } = p;
    if (types === 'service' && call.method === 'GET') return serviceJson(svc, facts);
    if (types === 'service' && call.method === 'PATCH') {
      const next = parseHostnames(call.body, svc);
      svc.provisioningState = 'Updating';
      return call.lro({
        status: 202,
        headers: 'location',
        done: async () => {
          try {
            for (const h of next) if (h.keyVaultId) h.thumbprint = await load(fake, h.keyVaultId);
          } finally {
            svc.provisioningState = 'Succeeded';
          }
          svc.hostnames = next;
          return serviceJson(svc, facts);
        },
      });
    }
    if (types === 'service/certificates' || types === 'service/certificates/refreshsecret') {
      if (p.collection && types === 'service/certificates')
        return call.page([...svc.certificates.values()].map((c) => certificateJson(svc, c, facts)));
      const id = names[1] as string;
      const c = svc.certificates.get(id.toLowerCase());
      if (call.method === 'PUT' && types === 'service/certificates') {
        const kv = (call.body as { properties?: { keyVault?: { secretIdentifier?: unknown } } } | null)
          ?.properties?.keyVault?.secretIdentifier;
        if (typeof kv !== 'string')
          throw new ArmError(400, 'ValidationError', 'keyVault.secretIdentifier is required.');
        const cert: FakeApimCertificate = {
          id: c?.id ?? id,
          secretIdentifier: kv,
          thumbprint: null,
          lastStatus: ok(),
        };
        cert.thumbprint = await load(fake, kv);
        svc.certificates.set(id.toLowerCase(), cert);
        return { status: c ? 200 : 201, body: certificateJson(svc, cert, facts) };
      }
      if (!c) throw resourceNotFound('Microsoft.ApiManagement/service/certificates', `${svc.name}/${id}`, rg);
      if (call.method === 'GET' && types === 'service/certificates') return certificateJson(svc, c, facts);
      if (call.method === 'POST' && call.url.pathname.toLowerCase().endsWith('/refreshsecret')) {
        try {
          c.thumbprint = await load(fake, c.secretIdentifier ?? '');
          c.lastStatus = ok();
        } catch (err) {
          c.lastStatus = { code: 'Failed', message: (err as Error).message };
          throw err;
        }
        return certificateJson(svc, c, facts);
      }
    }
    throw noRoute(call.url.pathname);
  };

  const core = await startFakeArmCore({ apiVersions: [APIM_API_VERSION], handle, label: 'api management' });
  const fake: FakeApiManagement = {
    ...core,
    services,
    async addService(s) {
      core.addResourceGroup(s.subscriptionId, s.resourceGroup);
      const svc: FakeApim = {
        subscriptionId: s.subscriptionId,
        resourceGroup: s.resourceGroup,
        name: s.name,
        provisioningState: 'Succeeded',
        hostnames: [],
        certificates: new Map(),
      };
      for (const h of s.hostnames) {
        let thumbprint: string | null = null;
        if (h.uploaded) {
          thumbprint = core.vault.put('uploaded.invalid', `${s.name}-${h.hostName}`, h.uploaded).thumbprint;
          facts.set(thumbprint, new X509Certificate(h.uploaded.certPem));
        }
        if (h.keyVaultId) thumbprint = await load(core, h.keyVaultId);
        svc.hostnames.push({
          type: h.type ?? 'Proxy',
          hostName: h.hostName,
          keyVaultId: h.keyVaultId,
          thumbprint,
        });
      }
      for (const c of s.certificates ?? []) {
        const thumbprint = await load(core, c.secretIdentifier);
        svc.certificates.set(c.id.toLowerCase(), { ...c, thumbprint, lastStatus: ok() });
      }
      services.set(k(s.subscriptionId, s.resourceGroup, s.name), svc);
      return svc;
    },
    service: (sub, rg, name) => services.get(k(sub, rg, name)),
    startGateway() {
      return core.startFrontend((host) => {
        for (const s of services.values()) {
          const h = s.hostnames.find((x) => x.hostName.toLowerCase() === host);
          if (h?.thumbprint) return core.vault.material(h.thumbprint);
        }
        return undefined;
      });
    },
    reset() {
      core.reset();
      services.clear();
      facts.clear();
    },
  };
  return fake;
}

const ok = () => ({ code: 'Success', message: '' });
const serviceId = (s: FakeApim) =>
  `/subscriptions/${s.subscriptionId}/resourceGroups/${s.resourceGroup}/providers/Microsoft.ApiManagement/service/${s.name}`;

function certInfo(thumbprint: string | null, facts: Map<string, X509Certificate>) {
  const x = thumbprint ? facts.get(thumbprint) : undefined;
  return x
    ? { expiry: new Date(x.validTo).toISOString(), thumbprint, subject: x.subject.replace(/\n/g, ', ') }
    : undefined;
}

function serviceJson(s: FakeApim, facts: Map<string, X509Certificate>) {
  return {
    id: serviceId(s),
    name: s.name,
    type: 'Microsoft.ApiManagement/service',
    location: 'West Europe',
    etag: 'AAAAAAAAAAA=',
    sku: { name: 'Developer', capacity: 1 },
    identity: {
      type: 'SystemAssigned',
      principalId: '00000000-0000-4000-8000-00000000a9a9',
      tenantId: '00000000-0000-4000-8000-0000000000aa',
    },
    properties: {
      publisherEmail: 'apis@contoso.test',
      publisherName: 'Contoso',
      provisioningState: s.provisioningState,
      targetProvisioningState: s.provisioningState === 'Updating' ? 'Succeeded' : '',
      gatewayUrl: `https://${s.name}.azure-api.net`,
      hostnameConfigurations: s.hostnames.map((h) => ({
        type: h.type,
        hostName: h.hostName,
        ...(h.keyVaultId
          ? { keyVaultId: h.keyVaultId, certificateSource: 'KeyVault' }
          : { certificateSource: 'Custom' }),
        negotiateClientCertificate: false,
        defaultSslBinding: h.type === 'Proxy',
        ...(certInfo(h.thumbprint, facts) ? { certificate: certInfo(h.thumbprint, facts) } : {}),
      })),
    },
  };
}

function certificateJson(s: FakeApim, c: FakeApimCertificate, facts: Map<string, X509Certificate>) {
  const info = certInfo(c.thumbprint, facts);
  return {
    id: `${serviceId(s)}/certificates/${c.id}`,
    type: 'Microsoft.ApiManagement/service/certificates',
    name: c.id,
    properties: {
      subject: info?.subject,
      thumbprint: c.thumbprint,
      expirationDate: info?.expiry,
      keyVault: {
        secretIdentifier: c.secretIdentifier,
        lastStatus: { ...c.lastStatus, timeStampUtc: new Date().toISOString() },
      },
    },
  };
}

function parseHostnames(body: unknown, svc: FakeApim): FakeHostname[] {
  const list = (body as { properties?: { hostnameConfigurations?: unknown } } | null)?.properties
    ?.hostnameConfigurations;
  if (!Array.isArray(list))
    throw new ArmError(400, 'ValidationError', 'This fake only updates hostnameConfigurations.');
  return list.map((raw) => {
    const h = raw as {
      type?: unknown;
      hostName?: unknown;
      keyVaultId?: unknown;
      encodedCertificate?: unknown;
    };
    const type = String(h.type) as FakeHostname['type'];
    const hostName = String(h.hostName ?? '');
    const had = svc.hostnames.find(
      (x) => x.type === type && x.hostName.toLowerCase() === hostName.toLowerCase(),
    );
    const keyVaultId = typeof h.keyVaultId === 'string' ? h.keyVaultId : undefined;
    if (!keyVaultId && !had)
      throw new ArmError(
        400,
        'ValidationError',
        `Hostname ${hostName}: a certificate is required (keyVaultId or encodedCertificate).`,
      );
    return { type, hostName, keyVaultId, thumbprint: had?.thumbprint ?? null };
  });
}
