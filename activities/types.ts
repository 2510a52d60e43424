/**
 * The narrow interfaces between the workflow's activities and the outside world (DESIGN.md, "Interfaces").
 * Everything here is public material or a reference: no private key, secret or token ever appears in these
 * shapes, because activity inputs and outputs are recorded in workflow history.
 */
import type { LifecycleSettings } from './lifecycles';

/** `<vault>/<name>`, the id used everywhere (workflow id is `certificate:<vault>/<name>`). */
export type CertificateId = string;

export interface KeySpec {
  /** 'RSA' | 'RSA-HSM' | 'EC' | 'EC-HSM' as in Key Vault. */
  keyType: string;
  keySize?: number;
  curve?: string;
  reuseKey: boolean;
  exportable: boolean;
}

export interface CertificatePolicySnapshot {
  subject: string;
  dnsNames: string[];
  issuerName: string;
  key: KeySpec;
  validityInMonths?: number;
  /** Key Vault lifetime action: renew at this percentage of lifetime, or this many days before expiry. */
  lifetimePercentage?: number;
  daysBeforeExpiry?: number;
  /**
   * What the vault does at the lifetime trigger: `AutoRenew` (it renews by itself: an integrated CA such as
   * DigiCert or GlobalSign, or a self-signed policy) or `EmailContacts` (it only emails; the only action Key Vault
   * allows for the Unknown issuer). Absent when the vault has no lifetime action.
   */
  lifetimeAction?: 'AutoRenew' | 'EmailContacts';
}

export interface CertificateState {
  id: CertificateId;
  vault: string;
  name: string;
  /** Current (enabled, merged) version; null when the certificate has never been issued. */
  version: string | null;
  /** SHA-1 thumbprint, uppercase hex (App Service style); compare case-insensitively. */
  thumbprint: string | null;
  notBefore: string | null; // ISO 8601
  notAfter: string | null; // ISO 8601
  subject: string | null;
  dnsNames: string[];
  tags: Record<string, string>;
  policy: CertificatePolicySnapshot | null;
  /** The current certificate's public key ('RSA' with size, 'EC' with curve), to detect a changed key policy. */
  key?: { type: string; size?: number; curve?: string } | null;
  /** An Unknown-issuer operation is waiting for a merge. */
  pendingOperation: boolean;
  /**
   * What the vault says needs a person (an App Service Certificate order: domain verification pending, renewal
   * failed, auto-renew off): shown in status and mail. Absent when nothing does.
   */
  conditions?: Array<{ type: string; message: string }>;
}

/** What a worker says about enrolling a certificate with an issuer (`certflow enroll` asks before starting). */
export interface EnrollmentCheck {
  ok: boolean;
  /** Each problem names what is wrong and what the worker knows instead. */
  problems: string[];
  /** The mode the vault's policy implies (observe: the vault renews it; the issuer is not used). */
  mode: 'issue' | 'observe' | null;
  /** The certificate has no issued version yet (the lifecycle's first renewal, trigger Missing, issues it). */
  notIssuedYet: boolean;
  /**
   * What the lifecycle is to carry from this worker's configuration (change control, policy, mode, drift watch;
   * worker/lifecycle-settings.ts), so the CLI starts it as the worker would. Absent from workers before 3.1.
   */
  settings?: LifecycleSettings;
}

export interface PendingCsr {
  /** PKCS#10 in PEM. Public material. */
  csrPem: string;
  /** True when an operation was already in progress and its CSR was reused. */
  reused: boolean;
}

/** One certificate as a listing shows it (fleet discovery, `certflow enroll --all`). */
export interface CertificateSummary {
  id: CertificateId;
  name: string;
  version: string | null;
  thumbprint: string | null;
  notAfter: string | null;
  enabled: boolean;
  tags: Record<string, string>;
}

/**
 * Small named secrets that belong with the vault (e.g. the ACME account key): kept in Key Vault secrets or,
 * for the local vault, encrypted at rest. Never passed through workflow history.
 */
export interface SecretStore {
  getSecret(name: string): Promise<string | null>;
  setSecret(name: string, value: string): Promise<void>;
}

export interface Vault {
  /** The vault's short name, the first half of a CertificateId. */
  readonly name: string;
  describe(certName: string): Promise<CertificateState>;
  /** Every certificate of the vault (current versions; pending-only ones with version null). */
  list(): AsyncIterable<CertificateSummary>;
  /**
   * Start a new certificate from a policy with issuer Unknown: the vault makes key and CSR, and the
   * lifecycle's first renewal (trigger Missing) issues it. Reuses an operation already in progress.
   */
  create(
    certName: string,
    policy: CertificatePolicySnapshot,
    tags?: Record<string, string>,
  ): Promise<PendingCsr>;
  /** The URI of a version's secret (Key Vault secret id), for consumers that pull it themselves. */
  secretIdOf(certName: string, version: string): string;
  /** The current leaf certificate (PEM, public), or null when none is issued. For the CA's renewal window (ARI). */
  certificatePem(certName: string): Promise<string | null>;
  /**
   * Issue mode: a key and CSR for the next version, made in the vault (reuses an operation in progress).
   * A certificate the vault renews itself (its policy names an issuer other than Unknown, see
   * `vaultRenewsItself`) is refused with the non-retryable `PolicyNotOwned`, unless `takeOver` is set (the
   * certificate is configured with mode "issue"): Certflow never changes the policy of a certificate it does not own.
   */
  beginRenewal(certName: string, opts?: { takeOver?: boolean }): Promise<PendingCsr>;
  /**
   * Observe mode: asks the vault to renew a certificate it renews itself (integrated CA or self-signed) now, with
   * its policy and issuer unchanged. Returns at once; the new version appears when the vault's CA has issued it
   * (seconds for self-signed, minutes to days for an integrated CA). An operation already in progress is reused
   * (`started: false`). Vaults that cannot renew by themselves leave it out.
   */
  renewInVault?(certName: string): Promise<{ started: boolean; status: string }>;
  /** Chain in PEM, leaf first. Returns the new state; detects an already merged chain by thumbprint. */
  merge(certName: string, chainPem: string[]): Promise<CertificateState>;
  cancelRenewal(certName: string): Promise<void>;
  /**
   * The private key and chain of a version, for a file target that must write them to disk.
   * Only ever called inside an activity; the result must never be returned from it or logged.
   */
  exportSecret(certName: string, version: string): Promise<{ keyPem: string; chainPem: string[] }>;
}

export interface IssueRequest {
  certificateId: CertificateId;
  csrPem: string;
  dnsNames: string[];
  /**
   * Stable for one renewal attempt (all of its activity retries), different for the next attempt: an issuer that
   * cannot resume by reference can deduplicate by it (the command issuer passes it as CERTFLOW_REQUEST_KEY).
   */
  requestKey?: string;
}

export interface Issued {
  status: 'issued';
  /** Leaf first, then intermediates, PEM. */
  chainPem: string[];
}

export interface PendingIssue {
  status: 'pending';
  /** Opaque reference to poll with (an ACME order URL, a request id); not secret. */
  ref: string;
  retryAfterSeconds: number;
}

/** A CA's suggested renewal window (ACME ARI, RFC 9773). */
export interface RenewalWindow {
  start: string; // ISO 8601
  end: string; // ISO 8601
  explanationUrl?: string;
  /** When to ask again (the Retry-After of the renewalInfo response). */
  retryAfterSeconds?: number;
}

export interface Issuer {
  readonly name: string;
  submit(req: IssueRequest): Promise<Issued | PendingIssue>;
  /**
   * Optional first half of `submit` for CAs with orders (ACME): place the order and answer `pending` with its
   * reference at once (`retryAfterSeconds: 0`: poll right away). The workflow records the reference, so a retry
   * after a crash or a lost answer polls the same order instead of placing another.
   */
  placeOrder?(req: IssueRequest): Promise<Issued | PendingIssue>;
  poll(ref: string, req: IssueRequest): Promise<Issued | PendingIssue>;
  /** The CA's renewal window for the current leaf (PEM), when the CA offers one (ARI); null otherwise. */
  renewalWindow?(leafPem: string): Promise<RenewalWindow | null>;
  /**
   * Revokes a certificate this CA issued (an emergency re-issue's `--revoke-old`), with an RFC 5280 reason code
   * (1 keyCompromise, 4 superseded). `already` when the CA says it was revoked before. CAs that cannot leave it out.
   */
  revoke?(certPem: string, reason: { code: number; name: string }): Promise<{ already: boolean }>;
}

export interface Probe {
  ok: boolean;
  /** SHA-1 of the served leaf, uppercase hex. */
  servedThumbprint: string | null;
  detail: string;
  latencyMs: number;
}

/** What a binding target gets to re-bind one certificate. Public material and references only. */
export interface BindingContext {
  certificateId: CertificateId;
  /** The new (merged) version and its thumbprint. */
  version: string;
  thumbprint: string;
  /** The thumbprint being replaced, when known: targets look for consumers still on it. */
  previousThumbprint: string | null;
  /** Key Vault secret id of the new version, for consumers that pull from the vault themselves. */
  secretId: string;
  notAfter: string | null;
  /**
   * Key and chain of the new version, fetched from the vault on first call (then cached in memory for
   * this sync). Only targets that must write files call it; never log or return its result.
   */
  material(): Promise<{ keyPem: string; chainPem: string[] }>;
}

/**
 * A consumer of certificates (App Service, file + reload, webhook). `sync` reconciles: every binding of this
 * target that uses the certificate is brought to `ctx.thumbprint` (drift from any older thumbprint fixed,
 * bindings already on it reported `unchanged`), verified live where there is an endpoint, and reported one
 * outcome per binding. Idempotent; a failing binding is an outcome with status `failed`, not a throw.
 */
export interface BindingTarget {
  readonly kind: string;
  readonly name: string;
  sync(ctx: BindingContext): Promise<BindingOutcome[]>;
  /**
   * Drift watch: what each binding of this target serves now, without changing anything (a live probe, and what
   * the target can read of its own state). Absent: the target cannot be watched between syncs.
   */
  watch?(expectedThumbprint: string): Promise<BindingProbe[]>;
}

/**
 * One binding's answer to the drift watch. `serving`: the expected certificate, verified live; `drift`: another
 * certificate (re-synced, reason BindingDrift); `invalid`: the expected one, but the probe fails otherwise (chain
 * not trusted, name not covered: a re-sync would not fix it); `unreachable`: the endpoint did not answer;
 * `unprobeable`: nothing to probe (no endpoint configured, or a target kind that cannot be watched);
 * `resync-failed`: drift found and the re-sync failed (set by the lifecycle).
 */
export interface BindingProbe {
  target: string;
  binding: string;
  state: 'serving' | 'drift' | 'invalid' | 'unreachable' | 'unprobeable' | 'resync-failed';
  /** SHA-1 of what is served (or on disk, for a file target without an endpoint), uppercase hex. */
  served: string | null;
  detail: string;
}

export interface BindingOutcome {
  target: string;
  binding: string;
  before: string | null;
  after: string | null;
  status: 'bound' | 'unchanged' | 'rolled-back' | 'failed';
  detail: string;
  probe?: Probe;
  /**
   * Why a `failed` or `rolled-back` outcome failed, a stable identifier: `HostUnreachable`,
   * `AuthenticationRefused`, `HostKeyMismatch` (SSH), `CommandFailed` (validate, reload or a remote script),
   * `ProbeMismatch` (the endpoint did not serve the new certificate over a trusted chain). Absent when unclassified.
   */
  reason?: string;
}
