/**
 * Certificate operations of the test Key Vault, shared by the REST handlers and the server's own schedule:
 * starting one (a new key and CSR, or the current key when the policy reuses it), completing one the vault
 * issues itself (Self, an integrated CA) some time after it started, Key Vault's auto-renew at a policy's
 * lifetime trigger, and the version a completion or a merge adds (which is announced as an Event Grid event).
 *
 * Time is the server's clock (`now`), so a test can move it; key creation counts against the create quota.
 */
import crypto from 'node:crypto';
import {
  buildCsr,
  caSign,
  createIssuingCa,
  generateKey,
  parseCert,
  selfSign,
  type IssuingCa,
} from './crypto';
import type { CertificateRecord, PendingOperation, Store, VersionRecord } from './store';
import { badParameter, type IssuerTable, type Provider, type WirePolicy } from './wire';

export interface OperationsOptions {
  store: Store;
  issuers: IssuerTable;
  /** The server's clock, epoch ms. */
  now(): number;
  /** How long after it starts a Self or integrated-CA operation completes. */
  issuanceDelayMs: number;
  /**
   * Validity of the certificates the vault issues itself, instead of the policy's validity_months (test knob:
   * real Key Vault's minimum is one month). Back-dated by 5 s instead of Key Vault's 10 minutes.
   */
  issuedValiditySeconds?: number;
  /** Called after every new version (merge, vault issuance, auto-renew). */
  onNewVersion(cert: CertificateRecord, version: VersionRecord): void;
}

const STATUS_MERGE = 'Pending certificate created. Please Perform Merge to complete the request.';
// what Key Vault says while a Self or integrated-CA request runs (recording_can_read_cancel_and_delete_...)
const STATUS_ISSUING =
  'Pending certificate created. Certificate request is in progress. This may take some time based on the issuer provider. Please check again later.';

export type Operations = ReturnType<typeof createOperations>;

export function createOperations(o: OperationsOptions) {
  const { store } = o;
  const nowSec = () => Math.floor(o.now() / 1000);
  let ca: Promise<IssuingCa> | undefined;
  const issuingCa = () => (ca ??= createIssuingCa('Certflow test integrated CA', o.now()));

  const providerOf = (policy: WirePolicy): Provider =>
    o.issuers.get((policy.issuer?.name ?? '').toLowerCase())?.provider ?? 'Unknown';

  /** The newest completed version (versions are kept in the order they were made). */
  const newest = (cert: CertificateRecord): VersionRecord | undefined => cert.versions.at(-1);

  /**
   * A new operation for `cert` under `policy`: key (new, or the current one when the policy reuses keys) and
   * CSR. Not installed: the caller checks nothing else started meanwhile, then calls `install`.
   */
  async function prepare(
    cert: CertificateRecord,
    policy: WirePolicy,
    opts: { tags: Record<string, string>; enabled: boolean },
  ): Promise<PendingOperation> {
    const version = crypto.randomBytes(16).toString('hex');
    const prev = newest(cert);
    let keyRef = `${cert.name.toLowerCase()}-${version}`;
    if (policy.key_props?.reuse_key && prev) keyRef = prev.keyRef;
    else store.putKey(keyRef, await generateKey(policy));
    const provider = providerOf(policy);
    return {
      requestId: crypto.randomBytes(16).toString('hex'),
      version,
      issuer: policy.issuer?.name ?? 'Unknown',
      provider,
      status: 'inProgress',
      cancellationRequested: false,
      statusDetails: provider === 'Unknown' ? STATUS_MERGE : STATUS_ISSUING,
      csr: (await buildCsr(policy, store.getKey(keyRef))).toString('base64'),
      keyRef,
      tags: { ...opts.tags },
      enabled: opts.enabled,
      created: nowSec(),
    };
  }

  function install(cert: CertificateRecord, op: PendingOperation): void {
    if (op.provider !== 'Unknown') op.completeAt = o.now() + o.issuanceDelayMs;
    cert.pending = op;
    store.certificates.set(cert.name.toLowerCase(), cert);
    store.save();
  }

  /** A chain (leaf first) becomes the operation's version; the operation is then `completed`. */
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
    delete op.completeAt;
    store.save();
    o.onNewVersion(cert, v);
    return v;
  }

  function validity(policy: WirePolicy): { notBefore: number; notAfter: number } {
    const now = o.now();
    if (o.issuedValiditySeconds !== undefined)
      return { notBefore: now - 5000, notAfter: now + o.issuedValiditySeconds * 1000 };
    const notAfter = new Date(now);
    notAfter.setUTCMonth(notAfter.getUTCMonth() + (policy.x509_props?.validity_months ?? 12));
    return { notBefore: now - 600_000, notAfter: notAfter.getTime() };
  }

  /**
   * A vault-issued operation whose time has come: Self signs with the pending key (a cancel does not stop it:
   * recording_can_read_cancel_and_delete_a_certificates_operation), an integrated CA signs with the server's CA
   * unless the operation was cancelled meanwhile.
   */
  async function complete(cert: CertificateRecord, op: PendingOperation): Promise<void> {
    if (op.cancellationRequested && op.provider !== 'Self') {
      op.status = 'cancelled';
      op.statusDetails = 'The certificate request was cancelled.';
      delete op.completeAt;
      store.save();
      return;
    }
    const key = store.getKey(op.keyRef);
    const chain =
      op.provider === 'Self'
        ? [await selfSign(cert.policy, key, validity(cert.policy))]
        : await caSign(await issuingCa(), cert.policy, key, validity(cert.policy));
    // deleted or completed while we signed
    if (cert.pending !== op || op.status !== 'inProgress') return;
    op.cancellationRequested = false; // a completed request shows none (recorded)
    addVersion(cert, op, chain, undefined, undefined);
  }

  /** When Key Vault would renew the newest version by itself (epoch seconds), or undefined when it would not. */
  function autoRenewAt(cert: CertificateRecord): number | undefined {
    const action = cert.policy.lifetime_actions?.find((a) => a.action?.action_type === 'AutoRenew');
    const current = newest(cert);
    if (!action || !current || providerOf(cert.policy) === 'Unknown') return undefined;
    const { lifetime_percentage: pct, days_before_expiry: days } = action.trigger ?? {};
    const lifetime = current.exp - current.nbf;
    if (pct !== undefined) return current.nbf + (lifetime * pct) / 100;
    if (days === undefined) return undefined;
    if (o.issuedValiditySeconds === undefined) return current.exp - days * 86400;
    // short-lived test certificates: the same share of the lifetime as days of the policy's months
    const months = cert.policy.x509_props?.validity_months ?? 12;
    return current.exp - lifetime * Math.min(1, days / (months * 30.4));
  }

  /** Starts Key Vault's own renewal: a new operation with the policy unchanged, the current version's tags. */
  async function startRenewal(cert: CertificateRecord): Promise<PendingOperation | undefined> {
    const current = newest(cert);
    const op = await prepare(cert, cert.policy, { tags: current?.tags ?? {}, enabled: true });
    if (cert.pending?.status === 'inProgress') return undefined; // someone started one meanwhile
    cert.autoRenewedFrom = current?.version;
    install(cert, op);
    return op;
  }

  async function runSettle(): Promise<void> {
    const now = o.now();
    for (const cert of [...store.certificates.values()]) {
      const op = cert.pending;
      if (op?.status === 'inProgress') {
        if (op.completeAt !== undefined && op.completeAt <= now) await complete(cert, op);
        continue;
      }
      const at = autoRenewAt(cert);
      if (at !== undefined && now / 1000 >= at && cert.autoRenewedFrom !== newest(cert)?.version)
        await startRenewal(cert);
    }
  }

  let settling: Promise<void> | undefined;
  /** Completes the operations that are due and starts the auto-renewals that are due. One run at a time. */
  function settle(): Promise<void> {
    if (!settling) {
      const run = runSettle();
      settling = run;
      const clear = () => {
        if (settling === run) settling = undefined;
      };
      run.then(clear, clear);
    }
    return settling;
  }

  return {
    providerOf,
    newest,
    prepare,
    install,
    addVersion,
    settle,
    autoRenewAt,
    /** The PEM of the CA behind the integrated issuers (made on first use). */
    async issuingCaPem(): Promise<string> {
      const der = (await issuingCa()).certDer.toString('base64');
      return `-----BEGIN CERTIFICATE-----\n${der.replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`;
    },
    /**
     * Test hook: Key Vault's auto-renew of `name` now, whatever its trigger says. Returns the version the
     * renewal will create once its operation completes (after the issuance delay).
     */
    async renewNow(name: string): Promise<string> {
      const cert = store.certificates.get(name.toLowerCase());
      if (!cert) throw new Error(`test Key Vault: no certificate '${name}'`);
      if (providerOf(cert.policy) === 'Unknown')
        throw new Error(`test Key Vault: '${name}' has issuer Unknown; Key Vault cannot renew it by itself`);
      if (cert.pending?.status === 'inProgress')
        throw new Error(`test Key Vault: '${name}' already has an operation in progress`);
      const op = await startRenewal(cert);
      if (!op) throw new Error(`test Key Vault: '${name}' got an operation meanwhile`);
      return op.version;
    },
  };
}
