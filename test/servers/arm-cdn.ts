/**
 * A FAKE of Azure Resource Manager's Front Door Standard/Premium API (Microsoft.Cdn, api-version 2024-02-01, what
 * `@azure/arm-cdn` 9.1 speaks), on the common fake ARM core (arm-fake.ts):
 * - GET  /subscriptions/{s}[/resourceGroups/{rg}]/providers/Microsoft.Cdn/profiles                 (paged)
 * - GET  …/profiles/{p}/secrets (paged), GET …/secrets/{name}
 * - PUT  …/profiles/{p}/secrets/{name}: a long-running operation (201, Azure-AsyncOperation + Location). A
 *   `CustomerCertificate` secret names a Key Vault secret by ARM id (`secretSource.id`) and either a
 *   `secretVersion` or `useLatestVersion: true`; Front Door reads that version (or the latest) when the secret is
 *   written and fills the read-only `thumbprint`, `subject`, `expirationDate`, `subjectAlternativeNames`,
 *   `certificateAuthority`. A version that cannot be read fails the operation and the secret keeps what it had.
 * - GET  …/profiles/{p}/customDomains (paged), GET …/customDomains/{name}: host name, `tlsSettings.secret.id`,
 *   `domainValidationState`, `deploymentStatus`.
 * The Key Vault secret `/subscriptions/…/vaults/{vault}/secrets/{name}` is read from the core's secrets under
 * `{vault}.vault.azure.net`. A TLS front end serves each custom domain's certificate by SNI.
 * Not modelled: endpoints, routes, rule sets, the managed-certificate flow, domain validation itself, the
 * 24-72 h auto-rotation of `useLatestVersion` secrets (only a write reloads a secret here).
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
} from './arm-fake';

export const CDN_API_VERSION = '2024-02-01';

export interface FakeAfdSecret {
  name: string;
  /** ARM id of the Key Vault secret. */
  secretSource: string;
  secretVersion?: string;
  useLatestVersion: boolean;
  thumbprint: string | null;
}

export interface FakeAfdDomain {
  name: string;
  hostName: string;
  secret: string | null;
  domainValidationState: string;
}

export interface FakeProfile {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  sku: string;
  secrets: Map<string, FakeAfdSecret>;
  domains: Map<string, FakeAfdDomain>;
}

export interface FakeFrontDoor extends FakeArmCore {
  profiles: Map<string, FakeProfile>;
  addProfile(p: {
    subscriptionId: string;
    resourceGroup: string;
    name: string;
    sku?: string;
    secrets: Array<{
      name: string;
      secretSource: string;
      secretVersion?: string;
      useLatestVersion?: boolean;
    }>;
    domains: Array<{ name: string; hostName: string; secret: string | null; domainValidationState?: string }>;
  }): Promise<FakeProfile>;
  profile(subscriptionId: string, resourceGroup: string, name: string): FakeProfile | undefined;
  startDomains(): Promise<number>;
}

const k = (...p: string[]) => p.join('/').toLowerCase();

/** `/subscriptions/…/providers/Microsoft.KeyVault/vaults/{vault}/secrets/{name}` → vault host and name. */
export function vaultSecretOf(armId: string): { host: string; name: string } | null {
  const m = /\/providers\/Microsoft\.KeyVault\/vaults\/([^/]+)\/secrets\/([^/]+)$/i.exec(armId);
  return m ? { host: `${m[1]}.vault.azure.net`.toLowerCase(), name: m[2] as string } : null;
}

export async function startFakeFrontDoor(): Promise<FakeFrontDoor> {
  const profiles = new Map<string, FakeProfile>();
  const facts = new Map<string, X509Certificate>(); // thumbprint → leaf

  const load = async (core: FakeArmCore, s: FakeAfdSecret): Promise<string> => {
    const ref = vaultSecretOf(s.secretSource);
    const v =
      ref &&
      (await core.vault.read(ref.host, ref.name, s.useLatestVersion ? null : (s.secretVersion ?? null)));
    if (!v?.enabled) {
      throw new ArmError(
        400,
        'BadRequest',
        `The secret '${s.secretSource}'${s.secretVersion ? ` version '${s.secretVersion}'` : ''} could not be accessed: check that it exists and that Front Door's identity may read it.`,
      );
    }
    facts.set(v.thumbprint, new X509Certificate(v.certPem));
    return v.thumbprint;
  };

  const handle = async (call: ArmCall) => {
    const top = topLevel(call, 'Microsoft.Cdn', 'profiles', profiles, profileJson);
    if ('listed' in top) return top.listed;
    const { path: p, item: profile } = top;
    const { rg, types, names } = p;
    if (types === 'profiles' && call.method === 'GET') return profileJson(profile);
    if (types === 'profiles/secrets') {
      if (p.collection)
        return call.page([...profile.secrets.values()].map((s) => secretJson(profile, s, facts)));
      const name = names[1] as string;
      const s = profile.secrets.get(name.toLowerCase());
      if (call.method === 'GET') {
        if (!s) throw resourceNotFound('Microsoft.Cdn/profiles/secrets', `${profile.name}/${name}`, rg);
        return secretJson(profile, s, facts);
      }
      if (call.method === 'PUT') {
        const next = parseSecret(name, call.body, s);
        return call.lro({
          status: 201,
          initial: secretJson(profile, { ...next, thumbprint: s?.thumbprint ?? null }, facts, 'Updating'),
          done: async () => {
            next.thumbprint = await load(fake, next);
            profile.secrets.set(name.toLowerCase(), next);
            return secretJson(profile, next, facts);
          },
        });
      }
    }
    if (types === 'profiles/customdomains' && call.method === 'GET') {
      if (p.collection) return call.page([...profile.domains.values()].map((d) => domainJson(profile, d)));
      const d = profile.domains.get((names[1] as string).toLowerCase());
      if (!d)
        throw resourceNotFound('Microsoft.Cdn/profiles/customDomains', `${profile.name}/${names[1]}`, rg);
      return domainJson(profile, d);
    }
    throw noRoute(call.url.pathname);
  };

  const core = await startFakeArmCore({ apiVersions: [CDN_API_VERSION], handle, label: 'front door' });
  const fake: FakeFrontDoor = {
    ...core,
    profiles,
    async addProfile(s) {
      core.addResourceGroup(s.subscriptionId, s.resourceGroup);
      const profile: FakeProfile = {
        subscriptionId: s.subscriptionId,
        resourceGroup: s.resourceGroup,
        name: s.name,
        sku: s.sku ?? 'Premium_AzureFrontDoor',
        secrets: new Map(),
        domains: new Map(),
      };
      for (const x of s.secrets) {
        const secret: FakeAfdSecret = { useLatestVersion: false, ...x, thumbprint: null };
        secret.thumbprint = await load(core, secret);
        profile.secrets.set(x.name.toLowerCase(), secret);
      }
      for (const d of s.domains)
        profile.domains.set(d.name.toLowerCase(), { domainValidationState: 'Approved', ...d });
      profiles.set(k(s.subscriptionId, s.resourceGroup, s.name), profile);
      return profile;
    },
    profile: (sub, rg, name) => profiles.get(k(sub, rg, name)),
    startDomains() {
      return core.startFrontend((host) => {
        for (const p of profiles.values()) {
          const d = [...p.domains.values()].find((x) => x.hostName.toLowerCase() === host);
          const s = d?.secret ? p.secrets.get(d.secret.toLowerCase()) : undefined;
          if (s?.thumbprint) return core.vault.material(s.thumbprint);
        }
        return undefined;
      });
    },
    reset() {
      core.reset();
      profiles.clear();
      facts.clear();
    },
  };
  return fake;
}

const profileId = (p: FakeProfile) =>
  `/subscriptions/${p.subscriptionId}/resourceGroups/${p.resourceGroup}/providers/Microsoft.Cdn/profiles/${p.name}`;

function profileJson(p: FakeProfile) {
  return {
    id: profileId(p),
    type: 'Microsoft.Cdn/profiles',
    name: p.name,
    location: 'Global',
    kind: 'frontdoor',
    sku: { name: p.sku },
    properties: {
      originResponseTimeoutSeconds: 60,
      frontDoorId: '00000000-0000-4000-8000-0000000000fd',
      provisioningState: 'Succeeded',
      resourceState: 'Active',
    },
  };
}

function secretJson(
  p: FakeProfile,
  s: FakeAfdSecret,
  facts: Map<string, X509Certificate>,
  state = 'Succeeded',
) {
  const x = s.thumbprint ? facts.get(s.thumbprint) : undefined;
  return {
    id: `${profileId(p)}/secrets/${s.name}`,
    type: 'Microsoft.Cdn/profiles/secrets',
    name: s.name,
    properties: {
      parameters: {
        type: 'CustomerCertificate',
        secretSource: { id: s.secretSource },
        secretVersion: s.secretVersion ?? '',
        useLatestVersion: s.useLatestVersion,
        ...(x
          ? {
              subject: /CN=([^\n,]+)/.exec(x.subject)?.[1] ?? x.subject,
              expirationDate: new Date(x.validTo).toISOString(),
              certificateAuthority: /CN=([^\n,]+)/.exec(x.issuer)?.[1] ?? x.issuer,
              subjectAlternativeNames: (x.subjectAltName ?? '')
                .split(', ')
                .filter((n) => n.startsWith('DNS:'))
                .map((n) => n.slice(4)),
              thumbprint: s.thumbprint,
            }
          : {}),
      },
      provisioningState: state,
      deploymentStatus: 'NotStarted',
      profileName: p.name,
    },
  };
}

function domainJson(p: FakeProfile, d: FakeAfdDomain) {
  return {
    id: `${profileId(p)}/customDomains/${d.name}`,
    type: 'Microsoft.Cdn/profiles/customDomains',
    name: d.name,
    properties: {
      hostName: d.hostName,
      tlsSettings: {
        certificateType: 'CustomerCertificate',
        minimumTlsVersion: 'TLS12',
        ...(d.secret ? { secret: { id: `${profileId(p)}/secrets/${d.secret}` } } : {}),
      },
      validationProperties: { validationToken: 'fake-token', expirationDate: '2030-01-01T00:00:00Z' },
      domainValidationState: d.domainValidationState,
      provisioningState: 'Succeeded',
      deploymentStatus: 'NotStarted',
      profileName: p.name,
    },
  };
}

function parseSecret(name: string, body: unknown, had: FakeAfdSecret | undefined): FakeAfdSecret {
  const params = (body as { properties?: { parameters?: Record<string, unknown> } } | null)?.properties
    ?.parameters;
  const source = (params?.secretSource as { id?: unknown } | undefined)?.id;
  if (params?.type !== 'CustomerCertificate' || typeof source !== 'string') {
    throw new ArmError(
      400,
      'BadRequest',
      "This fake only writes secrets of type 'CustomerCertificate' with a secretSource id.",
    );
  }
  const useLatestVersion = params.useLatestVersion === true;
  const version =
    typeof params.secretVersion === 'string' && params.secretVersion ? params.secretVersion : undefined;
  if (!useLatestVersion && !version)
    throw new ArmError(400, 'BadRequest', 'secretVersion is required unless useLatestVersion is true.');
  return {
    name: had?.name ?? name,
    secretSource: source,
    secretVersion: version,
    useLatestVersion,
    thumbprint: null,
  };
}
