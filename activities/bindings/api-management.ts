/**
 * Azure API Management binding target (`@azure/arm-apimanagement`). API Management refreshes Key Vault-backed
 * certificates only every 4 hours; this target does it now:
 * 1. discover every service in the configured scopes with custom domains (hostname configurations) whose
 *    `keyVaultId` is this certificate's Key Vault secret (versioned or versionless), or that serve its previous
 *    thumbprint from an uploaded certificate; and its certificates (`service/certificates`, used by backends and
 *    policies) whose `keyVault.secretIdentifier` is that secret;
 * 2. per service, one update of `hostnameConfigurations` (PATCH, a long-running operation the SDK polls: it
 *    takes minutes on Azure): versioned ids move to the new version, versionless ones are re-sent, which makes
 *    the service load the latest version now; certificates are refreshed (`refreshSecret`) or, when versioned,
 *    re-pointed at the new version;
 * 3. read back `certificate.thumbprint` of each custom domain (before/after) and probe it live where
 *    `probe(hostName)` gives an endpoint;
 * 4. roll a versioned custom domain back to its previous version when it does not serve the new certificate.
 * An uploaded certificate on the previous thumbprint is reported `failed` (Certflow never moves a private key
 * out of the vault). Throttling and 5xx are retried by the SDK, then classified; a service deleted meanwhile is
 * a `failed` outcome, never a throw.
 */
import {
  ApiManagementClient,
  type ApiManagementClientOptionalParams,
  type ApiManagementServiceResource,
  type CertificateContract,
  type HostnameConfiguration,
} from '@azure/arm-apimanagement';
import type { TokenCredential } from '@azure/identity';
import type { BindingContext, BindingOutcome, BindingTarget } from '../types';
import { normalizeThumbprint } from '../verify/probe';
import {
  classifyArmError,
  collect,
  listScopes,
  perSubscription,
  parseSecretUri,
  problemOutcomes,
  sameSecret,
  sameThumbprint,
  scopeOfId,
  secretUriWithVersion,
  withProbes,
  type ArmScope,
  type ProbeEndpoint,
} from './arm-common';
import { mapLimit } from './concurrency';

export const API_MANAGEMENT_ROLE =
  'API Management Service Contributor on the service (Microsoft.ApiManagement/service/read and write, certificates/read, write and refreshSecret/action)';

export interface ApiManagementTargetOptions {
  name: string;
  credential: TokenCredential;
  subscriptions: ArmScope[];
  clientOptions?: ApiManagementClientOptionalParams;
  /** Services updated at once (default 4). */
  concurrency?: number;
  probe?: (hostName: string) => ProbeEndpoint | undefined;
  /** How long a custom domain may take to serve the new certificate (default 60 000 ms). */
  probeSettleMs?: number;
  /** How often the update is polled when Azure sends no Retry-After (default 10 000 ms). */
  pollIntervalMs?: number;
}

interface DomainMatch {
  h: HostnameConfiguration;
  before: string | null;
  /** The keyVaultId to send; null: uploaded, not ours to change. */
  next: string | null;
}

export function createApiManagementTarget(opts: ApiManagementTargetOptions): BindingTarget {
  const clientFor = perSubscription(
    (sub) => new ApiManagementClient(opts.credential, sub, opts.clientOptions),
  );

  return {
    kind: 'api-management',
    name: opts.name,
    async sync(ctx: BindingContext): Promise<BindingOutcome[]> {
      const listed = await listScopes(
        opts.subscriptions,
        ({ subscriptionId, resourceGroup }) =>
          resourceGroup === null
            ? clientFor(subscriptionId).apiManagementService.list()
            : clientFor(subscriptionId).apiManagementService.listByResourceGroup(resourceGroup),
        'API Management services',
        API_MANAGEMENT_ROLE,
      );
      const perService = await mapLimit(listed.items, Math.max(1, opts.concurrency ?? 4), (svc) =>
        syncService(svc, ctx, opts, clientFor),
      );
      return [...problemOutcomes(opts.name, listed.problems), ...perService.flat()];
    },
  };
}

async function syncService(
  svc: ApiManagementServiceResource,
  ctx: BindingContext,
  opts: ApiManagementTargetOptions,
  clientFor: (s: string) => ApiManagementClient,
): Promise<BindingOutcome[]> {
  const scope = scopeOfId(svc.id);
  const name = svc.name;
  if (!scope || !name) return [];
  const secret = parseSecretUri(ctx.secretId);
  const expected = normalizeThumbprint(ctx.thumbprint);
  const client = clientFor(scope.subscriptionId);
  const settle = opts.probeSettleMs ?? 60_000;

  const domains: DomainMatch[] = [];
  for (const h of svc.hostnameConfigurations ?? []) {
    const ref = parseSecretUri(h.keyVaultId);
    const before = h.certificate?.thumbprint ? normalizeThumbprint(h.certificate.thumbprint) : null;
    if (h.keyVaultId) {
      if (!ref || !sameSecret(ref, secret)) continue;
      domains.push({
        h,
        before,
        next: ref.version ? secretUriWithVersion(h.keyVaultId, ctx.version) : h.keyVaultId,
      });
    } else if (sameThumbprint(before, ctx.previousThumbprint)) domains.push({ h, before, next: null });
  }
  const certs = await collect(client.certificate.listByService(scope.resourceGroup, name));
  const outcomes: BindingOutcome[] = [];
  if (!certs.ok) {
    outcomes.push({
      target: opts.name,
      binding: `${svc.id}/certificates`,
      before: null,
      after: null,
      status: 'failed',
      detail: `listing the certificates of API Management service '${name}' failed: ${classifyArmError(certs.error, API_MANAGEMENT_ROLE).text}`,
    });
  }
  const linked = certs.ok
    ? certs.items.filter((c) => sameSecret(parseSecretUri(c.keyVault?.secretIdentifier), secret))
    : [];

  const domainId = (h: HostnameConfiguration) => `${svc.id}/hostnameConfigurations/${h.type}/${h.hostName}`;
  const where = (h: HostnameConfiguration) =>
    `custom domain ${h.hostName} (${h.type}) of API Management service '${name}'`;
  const domainOutcome = (m: DomainMatch, o: Omit<BindingOutcome, 'target' | 'binding'>): BindingOutcome => ({
    target: opts.name,
    binding: domainId(m.h),
    ...o,
  });

  const todo: DomainMatch[] = [];
  const unchanged: Promise<BindingOutcome>[] = [];
  for (const m of domains) {
    if (m.next === null) {
      outcomes.push(
        domainOutcome(m, {
          before: m.before,
          after: m.before,
          status: 'failed',
          detail: `${where(m.h)} serves the previous thumbprint ${m.before} from an uploaded certificate: Certflow does not upload private keys; reference the Key Vault secret ${ctx.secretId.replace(/\/[^/]+$/, '')} instead`,
        }),
      );
    } else if (m.before === expected && m.next === m.h.keyVaultId) {
      unchanged.push(
        withProbes(
          domainOutcome(m, {
            before: m.before,
            after: expected,
            status: 'unchanged',
            detail: `${where(m.h)} already serves ${expected}`,
          }),
          [m.h.hostName],
          opts.probe,
          settle,
        ),
      );
    } else todo.push(m);
  }
  outcomes.push(...(await Promise.all(unchanged)));

  /** One update of every hostname configuration, with `refs` (by host name and type) replaced. */
  const update = async (refs: Map<HostnameConfiguration, string>) => {
    const current = await client.apiManagementService.get(scope.resourceGroup, name);
    const hostnameConfigurations = (current.hostnameConfigurations ?? []).map((h): HostnameConfiguration => {
      const mine = [...refs.keys()].find(
        (x) => x.type === h.type && x.hostName.toLowerCase() === h.hostName.toLowerCase(),
      );
      const { certificate: _certificate, ...rest } = h; // read-only: the service fills it from what it loaded
      return mine ? { ...rest, keyVaultId: refs.get(mine) } : rest;
    });
    return client.apiManagementService.beginUpdateAndWait(
      scope.resourceGroup,
      name,
      { hostnameConfigurations },
      {
        updateIntervalInMs: opts.pollIntervalMs ?? 10_000,
      },
    );
  };
  const loaded = (s: ApiManagementServiceResource, h: HostnameConfiguration) => {
    const got = s.hostnameConfigurations?.find(
      (x) => x.type === h.type && x.hostName.toLowerCase() === h.hostName.toLowerCase(),
    );
    return got?.certificate?.thumbprint ? normalizeThumbprint(got.certificate.thumbprint) : null;
  };

  if (todo.length) {
    let updated: ApiManagementServiceResource | undefined;
    try {
      updated = await update(new Map(todo.map((m) => [m.h, m.next as string])));
    } catch (err) {
      const f = classifyArmError(err, API_MANAGEMENT_ROLE);
      const detail =
        f.kind === 'gone'
          ? `API Management service '${name}' in resource group '${scope.resourceGroup}' was deleted between discovery and bind (${f.text})`
          : `updating the custom domains of API Management service '${name}' failed, they keep their previous certificates: ${f.text}`;
      outcomes.push(
        ...todo.map((m) => domainOutcome(m, { before: m.before, after: m.before, status: 'failed', detail })),
      );
    }
    if (updated) {
      const done = await Promise.all(
        todo.map(async (m) => {
          const after = loaded(updated as ApiManagementServiceResource, m.h);
          if (after !== expected) {
            return domainOutcome(m, {
              before: m.before,
              after,
              status: 'failed',
              detail: `${where(m.h)} loaded ${after ?? '(nothing)'} from ${m.next}, expected ${expected}: check that the new version is enabled and the service's identity may get secrets`,
            });
          }
          const how =
            m.next === m.h.keyVaultId
              ? 'reloaded from its versionless Key Vault id'
              : `moved to version ${ctx.version}`;
          return withProbes(
            domainOutcome(m, {
              before: m.before,
              after,
              status: 'bound',
              detail: `${where(m.h)} ${how}: ${m.before ?? '(none)'} → ${after}`,
            }),
            [m.h.hostName],
            opts.probe,
            settle,
          );
        }),
      );
      const back = todo.filter(
        (m, i) => done[i]?.status === 'failed' && done[i]?.after === expected && m.next !== m.h.keyVaultId,
      );
      if (back.length) {
        try {
          await update(new Map(back.map((m) => [m.h, m.h.keyVaultId as string])));
          for (const [i, m] of todo.entries()) {
            const o = done[i] as BindingOutcome;
            if (back.includes(m))
              done[i] = {
                ...o,
                status: 'rolled-back',
                after: m.before,
                detail: `${o.detail}; rolled back to ${m.h.keyVaultId}`,
              };
          }
        } catch (err) {
          for (const [i, m] of todo.entries()) {
            const o = done[i] as BindingOutcome;
            if (back.includes(m))
              done[i] = {
                ...o,
                detail: `${o.detail}; rolling back failed: ${classifyArmError(err, API_MANAGEMENT_ROLE).text}`,
              };
          }
        }
      }
      outcomes.push(...done);
    }
  }

  for (const c of linked) outcomes.push(await syncCertificate(c, svc, scope, ctx, opts, client));
  return outcomes;
}

/** A service certificate backed by the Key Vault secret: refreshed (versionless) or re-pointed (versioned). */
async function syncCertificate(
  c: CertificateContract,
  svc: ApiManagementServiceResource,
  scope: { subscriptionId: string; resourceGroup: string },
  ctx: BindingContext,
  opts: ApiManagementTargetOptions,
  client: ApiManagementClient,
): Promise<BindingOutcome> {
  const expected = normalizeThumbprint(ctx.thumbprint);
  const before = c.thumbprint ? normalizeThumbprint(c.thumbprint) : null;
  const id = c.name as string;
  const uri = c.keyVault?.secretIdentifier as string;
  const versioned = parseSecretUri(uri)?.version;
  const base = { target: opts.name, binding: c.id ?? `${svc.id}/certificates/${id}` };
  const where = `certificate '${id}' of API Management service '${svc.name}'`;
  if (before === expected && (!versioned || versioned === ctx.version))
    return {
      ...base,
      before,
      after: expected,
      status: 'unchanged',
      detail: `${where} already holds ${expected}`,
    };
  try {
    const got = versioned
      ? await client.certificate.createOrUpdate(scope.resourceGroup, svc.name as string, id, {
          keyVault: {
            secretIdentifier: secretUriWithVersion(uri, ctx.version),
            identityClientId: c.keyVault?.identityClientId,
          },
        })
      : await client.certificate.refreshSecret(scope.resourceGroup, svc.name as string, id);
    const after = got.thumbprint ? normalizeThumbprint(got.thumbprint) : null;
    if (after !== expected) {
      return {
        ...base,
        before,
        after,
        status: 'failed',
        detail:
          `${where} holds ${after ?? '(nothing)'} after the refresh, expected ${expected} (Key Vault status: ${got.keyVault?.lastStatus?.code ?? '?'} ${got.keyVault?.lastStatus?.message ?? ''})`.trim(),
      };
    }
    const how = versioned ? `moved to version ${ctx.version}` : 'refreshed from Key Vault';
    return {
      ...base,
      before,
      after,
      status: 'bound',
      detail: `${where} ${how}: ${before ?? '(none)'} → ${after}`,
    };
  } catch (err) {
    const f = classifyArmError(err, API_MANAGEMENT_ROLE);
    const detail =
      f.kind === 'gone'
        ? `${where} was deleted between discovery and bind (${f.text})`
        : `refreshing ${where} failed: ${f.text}`;
    return { ...base, before, after: before, status: 'failed', detail };
  }
}
