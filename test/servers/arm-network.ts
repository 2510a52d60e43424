/**
 * A FAKE of Azure Resource Manager's Application Gateway API (Microsoft.Network/applicationGateways,
 * api-version 2025-05-01, what `@azure/arm-network` 36 speaks), on the common fake ARM core (arm-fake.ts):
 * - GET  /subscriptions/{s}/providers/Microsoft.Network/applicationGateways            (listAll, paged)
 * - GET  /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Network/applicationGateways  (list, paged)
 * - GET  …/applicationGateways/{name}
 * - PUT  …/applicationGateways/{name}: a long-running update, 201 with Azure-AsyncOperation (+ Location), the
 *   gateway `Updating` until the operation ends, then `Succeeded`. Like the real service, every PUT (re)loads each
 *   SSL certificate that references a Key Vault secret: a versioned `keyVaultSecretId` reads that version, a
 *   versionless one the latest enabled version (the real gateway otherwise polls versionless ids every 4 hours).
 *   A secret that cannot be read fails the operation (`ApplicationGatewayKeyVaultSecretException`) and the gateway
 *   keeps its previous certificates; a listener whose certificate is not in `sslCertificates` is refused (400).
 * - `publicCertData` of each SSL certificate: base64 PKCS#7 of the loaded chain, as the real gateway returns it.
 * A TLS front end (startFrontend) serves each listener host name's loaded certificate by SNI.
 * Not modelled: backend pools, rules, WAF, sku changes, operational start/stop, the 4-hour poll itself.
 */
import 'reflect-metadata'; // @peculiar/x509 2.x needs a Reflect polyfill loaded first
import { X509Certificate as PeculiarX509, X509Certificates } from '@peculiar/x509';
import {
  ArmError,
  noRoute,
  parseArmPath,
  startFakeArmCore,
  thumbprintOfPem,
  topLevel,
  type ArmCall,
  type FakeArmCore,
  type KeyMaterial,
} from './arm-fake';

export const NETWORK_API_VERSION = '2025-05-01';

export interface FakeSslCertificate {
  name: string;
  /** Key Vault reference (URI, versioned or not); absent for an uploaded PFX. */
  keyVaultSecretId?: string;
  /** The loaded certificate's thumbprint (what the gateway serves). */
  thumbprint: string | null;
}

export interface FakeListener {
  name: string;
  hostNames: string[];
  sslCertificate: string;
  port: number;
}

export interface FakeGateway {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  location: string;
  provisioningState: 'Succeeded' | 'Updating' | 'Failed';
  sslCertificates: FakeSslCertificate[];
  listeners: FakeListener[];
  etag: number;
}

export interface FakeNetwork extends FakeArmCore {
  gateways: Map<string, FakeGateway>;
  addGateway(g: {
    subscriptionId: string;
    resourceGroup: string;
    name: string;
    location?: string;
    sslCertificates: Array<{ name: string; keyVaultSecretId?: string; uploaded?: KeyMaterial }>;
    listeners: Array<{ name: string; hostNames: string[]; sslCertificate: string; port?: number }>;
  }): Promise<FakeGateway>;
  gateway(subscriptionId: string, resourceGroup: string, name: string): FakeGateway | undefined;
  deleteGateway(subscriptionId: string, resourceGroup: string, name: string): void;
  /** The TLS front end of every gateway's listeners (by host name). */
  startListeners(): Promise<number>;
}

const k = (...p: string[]) => p.join('/').toLowerCase();

export async function startFakeNetwork(): Promise<FakeNetwork> {
  const gateways = new Map<string, FakeGateway>();
  const chains = new Map<string, string>(); // thumbprint → publicCertData (base64 PKCS#7), made once

  const load = async (core: FakeArmCore, c: FakeSslCertificate): Promise<string | null> => {
    const ref = secretOf(c.keyVaultSecretId);
    if (!ref) return c.thumbprint;
    const v = await core.vault.read(ref.host, ref.name, ref.version);
    if (!v?.enabled) {
      throw new ArmError(
        400,
        'ApplicationGatewayKeyVaultSecretException',
        `Problem occured while accessing and validating KeyVault Secrets associated with Application Gateway. See details below: Details: SecretId '${c.keyVaultSecretId}' is not found or the gateway's identity has no 'get' permission on it.`,
      );
    }
    if (!chains.has(v.thumbprint)) chains.set(v.thumbprint, pkcs7(splitPem(v.certPem)));
    return v.thumbprint;
  };

  const handle = async (call: ArmCall) => {
    if (call.method === 'PUT') {
      const p = parseArmPath(call.seg, 'Microsoft.Network');
      if (p?.rg && p.names[0] && !gateways.has(k(p.sub, p.rg, p.names[0])))
        throw new ArmError(400, 'InvalidRequest', 'This fake only updates existing gateways.');
    }
    const top = topLevel(call, 'Microsoft.Network', 'applicationGateways', gateways, (g) =>
      gatewayJson(g, chains),
    );
    if ('listed' in top) return top.listed;
    if (top.path.types !== 'applicationgateways') throw noRoute(call.url.pathname);
    const g = top.item;
    if (call.method === 'GET') return gatewayJson(g, chains);
    if (call.method === 'PUT') {
      const next = parseGatewayBody(call.body, g);
      g.provisioningState = 'Updating';
      g.etag++;
      return call.lro({
        status: 201,
        initial: gatewayJson(g, chains),
        done: async () => {
          try {
            for (const c of next.sslCertificates) c.thumbprint = await load(fake, c);
          } catch (err) {
            g.provisioningState = 'Succeeded'; // the gateway keeps what it had
            throw err;
          }
          g.sslCertificates = next.sslCertificates;
          g.listeners = next.listeners;
          g.provisioningState = 'Succeeded';
          g.etag++;
          return gatewayJson(g, chains);
        },
      });
    }
    throw noRoute(call.url.pathname);
  };

  const core = await startFakeArmCore({ apiVersions: [NETWORK_API_VERSION], handle, label: 'network' });
  const fake: FakeNetwork = {
    ...core,
    gateways,
    async addGateway(s) {
      core.addResourceGroup(s.subscriptionId, s.resourceGroup);
      const g: FakeGateway = {
        subscriptionId: s.subscriptionId,
        resourceGroup: s.resourceGroup,
        name: s.name,
        location: s.location ?? 'westeurope',
        provisioningState: 'Succeeded',
        sslCertificates: [],
        listeners: s.listeners.map((l) => ({ port: 443, ...l })),
        etag: 1,
      };
      for (const c of s.sslCertificates) {
        let thumbprint: string | null = null;
        if (c.uploaded) {
          thumbprint = thumbprintOfPem(c.uploaded.certPem);
          chains.set(thumbprint, pkcs7(splitPem(c.uploaded.certPem)));
          core.vault.put('uploaded.invalid', `${s.name}-${c.name}`, c.uploaded);
        }
        const cert: FakeSslCertificate = { name: c.name, keyVaultSecretId: c.keyVaultSecretId, thumbprint };
        cert.thumbprint = await load(core, cert);
        g.sslCertificates.push(cert);
      }
      gateways.set(k(s.subscriptionId, s.resourceGroup, s.name), g);
      return g;
    },
    gateway: (sub, rg, name) => gateways.get(k(sub, rg, name)),
    deleteGateway: (sub, rg, name) => void gateways.delete(k(sub, rg, name)),
    startListeners() {
      return core.startFrontend((host) => {
        for (const g of gateways.values()) {
          const l = g.listeners.find((x) => x.hostNames.some((h) => h.toLowerCase() === host));
          const c = l && g.sslCertificates.find((x) => x.name === l.sslCertificate);
          if (c?.thumbprint) return core.vault.material(c.thumbprint);
        }
        return undefined;
      });
    },
    reset() {
      core.reset();
      gateways.clear();
      chains.clear();
    },
  };
  return fake;
}

function splitPem(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

function secretOf(uri: string | undefined): { host: string; name: string; version: string | null } | null {
  if (!uri) return null;
  const u = new URL(uri);
  const parts = u.pathname.split('/').filter(Boolean);
  return { host: u.host.toLowerCase(), name: parts[1] as string, version: parts[2] ?? null };
}

function gatewayId(g: Pick<FakeGateway, 'subscriptionId' | 'resourceGroup' | 'name'>): string {
  return `/subscriptions/${g.subscriptionId}/resourceGroups/${g.resourceGroup}/providers/Microsoft.Network/applicationGateways/${g.name}`;
}

function gatewayJson(g: FakeGateway, chains: Map<string, string>) {
  const id = gatewayId(g);
  const etag = `W/"${g.etag.toString(16).padStart(8, '0')}-0000-4000-8000-000000000000"`;
  const ports = [...new Set(g.listeners.map((l) => l.port))];
  return {
    name: g.name,
    id,
    etag,
    type: 'Microsoft.Network/applicationGateways',
    location: g.location,
    properties: {
      provisioningState: g.provisioningState,
      resourceGuid: '00000000-0000-4000-8000-000000000001',
      sku: { name: 'Standard_v2', tier: 'Standard_v2', family: 'Generation_1' },
      operationalState: 'Running',
      sslCertificates: g.sslCertificates.map((c) => {
        const chain = c.thumbprint ? chains.get(c.thumbprint) : undefined;
        return {
          name: c.name,
          id: `${id}/sslCertificates/${c.name}`,
          etag,
          type: 'Microsoft.Network/applicationGateways/sslCertificates',
          properties: {
            provisioningState: g.provisioningState,
            ...(c.keyVaultSecretId ? { keyVaultSecretId: c.keyVaultSecretId } : {}),
            ...(chain ? { publicCertData: chain } : {}),
          },
        };
      }),
      frontendPorts: ports.map((port) => ({
        name: `port_${port}`,
        id: `${id}/frontendPorts/port_${port}`,
        etag,
        type: 'Microsoft.Network/applicationGateways/frontendPorts',
        properties: { provisioningState: g.provisioningState, port },
      })),
      httpListeners: g.listeners.map((l) => ({
        name: l.name,
        id: `${id}/httpListeners/${l.name}`,
        etag,
        type: 'Microsoft.Network/applicationGateways/httpListeners',
        properties: {
          provisioningState: g.provisioningState,
          frontendPort: { id: `${id}/frontendPorts/port_${l.port}` },
          protocol: 'Https',
          ...(l.hostNames.length === 1 ? { hostName: l.hostNames[0] } : { hostNames: l.hostNames }),
          sslCertificate: { id: `${id}/sslCertificates/${l.sslCertificate}` },
          requireServerNameIndication: true,
        },
      })),
    },
  };
}

function pkcs7(chain: string[]): string {
  const certs = new X509Certificates(chain.map((pem) => new PeculiarX509(pem)));
  return Buffer.from(certs.export('raw')).toString('base64');
}

/** The gateway as a PUT body describes it; certificates keep their loaded thumbprint until the update loads them. */
function parseGatewayBody(body: unknown, g: FakeGateway): Pick<FakeGateway, 'sslCertificates' | 'listeners'> {
  type SubRes = { name?: string; properties?: Record<string, unknown> };
  const p = (body as { properties?: { sslCertificates?: SubRes[]; httpListeners?: SubRes[] } } | null)
    ?.properties;
  if (!p || !Array.isArray(p.sslCertificates) || !Array.isArray(p.httpListeners)) {
    throw new ArmError(
      400,
      'InvalidRequestFormat',
      "The request must carry the gateway's sslCertificates and httpListeners.",
    );
  }
  const sslCertificates = p.sslCertificates.map((c): FakeSslCertificate => {
    const name = String(c.name ?? '');
    const kv = c.properties?.keyVaultSecretId;
    const had = g.sslCertificates.find((x) => x.name === name);
    if (!kv && !had)
      throw new ArmError(
        400,
        'InvalidRequestFormat',
        `sslCertificates '${name}' has neither data nor keyVaultSecretId.`,
      );
    return {
      name,
      keyVaultSecretId: typeof kv === 'string' ? kv : undefined,
      thumbprint: had?.thumbprint ?? null,
    };
  });
  const listeners = p.httpListeners.map((l): FakeListener => {
    const props = l.properties ?? {};
    const certId = (props.sslCertificate as { id?: string } | undefined)?.id ?? '';
    const certName = certId.split('/').pop() ?? '';
    if (!sslCertificates.some((c) => c.name === certName)) {
      throw new ArmError(
        400,
        'InvalidResourceReference',
        `Resource ${certId} referenced by resource ${gatewayId(g)}/httpListeners/${l.name} was not found.`,
      );
    }
    const hostNames =
      (props.hostNames as string[] | undefined) ?? (props.hostName ? [String(props.hostName)] : []);
    const had = g.listeners.find((x) => x.name === l.name);
    return { name: String(l.name), hostNames, sslCertificate: certName, port: had?.port ?? 443 };
  });
  return { sslCertificates, listeners };
}
