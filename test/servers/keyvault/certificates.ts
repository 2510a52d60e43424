/**
 * The certificate operations of the test Key Vault, over the store, in Key Vault's wire format as Microsoft's
 * recorded sessions show it (Azure/azure-sdk-assets, js/sdk/keyvault/keyvault-certificates/recordings/node,
 * api-version 2025-07-01): a create answers 202 with a Location carrying api-version and request_id; a create
 * while an operation is in progress is a 409; tags given at create reach the new version; a cancel only sets
 * `cancellation_requested`; "latest" while only a pending version exists is a disabled bundle with nbf/exp,
 * policy and `pending`, without cer/x5t/kid/sid; a specific version has no policy; listings carry `subject`,
 * tags only when set, and end with an empty page after a full one; versions of a missing certificate are an
 * empty list; the merge checks the public key.
 */
import type { Operations } from './operations';
import type { CertificateRecord, PendingOperation, Store, VersionRecord } from './store';
import {
  KvError,
  badParameter,
  certificateNotFound,
  checkName,
  normalizePolicy,
  pendingNotFound,
  type IssuerTable,
  type WireAttributes,
  type WirePolicy,
} from './wire';
import { parseCert, secretValue, spkiOf } from './crypto';

export interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/**
 * What GET /certificates/{name}/ (no version) answers while an operation is in progress on a certificate that
 * already has a version, which Microsoft's recordings do not show: the pending version (`pending`, as for a
 * first issuance) or the newest completed one (`current`). PATCH without a version writes to the same one.
 */
export type LatestWhilePending = 'pending' | 'current';

export interface CertificateServiceOptions {
  store: Store;
  ops: Operations;
  issuers: IssuerTable;
  vaultUrl: () => string;
  now: () => number;
  latestWhilePending: LatestWhilePending;
  /** Key creations allowed per window (Key Vault: 20 per 10 s for software keys); off when absent. */
  createQuota?: { limit: number; windowSeconds: number };
}

const RECOVERY = { recoveryLevel: 'Recoverable+Purgeable', recoverableDays: 90 };
const PAGE_MAX = 25;

export function createCertificateService(o: CertificateServiceOptions) {
  const { store, ops } = o;
  const nowSec = () => Math.floor(o.now() / 1000);
  const creates: number[] = [];
  let quota = o.createQuota;
  /** What the quota saw: creates accepted and refused (429), and the most accepted in any one window. */
  const stats = { accepted: 0, throttled: 0, maxInWindow: 0 };

  const find = (name: string): CertificateRecord => {
    const cert = store.certificates.get(name.toLowerCase());
    if (!cert) throw certificateNotFound(name);
    return cert;
  };
  const inProgress = (cert: CertificateRecord): PendingOperation | undefined =>
    cert.pending?.status === 'inProgress' ? cert.pending : undefined;
  const base = (cert: CertificateRecord) => `${o.vaultUrl()}/certificates/${cert.name}`;

  /** The version "latest" means: a completed one, or the pending one (see LatestWhilePending). */
  function latestOf(
    cert: CertificateRecord,
  ): { v: VersionRecord; op?: undefined } | { op: PendingOperation; v?: undefined } | undefined {
    const op = cert.pending;
    const v = ops.newest(cert);
    if (op && (!v || (o.latestWhilePending === 'pending' && op.status === 'inProgress'))) return { op };
    return v ? { v } : undefined;
  }

  const policyJson = (cert: CertificateRecord): WirePolicy => ({
    id: `${base(cert)}/policy`,
    ...cert.policy,
  });
  const tagsJson = (tags: Record<string, string>) => (Object.keys(tags).length ? { tags: { ...tags } } : {});
  const pendingLink = (cert: CertificateRecord) =>
    cert.pending ? { pending: { id: `${base(cert)}/pending` } } : {};

  const versionAttributes = (v: VersionRecord) => ({
    enabled: v.enabled,
    nbf: v.nbf,
    exp: v.exp,
    created: v.created,
    updated: v.updated,
  });
  /** The pending version's validity as Key Vault shows it before issuance: from 10 minutes back, for the policy's months. */
  function stubAttributes(cert: CertificateRecord, op: PendingOperation) {
    const exp = new Date(op.created * 1000);
    exp.setUTCMonth(exp.getUTCMonth() + (cert.policy.x509_props?.validity_months ?? 12));
    return {
      enabled: false,
      nbf: op.created - 600,
      exp: Math.floor(exp.getTime() / 1000),
      created: op.created,
      updated: op.updated ?? op.created,
    };
  }

  const versionJson = (cert: CertificateRecord, v: VersionRecord, opts: { policy: boolean }) => ({
    id: `${base(cert)}/${v.version}`,
    kid: `${o.vaultUrl()}/keys/${cert.name}/${v.version}`,
    sid: `${o.vaultUrl()}/secrets/${cert.name}/${v.version}`,
    x5t: v.x5t,
    cer: v.chain[0],
    attributes: { ...versionAttributes(v), ...RECOVERY },
    ...tagsJson(v.tags),
    ...(opts.policy ? { policy: policyJson(cert) } : {}),
  });

  // A version that is still waiting for its certificate: disabled, no cer/x5t/kid/sid (recorded).
  const stubJson = (cert: CertificateRecord, op: PendingOperation, opts: { policy: boolean }) => ({
    id: `${base(cert)}/${op.version}`,
    attributes: { ...stubAttributes(cert, op), ...RECOVERY },
    ...tagsJson(op.tags),
    ...(opts.policy ? { policy: policyJson(cert) } : {}),
  });

  const operationJson = (cert: CertificateRecord, op: PendingOperation) => ({
    id: `${base(cert)}/pending`,
    issuer: { name: op.issuer },
    csr: op.csr,
    cancellation_requested: op.cancellationRequested,
    status: op.status,
    ...(op.statusDetails ? { status_details: op.statusDetails } : {}),
    ...(op.status === 'completed' ? { target: base(cert) } : {}),
    request_id: op.requestId,
  });

  const latestJson = (cert: CertificateRecord) => {
    const latest = latestOf(cert);
    if (!latest) throw certificateNotFound(cert.name);
    const body = latest.v
      ? versionJson(cert, latest.v, { policy: true })
      : stubJson(cert, latest.op, { policy: true });
    return { ...body, ...pendingLink(cert) };
  };

  const listItem = (
    id: string,
    attributes: object,
    x5t: string | undefined,
    tags: Record<string, string>,
  ) => ({
    id,
    ...(x5t ? { x5t } : {}),
    attributes,
    ...tagsJson(tags),
    subject: '',
  });

  /** Paging the way Key Vault pages: an opaque $skiptoken, and a full page is always followed by another. */
  function page<T>(items: T[], query: URLSearchParams, path: string, carry: Record<string, unknown> = {}) {
    let state = { o: 0, m: PAGE_MAX, ...carry };
    const token = query.get('$skiptoken');
    if (token) state = { ...state, ...readToken(token) };
    else {
      const max = Number(query.get('maxresults') ?? PAGE_MAX);
      if (!Number.isInteger(max) || max < 1 || max > PAGE_MAX)
        throw badParameter(`maxresults must be between 1 and ${PAGE_MAX}, got '${query.get('maxresults')}'.`);
      state.m = max;
    }
    const value = items.slice(state.o, state.o + state.m);
    let nextLink: string | null = null;
    if (value.length === state.m) {
      const next = Buffer.from(JSON.stringify({ ...state, o: state.o + state.m })).toString('base64url');
      const url = new URL(o.vaultUrl());
      if (!url.port) url.port = '443'; // Key Vault's nextLink names the port
      nextLink = `${url.origin}${path}?api-version=${query.get('api-version') ?? ''}&$skiptoken=${next}`;
    }
    return { value, nextLink };
  }

  /** Counts every key create in a sliding window (the quota's, else 10 s); beyond the quota: 429 + Retry-After. */
  function takeCreateQuota(): void {
    const now = o.now();
    const windowMs = (quota?.windowSeconds ?? 10) * 1000;
    while (creates.length && (creates[0] ?? 0) <= now - windowMs) creates.shift();
    if (quota && creates.length >= quota.limit) {
      stats.throttled += 1;
      const retryAfter = Math.max(1, Math.ceil(((creates[0] ?? now) + windowMs - now) / 1000));
      throw new KvError(
        429,
        'Throttled',
        'Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached',
        undefined,
        { 'Retry-After': String(retryAfter) },
      );
    }
    creates.push(now);
    stats.accepted += 1;
    stats.maxInWindow = Math.max(stats.maxInWindow, creates.length);
  }

  return {
    /** Sets or removes the create quota (e.g. after seeding); the counts start over. */
    setCreateQuota(q: { limit: number; windowSeconds: number } | undefined): void {
      quota = q;
      creates.length = 0;
      Object.assign(stats, { accepted: 0, throttled: 0, maxInWindow: 0 });
    },
    createStats: () => ({
      ...stats,
      limit: quota?.limit ?? null,
      windowSeconds: quota?.windowSeconds ?? 10,
    }),
    async create(
      name: string,
      body: { policy?: WirePolicy; attributes?: WireAttributes; tags?: Record<string, string> },
      query: URLSearchParams,
    ): Promise<Reply> {
      checkName(name);
      const conflict = (c: CertificateRecord) =>
        new KvError(
          409,
          'Conflict',
          `Certificate ${c.name} is currently being created (a pending operation is in progress): merge it, or cancel or delete it before creating a new version.`,
        );
      const existing = store.certificates.get(name.toLowerCase());
      if (existing && inProgress(existing)) throw conflict(existing);
      const now = nowSec();
      const policy = body.policy
        ? normalizePolicy(body.policy, now, o.issuers)
        : existing
          ? existing.policy
          : normalizePolicy(undefined, now, o.issuers);
      if (existing && body.policy)
        policy.attributes = { ...policy.attributes, created: existing.policy.attributes?.created ?? now };
      takeCreateQuota();
      const cert: CertificateRecord = existing ?? { name, policy, versions: [] };
      const op = await ops.prepare(cert, policy, {
        tags: body.tags ?? {},
        enabled: body.attributes?.enabled ?? true,
      });
      const raced = store.certificates.get(name.toLowerCase());
      if (raced && inProgress(raced)) throw conflict(raced);
      cert.policy = policy;
      ops.install(cert, op);
      return {
        status: 202,
        body: operationJson(cert, op),
        headers: {
          Location: `${base(cert)}/pending?api-version=${query.get('api-version') ?? ''}&request_id=${op.requestId}`,
          'Retry-After': '10',
        },
      };
    },

    getPending(name: string): Reply {
      const cert = find(name);
      if (!cert.pending) throw pendingNotFound(cert.name);
      return {
        status: 200,
        body: operationJson(cert, cert.pending),
        ...(cert.pending.status === 'inProgress' ? { headers: { 'Retry-After': '10' } } : {}),
      };
    },

    merge(
      name: string,
      body: { x5c?: unknown; attributes?: WireAttributes; tags?: Record<string, string> },
      query: URLSearchParams,
    ): Reply {
      const cert = find(name);
      const op = cert.pending;
      if (!op) throw pendingNotFound(cert.name);
      if (op.status !== 'inProgress')
        throw new KvError(403, 'Forbidden', 'Pending status must be in progress to allow merge.');
      if (op.provider !== 'Unknown')
        throw badParameter(
          `Merge is only for a certificate request of the 'Unknown' issuer; this one is issued by '${op.issuer}'.`,
        );
      if (!Array.isArray(body.x5c) || body.x5c.length === 0 || !body.x5c.every((c) => typeof c === 'string'))
        throw badParameter(
          'Property x5c is required: the certificate chain as base64 DER strings, leaf first.',
        );
      const chain = (body.x5c as string[]).map((b64, i) => {
        const der = Buffer.from(b64, 'base64');
        try {
          return { der, parsed: parseCert(der) };
        } catch {
          throw badParameter(`x5c[${i}] is not a base64-encoded DER X.509 certificate.`);
        }
      });
      const keySpki = spkiOf(store.getKey(op.keyRef));
      if (!chain[0]?.parsed.spki.equals(keySpki)) {
        const at = chain.findIndex((c) => c.parsed.spki.equals(keySpki));
        throw badParameter(
          "Public key from x509 certificate and key of this instance doesn't match" +
            (at > 0 ? ` (x5c[${at}] holds the matching certificate: put the leaf first).` : '.'),
        );
      }
      const v = ops.addVersion(
        cert,
        op,
        chain.map((c) => c.der),
        body.tags,
        body.attributes?.enabled,
      );
      return {
        status: 201,
        body: { ...versionJson(cert, v, { policy: true }), ...pendingLink(cert) },
        headers: { Location: `${base(cert)}?api-version=${query.get('api-version') ?? ''}` },
      };
    },

    /** Real Key Vault only records the request: the operation stays inProgress (recorded). */
    updatePending(name: string, body: { cancellation_requested?: unknown }): Reply {
      const cert = find(name);
      const op = cert.pending;
      if (!op) throw pendingNotFound(cert.name);
      if (typeof body.cancellation_requested !== 'boolean')
        throw badParameter('Property cancellation_requested (boolean) is required.');
      if (op.status !== 'inProgress')
        throw new KvError(403, 'Forbidden', 'Pending status must be in progress to allow update.');
      if (body.cancellation_requested) {
        op.cancellationRequested = true;
        store.save();
      }
      return { status: 200, body: operationJson(cert, op) };
    },

    deletePending(name: string): Reply {
      const cert = find(name);
      const op = cert.pending;
      if (!op) throw pendingNotFound(cert.name);
      delete cert.pending;
      if (cert.versions.length === 0) store.certificates.delete(name.toLowerCase());
      store.save();
      return { status: 200, body: operationJson(cert, op) };
    },

    get(name: string, version?: string): Reply {
      const cert = find(name);
      if (!version) return { status: 200, body: latestJson(cert) };
      const v = cert.versions.find((x) => x.version === version);
      if (v) return { status: 200, body: versionJson(cert, v, { policy: false }) };
      const op = inProgress(cert);
      if (op?.version === version) return { status: 200, body: stubJson(cert, op, { policy: false }) };
      throw certificateNotFound(`${cert.name}/${version}`);
    },

    /** PATCH .../{version}, or without a version: the version "latest" means (the pending one too). */
    update(
      name: string,
      version: string | undefined,
      body: { attributes?: WireAttributes; tags?: Record<string, string> },
    ): Reply {
      const cert = find(name);
      const latest = version ? undefined : latestOf(cert);
      const op = inProgress(cert);
      const pendingTarget = version ? (op?.version === version ? op : undefined) : latest?.op;
      const target =
        pendingTarget ?? (version ? cert.versions.find((x) => x.version === version) : latest?.v);
      if (!target) throw certificateNotFound(version ? `${cert.name}/${version}` : cert.name);
      if (body.tags !== undefined) target.tags = { ...body.tags };
      if (typeof body.attributes?.enabled === 'boolean') target.enabled = body.attributes.enabled;
      target.updated = nowSec();
      store.save();
      const policy = { policy: !version };
      const bundle = pendingTarget
        ? stubJson(cert, pendingTarget, policy)
        : versionJson(cert, target as VersionRecord, policy);
      return { status: 200, body: { ...bundle, ...pendingLink(cert) } };
    },

    getPolicy(name: string): Reply {
      return { status: 200, body: policyJson(find(name)) };
    },

    updatePolicy(name: string, body: WirePolicy): Reply {
      const cert = find(name);
      cert.policy = mergePolicy(cert.policy, body, nowSec(), o.issuers);
      store.save();
      return { status: 200, body: policyJson(cert) };
    },

    list(query: URLSearchParams): Reply {
      const token = query.get('$skiptoken');
      // the nextLink drops includePending (recorded): the token carries it
      const includePending = token ? readToken(token).p === true : query.get('includePending') === 'true';
      const items = [...store.certificates.values()]
        .sort((a, b) => a.name.toLowerCase().localeCompare(b.name.toLowerCase()))
        .flatMap((cert) => {
          const latest = latestOf(cert);
          const id = base(cert);
          const newest = ops.newest(cert);
          // a pending version shows only when asked for, or when there is nothing else
          if (latest?.op && (includePending || !newest)) {
            if (!includePending) return [];
            return [listItem(id, stubAttributes(cert, latest.op), undefined, latest.op.tags)];
          }
          if (!newest) return [];
          return [listItem(id, versionAttributes(newest), newest.x5t, newest.tags)];
        });
      return { status: 200, body: page(items, query, '/certificates', { p: includePending }) };
    },

    listVersions(name: string, query: URLSearchParams): Reply {
      const cert = store.certificates.get(name.toLowerCase());
      // real Key Vault: versions of a certificate it does not have are an empty list, not a 404 (recorded)
      if (!cert) return { status: 200, body: { value: [], nextLink: null } };
      const items = cert.versions.map((v) => ({
        version: v.version,
        item: listItem(`${base(cert)}/${v.version}`, versionAttributes(v), v.x5t, v.tags),
      }));
      const op = inProgress(cert);
      if (op)
        items.push({
          version: op.version,
          item: listItem(`${base(cert)}/${op.version}`, stubAttributes(cert, op), undefined, op.tags),
        });
      // listed by version id, not by age (recording_can_retrieve_all_versions_of_a_certificate)
      items.sort((a, b) => a.version.localeCompare(b.version));
      return {
        status: 200,
        body: page(
          items.map((i) => i.item),
          query,
          `/certificates/${cert.name}/versions`,
        ),
      };
    },

    /** The certificate's backing secret: the chain, with the private key when the policy lets it leave. */
    async getSecret(name: string, version?: string): Promise<Reply> {
      const cert = store.certificates.get(name.toLowerCase());
      const v = cert && (version ? cert.versions.find((x) => x.version === version) : ops.newest(cert));
      if (!cert || !v)
        throw new KvError(
          404,
          'SecretNotFound',
          `A secret with (name/id) ${version ? `${name}/${version}` : name} was not found in this key vault.`,
        );
      if (!v.enabled)
        throw new KvError(
          403,
          'Forbidden',
          'Operation get is not allowed on a disabled secret.',
          'SecretDisabled',
        );
      // as Key Vault documents it: a non-exportable key is not part of the secret's value, the chain alone is
      const value = await secretValue(
        v.contentType,
        v.exportable ? store.getKey(v.keyRef) : undefined,
        v.chain.map((c) => Buffer.from(c, 'base64')),
      );
      return {
        status: 200,
        body: {
          value,
          contentType: v.contentType,
          id: `${o.vaultUrl()}/secrets/${cert.name}/${v.version}`,
          kid: `${o.vaultUrl()}/keys/${cert.name}/${v.version}`,
          managed: true,
          attributes: { ...versionAttributes(v), ...RECOVERY },
          ...tagsJson(v.tags),
        },
      };
    },
  };
}

function readToken(token: string): { o?: number; m?: number; p?: boolean } {
  try {
    const state = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as unknown;
    if (state && typeof state === 'object') return state as { o?: number; m?: number; p?: boolean };
  } catch {
    // fall through
  }
  throw badParameter('The $skiptoken is not valid.');
}

function mergePolicy(current: WirePolicy, patch: WirePolicy, now: number, issuers: IssuerTable): WirePolicy {
  const merged = normalizePolicy(
    {
      key_props: { ...current.key_props, ...patch.key_props },
      secret_props: { ...current.secret_props, ...patch.secret_props },
      x509_props: { ...current.x509_props, ...patch.x509_props },
      lifetime_actions: patch.lifetime_actions ?? current.lifetime_actions,
      issuer: { ...current.issuer, ...patch.issuer },
      attributes: { ...current.attributes, ...patch.attributes },
    },
    now,
    issuers,
  );
  merged.attributes = { ...merged.attributes, created: current.attributes?.created };
  return merged;
}
