/**
 * A FAKE of the Azure Resource Manager App Service REST API (Microsoft.Web), in process, HTTPS on 127.0.0.1, on the
 * common fake ARM core (arm-fake.ts: bearer token, api-version, ResourceGroupNotFound for a resource group that does
 * not exist, paging with nextLink, faults, hooks, latency, request log, ETag and x-ms-ratelimit headers). It is a
 * fake because ARM cannot run outside Azure and no emulator of it exists. It follows the documented wire format
 * that the real `@azure/arm-appservice` client speaks, for the operations Certflow uses:
 * - GET  /subscriptions/{s}[/resourceGroups/{rg}]/providers/Microsoft.Web/sites                (paged: nextLink)
 * - GET  …/sites/{app}, …/sites/{app}/slots (paged), …/sites/{app}/slots/{slot}
 * - GET  …/sites/{app}[/slots/{slot}]/hostNameBindings (paged), GET|PUT …/hostNameBindings/{hostName}
 * - GET  /subscriptions/{s}[/resourceGroups/{rg}]/providers/Microsoft.Web/certificates         (paged)
 * - GET|PUT …/certificates/{name}   (Key Vault import: keyVaultId + keyVaultSecretName + serverFarmId), completed
 *   asynchronously: `keyVaultSecretStatus` `Initialized`, then `Succeeded` or a failed status (see the routes)
 * - GET  …/serverfarms, …/serverfarms/{name}
 * Like App Service it refuses a binding to a thumbprint that has no certificate in the app's webspace (resource
 * group + region) or whose certificate does not cover the host name, and a second certificate with the same
 * thumbprint in a webspace (409). JSON as recorded from the real service (Azure/azure-sdk-assets,
 * js/sdk/appservice/arm-appservice/recordings/node/web_test/recording_webapps_get_test.json): locations as display
 * names ("West Europe"), `hostNameSslStates` with explicit nulls, the 2025-05-01 site properties.
 * Still different from the real service, on purpose: imports complete after a number of reads instead of seconds;
 * a secret that does not exist at all is refused at the PUT (400); no RBAC; no IP-based SSL address allocation.
 * Test controls: seeding, Key Vault secret versions, import pace and failures, fault injection, one-shot hooks,
 * simulated latency, and a TLS front end that serves each host name's bound certificate by SNI (the live probe).
 * Request handling lives in arm-appservice-routes.ts, state and JSON shapes in arm-appservice-state.ts.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { ARM_API_VERSION, route } from './arm-appservice-routes';
import {
  createArmState,
  describeX509,
  key,
  planArmId,
  type ArmState,
  type FakeApp,
  type FakeBinding,
  type KeyMaterial,
  type SslState,
} from './arm-appservice-state';
import { startFakeArmCore, type ArmCall, type ArmFault, type ArmRequest, type FakeArmCore } from './arm-fake';

export { ARM_API_VERSION };
export type { ArmFault, ArmRequest };

export interface SeedBinding {
  hostName: string;
  thumbprint?: string;
  sslState?: SslState;
}

export interface FakeArm extends Pick<
  FakeArmCore,
  | 'url'
  | 'caPem'
  | 'credential'
  | 'clientOptions'
  | 'requests'
  | 'fault'
  | 'once'
  | 'setLatency'
  | 'setPageSize'
  | 'addResourceGroup'
  | 'deleteResourceGroup'
> {
  state: ArmState;
  requests: ArmRequest[];
  addPlan(p: { subscriptionId: string; resourceGroup: string; name: string; location: string }): string;
  addSite(s: {
    subscriptionId: string;
    resourceGroup: string;
    name: string;
    serverFarmId: string;
    bindings?: SeedBinding[];
    slots?: Record<string, SeedBinding[]>;
  }): void;
  addCertificate(c: {
    subscriptionId: string;
    resourceGroup: string;
    name: string;
    serverFarmId: string;
    material: KeyMaterial;
    keyVault?: { keyVaultId: string; secretName: string };
  }): string;
  /** Sets the current version of a Key Vault secret (what an import reads); returns its thumbprint. */
  setSecret(keyVaultId: string, secretName: string, m: KeyMaterial): string;
  binding(
    subscriptionId: string,
    resourceGroup: string,
    site: string,
    hostName: string,
    slot?: string,
  ): FakeBinding | undefined;
  deleteSite(subscriptionId: string, resourceGroup: string, site: string): void;
  /** Reads of a certificate before an import completes (default 1; 0: the first read after the PUT sees it done). */
  setImportPolls(n: number): void;
  /** Imports from this secret end with this keyVaultSecretStatus (e.g. AzureServiceUnauthorizedToAccessKeyVault). */
  failImport(keyVaultId: string, secretName: string, status: string): void;
  /** Clears state, faults, hooks and the request log. */
  reset(): void;
  /** A TLS server that serves, by SNI, the certificate bound to that host name; returns its port. */
  startFrontend(): Promise<number>;
  close(): Promise<void>;
}

export async function startFakeArm(): Promise<FakeArm> {
  const state = createArmState();
  const handle = (call: ArmCall) => {
    const body = route(state, call);
    // single resources carry an ETag header, as the recorded GET of a site does
    const single = call.method === 'GET' && body && typeof body === 'object' && 'id' in body;
    const etag = single
      ? `"${createHash('sha1').update(JSON.stringify(body)).digest('hex').slice(0, 15).toUpperCase()}"`
      : undefined;
    return etag ? { status: 200, body, headers: { etag } } : body;
  };
  const core = await startFakeArmCore({ apiVersions: [ARM_API_VERSION], handle, label: 'App Service' });
  const group = (sub: string, rg: string) => core.addResourceGroup(sub, rg);

  return {
    url: core.url,
    caPem: core.caPem,
    credential: core.credential,
    clientOptions: core.clientOptions,
    requests: core.requests,
    fault: core.fault,
    once: core.once,
    setLatency: core.setLatency,
    setPageSize: core.setPageSize,
    addResourceGroup: core.addResourceGroup,
    deleteResourceGroup: core.deleteResourceGroup,
    state,
    addPlan(p) {
      group(p.subscriptionId, p.resourceGroup);
      const id = planArmId(p.subscriptionId, p.resourceGroup, p.name);
      state.plans.set(key(id), { id, location: p.location, name: p.name });
      return id;
    },
    addSite(s) {
      group(s.subscriptionId, s.resourceGroup);
      const plan = state.plans.get(key(s.serverFarmId));
      if (!plan) throw new Error(`addSite ${s.name}: unknown plan ${s.serverFarmId}`);
      const make = (slot: string | null, seeds: SeedBinding[] = []): FakeApp => ({
        subscriptionId: s.subscriptionId,
        resourceGroup: s.resourceGroup,
        site: s.name,
        slot,
        location: plan.location,
        serverFarmId: plan.id,
        bindings: new Map(
          seeds.map((b) => [
            b.hostName.toLowerCase(),
            {
              hostName: b.hostName,
              sslState: b.sslState ?? (b.thumbprint ? 'SniEnabled' : 'Disabled'),
              thumbprint: b.thumbprint,
            },
          ]),
        ),
      });
      state.addApp(make(null, s.bindings));
      for (const [slot, seeds] of Object.entries(s.slots ?? {})) state.addApp(make(slot, seeds));
    },
    addCertificate(c) {
      group(c.subscriptionId, c.resourceGroup);
      const plan = state.plans.get(key(c.serverFarmId));
      if (!plan) throw new Error(`addCertificate ${c.name}: unknown plan ${c.serverFarmId}`);
      const thumbprint = state.rememberMaterial(c.material);
      const x509 = new X509Certificate(c.material.certPem);
      state.certificates.set(key(c.subscriptionId, c.resourceGroup, c.name), {
        subscriptionId: c.subscriptionId,
        resourceGroup: c.resourceGroup,
        name: c.name,
        location: plan.location,
        serverFarmId: plan.id,
        keyVaultId: c.keyVault?.keyVaultId,
        keyVaultSecretName: c.keyVault?.secretName,
        thumbprint,
        ...(c.keyVault ? { keyVaultSecretStatus: 'Succeeded' } : {}),
        ...describeX509(x509),
      });
      return thumbprint;
    },
    setSecret: (kv, name, m) => state.setSecret(kv, name, m),
    binding: (sub, rg, site, host, slot) =>
      state.app(sub, rg, site, slot ?? null)?.bindings.get(host.toLowerCase()),
    deleteSite: (sub, rg, site) => state.deleteSite(sub, rg, site),
    setImportPolls: (n) => void (state.importPolls = n),
    failImport: (kv, name, status) => void state.importFailures.set(key(kv, name), status),
    reset() {
      core.reset();
      state.clear();
    },
    startFrontend: () => core.startFrontend((host) => frontendMaterial(state, host)),
    close: () => core.close(),
  };
}

/** The App Service front end as a client sees it: the certificate bound to that host name (by SNI). */
function frontendMaterial(state: ArmState, host: string): KeyMaterial | undefined {
  const bound = [...state.apps.values()].map((a) => a.bindings.get(host)).find((b) => b?.thumbprint);
  return bound?.thumbprint ? state.material.get(bound.thumbprint.toUpperCase()) : undefined;
}
