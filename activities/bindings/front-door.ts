/**
 * Azure Front Door Standard/Premium binding target (`@azure/arm-cdn`). A customer-certificate secret that follows
 * "Latest" rotates within 24-72 hours by itself, and one pinned to a version never; this target does it now:
 * 1. discover every Front Door profile (sku `*_AzureFrontDoor`) in the configured scopes, its `CustomerCertificate`
 *    secrets whose `secretSource` is this certificate's Key Vault secret (by ARM id, case-insensitive), and the
 *    custom domains whose TLS settings use those secrets;
 * 2. re-write each secret (PUT, a long-running operation the SDK polls): a pinned `secretVersion` moves to the new
 *    version; a `useLatestVersion` secret is re-sent unchanged so that Front Door reads the latest version now;
 * 3. read back the secret's `thumbprint` (before/after per secret) and probe each custom domain live where
 *    `probe(hostName)` gives an endpoint (a domain whose validation is not `Approved` is named in the outcome);
 * 4. roll a pinned secret back to its previous version when a domain does not serve the new certificate.
 * Throttling (429, Retry-After) and 5xx are retried by the SDK, then classified; a profile or secret deleted
 * meanwhile is a `failed` outcome, never a throw.
 */
import {
  CdnManagementClient,
  type AFDDomain,
  type CdnManagementClientOptionalParams,
  type CustomerCertificateParameters,
  type Secret,
} from '@azure/arm-cdn';
import type { TokenCredential } from '@azure/identity';
import type { BindingContext, BindingOutcome, BindingTarget } from '../types';
import { normalizeThumbprint } from '../verify/probe';
import {
  classifyArmError,
  collect,
  listScopes,
  perSubscription,
  problemOutcomes,
  sameId,
  scopeOfId,
  secretNameOf,
  withProbes,
  type ArmScope,
  type ProbeEndpoint,
} from './arm-common';
import { mapLimit } from './concurrency';

export const FRONT_DOOR_ROLE =
  'CDN Profile Contributor on the profile (Microsoft.Cdn/profiles/secrets/read and write, customDomains/read)';

export interface FrontDoorTargetOptions {
  name: string;
  credential: TokenCredential;
  subscriptions: ArmScope[];
  /** ARM id of the Key Vault that holds the certificate (`/subscriptions/…/providers/Microsoft.KeyVault/vaults/<name>`). */
  keyVaultResourceId: (certificateId: string) => string;
  clientOptions?: CdnManagementClientOptionalParams;
  /** Secrets written at once (default 4). */
  concurrency?: number;
  probe?: (hostName: string) => ProbeEndpoint | undefined;
  /** How long a domain may take to serve the new certificate (default 120 000 ms: Front Door's edges vary). */
  probeSettleMs?: number;
  /** How often the write is polled when Azure sends no Retry-After (default 10 000 ms). */
  pollIntervalMs?: number;
}

interface Found {
  profile: string;
  resourceGroup: string;
  subscriptionId: string;
  secret: Secret & { parameters: CustomerCertificateParameters };
  domains: AFDDomain[];
}

export function createFrontDoorTarget(opts: FrontDoorTargetOptions): BindingTarget {
  const clientFor = perSubscription(
    (sub) => new CdnManagementClient(opts.credential, sub, opts.clientOptions),
  );

  return {
    kind: 'front-door',
    name: opts.name,
    async sync(ctx: BindingContext): Promise<BindingOutcome[]> {
      const source = `${opts.keyVaultResourceId(ctx.certificateId)}/secrets/${secretNameOf(ctx)}`;
      const listed = await listScopes(
        opts.subscriptions,
        ({ subscriptionId, resourceGroup }) =>
          resourceGroup === null
            ? clientFor(subscriptionId).profiles.list()
            : clientFor(subscriptionId).profiles.listByResourceGroup(resourceGroup),
        'Front Door profiles',
        FRONT_DOOR_ROLE,
      );
      const problems = [...listed.problems];
      const found: Found[] = [];
      const profiles = listed.items.filter((p) => /AzureFrontDoor$/i.test(p.sku?.name ?? ''));
      await mapLimit(profiles, 8, async (p) => {
        const scope = scopeOfId(p.id);
        if (!scope || !p.name) return;
        const client = clientFor(scope.subscriptionId);
        const [secrets, domains] = await Promise.all([
          collect(client.secrets.listByProfile(scope.resourceGroup, p.name)),
          collect(client.afdCustomDomains.listByProfile(scope.resourceGroup, p.name)),
        ]);
        if (!secrets.ok || !domains.ok) {
          const f = classifyArmError(
            secrets.ok ? (domains as { error: unknown }).error : secrets.error,
            FRONT_DOOR_ROLE,
          );
          problems.push({
            where: p.id as string,
            detail: `listing the profile's secrets and custom domains failed: ${f.text}`,
          });
          return;
        }
        for (const s of secrets.items) {
          const params = s.parameters as CustomerCertificateParameters | undefined;
          if (params?.type !== 'CustomerCertificate' || !sameId(params.secretSource?.id, source)) continue;
          found.push({
            profile: p.name,
            ...scope,
            secret: s as Found['secret'],
            domains: domains.items.filter((d) => sameId(d.tlsSettings?.secret?.id, s.id)),
          });
        }
      });
      const outcomes = await mapLimit(found, Math.max(1, opts.concurrency ?? 4), (f) =>
        syncSecret(f, ctx, opts, clientFor),
      );
      return [...problemOutcomes(opts.name, problems), ...outcomes];
    },
  };
}

async function syncSecret(
  f: Found,
  ctx: BindingContext,
  opts: FrontDoorTargetOptions,
  clientFor: (s: string) => CdnManagementClient,
): Promise<BindingOutcome> {
  const expected = normalizeThumbprint(ctx.thumbprint);
  const params = f.secret.parameters;
  const before = params.thumbprint ? normalizeThumbprint(params.thumbprint) : null;
  const latest = params.useLatestVersion === true;
  const where = `secret '${f.secret.name}' of Front Door profile '${f.profile}'`;
  const hosts = f.domains.flatMap((d) => (d.hostName ? [d.hostName] : []));
  const pending = f.domains.filter((d) => d.domainValidationState && d.domainValidationState !== 'Approved');
  const domainsText =
    (hosts.length ? ` (custom domains: ${hosts.join(', ')})` : ' (no custom domain uses it)') +
    (pending.length
      ? `; domain validation not approved for ${pending.map((d) => `${d.hostName} (${d.domainValidationState})`).join(', ')}`
      : '');
  const base = { target: opts.name, binding: f.secret.id ?? `${f.profile}/secrets/${f.secret.name}` };
  const settle = opts.probeSettleMs ?? 120_000;

  if (before === expected && (latest || params.secretVersion === ctx.version)) {
    const o: BindingOutcome = {
      ...base,
      before,
      after: expected,
      status: 'unchanged',
      detail: `${where} already on ${expected}${domainsText}`,
    };
    return withProbes(o, hosts, opts.probe, settle);
  }
  const write = async (version: string | undefined): Promise<Secret> =>
    clientFor(f.subscriptionId).secrets.beginCreateAndWait(
      f.resourceGroup,
      f.profile,
      f.secret.name as string,
      {
        parameters: {
          type: 'CustomerCertificate',
          secretSource: { id: params.secretSource.id },
          useLatestVersion: latest,
          ...(version ? { secretVersion: version } : {}),
        },
      },
      { updateIntervalInMs: opts.pollIntervalMs ?? 10_000 },
    );
  let written: Secret;
  try {
    written = await write(latest ? undefined : ctx.version);
  } catch (err) {
    const e = classifyArmError(err, FRONT_DOOR_ROLE);
    const detail =
      e.kind === 'gone'
        ? `${where} (or its profile) was deleted between discovery and bind (${e.text})`
        : `writing ${where} failed, it keeps ${before ?? 'its previous certificate'}: ${e.text}`;
    return { ...base, before, after: before, status: 'failed', detail };
  }
  const got = (written.parameters as CustomerCertificateParameters | undefined)?.thumbprint;
  const after = got ? normalizeThumbprint(got) : null;
  if (after !== expected) {
    return {
      ...base,
      before,
      after,
      status: 'failed',
      detail: `${where} holds ${after ?? '(nothing)'} after the write, expected ${expected}: check that the new version is enabled and Front Door may read the vault`,
    };
  }
  const how = latest ? 'reloaded (follows the latest version)' : `moved to version ${ctx.version}`;
  const o = await withProbes(
    {
      ...base,
      before,
      after,
      status: 'bound',
      detail: `${where} ${how}: ${before ?? '(none)'} → ${after}${domainsText}`,
    },
    hosts,
    opts.probe,
    settle,
  );
  if (o.status !== 'failed' || latest || !params.secretVersion) return o;
  // a pinned secret whose domains do not serve the new certificate: back to the version it had
  try {
    await write(params.secretVersion);
    return {
      ...o,
      status: 'rolled-back',
      after: before,
      detail: `${o.detail}; rolled back to version ${params.secretVersion}`,
    };
  } catch (err) {
    return {
      ...o,
      detail: `${o.detail}; rolling back failed: ${classifyArmError(err, FRONT_DOOR_ROLE).text}`,
    };
  }
}
