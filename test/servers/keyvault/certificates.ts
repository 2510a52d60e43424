/**
 * The certificate operations of the test Key Vault, over the store, in Key Vault's wire format.
 * Behaviour follows the real service where it differs from emulators: a create while an operation is
 * in progress is a 409, tags given at create reach the merged version, the merge checks the public key.
 */
import crypto from 'node:crypto';
import { buildCsr, generateKey, parseCert, secretValue, selfSign, spkiOf } from './crypto';
import type { CertificateRecord, PendingOperation, Store, VersionRecord } from './store';
import {
  KvError,
  badParameter,
  certificateNotFound,
  checkName,
  normalizePolicy,
  type WireAttributes,
  type WirePolicy,
} from './wire';

export interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

const RECOVERY = { recoveryLevel: 'Recoverable+Purgeable', recoverableDays: 90 };
const PAGE_MAX = 25;

export function createCertificateService(store: Store, vaultUrl: () => string) {
  const nowSec = () => Math.floor(Date.now() / 1000);
  const newVersion = () => crypto.randomBytes(16).toString('hex');

  const find = (name: string): CertificateRecord => {
    const cert = store.certificates.get(name.toLowerCase());
    if (!cert) throw certificateNotFound(name);
    return cert;
  };
  const pendingOf = (cert: CertificateRecord): PendingOperation => {
    if (!cert.pending)
      throw new KvError(404, 'PendingCertificateNotFound', `Pending certificate not found: ${cert.name}`);
    return cert.pending;
  };
  const current = (cert: CertificateRecord): VersionRecord | undefined => cert.versions.at(-1);

  const ids = (cert: CertificateRecord, version: string) => ({
    id: `${vaultUrl()}/certificates/${cert.name}/${version}`,
    kid: `${vaultUrl()}/keys/${cert.name}/${version}`,
    sid: `${vaultUrl()}/secrets/${cert.name}/${version}`,
  });

  const policyJson = (cert: CertificateRecord): WirePolicy => ({
    id: `${vaultUrl()}/certificates/${cert.name}/policy`,
    ...cert.policy,
  });

  const attributesJson = (v: VersionRecord) => ({
    enabled: v.enabled,
    nbf: v.nbf,
    exp: v.exp,
    created: v.created,
    updated: v.updated,
    ...RECOVERY,
  });
  const versionJson = (cert: CertificateRecord, v: VersionRecord, withPolicy = true) => ({
    ...ids(cert, v.version),
    x5t: v.x5t,
    cer: v.chain[0],
    attributes: attributesJson(v),
    tags: v.tags,
    ...(withPolicy ? { policy: policyJson(cert) } : {}),
  });

  // A version that is still waiting for its merge: no certificate yet, disabled.
  const pendingStubJson = (cert: CertificateRecord, op: PendingOperation) => ({
    ...ids(cert, op.version),
    attributes: { enabled: false, created: op.created, updated: op.created, ...RECOVERY },
    tags: op.tags,
    policy: policyJson(cert),
  });

  const operationJson = (cert: CertificateRecord, op: PendingOperation) => ({
    id: `${vaultUrl()}/certificates/${cert.name}/pending`,
    issuer: { name: op.issuer },
    csr: op.csr,
    cancellation_requested: op.cancellationRequested,
    status: op.status,
    ...(op.statusDetails ? { status_details: op.statusDetails } : {}),
    ...(op.status === 'completed' ? { target: `${vaultUrl()}/certificates/${cert.name}` } : {}),
    request_id: op.requestId,
  });

  const bundleFor = (cert: CertificateRecord, version: string | undefined) => {
    if (version) {
      const v = cert.versions.find((x) => x.version === version);
      if (v) return versionJson(cert, v);
      if (cert.pending?.version === version && cert.pending.status === 'inProgress')
        return pendingStubJson(cert, cert.pending);
      throw certificateNotFound(`${cert.name}/${version}`);
    }
    const latest = current(cert);
    if (latest) return versionJson(cert, latest);
    if (cert.pending) return pendingStubJson(cert, cert.pending);
    throw certificateNotFound(cert.name);
  };

  const page = <T>(items: T[], query: URLSearchParams, path: string) => {
    const max = Math.min(Number(query.get('maxresults') ?? PAGE_MAX) || PAGE_MAX, PAGE_MAX);
    const skip = Number(query.get('$skiptoken') ?? 0) || 0;
    const value = items.slice(skip, skip + max);
    let nextLink: string | null = null;
    if (skip + max < items.length) {
      const next = new URLSearchParams(query);
      next.set('$skiptoken', String(skip + max));
      next.set('maxresults', String(max));
      nextLink = `${vaultUrl()}${path}?${next.toString()}`;
    }
    return { value, nextLink };
  };

  return {
    async create(
      name: string,
      body: { policy?: WirePolicy; attributes?: WireAttributes; tags?: Record<string, string> },
    ): Promise<Reply> {
      checkName(name);
      const existing = store.certificates.get(name.toLowerCase());
      if (existing?.pending?.status === 'inProgress')
        throw new KvError(
          409,
          'Conflict',
          `Certificate ${existing.name} is currently being created (a pending operation is in progress): merge it, or cancel or delete it before creating a new version.`,
        );
      const now = nowSec();
      const policy = body.policy
        ? normalizePolicy(body.policy, now)
        : existing
          ? existing.policy
          : normalizePolicy(undefined, now);
      if (existing && body.policy)
        policy.attributes = { ...policy.attributes, created: existing.policy.attributes?.created ?? now };
      const cert: CertificateRecord = existing ?? { name, policy, versions: [] };
      cert.policy = policy;

      const version = newVersion();
      const prev = current(cert);
      let keyRef = `${cert.name.toLowerCase()}-${version}`;
      if (policy.key_props?.reuse_key && prev) keyRef = prev.keyRef;
      else store.putKey(keyRef, await generateKey(policy));
      const key = store.getKey(keyRef);

      const op: PendingOperation = {
        requestId: crypto.randomBytes(16).toString('hex'),
        version,
        issuer: policy.issuer?.name ?? 'Unknown',
        status: 'inProgress',
        cancellationRequested: false,
        statusDetails: 'Pending certificate created. Please Perform Merge to complete the request.',
        csr: (await buildCsr(policy, key)).toString('base64'),
        keyRef,
        tags: body.tags ?? {},
        enabled: body.attributes?.enabled ?? true,
        created: now,
      };
      cert.pending = op;
      store.certificates.set(name.toLowerCase(), cert);
      if (op.issuer === 'Self') {
        addVersion(cert, op, [await selfSign(policy, key)], undefined, undefined);
      }
      store.save();
      return {
        status: 202,
        body: operationJson(cert, op),
        headers: {
          Location: `${vaultUrl()}/certificates/${cert.name}/pending?request_id=${op.requestId}`,
          'Retry-After': '10',
        },
      };
    },

    getPending(name: string): Reply {
      const cert = find(name);
      return { status: 200, body: operationJson(cert, pendingOf(cert)) };
    },

    merge(
      name: string,
      body: { x5c?: unknown; attributes?: WireAttributes; tags?: Record<string, string> },
    ): Reply {
      const cert = find(name);
      const op = pendingOf(cert);
      if (op.status !== 'inProgress')
        throw new KvError(403, 'Forbidden', 'Pending status must be in progress to allow merge.');
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
      const v = addVersion(
        cert,
        op,
        chain.map((c) => c.der),
        body.tags,
        body.attributes?.enabled,
      );
      store.save();
      return { status: 201, body: versionJson(cert, v) };
    },

    updatePending(name: string, body: { cancellation_requested?: unknown }): Reply {
      const cert = find(name);
      const op = pendingOf(cert);
      if (typeof body.cancellation_requested !== 'boolean')
        throw badParameter('Property cancellation_requested (boolean) is required.');
      if (op.status !== 'inProgress')
        throw new KvError(403, 'Forbidden', 'Pending status must be in progress to allow update.');
      if (body.cancellation_requested) {
        op.cancellationRequested = true;
        op.status = 'cancelled';
        op.statusDetails = 'The certificate operation was cancelled by the caller.';
        store.save();
      }
      return { status: 200, body: operationJson(cert, op) };
    },

    deletePending(name: string): Reply {
      const cert = find(name);
      const op = pendingOf(cert);
      delete cert.pending;
      if (cert.versions.length === 0) store.certificates.delete(name.toLowerCase());
      store.save();
      return { status: 200, body: operationJson(cert, op) };
    },

    get(name: string, version?: string): Reply {
      return { status: 200, body: bundleFor(find(name), version) };
    },

    update(
      name: string,
      version: string | undefined,
      body: { attributes?: WireAttributes; tags?: Record<string, string>; policy?: WirePolicy },
    ): Reply {
      const cert = find(name);
      const target = version ? cert.versions.find((v) => v.version === version) : current(cert);
      if (!target) throw certificateNotFound(version ? `${cert.name}/${version}` : cert.name);
      if (body.tags !== undefined) target.tags = { ...body.tags };
      if (typeof body.attributes?.enabled === 'boolean') target.enabled = body.attributes.enabled;
      if (body.policy) cert.policy = mergePolicy(cert.policy, body.policy);
      target.updated = nowSec();
      store.save();
      return { status: 200, body: versionJson(cert, target) };
    },

    getPolicy(name: string): Reply {
      return { status: 200, body: policyJson(find(name)) };
    },

    updatePolicy(name: string, body: WirePolicy): Reply {
      const cert = find(name);
      cert.policy = mergePolicy(cert.policy, body);
      store.save();
      return { status: 200, body: policyJson(cert) };
    },

    list(query: URLSearchParams): Reply {
      const includePending = query.get('includePending') === 'true';
      const items = [...store.certificates.values()]
        .sort((a, b) => a.name.localeCompare(b.name))
        .flatMap((cert) => {
          const latest = current(cert);
          const base = { id: `${vaultUrl()}/certificates/${cert.name}` };
          if (latest)
            return [
              {
                ...base,
                x5t: latest.x5t,
                tags: latest.tags,
                attributes: versionJson(cert, latest).attributes,
              },
            ];
          if (includePending && cert.pending)
            return [
              {
                ...base,
                tags: cert.pending.tags,
                attributes: pendingStubJson(cert, cert.pending).attributes,
              },
            ];
          return [];
        });
      return { status: 200, body: page(items, query, '/certificates') };
    },

    listVersions(name: string, query: URLSearchParams): Reply {
      const cert = find(name);
      const items = cert.versions.map((v) => {
        const { id, x5t, tags, attributes } = versionJson(cert, v, false);
        return { id, x5t, tags, attributes };
      });
      if (cert.pending?.status === 'inProgress') {
        const { id, tags, attributes } = pendingStubJson(cert, cert.pending);
        items.push({ id, tags, attributes } as (typeof items)[number]);
      }
      return { status: 200, body: page(items, query, `/certificates/${cert.name}/versions`) };
    },

    /** The certificate's backing secret: the chain, with the private key when the policy lets it leave. */
    async getSecret(name: string, version?: string): Promise<Reply> {
      const cert = store.certificates.get(name.toLowerCase());
      const v = cert && (version ? cert.versions.find((x) => x.version === version) : current(cert));
      if (!cert || !v)
        throw new KvError(
          404,
          'SecretNotFound',
          `A secret with (name/id) ${version ? `${name}/${version}` : name} was not found in this key vault.`,
        );
      if (!v.enabled)
        throw new KvError(403, 'Forbidden', 'Operation get is not allowed on a disabled secret.');
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
          id: `${vaultUrl()}/secrets/${cert.name}/${v.version}`,
          kid: `${vaultUrl()}/keys/${cert.name}/${v.version}`,
          managed: true,
          attributes: attributesJson(v),
          tags: v.tags,
        },
      };
    },
  };

  function addVersion(
    cert: CertificateRecord,
    op: PendingOperation,
    chain: Buffer[],
    tags: Record<string, string> | undefined,
    enabled: boolean | undefined,
  ): VersionRecord {
    const leaf = chain[0];
    if (!leaf) throw badParameter('The certificate chain is empty.');
    const parsed = parseCert(leaf);
    const now = nowSec();
    const v: VersionRecord = {
      version: op.version,
      created: now,
      updated: now,
      enabled: enabled ?? op.enabled,
      nbf: parsed.notBefore,
      exp: parsed.notAfter,
      x5t: parsed.x5t,
      chain: chain.map((c) => c.toString('base64')),
      tags: { ...(tags ?? op.tags) },
      keyRef: op.keyRef,
      exportable: cert.policy.key_props?.exportable ?? true,
      contentType: cert.policy.secret_props?.contentType ?? 'application/x-pkcs12',
    };
    cert.versions.push(v);
    op.status = 'completed';
    delete op.statusDetails;
    return v;
  }
}

function mergePolicy(current: WirePolicy, patch: WirePolicy): WirePolicy {
  const merged = normalizePolicy(
    {
      key_props: { ...current.key_props, ...patch.key_props },
      secret_props: { ...current.secret_props, ...patch.secret_props },
      x509_props: { ...current.x509_props, ...patch.x509_props },
      lifetime_actions: patch.lifetime_actions ?? current.lifetime_actions,
      issuer: { ...current.issuer, ...patch.issuer },
      attributes: { ...current.attributes, ...patch.attributes },
    },
    Math.floor(Date.now() / 1000),
  );
  merged.attributes = { ...merged.attributes, created: current.attributes?.created };
  return merged;
}
