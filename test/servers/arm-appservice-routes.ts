/**
 * Request handling of the FAKE ARM App Service API (see arm-appservice.ts): path parsing, the Microsoft.Web
 * operations Certflow uses, App Service's validation of certificate imports and host name bindings, paging.
 */
import { X509Certificate } from 'node:crypto';
import { ArmError, noRoute, parseArmPath, resourceNotFound, type ArmCall } from './arm-fake';
import {
  bindingJson,
  certificateJson,
  describeX509,
  key,
  planArmId,
  planJson,
  region,
  siteJson,
  type ArmState,
  type FakeApp,
  type FakeBinding,
  type FakeCertificate,
  type SslState,
} from './arm-appservice-state';

export const ARM_API_VERSION = '2025-05-01';

export { ArmError };

/**
 * `/subscriptions/{s}[/resourceGroups/{rg}]/providers/Microsoft.Web/{type}/{name}/{type}/{name}…`: the chain
 * of types decides the handler; odd length means a collection.
 */
export function route(state: ArmState, call: ArmCall): unknown {
  const notFound = () => noRoute(call.url.pathname);
  const parsed = parseArmPath(call.seg, 'Microsoft.Web');
  if (!parsed) throw notFound();
  const { sub, rg, types, names } = parsed;
  const op = `${call.method} ${types}${parsed.collection ? '' : '/{}'}`;
  const list = (items: unknown[]) => call.page(items);
  const inScope = (x: { subscriptionId: string; resourceGroup: string }) =>
    x.subscriptionId.toLowerCase() === sub.toLowerCase() &&
    (rg === null || x.resourceGroup.toLowerCase() === rg.toLowerCase());

  if (op === 'GET sites')
    return list([...state.apps.values()].filter((a) => !a.slot && inScope(a)).map(siteJson));
  if (op === 'GET certificates')
    return list(
      [...state.certificates.values()].filter(inScope).map((c) => certificateJson(state.advanceImport(c))),
    );
  if (op === 'GET serverfarms') {
    return list(
      [...state.plans.entries()].filter(([k]) => inScopeId(k, sub, rg)).map(([, p]) => planJson(p.id, p)),
    );
  }
  if (rg === null) throw notFound();
  const [n0, n1, n2] = names as [string, string | undefined, string | undefined];
  switch (op) {
    case 'GET serverfarms/{}': {
      const p = state.plans.get(key(planArmId(sub, rg, n0)));
      if (!p) throw missing('serverfarms', n0, rg);
      return planJson(p.id, p);
    }
    case 'GET certificates/{}': {
      const c = state.certificates.get(key(sub, rg, n0));
      if (!c) throw missing('certificates', n0, rg);
      state.advanceImport(c);
      return certificateJson(c);
    }
    case 'PUT certificates/{}':
      return certificateJson(importCertificate(state, sub, rg, n0, call.body));
    case 'GET sites/{}':
      return siteJson(appOf(state, sub, rg, n0));
    case 'GET sites/slots':
      appOf(state, sub, rg, n0);
      return list([...state.apps.values()].filter((a) => a.slot && sameApp(a, sub, rg, n0)).map(siteJson));
    case 'GET sites/slots/{}':
      return siteJson(appOf(state, sub, rg, n0, n1));
    case 'GET sites/hostnamebindings':
    case 'GET sites/slots/hostnamebindings': {
      const app = appOf(state, sub, rg, n0, types.includes('slots') ? n1 : undefined);
      return list([...app.bindings.values()].map((b) => bindingJson(app, b)));
    }
    case 'GET sites/hostnamebindings/{}':
    case 'GET sites/slots/hostnamebindings/{}': {
      const slot = types.includes('slots');
      const app = appOf(state, sub, rg, n0, slot ? n1 : undefined);
      const host = (slot ? n2 : n1) as string;
      const b = app.bindings.get(host.toLowerCase());
      if (!b) throw missing('hostNameBindings', host, rg);
      return bindingJson(app, b);
    }
    case 'PUT sites/hostnamebindings/{}':
    case 'PUT sites/slots/hostnamebindings/{}': {
      const slot = types.includes('slots');
      const app = appOf(state, sub, rg, n0, slot ? n1 : undefined);
      return bindingJson(app, putBinding(state, app, (slot ? n2 : n1) as string, call.body));
    }
    default:
      throw notFound();
  }
}

const inScopeId = (k: string, sub: string, rg: string | null) =>
  k.startsWith(
    `/subscriptions/${sub.toLowerCase()}/resourcegroups/${rg === null ? '' : `${rg.toLowerCase()}/`}`,
  );

const sameApp = (a: FakeApp, sub: string, rg: string, site: string) =>
  key(a.subscriptionId, a.resourceGroup, a.site) === key(sub, rg, site);

/** ARM's own 404 for a resource that does not exist (also what a deleted site answers). */
const missing = (type: string, name: string, rg: string) =>
  resourceNotFound(`Microsoft.Web/${type}`, name, rg);

function appOf(state: ArmState, sub: string, rg: string, site: string, slot?: string): FakeApp {
  const app = state.app(sub, rg, site, slot ?? null);
  if (!app) throw missing(slot ? 'sites/slots' : 'sites', slot ? `${site}/${slot}` : site, rg);
  return app;
}

function props(body: unknown): Record<string, unknown> {
  const p = (body as { properties?: unknown } | null)?.properties;
  if (!p || typeof p !== 'object')
    throw new ArmError(400, 'BadRequest', "The request body must have a 'properties' object.");
  return p as Record<string, unknown>;
}

const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);

/**
 * Key Vault import, asynchronous as on real App Service: the PUT answers `keyVaultSecretStatus: Initialized` (a new
 * certificate already shows the secret's thumbprint, as the Azure CLI's recorded import does; a re-sent one keeps its
 * old thumbprint); App Service then reads the secret and, some reads later (`importPolls`), the certificate is
 * `Succeeded` with the new thumbprint, or carries a failed status (`failImport`) and keeps what it had.
 */
function importCertificate(state: ArmState, sub: string, rg: string, name: string, body: unknown) {
  const p = props(body);
  const location = str((body as { location?: unknown }).location);
  if (!location)
    throw new ArmError(400, 'LocationRequired', 'The location property is required for this definition.');
  const keyVaultId = str(p.keyVaultId);
  const secretName = str(p.keyVaultSecretName);
  if (!keyVaultId || !secretName) {
    throw new ArmError(
      400,
      'BadRequest',
      'This fake only imports certificates from Key Vault: keyVaultId and keyVaultSecretName are required.',
    );
  }
  const farmId = str(p.serverFarmId);
  const plan = farmId ? state.plans.get(key(farmId)) : undefined;
  if (!plan) throw new ArmError(400, 'BadRequest', `Server farm '${farmId ?? ''}' was not found.`);
  if (region(plan.location) !== region(location)) {
    throw new ArmError(
      400,
      'BadRequest',
      `Server farm '${plan.name}' is in '${plan.location}', not '${location}'.`,
    );
  }
  const secret = state.readSecret(keyVaultId, secretName);
  if (!secret) {
    throw new ArmError(
      400,
      'BadRequest',
      `The service does not have access to '${keyVaultId}' Key Vault or secret '${secretName}' does not exist.`,
    );
  }
  const dup = [...state.certificates.values()].find(
    (c) =>
      c.thumbprint === secret.thumbprint &&
      key(c.subscriptionId, c.resourceGroup) === key(sub, rg) &&
      region(c.location) === region(location) &&
      c.name.toLowerCase() !== name.toLowerCase(),
  );
  if (dup) {
    throw new ArmError(
      409,
      'Conflict',
      `Another certificate exists with same thumbprint ${secret.thumbprint} at location ${location} in the Resource Group ${rg}.`,
    );
  }
  const had = state.certificates.get(key(sub, rg, name));
  const cert: FakeCertificate = {
    ...(had ?? describeX509(secret.x509)),
    subscriptionId: sub,
    resourceGroup: rg,
    name: had?.name ?? name,
    location,
    serverFarmId: plan.id,
    keyVaultId,
    keyVaultSecretName: secretName,
    thumbprint: had?.thumbprint ?? secret.thumbprint,
    keyVaultSecretStatus: 'Initialized',
    importing: {
      thumbprint: secret.thumbprint,
      facts: describeX509(secret.x509),
      pollsLeft: state.importPolls,
      fail: state.importFailures.get(key(keyVaultId, secretName)),
    },
  };
  state.certificates.set(key(sub, rg, name), cert);
  return cert;
}

/** Re-binds an existing host name; App Service checks the thumbprint against the webspace's certificates. */
function putBinding(state: ArmState, app: FakeApp, hostName: string, body: unknown): FakeBinding {
  const p = props(body);
  const existing = app.bindings.get(hostName.toLowerCase());
  if (!existing) {
    throw new ArmError(
      400,
      'BadRequest',
      `A CNAME record pointing from ${hostName} to ${app.site}.azurewebsites.net was not found.`,
    );
  }
  const sslState = (str(p.sslState) ?? 'Disabled') as SslState;
  if (!['Disabled', 'SniEnabled', 'IpBasedEnabled'].includes(sslState)) {
    throw new ArmError(
      400,
      'BadRequest',
      `sslState '${sslState}' is not one of Disabled, SniEnabled, IpBasedEnabled.`,
    );
  }
  if (sslState === 'Disabled') {
    const b: FakeBinding = { hostName: existing.hostName, sslState };
    app.bindings.set(hostName.toLowerCase(), b);
    return b;
  }
  const thumbprint = str(p.thumbprint)?.toUpperCase();
  const cert = [...state.certificates.values()].find(
    (c) =>
      c.thumbprint === thumbprint &&
      key(c.subscriptionId, c.resourceGroup) === key(app.subscriptionId, app.resourceGroup) &&
      region(c.location) === region(app.location),
  );
  if (!thumbprint || !cert) {
    throw new ArmError(
      400,
      'BadRequest',
      `Certificate with thumbprint '${thumbprint ?? ''}' was not found in resource group '${app.resourceGroup}' at location '${app.location}'.`,
    );
  }
  const pem = state.material.get(thumbprint)?.certPem;
  if (pem && new X509Certificate(pem).checkHost(hostName) === undefined) {
    throw new ArmError(
      400,
      'BadRequest',
      `Hostname '${hostName}' does not match the certificate's subject alternative names.`,
    );
  }
  const b: FakeBinding = { hostName: existing.hostName, sslState, thumbprint };
  app.bindings.set(hostName.toLowerCase(), b);
  return b;
}
