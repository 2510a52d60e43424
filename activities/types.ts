/**
 * The narrow interfaces between the workflow's activities and the outside world (DESIGN.md, "Interfaces").
 * Everything here is public material or a reference: no private key, secret or token ever appears in these
 * shapes, because activity inputs and outputs are recorded in workflow history.
 */

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
  /** An Unknown-issuer operation is waiting for a merge. */
  pendingOperation: boolean;
}

export interface PendingCsr {
  /** PKCS#10 in PEM. Public material. */
  csrPem: string;
  /** True when an operation was already in progress and its CSR was reused. */
  reused: boolean;
}

export interface Vault {
  /** The vault's short name, the first half of a CertificateId. */
  readonly name: string;
  describe(certName: string): Promise<CertificateState>;
  beginRenewal(certName: string): Promise<PendingCsr>;
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

export interface Issuer {
  readonly name: string;
  submit(req: IssueRequest): Promise<Issued | PendingIssue>;
  poll(ref: string, req: IssueRequest): Promise<Issued | PendingIssue>;
}

export interface Probe {
  ok: boolean;
  /** SHA-1 of the served leaf, uppercase hex. */
  servedThumbprint: string | null;
  detail: string;
  latencyMs: number;
}

export interface BindingOutcome {
  target: string;
  binding: string;
  before: string | null;
  after: string | null;
  status: 'bound' | 'unchanged' | 'rolled-back' | 'failed';
  detail: string;
  probe?: Probe;
}
