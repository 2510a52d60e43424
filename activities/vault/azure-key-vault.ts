/**
 * The Vault interface over Azure Key Vault (@azure/keyvault-certificates, @azure/keyvault-secrets).
 * Issue mode, for certificates from a CA Key Vault cannot talk to (the "Unknown" issuer flow): Key Vault makes
 * the key and the CSR, we get the CSR signed elsewhere and merge the chain; the private key stays in the vault.
 * Observe mode, for certificates Key Vault renews itself (an integrated CA such as DigiCert, or Self): we read
 * them, ask the vault for a new version with `renewInVault`, and never change their policy unless configured
 * to take them over.
 *
 * Written for the real service, as Microsoft's recorded sessions show it (test/conformance): a create while an
 * operation is in progress is a 409, so we look for the operation first and reuse its CSR, unless it was
 * cancelled (a cancel leaves it `inProgress` with `cancellation_requested`), which we delete and start afresh;
 * "latest" may be a disabled version still waiting for its certificate, so the current version is the newest
 * enabled one that has a certificate; merge takes no tags, so we re-apply them to the merged version by explicit
 * version (also on a retry that finds the chain already merged, in case the earlier attempt stopped between the
 * two); we never poll a create (an Unknown-issuer one only finishes with a merge).
 */
import type { TokenCredential } from '@azure/identity';
import {
  CertificateClient,
  type CertificateClientOptions,
  type CertificateOperation,
  type CertificatePolicy,
  type CertificateProperties,
  type KeyVaultCertificate,
  type KeyVaultCertificateWithPolicy,
} from '@azure/keyvault-certificates';
import { SecretClient, type SecretClientOptions } from '@azure/keyvault-secrets';
import { ApplicationFailure } from '@temporalio/common';
import crypto from 'node:crypto';
import type { CertificateState, CertificateSummary, PendingCsr, SecretStore, Vault } from '../types';
import { vaultRenewsItself } from '../../workflows/lifecycle/mode';
import { checkVaultUrl, type CloudEndpoints } from './azure-cloud';
import { parseChain, toPem, toState, toSummary } from './azure-key-vault-convert';
import {
  keepErrorBodies,
  nonRetryable,
  serviceError,
  vaultFailure,
  type CallContext,
} from './azure-key-vault-errors';
import { policyFromSnapshot, renewalPolicy, snapshot } from './azure-key-vault-policy';
import { parseCertificateSecret, SecretWithoutKeyError } from './azure-key-vault-secret';
import { createKeyVaultSecretStore } from './azure-key-vault-secret-store';

export interface AzureKeyVaultOptions {
  /** Short name, the first half of certificate ids (`<vault>/<name>`). */
  name: string;
  /** https://<vault>.vault.azure.net (or the vault DNS suffix of its cloud). */
  url: string;
  /**
   * Any TokenCredential. One from createAzureCredential also carries its cloud, and the vault URL is then
   * checked to belong to that cloud when the vault is created (a clear error instead of a failed token request).
   */
  credential: TokenCredential;
  /**
   * Passed to both SDK clients. Default `retryOptions: { maxRetries: 0 }`: Temporal's activity retries own
   * the retrying, so every attempt shows in history and Retry-After becomes `nextRetryDelay`.
   */
  clientOptions?: CertificateClientOptions;
}

export function createAzureKeyVault(opts: AzureKeyVaultOptions): Vault & SecretStore {
  const cloud = (opts.credential as { cloud?: CloudEndpoints }).cloud;
  if (cloud) checkVaultUrl(opts.url, cloud);
  const baseUrl = opts.url.replace(/\/+$/, '');
  const clientOptions: CertificateClientOptions = {
    retryOptions: { maxRetries: 0 },
    ...opts.clientOptions,
    additionalPolicies: [
      ...(opts.clientOptions?.additionalPolicies ?? []),
      { policy: keepErrorBodies, position: 'perRetry' },
    ],
  };
  const certs = new CertificateClient(baseUrl, opts.credential, clientOptions);
  const { serviceVersion: _ignored, ...secretOptions } = clientOptions;
  const secrets = new SecretClient(baseUrl, opts.credential, secretOptions as SecretClientOptions);
  const vault = opts.name;

  async function call<T>(
    ctx: Omit<CallContext, 'vault'>,
    fn: () => Promise<T>,
    special?: (err: unknown) => Error | undefined,
  ): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw special?.(err) ?? vaultFailure(err, { ...ctx, vault });
    }
  }

  const status = (err: unknown) => serviceError(err).status;
  const noVersions = new Error('no versions');

  const notFound = (certName: string) => (err: unknown) =>
    status(err) === 404
      ? nonRetryable(
          'CertificateNotFound',
          `Key Vault '${vault}' has no certificate named '${certName}'.`,
          serviceError(err),
        )
      : undefined;

  const readLatest = (certName: string) =>
    call(
      { action: 'read the certificate', certName, permission: 'certificates/get' },
      () => certs.getCertificate(certName),
      notFound(certName),
    );

  /** The latest version, or undefined when the vault has no certificate of that name. */
  const readIfExists = (certName: string) =>
    readLatest(certName).catch((err: unknown) => {
      if ((err as ApplicationFailure).type === 'CertificateNotFound') return undefined;
      throw err;
    });

  /** The operation of the certificate, or undefined when there is none. */
  async function operationOf(certName: string): Promise<CertificateOperation | undefined> {
    try {
      const poller = await certs.getCertificateOperation(certName);
      return poller.getOperationState().certificateOperation;
    } catch (err) {
      if (status(err) === 404) return undefined;
      throw vaultFailure(err, {
        vault,
        action: 'read the pending operation',
        certName,
        permission: 'certificates/get',
      });
    }
  }

  /**
   * Enabled versions that carry a certificate, newest first (skips a version waiting for its merge). Key Vault
   * lists versions by id, not by age; a certificate it does not have has no versions (real: an empty list).
   */
  async function certificateVersions(certName: string): Promise<string[]> {
    const ctx = { action: 'list certificate versions', certName, permission: 'certificates/list' };
    const found = await call(
      ctx,
      async () => {
        const all = [];
        for await (const p of certs.listPropertiesOfCertificateVersions(certName)) {
          if (p.enabled !== false && p.x509Thumbprint?.length && p.version) all.push(p);
        }
        return all;
      },
      (err) => (status(err) === 404 ? noVersions : undefined),
    ).catch((err: unknown) => {
      if (err === noVersions) return [];
      throw err;
    });
    // createdOn has one-second resolution: break ties by the certificate's own notBefore
    const time = (d: Date | undefined) => d?.getTime() ?? 0;
    return found
      .sort((a, b) => time(b.createdOn) - time(a.createdOn) || time(b.notBefore) - time(a.notBefore))
      .map((p) => p.version as string);
  }

  function readVersion(certName: string, version: string): Promise<KeyVaultCertificate> {
    return call({ action: `read version ${version}`, certName, permission: 'certificates/get' }, () =>
      certs.getCertificateVersion(certName, version),
    );
  }

  /** The newest enabled version that has a certificate (the latest version may be one waiting for its merge). */
  async function currentVersion(
    certName: string,
    latest: KeyVaultCertificate,
  ): Promise<KeyVaultCertificate | undefined> {
    if (latest.cer?.length && latest.properties.enabled !== false) return latest;
    const [newest] = await certificateVersions(certName);
    return newest ? readVersion(certName, newest) : undefined;
  }

  /** The version a merge replaced: the newest other enabled one with a certificate (read in full for its tags). */
  async function previousVersion(
    certName: string,
    version: string,
  ): Promise<KeyVaultCertificate | undefined> {
    const previous = (await certificateVersions(certName)).find((v) => v !== version);
    // listings may carry no tags (emulators): read the version itself
    return previous ? readVersion(certName, previous) : undefined;
  }

  async function describe(certName: string): Promise<CertificateState> {
    const latest = await readLatest(certName);
    const current = await currentVersion(certName, latest);
    const operation = await operationOf(certName);
    return toState(vault, certName, latest, current, operation);
  }

  /**
   * A listed certificate with its current version read in full (a listing names no version). Undefined when
   * it was deleted since the listing. One GET per certificate, two when a renewal is pending.
   */
  async function summaryOf(listed: CertificateProperties): Promise<CertificateSummary | undefined> {
    const certName = listed.name ?? '';
    const latest = await readIfExists(certName);
    // gone since the listing, or (on some services) a certificate that only has a pending operation
    if (!latest) return listed.x509Thumbprint?.length ? undefined : toSummary(vault, listed, undefined);
    return toSummary(vault, listed, await currentVersion(certName, latest));
  }

  async function* list(): AsyncIterable<CertificateSummary> {
    const pages = certs.listPropertiesOfCertificates({ includePending: true }).byPage();
    for (;;) {
      const page = await call({ action: 'list the certificates', permission: 'certificates/list' }, () =>
        pages.next(),
      );
      if (page.done) return;
      for (const listed of page.value) {
        const summary = await summaryOf(listed);
        if (summary) yield summary;
      }
    }
  }

  /**
   * Starts an Unknown-issuer operation and returns its CSR. Never pollUntilDone: such an operation only
   * completes when we merge. A 409 means an operation was started in between (by someone else or an earlier
   * attempt of ours whose answer was lost): its CSR is used.
   */
  async function startOperation(
    certName: string,
    policy: CertificatePolicy,
    tags: Record<string, string>,
    action: string,
  ): Promise<PendingCsr> {
    const ctx = { vault, action, certName, permission: 'certificates/create' };
    const create = () => attempt(() => certs.beginCreateCertificate(certName, policy, { tags }));
    let created = await create();
    if ('error' in created && status(created.error) === 409) {
      const op = await operationOf(certName);
      if (op && cancelled(op)) {
        // a cancelled operation was in the way: never reused, deleted, and the create made once more
        await deleteOperation(certName);
        created = await create();
      } else {
        const raced = csrOf(certName, op);
        if (raced) return raced;
      }
    }
    if ('error' in created) throw vaultFailure(created.error, ctx);
    const op = await operationOf(certName);
    if (!op?.csr?.length)
      throw ApplicationFailure.create({
        type: 'VaultCsrMissing',
        message: `Key Vault '${vault}': the new operation of '${certName}' carries no CSR yet; will read it again.`,
        nonRetryable: false,
      });
    return { csrPem: toPem(op.csr, 'CERTIFICATE REQUEST'), reused: false };
  }

  /**
   * The CSR of the operation in progress, to finish it instead of starting another. An operation someone
   * cancelled (real Key Vault keeps it `inProgress` with `cancellationRequested`; others say `cancelled`) is
   * never reused: it is deleted, so the next create starts fresh.
   */
  async function reusableCsr(certName: string): Promise<PendingCsr | undefined> {
    const op = await operationOf(certName);
    if (op && cancelled(op)) {
      await deleteOperation(certName);
      return undefined;
    }
    return csrOf(certName, op);
  }

  function csrOf(certName: string, op: CertificateOperation | undefined): PendingCsr | undefined {
    if (op?.status !== 'inProgress') return undefined;
    if (op.issuerName && op.issuerName.toLowerCase() !== 'unknown')
      throw nonRetryable(
        'RenewalConflict',
        `Key Vault '${vault}': '${certName}' has an operation in progress with issuer '${op.issuerName}'; ` +
          `it cannot be merged with a chain from elsewhere. Cancel it or let it finish.`,
      );
    if (!op.csr?.length) return undefined;
    return { csrPem: toPem(op.csr, 'CERTIFICATE REQUEST'), reused: true };
  }

  async function deleteOperation(certName: string): Promise<void> {
    const deleted = await attempt(() => certs.deleteCertificateOperation(certName));
    if ('error' in deleted && status(deleted.error) !== 404)
      throw vaultFailure(deleted.error, {
        vault,
        action: 'delete the pending operation',
        certName,
        permission: 'certificates/delete',
      });
  }

  /** The certificate's policy: from "latest" when it carries one, else read on its own. */
  function policyOf(certName: string, latest: KeyVaultCertificateWithPolicy): Promise<CertificatePolicy> {
    if (latest.policy?.issuerName) return Promise.resolve(latest.policy);
    return call({ action: 'read the policy', certName, permission: 'certificates/get' }, () =>
      certs.getCertificatePolicy(certName),
    );
  }

  /**
   * Merge takes no tags (and real Key Vault gives the new version the tags of the operation's create, which may
   * be stale): carry the previous version's tags (e.g. Recipient) onto `version`, that version only. Writes only
   * when something differs, so a retry is free. Returns whether it wrote.
   */
  async function carryTags(
    certName: string,
    version: string,
    current: Record<string, string>,
    previous: Record<string, string>,
  ): Promise<boolean> {
    const desired = { ...current, ...previous };
    if (sameTags(desired, current)) return false;
    await call(
      { action: `re-apply tags to version ${version}`, certName, permission: 'certificates/update' },
      () => certs.updateCertificateProperties(certName, version, { tags: desired }),
    );
    return true;
  }

  const vaultOps: Vault = {
    name: vault,
    describe,

    async certificatePem(certName) {
      const current = await currentVersion(certName, await readLatest(certName));
      return current?.cer?.length ? toPem(current.cer, 'CERTIFICATE') : null;
    },
    list,

    secretIdOf(certName, version) {
      return `${baseUrl}/secrets/${encodeURIComponent(certName)}/${encodeURIComponent(version)}`;
    },

    async create(certName, policy, tags = {}) {
      const desired = policyFromSnapshot(certName, policy);
      const existing = await readIfExists(certName);
      const current = existing && (await currentVersion(certName, existing));
      if (current)
        throw nonRetryable(
          'CertificateExists',
          `Key Vault '${vault}' already has a certificate '${certName}' (version ${current.properties.version}); ` +
            `renew it instead of creating it.`,
        );
      // an earlier attempt whose answer was lost, or an operator's create: finish that one
      const reuse = await reusableCsr(certName);
      if (reuse) return reuse;
      return startOperation(certName, desired, tags, 'create the certificate');
    },

    async beginRenewal(certName, opts = {}) {
      const latest = await readLatest(certName);
      const policy = await policyOf(certName, latest);
      // never rewrite a policy the vault renews by itself (that would switch its own renewal off) unless told to
      if (vaultRenewsItself(snapshot(policy)) && !opts.takeOver)
        throw nonRetryable(
          'PolicyNotOwned',
          `Key Vault '${vault}': '${certName}' is renewed by the vault itself (issuer '${policy.issuerName}'); ` +
            `Certflow will not change its policy to issue it elsewhere. Certflow observes such a certificate ` +
            `(mode "observe"); to take it over and issue it from Certflow's CA, configure mode "issue" for it.`,
        );
      const reuse = await reusableCsr(certName);
      if (reuse) return reuse;
      // tags of the current version (latest may be a pending version with the tags of its create)
      const current = await currentVersion(certName, latest);
      return startOperation(
        certName,
        renewalPolicy(policy),
        current?.properties.tags ?? latest.properties.tags ?? {},
        'create a renewal CSR',
      );
    },

    async renewInVault(certName) {
      const latest = await readLatest(certName);
      const policy = await policyOf(certName, latest);
      if (!vaultRenewsItself(snapshot(policy)))
        throw nonRetryable(
          'VaultCannotRenew',
          `Key Vault '${vault}': '${certName}' has issuer '${policy.issuerName ?? 'Unknown'}', which the vault ` +
            `cannot renew by itself (its CA is outside the vault); Certflow renews it (mode "issue").`,
        );
      const ctx = { vault, action: 'ask the vault to renew', certName, permission: 'certificates/create' };
      const running = async () => {
        const op = await operationOf(certName);
        if (op && cancelled(op)) {
          await deleteOperation(certName);
          return undefined;
        }
        return op?.status === 'inProgress' ? { started: false, status: 'inProgress' } : undefined;
      };
      const already = await running();
      if (already) return already;
      const current = await currentVersion(certName, latest);
      const tags = current?.properties.tags ?? latest.properties.tags ?? {};
      // the policy exactly as the vault has it: same issuer, same lifetime action; never pollUntilDone
      const created = await attempt(() => certs.beginCreateCertificate(certName, policy, { tags }));
      if ('error' in created) {
        const raced = status(created.error) === 409 ? await running() : undefined;
        if (raced) return raced;
        throw vaultFailure(created.error, ctx);
      }
      // the SDK read the operation right after the create; a Self request may already be done
      return {
        started: true,
        status: created.value.getOperationState().isCompleted ? 'completed' : 'inProgress',
      };
    },

    async merge(certName, chainPem) {
      const chain = parseChain(certName, chainPem);
      const leafThumbprint = crypto
        .createHash('sha1')
        .update(chain[0] as Buffer)
        .digest('hex')
        .toUpperCase();
      const before = await describe(certName);
      if (before.thumbprint === leafThumbprint) {
        // merged by an earlier attempt, which may have failed or died before re-applying the tags: finish that
        if (!before.version) return before;
        const previous = await previousVersion(certName, before.version);
        if (!previous) return before;
        const written = await carryTags(
          certName,
          before.version,
          before.tags,
          previous.properties.tags ?? {},
        );
        return written ? describe(certName) : before;
      }

      const merged = await call(
        { action: 'merge the issued chain', certName, permission: 'certificates/create' },
        () => certs.mergeCertificate(certName, chain),
        (err) => mergeRefusal(err, certName, vault),
      );
      const version = merged.properties.version;
      if (version) await carryTags(certName, version, merged.properties.tags ?? {}, before.tags);
      return describe(certName);
    },

    async cancelRenewal(certName) {
      if (!(await operationOf(certName))) return;
      await deleteOperation(certName);
    },

    async exportSecret(certName, version) {
      const ctx = { action: `read the secret of version ${version}`, certName, permission: 'secrets/get' };
      const notExportable = (said: string) =>
        nonRetryable(
          'KeyNotExportable',
          `Key Vault '${vault}': the private key of '${certName}' is not exportable (policy keyProperties.exportable ` +
            `is false, or an HSM key); a file target cannot be served from it. ${said}`,
        );
      const secret = await call(
        ctx,
        () => secrets.getSecret(certName, { version }),
        (err) => {
          const se = serviceError(err);
          if (se.status === 404)
            return nonRetryable(
              'SecretNotFound',
              `Key Vault '${vault}' has no secret for '${certName}' version ${version}.`,
              se,
            );
          if (se.status === 403 && /exportable/i.test(se.message))
            return notExportable(`Service said: ${se.message}`);
          return undefined;
        },
      );
      if (!secret.value)
        throw nonRetryable(
          'SecretEmpty',
          `Key Vault '${vault}': the secret of '${certName}' version ${version} is empty.`,
        );
      try {
        return parseCertificateSecret(secret.value, secret.properties.contentType);
      } catch (err) {
        // Key Vault serves a non-exportable certificate's secret as the certificate alone, without the key
        if (err instanceof SecretWithoutKeyError)
          throw notExportable('Its secret holds the certificate only.');
        // the parser's messages never contain the value; keep it that way by not attaching anything else
        throw nonRetryable(
          'SecretUnreadable',
          `Key Vault '${vault}': the secret of '${certName}' version ${version} (${secret.properties.contentType ?? 'no content type'}) could not be read: ${(err as Error).message}.`,
        );
      }
    },
  };

  return { ...vaultOps, ...createKeyVaultSecretStore(vault, secrets) };
}

/** Cancelled by someone: real Key Vault keeps such an operation `inProgress` with `cancellationRequested`. */
function cancelled(op: CertificateOperation): boolean {
  return op.cancellationRequested === true || op.status === 'cancelled';
}

async function attempt<T>(fn: () => Promise<T>): Promise<{ value: T } | { error: unknown }> {
  try {
    return { value: await fn() };
  } catch (error) {
    return { error };
  }
}

function mergeRefusal(err: unknown, certName: string, vault: string): Error | undefined {
  const se = serviceError(err);
  if (se.status === 400 && /(doesn't|does not|don't|do not) match/i.test(se.message))
    return nonRetryable(
      'KeyMismatch',
      `Key Vault '${vault}' refused to merge into '${certName}': the leaf certificate's public key is not the key of the ` +
        `pending request (${se.message}). The CA issued for another CSR; request a new certificate for the current CSR.`,
      se,
    );
  if (se.status === 404 || (se.status === 403 && /pending/i.test(se.message)))
    return nonRetryable(
      'NoPendingOperation',
      `Key Vault '${vault}': '${certName}' has no operation in progress to merge into (${se.message}). Start a renewal first.`,
      se,
    );
  return undefined;
}

function sameTags(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}
