/**
 * Azure Application Gateway binding target (`@azure/arm-network`). A gateway loads a Key Vault certificate when
 * it is configured and then polls versionless secret ids only every 4 hours; this target does it now:
 * 1. discover every gateway in the configured scopes whose SSL certificates reference this certificate's Key Vault
 *    secret (versioned or versionless id, compared by vault host and name) or serve its previous thumbprint
 *    (read from `publicCertData`, the PKCS#7 the gateway returns);
 * 2. per gateway, one update (PUT, a long-running operation the SDK polls): a versioned reference is pointed at the
 *    new version, a versionless one is re-sent as it is, which makes the gateway load the latest version now;
 * 3. read back what the gateway loaded (before/after per SSL certificate) and probe each listener host name
 *    that uses it, live, where `probe(hostName)` gives an endpoint;
 * 4. roll back a versioned reference whose listeners do not serve the new certificate (the previous version is
 *    put back); a versionless reference cannot be rolled back (the vault's latest is the new version).
 * An uploaded certificate (PFX in the gateway) that carries the previous thumbprint is reported `failed`, not
 * replaced: Certflow never moves a private key out of the vault; point it at the Key Vault secret instead.
 * Throttling (429, Retry-After) and 5xx are retried by the SDK, then classified; a gateway deleted meanwhile is a
 * `failed` outcome, never a throw.
 */
import {
  NetworkManagementClient,
  type ApplicationGateway,
  type ApplicationGatewaySslCertificate,
  type NetworkManagementClientOptionalParams,
} from '@azure/arm-network';
import type { TokenCredential } from '@azure/identity';
import type { BindingContext, BindingOutcome, BindingTarget } from '../types';
import { normalizeThumbprint } from '../verify/probe';
import {
  classifyArmError,
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
import { leafThumbprintOfBase64 } from './pkcs7';

export const APP_GATEWAY_ROLE =
  'Network Contributor on the gateway (or a custom role with Microsoft.Network/applicationGateways/read and write), and Managed Identity Operator on its user-assigned identity';

export interface AppGatewayTargetOptions {
  name: string;
  credential: TokenCredential;
  subscriptions: ArmScope[];
  /** Passed to NetworkManagementClient (endpoint, tlsOptions, retryOptions, …). */
  clientOptions?: NetworkManagementClientOptionalParams;
  /** Gateways updated at once (default 4: each update takes minutes on Azure). */
  concurrency?: number;
  /** Where to check a listener host name live; undefined skips it. */
  probe?: (hostName: string) => ProbeEndpoint | undefined;
  /** How long a listener may take to serve the new certificate (default 60 000 ms). */
  probeSettleMs?: number;
  /** How often the update operation is polled when Azure sends no Retry-After (default 10 000 ms). */
  pollIntervalMs?: number;
}

interface Match {
  cert: ApplicationGatewaySslCertificate;
  /** Listener host names that use this certificate. */
  hosts: string[];
  before: string | null;
  /** The reference to send, or null when the certificate cannot be bound by us (uploaded). */
  next: string | null;
}

export function createAppGatewayTarget(opts: AppGatewayTargetOptions): BindingTarget {
  const clientFor = perSubscription(
    (sub) => new NetworkManagementClient(opts.credential, sub, opts.clientOptions),
  );

  return {
    kind: 'app-gateway',
    name: opts.name,
    async sync(ctx: BindingContext): Promise<BindingOutcome[]> {
      const secret = parseSecretUri(ctx.secretId);
      const listed = await listScopes(
        opts.subscriptions,
        ({ subscriptionId, resourceGroup }) =>
          resourceGroup === null
            ? clientFor(subscriptionId).applicationGateways.listAll()
            : clientFor(subscriptionId).applicationGateways.list(resourceGroup),
        'application gateways',
        APP_GATEWAY_ROLE,
      );
      const found = listed.items
        .map((g) => ({ gateway: g, matches: matchesOf(g, ctx, secret) }))
        .filter((x) => x.matches.length > 0);
      const perGateway = await mapLimit(found, Math.max(1, opts.concurrency ?? 4), (x) =>
        syncGateway(x.gateway, x.matches, ctx, opts, clientFor),
      );
      return [...problemOutcomes(opts.name, listed.problems), ...perGateway.flat()];
    },
  };
}

function matchesOf(
  g: ApplicationGateway,
  ctx: BindingContext,
  secret: ReturnType<typeof parseSecretUri>,
): Match[] {
  const out: Match[] = [];
  for (const cert of g.sslCertificates ?? []) {
    const ref = parseSecretUri(cert.keyVaultSecretId);
    const before = cert.publicCertData ? leafThumbprintOfBase64(cert.publicCertData) : null;
    let next: string | null;
    if (cert.keyVaultSecretId) {
      // a reference to another secret is not ours to change, whatever it serves
      if (!ref || !sameSecret(ref, secret)) continue;
      next = ref.version ? secretUriWithVersion(cert.keyVaultSecretId, ctx.version) : cert.keyVaultSecretId;
    } else {
      if (!sameThumbprint(before, ctx.previousThumbprint)) continue;
      next = null;
    }
    const hosts = (g.httpListeners ?? [])
      .filter((l) => l.sslCertificate?.id?.toLowerCase() === cert.id?.toLowerCase())
      .flatMap((l) => (l.hostNames?.length ? l.hostNames : l.hostName ? [l.hostName] : []));
    out.push({ cert, hosts, before, next });
  }
  return out;
}

async function syncGateway(
  g: ApplicationGateway,
  matches: Match[],
  ctx: BindingContext,
  opts: AppGatewayTargetOptions,
  clientFor: (s: string) => NetworkManagementClient,
): Promise<BindingOutcome[]> {
  const expected = normalizeThumbprint(ctx.thumbprint);
  const scope = scopeOfId(g.id);
  const gwName = g.name ?? '?';
  const outcome = (m: Match, o: Omit<BindingOutcome, 'target' | 'binding'>): BindingOutcome => ({
    target: opts.name,
    binding: m.cert.id ?? `${g.id}/sslCertificates/${m.cert.name}`,
    ...o,
  });
  const where = (m: Match) => `SSL certificate '${m.cert.name}' of application gateway '${gwName}'`;
  const hostsText = (m: Match) =>
    m.hosts.length ? ` (listeners: ${m.hosts.join(', ')})` : ' (no listener uses it)';

  const probed = (o: BindingOutcome, m: Match) =>
    withProbes(o, m.hosts, opts.probe, opts.probeSettleMs ?? 60_000);
  const settled: BindingOutcome[] = [];
  const unchanged: Promise<BindingOutcome>[] = [];
  const todo: Match[] = [];
  for (const m of matches) {
    if (m.next === null) {
      settled.push(
        outcome(m, {
          before: m.before,
          after: m.before,
          status: 'failed',
          detail: `${where(m)} is an uploaded certificate serving the previous thumbprint ${m.before}: Certflow does not upload private keys; reference the Key Vault secret ${ctx.secretId.replace(/\/[^/]+$/, '')} instead`,
        }),
      );
    } else if (m.before === expected && m.next === m.cert.keyVaultSecretId) {
      const o = outcome(m, {
        before: m.before,
        after: expected,
        status: 'unchanged',
        detail: `${where(m)} already serves ${expected}${hostsText(m)}`,
      });
      unchanged.push(probed(o, m));
    } else todo.push(m);
  }
  settled.push(...(await Promise.all(unchanged)));
  if (!scope) return settled;

  const put = async (refs: Map<string, string>): Promise<ApplicationGateway> => {
    const client = clientFor(scope.subscriptionId);
    // the current gateway, not the listing's copy: another change may have landed since
    const current = await client.applicationGateways.get(scope.resourceGroup, gwName);
    for (const c of current.sslCertificates ?? []) {
      const ref = c.name ? refs.get(c.name) : undefined;
      if (ref) c.keyVaultSecretId = ref;
    }
    return client.applicationGateways.beginCreateOrUpdateAndWait(scope.resourceGroup, gwName, current, {
      updateIntervalInMs: opts.pollIntervalMs ?? 10_000,
    });
  };
  const loaded = (gw: ApplicationGateway, m: Match) => {
    const c = gw.sslCertificates?.find((x) => x.name === m.cert.name);
    return c?.publicCertData ? leafThumbprintOfBase64(c.publicCertData) : null;
  };

  let updated: ApplicationGateway | undefined;
  if (todo.length) {
    try {
      updated = await put(new Map(todo.map((m) => [m.cert.name as string, m.next as string])));
    } catch (err) {
      const f = classifyArmError(err, APP_GATEWAY_ROLE);
      const detail =
        f.kind === 'gone'
          ? `application gateway '${gwName}' in resource group '${scope.resourceGroup}' was deleted between discovery and bind (${f.text})`
          : `updating application gateway '${gwName}' failed, it keeps its previous certificates: ${f.text}`;
      return [
        ...settled,
        ...todo.map((m) => outcome(m, { before: m.before, after: m.before, status: 'failed', detail })),
      ];
    }
  }

  const rollback: Match[] = [];
  const results = await Promise.all(
    todo.map(async (m): Promise<BindingOutcome> => {
      const after = updated ? loaded(updated, m) : null;
      if (after !== expected) {
        return outcome(m, {
          before: m.before,
          after,
          status: 'failed',
          detail: `${where(m)} loaded ${after ?? '(nothing)'} from ${m.next}, expected ${expected}: check that the new version is enabled and the gateway's identity may get secrets`,
        });
      }
      const how =
        m.next === m.cert.keyVaultSecretId
          ? 'refreshed from its versionless reference'
          : `pointed at version ${ctx.version}`;
      const o = await probed(
        outcome(m, {
          before: m.before,
          after,
          status: 'bound',
          detail: `${where(m)} ${how}: ${m.before ?? '(none)'} → ${after}${hostsText(m)}`,
        }),
        m,
      );
      if (o.status === 'failed' && m.cert.keyVaultSecretId && m.next !== m.cert.keyVaultSecretId)
        rollback.push(m);
      return o;
    }),
  );
  if (!rollback.length) return [...settled, ...results];
  // versioned references whose listeners do not serve the new certificate: put the previous version back
  try {
    await put(new Map(rollback.map((m) => [m.cert.name as string, m.cert.keyVaultSecretId as string])));
    return [
      ...settled,
      ...results.map((o, i) =>
        rollback.includes(todo[i] as Match)
          ? {
              ...o,
              status: 'rolled-back' as const,
              after: todo[i]?.before ?? null,
              detail: `${o.detail}; rolled back to ${todo[i]?.cert.keyVaultSecretId}`,
            }
          : o,
      ),
    ];
  } catch (err) {
    const f = classifyArmError(err, APP_GATEWAY_ROLE);
    return [
      ...settled,
      ...results.map((o, i) =>
        rollback.includes(todo[i] as Match)
          ? { ...o, detail: `${o.detail}; rolling back failed: ${f.text}` }
          : o,
      ),
    ];
  }
}
