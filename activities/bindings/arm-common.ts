/**
 * What the Azure Resource Manager binding targets (App Service, Application Gateway, Front Door, API Management,
 * App Service Certificate orders) share: ARM error classification (throttled, unavailable, forbidden, gone,
 * rejected) in one line a person can act on, Key Vault secret references in their three spellings, the scopes
 * a target lists (a missing resource group is a failed scope, not "no bindings"), and the live probe that asks
 * again until a front end serves the new certificate.
 */
import type { BindingContext, BindingOutcome, Probe } from '../types';
import { normalizeThumbprint, probeTls } from '../verify/probe';

/** One ARM SDK client per subscription, made on first use (the SDK clients are per subscription). */
export function perSubscription<C>(make: (subscriptionId: string) => C): (subscriptionId: string) => C {
  const clients = new Map<string, C>();
  return (subscriptionId) => {
    let c = clients.get(subscriptionId);
    if (!c) clients.set(subscriptionId, (c = make(subscriptionId)));
    return c;
  };
}

export interface ArmScope {
  subscriptionId: string;
  /** Only these resource groups; all of the subscription when absent. */
  resourceGroups?: string[];
}

export type ArmFailureKind = 'throttled' | 'unavailable' | 'forbidden' | 'gone' | 'conflict' | 'rejected';

export interface ArmFailure {
  kind: ArmFailureKind;
  /** Worth trying again later (the lifecycle re-syncs failed bindings with backoff). */
  retryable: boolean;
  status: number | undefined;
  code: string | undefined;
  /** The service's Retry-After, when it sent one. */
  retryAfterSeconds?: number;
  /** One line: kind, HTTP status, ARM code, message and, for 401/403, the role to grant. */
  text: string;
}

export function statusOf(err: unknown): number | undefined {
  const e = err as { statusCode?: unknown; status?: unknown } | null;
  const s = e?.statusCode ?? e?.status;
  return typeof s === 'number' ? s : undefined;
}

/** The ARM error code: the SDK's `code`, else the body's `error.code` (or a bare `code`, as Azure DNS sends). */
export function codeOf(err: unknown): string | undefined {
  const e = err as { code?: unknown; details?: unknown; response?: { bodyAsText?: unknown } } | null;
  if (typeof e?.code === 'string' && e.code && !/^[A-Z_]+$/.test(e.code)) return e.code;
  const details = e?.details as { error?: { code?: unknown }; code?: unknown } | undefined;
  const fromDetails = details?.error?.code ?? details?.code;
  if (typeof fromDetails === 'string' && fromDetails) return fromDetails;
  const text = e?.response?.bodyAsText;
  if (typeof text === 'string' && text.startsWith('{')) {
    try {
      const body = JSON.parse(text) as { error?: { code?: unknown }; code?: unknown };
      const c = body.error?.code ?? body.code;
      if (typeof c === 'string' && c) return c;
    } catch {
      // not JSON: no code
    }
  }
  return typeof e?.code === 'string' && e.code ? e.code : undefined;
}

/** Retry-After of a failed ARM response, in seconds, when the SDK kept the response. */
function retryAfterOf(err: unknown): number | undefined {
  const headers = (err as { response?: { headers?: { get?(n: string): string | undefined } } } | null)
    ?.response?.headers;
  const v = headers?.get?.('retry-after');
  const n = v === undefined ? NaN : Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/**
 * Classifies an ARM failure. `role` names what Certflow's identity needs on the resource (said for 401/403).
 * Network failures without a status are `unavailable` (retryable).
 */
export function classifyArmError(err: unknown, role: string): ArmFailure {
  const status = statusOf(err);
  const message = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').trim();
  // a long-running operation that ended Failed: core-lro says "The long-running operation has failed. <code>. <message>"
  const lro = /^The long-running operation has failed(?:\. ([A-Za-z0-9_.]+)\.)?/.exec(message);
  const code = lro ? lro[1] : codeOf(err);
  const kind: ArmFailureKind = lro
    ? /throttl|toomanyrequests/i.test(code ?? '')
      ? 'throttled'
      : /internal|unavailable|timeout/i.test(code ?? '')
        ? 'unavailable'
        : 'rejected'
    : status === 429
      ? 'throttled'
      : status === undefined || status >= 500 || status === 408
        ? 'unavailable'
        : status === 401 || status === 403
          ? 'forbidden'
          : status === 404
            ? 'gone'
            : status === 409 || status === 412
              ? 'conflict'
              : 'rejected';
  const retryable = kind === 'throttled' || kind === 'unavailable' || kind === 'conflict';
  const after = retryAfterOf(err);
  const head = status ? `HTTP ${status}${code ? ` ${code}` : ''}: ` : code ? `${code}: ` : '';
  const label: Record<ArmFailureKind, string> = {
    throttled: `throttled by Azure Resource Manager${after !== undefined ? ` (Retry-After ${after} s)` : ''}, retried later`,
    unavailable: 'Azure answered with a server error or not at all, retried later',
    forbidden: `not allowed: Certflow’s identity needs ${role}`,
    gone: 'not found',
    conflict: 'conflicting change in progress, retried later',
    rejected: 'refused by Azure',
  };
  return {
    kind,
    retryable,
    status,
    code,
    ...(after !== undefined ? { retryAfterSeconds: after } : {}),
    text: `${head}${message} (${label[kind]})`,
  };
}

/** A Key Vault secret as consumers spell it: URI (versioned or versionless) or ARM id + version. */
export interface SecretRef {
  /** Vault host, lower case, e.g. `kv-prod.vault.azure.net` (a port kept when not 443). */
  vaultHost: string;
  name: string;
  version: string | null;
}

/** `https://<vault>.vault.azure.net/secrets/<name>[/<version>]` (also `/certificates/`), else null. */
export function parseSecretUri(uri: string | undefined | null): SecretRef | null {
  if (!uri) return null;
  try {
    const u = new URL(uri);
    const parts = u.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const kind = parts[0]?.toLowerCase();
    if ((kind !== 'secrets' && kind !== 'certificates') || !parts[1] || parts.length > 3) return null;
    return { vaultHost: u.host.toLowerCase(), name: parts[1], version: parts[2] ?? null };
  } catch {
    return null;
  }
}

/** True when both name the same secret of the same vault (any version). */
export function sameSecret(a: SecretRef | null, b: SecretRef | null): boolean {
  return !!a && !!b && a.vaultHost === b.vaultHost && a.name.toLowerCase() === b.name.toLowerCase();
}

/** The secret URI with another version (null: versionless), in the spelling of `like`. */
export function secretUriWithVersion(like: string, version: string | null): string {
  const u = new URL(like);
  const parts = u.pathname.split('/').filter(Boolean);
  const base = `${u.protocol}//${u.host}/${parts[0]}/${parts[1]}`;
  return version ? `${base}/${version}` : base;
}

export const sameId = (a: string | undefined | null, b: string | undefined | null) =>
  !!a && !!b && a.toLowerCase() === b.toLowerCase();

export const sameThumbprint = (a: string | undefined | null, b: string | undefined | null) =>
  !!a && !!b && normalizeThumbprint(a) === normalizeThumbprint(b);

/** `/subscriptions/<s>/resourceGroups/<rg>/providers/...` → subscription and resource group. */
export function scopeOfId(id: string | undefined): { subscriptionId: string; resourceGroup: string } | null {
  const m = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\//i.exec(id ?? '');
  return m ? { subscriptionId: m[1] as string, resourceGroup: m[2] as string } : null;
}

export type Listed<T> = { ok: true; items: T[] } | { ok: false; error: unknown };

export async function collect<T>(pages: AsyncIterable<T>): Promise<Listed<T>> {
  const items: T[] = [];
  try {
    for await (const item of pages) items.push(item);
    return { ok: true, items };
  } catch (error) {
    return { ok: false, error };
  }
}

/** A scope (subscription or resource group) that could not be listed. */
export interface ScopeProblem {
  /** ARM id of the scope. */
  where: string;
  detail: string;
}

/**
 * Lists resources of every configured scope: one listing per subscription, or per resource group when groups
 * are named. A listing that fails (a mistyped or deleted resource group answers 404 ResourceGroupNotFound) is a
 * problem of that scope; the other scopes are still listed.
 */
export async function listScopes<T>(
  scopes: ArmScope[],
  list: (scope: { subscriptionId: string; resourceGroup: string | null }) => AsyncIterable<T>,
  what: string,
  role: string,
): Promise<{ items: T[]; problems: ScopeProblem[] }> {
  const items: T[] = [];
  const problems: ScopeProblem[] = [];
  const all = scopes.flatMap((s) =>
    s.resourceGroups?.length
      ? s.resourceGroups.map((rg) => ({
          subscriptionId: s.subscriptionId,
          resourceGroup: rg as string | null,
        }))
      : [{ subscriptionId: s.subscriptionId, resourceGroup: null }],
  );
  await Promise.all(
    all.map(async (scope) => {
      const got = await collect(list(scope));
      if (got.ok) {
        items.push(...got.items);
        return;
      }
      const where =
        `/subscriptions/${scope.subscriptionId}` +
        (scope.resourceGroup ? `/resourceGroups/${scope.resourceGroup}` : '');
      const f = classifyArmError(got.error, role);
      const missingGroup = f.code === 'ResourceGroupNotFound';
      problems.push({
        where,
        detail: missingGroup
          ? `resource group '${scope.resourceGroup}' does not exist in subscription ${scope.subscriptionId} (mistyped or deleted?): listing ${what} failed: ${f.text}`
          : `listing ${what} failed: ${f.text}`,
      });
    }),
  );
  return { items, problems };
}

/** Each scope problem as a failed outcome: its bindings were not checked. */
export function problemOutcomes(target: string, problems: ScopeProblem[]): BindingOutcome[] {
  return problems.map((p) => ({
    target,
    binding: p.where,
    before: null,
    after: null,
    status: 'failed' as const,
    detail: `${p.detail}; bindings there were not checked`,
  }));
}

export interface ProbeEndpoint {
  host: string;
  port: number;
  servername: string;
  caPem?: string;
}

/** Front ends pick a new certificate up within seconds to minutes: ask again until it shows or time is up. */
export async function probeSettled(e: ProbeEndpoint, expected: string, settleMs: number): Promise<Probe> {
  const started = Date.now();
  let probe = await probeTls({ ...e, expectedThumbprint: expected, timeoutMs: 5_000 });
  while (!probe.ok && Date.now() - started < settleMs) {
    await new Promise((r) => setTimeout(r, 250));
    probe = await probeTls({ ...e, expectedThumbprint: expected, timeoutMs: 5_000 });
  }
  return probe;
}

/**
 * Adds the live probe to a bound or unchanged outcome where there is an endpoint; an endpoint that does not
 * serve the new leaf turns the outcome into `failed` (or lets the caller roll back).
 */
export async function withProbe(
  o: BindingOutcome,
  endpoint: ProbeEndpoint | undefined,
  settleMs: number,
): Promise<BindingOutcome> {
  if (!endpoint || !o.after) return o;
  const probe = await probeSettled(endpoint, o.after, settleMs);
  if (probe.ok) return { ...o, detail: `${o.detail}; live: ${probe.detail}`, probe };
  return {
    ...o,
    status: 'failed',
    detail: `${o.detail}, but the live endpoint does not serve it: ${probe.detail}`,
    probe,
  };
}

/** The probe of every host name in turn, stopping at the first that fails. */
export async function withProbes(
  o: BindingOutcome,
  hosts: string[],
  probe: ((hostName: string) => ProbeEndpoint | undefined) | undefined,
  settleMs: number,
): Promise<BindingOutcome> {
  for (const host of hosts) {
    o = await withProbe(o, probe?.(host), settleMs);
    if (o.status === 'failed') break;
  }
  return o;
}

/** `https://<vault>.vault.azure.net/secrets/<name>/<version>` → name; else the `<name>` of `<vault>/<name>`. */
export function secretNameOf(ctx: Pick<BindingContext, 'secretId' | 'certificateId'>): string {
  const ref = parseSecretUri(ctx.secretId);
  if (ref) return ref.name;
  return ctx.certificateId.split('/').pop() ?? ctx.certificateId;
}

/**
 * App Service's view of a Key Vault secret it imports (`keyVaultSecretStatus` of a certificate, `provisioningState`
 * of a certificate order's secret): pending, done, or failed with what to grant or fix. App Service reads the vault
 * with its own principal (`Microsoft Azure App Service`, abfa0a7c-a6b6-4736-8310-5855508787cd in public Azure).
 */
export function keyVaultSecretStatus(status: string | undefined | null): {
  state: 'pending' | 'succeeded' | 'failed';
  hint: string;
} {
  const s = status ?? 'Unknown';
  const grant =
    'grant App Service’s principal (Microsoft Azure App Service, abfa0a7c-a6b6-4736-8310-5855508787cd) the Key Vault Certificate User role on the vault (or secrets get in its access policy)';
  switch (s) {
    case 'Succeeded':
      return { state: 'succeeded', hint: '' };
    case 'Initialized':
    case 'WaitingOnCertificateOrder':
      return { state: 'pending', hint: `App Service is still reading the secret (${s})` };
    case 'AzureServiceUnauthorizedToAccessKeyVault':
    case 'AccessDenied':
      return { state: 'failed', hint: `${s}: App Service may not read the vault: ${grant}` };
    case 'OperationNotPermittedOnKeyVault':
      return {
        state: 'failed',
        hint: `${s}: the vault refused App Service: ${grant}, and let trusted Microsoft services through its firewall`,
      };
    case 'KeyVaultDoesNotExist':
      return {
        state: 'failed',
        hint: `${s}: the vault named by keyVaultId does not exist (deleted or mistyped)`,
      };
    case 'KeyVaultSecretDoesNotExist':
      return {
        state: 'failed',
        hint: `${s}: the secret does not exist in the vault (deleted, renamed, or its latest version disabled)`,
      };
    case 'CertificateOrderFailed':
      return {
        state: 'failed',
        hint: `${s}: the App Service Certificate order behind it failed; see the order`,
      };
    case 'ExternalPrivateKey':
      return { state: 'failed', hint: `${s}: the secret holds no private key App Service can use` };
    default:
      return { state: 'failed', hint: `${s}: App Service could not read the secret` };
  }
}
