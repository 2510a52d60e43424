/**
 * The activities of a renewal, created over injected dependencies (vaults, issuers, binding targets,
 * notifier). Each one is idempotent: retries and worker crashes replay them safely.
 * Inputs and outputs are recorded in workflow history, so they carry only references and public material.
 */
import { ApplicationFailure } from '@temporalio/common';
import { log } from '@temporalio/activity';
import { parseCertificateId } from './ids';
import { certificateMode } from '../workflows/lifecycle/mode';
import type {
  EnrollmentCheck,
  BindingContext,
  BindingOutcome,
  BindingProbe,
  BindingTarget,
  CertificateState,
  Issued,
  Issuer,
  IssueRequest,
  PendingIssue,
  RenewalWindow,
  Vault,
} from './types';
import { verifyIssuedChain, type VerifiedCertificate } from './verify/x509';
import type { LifecycleSettings } from './lifecycles';
import { batchFileTargets, createFileReloadTarget, type FileBindingTarget } from './bindings/file-reload';
import { mapLimit } from './bindings/concurrency';
import type { CertificateOrders, CertificateOrderState } from './bindings/app-service-certificate-orders';
import { CertificateOrderError } from './bindings/certificate-order-error';
import { parseRecipients, type NotificationEvent } from './notify/templates';
import { toNotificationEvent, type NotifyInput } from './notify/events';
import { withHeartbeat } from './heartbeat';
import { globMatch } from './globs';
import { watchFileTarget, watchTargets } from './bindings/watch';
import { liveSettingsOf, settingsAnswer, type LiveSettings } from '../workflows/lifecycle/settings';

export type { NotifyInput, NotifyKind } from './notify/events';

/** Email or chat: deduplicates by event id itself (a duplicate is reported, not sent again). */
export interface Notifier {
  send(event: NotificationEvent): Promise<{
    messageId?: string;
    accepted?: string[];
    status?: number;
    duplicate?: boolean;
    noRecipients?: boolean;
  }>;
}

export interface ActivityDeps {
  vaults: ReadonlyMap<string, Vault>;
  issuers: ReadonlyMap<string, Issuer>;
  /** The consumers of a certificate (App Service, files + reload, webhook). */
  bindings?: (certificateId: string, tags: Record<string, string>) => BindingTarget[];
  /** File targets given as plain settings (nginx & co); wrapped as binding targets. */
  fileBindings?: (certificateId: string, tags: Record<string, string>) => FileBindingTarget[];
  /** App Service Certificate orders of the configured subscriptions (observe mode: discovery, state, renew). */
  certificateOrders?: CertificateOrders;
  /** How many targets sync at once (default 8). */
  bindingConcurrency?: number;
  /**
   * File targets of one server (same validate and reload commands) bind as one batch: one validation and one
   * reload for all (default). `false` binds them one at a time, as the benchmark's peer does.
   */
  batchFileBindings?: boolean;
  /** Told of observations, renewals, failures and binding outcomes (Prometheus metrics). */
  metrics?: ActivityMetrics;
  notifier: Notifier | null;
  /** Optional chat webhook (Slack / Teams) told the same events. */
  chat?: Notifier | null;
  /** People told about every certificate, besides its Recipient tag. */
  defaultRecipients?: string[];
  /** Extra trust anchors the issued chain must validate against (optional). */
  trustAnchorsPem?: (issuer: string) => string[] | undefined;
  /** DNS-name globs an issuer may issue for (its allowedNames), checked again on the issued chain. */
  allowedNames?: (issuer: string) => string[] | undefined;
  /** What a lifecycle of this certificate carries from the configuration (worker/lifecycle-settings.ts). */
  lifecycleSettings?: (certificateId: string) => LifecycleSettings;
  now?: () => Date;
}

export interface ActivityMetrics {
  observed(state: CertificateState): void;
  renewed(certificateId: string): void;
  failed(certificateId: string, type: string): void;
  bindings(certificateId: string, outcomes: BindingOutcome[]): void;
  /** Drift watch: every binding's answer to a probe. */
  probed?(certificateId: string, answers: BindingProbe[]): void;
  /** The certificate's safety buffer (workflows/buffer.ts), in seconds, as the lifecycle computed it. */
  safetyBuffer?(certificateId: string, seconds: number | null): void;
  escalated?(certificateId: string): void;
}

export function createActivities(deps: ActivityDeps) {
  const now = deps.now ?? (() => new Date());
  /** Failed attempts already counted in metrics (an activity retry must not count one twice). */
  const countedFailures = new Set<string>();

  const vaultFor = (certificateId: string): { vault: Vault; name: string } => {
    let parsed;
    try {
      parsed = parseCertificateId(certificateId);
    } catch (err) {
      throw ApplicationFailure.create({
        message: (err as Error).message,
        type: 'BadCertificateId',
        nonRetryable: true,
      });
    }
    const vault = deps.vaults.get(parsed.vault);
    if (!vault) {
      throw ApplicationFailure.create({
        message: `vault "${parsed.vault}" of ${certificateId} is not configured (known: ${[...deps.vaults.keys()].join(', ') || 'none'})`,
        type: 'UnknownVault',
        nonRetryable: true,
      });
    }
    return { vault, name: parsed.name };
  };

  /** The issuer's allowedNames for verifyIssuedChain, checked again on the issued chain. */
  const allowedNamesOf = (issuer: string | undefined) => {
    const patterns = issuer ? deps.allowedNames?.(issuer) : undefined;
    return issuer && patterns ? { allowedNames: { issuer, patterns } } : {};
  };

  const issuerFor = (name: string): Issuer => {
    const issuer = deps.issuers.get(name);
    if (!issuer) {
      throw ApplicationFailure.create({
        message: `issuer "${name}" is not configured (known: ${[...deps.issuers.keys()].join(', ') || 'none'})`,
        type: 'UnknownIssuer',
        nonRetryable: true,
      });
    }
    return issuer;
  };

  const ordersOf = (): CertificateOrders => {
    if (!deps.certificateOrders)
      throw ApplicationFailure.create({
        message:
          'no App Service Certificate orders are configured (certificateOrders in the worker configuration)',
        type: 'CertificateOrdersNotConfigured',
        nonRetryable: true,
      });
    return deps.certificateOrders;
  };
  /** Failures of the orders API as activity failures with a stable type. */
  const orderCall = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ApplicationFailure) throw err;
      if (!(err instanceof CertificateOrderError))
        throw ApplicationFailure.create({
          message: (err as Error).message,
          type: 'BadCertificateOrderId',
          nonRetryable: true,
        });
      const f = err.failure;
      const type =
        f.kind === 'throttled'
          ? 'CertificateOrderThrottled'
          : f.kind === 'forbidden'
            ? 'CertificateOrderForbidden'
            : f.kind === 'gone'
              ? 'CertificateOrderNotFound'
              : 'CertificateOrderUnavailable';
      throw ApplicationFailure.create({
        message: err.message,
        type,
        nonRetryable: !f.retryable,
        ...(f.retryAfterSeconds !== undefined ? { nextRetryDelay: `${f.retryAfterSeconds}s` } : {}),
      });
    }
  };

  return {
    /**
     * The certificate as its vault has it now. With the fingerprint of the settings the lifecycle runs under
     * (workflows/lifecycle/settings.ts), also this worker's settings for it when they differ, so a change to
     * the configuration reaches lifecycles that are already running.
     */
    async observe(
      certificateId: string,
      opts: { settingsFingerprint?: string } = {},
    ): Promise<CertificateState & { settings?: LiveSettings }> {
      const { vault, name } = vaultFor(certificateId);
      const state = await vault.describe(name);
      deps.metrics?.observed(state);
      const current = deps.lifecycleSettings
        ? liveSettingsOf(deps.lifecycleSettings(certificateId))
        : undefined;
      const settings = settingsAnswer(opts.settingsFingerprint, current);
      return settings ? { ...state, settings } : state;
    },

    /** Release 2's step (kept for lifecycles still running its code): a CSR in the vault. */
    async beginRenewal(certificateId: string) {
      const { vault, name } = vaultFor(certificateId);
      const csr = await vault.beginRenewal(name);
      log.info('CSR ready in the vault', { certificateId, reused: csr.reused });
      return csr;
    },

    /**
     * The first step of an attempt: the certificate as it is now, and a key and CSR for its next version made in
     * the vault (an operation in progress is reused). Fails at once, non-retryable, when the issuer is not
     * configured on this worker (its task queue would have nobody polling it), and when the vault renews the
     * certificate itself and it is not configured to be taken over (mode "issue").
     */
    async prepareRenewal(input: { certificateId: string; issuer: string; takeOver?: boolean }): Promise<{
      before: CertificateState;
      csrPem: string;
      reused: boolean;
      dnsNames: string[];
    }> {
      issuerFor(input.issuer);
      const { vault, name } = vaultFor(input.certificateId);
      const before = await vault.describe(name);
      const csr = await vault.beginRenewal(name, input.takeOver ? { takeOver: true } : {});
      log.info('CSR ready in the vault', { certificateId: input.certificateId, reused: csr.reused });
      // the names the policy asks for; a subject-only policy means the names of the current certificate
      const dnsNames = before.policy?.dnsNames?.length ? before.policy.dnsNames : before.dnsNames;
      return { before, csrPem: csr.csrPem, reused: csr.reused, dnsNames };
    },

    /**
     * `certflow enroll` asks first: is the vault configured here and does it hold the certificate, is the issuer
     * configured (not needed for a certificate the vault renews itself)? Problems are answered, never thrown. The
     * answer carries what the lifecycle is to be started with from this worker's configuration (change control).
     */
    async checkEnrollment(input: { certificateId: string; issuer: string }): Promise<EnrollmentCheck> {
      const problems: string[] = [];
      let mode: EnrollmentCheck['mode'] = null;
      let notIssuedYet = false;
      let vault: Vault | undefined;
      let name = '';
      try {
        ({ vault, name } = vaultFor(input.certificateId));
      } catch (err) {
        problems.push((err as Error).message);
      }
      if (vault) {
        try {
          const state = await vault.describe(name);
          mode = certificateMode(state.policy);
          notIssuedYet = state.version === null;
        } catch (err) {
          const type = (err as ApplicationFailure).type;
          problems.push(
            type === 'CertificateNotFound'
              ? `certificate "${name}" does not exist in vault "${vault.name}" (create it there first, or add a create block to the worker's configuration)`
              : `vault "${vault.name}" could not be read: ${(err as Error).message}`,
          );
        }
      }
      if (mode !== 'observe' && !deps.issuers.has(input.issuer))
        problems.push(
          `issuer "${input.issuer}" is not configured on the workers (known: ${[...deps.issuers.keys()].join(', ') || 'none'})`,
        );
      const settings = deps.lifecycleSettings?.(input.certificateId);
      return { ok: problems.length === 0, problems, mode, notIssuedYet, ...(settings ? { settings } : {}) };
    },

    /** Observe mode: asks the vault to renew a certificate it renews itself (policy and issuer unchanged). */
    async renewInVault(certificateId: string): Promise<{ started: boolean; status: string }> {
      const { vault, name } = vaultFor(certificateId);
      if (!vault.renewInVault)
        throw ApplicationFailure.create({
          message: `vault "${vault.name}" cannot renew certificates by itself; configure ${certificateId} with mode "issue" and an issuer`,
          type: 'VaultCannotRenew',
          nonRetryable: true,
        });
      return vault.renewInVault(name);
    },

    /**
     * Places the order with the CA (placeOrder where the issuer has one: the answer is its reference, recorded in
     * history, and issuance goes on in pollIssuance), or issues in one call. Heartbeats while it runs.
     */
    async issue(req: IssueRequest & { issuer: string }): Promise<Issued | PendingIssue> {
      const issuer = issuerFor(req.issuer);
      return withHeartbeat(() => (issuer.placeOrder ? issuer.placeOrder(req) : issuer.submit(req)));
    },

    /** Drives a placed or pending order on; idempotent for one reference. Heartbeats while it runs. */
    async pollIssuance(req: IssueRequest & { issuer: string; ref: string }): Promise<Issued | PendingIssue> {
      const issuer = issuerFor(req.issuer);
      return withHeartbeat(() => issuer.poll(req.ref, req));
    },

    /** The CA's renewal window for the current certificate (ACME ARI); null when the issuer or CA has none. */
    async renewalWindow(input: { certificateId: string; issuer: string }): Promise<RenewalWindow | null> {
      const issuer = issuerFor(input.issuer);
      if (!issuer.renewalWindow) return null;
      const { vault, name } = vaultFor(input.certificateId);
      const pem = await vault.certificatePem(name);
      return pem ? issuer.renewalWindow(pem) : null;
    },

    async verify(input: {
      certificateId: string;
      csrPem: string;
      chainPem: string[];
      dnsNames: string[];
      issuer?: string;
    }): Promise<VerifiedCertificate> {
      return verifyIssuedChain({
        csrPem: input.csrPem,
        chainPem: input.chainPem,
        expectedDnsNames: input.dnsNames,
        now: now(),
        trustAnchorsPem: input.issuer ? deps.trustAnchorsPem?.(input.issuer) : undefined,
        ...allowedNamesOf(input.issuer),
      });
    },

    async cancelRenewal(certificateId: string): Promise<void> {
      const { vault, name } = vaultFor(certificateId);
      await vault.cancelRenewal(name);
    },

    /**
     * Checks the CA's chain against the CSR, the names asked for and the trust anchors, then merges it: a chain
     * that fails any check never reaches the vault. Idempotent (an already merged chain is found by thumbprint).
     */
    async verifyAndMerge(input: {
      certificateId: string;
      issuer: string;
      csrPem: string;
      chainPem: string[];
      dnsNames: string[];
    }): Promise<CertificateState & { verifiedThumbprint: string }> {
      const verified = await verifyIssuedChain({
        csrPem: input.csrPem,
        chainPem: input.chainPem,
        expectedDnsNames: input.dnsNames,
        now: now(),
        trustAnchorsPem: deps.trustAnchorsPem?.(input.issuer),
        ...allowedNamesOf(input.issuer),
      });
      const { vault, name } = vaultFor(input.certificateId);
      const state = await vault.merge(name, input.chainPem);
      if (!state.thumbprint || state.thumbprint.toUpperCase() !== verified.thumbprint.toUpperCase()) {
        throw ApplicationFailure.create({
          message: `after merge ${input.certificateId} has thumbprint ${state.thumbprint}, expected ${verified.thumbprint}`,
          type: 'MergeMismatch',
          nonRetryable: true,
        });
      }
      deps.metrics?.renewed(input.certificateId);
      deps.metrics?.observed(state);
      return { ...state, verifiedThumbprint: verified.thumbprint };
    },

    /** Release 2's merge step (kept for lifecycles still running its code). */
    async merge(input: { certificateId: string; chainPem: string[]; expectedThumbprint: string }) {
      const { vault, name } = vaultFor(input.certificateId);
      const state = await vault.merge(name, input.chainPem);
      if (!state.thumbprint || state.thumbprint.toUpperCase() !== input.expectedThumbprint.toUpperCase()) {
        throw ApplicationFailure.create({
          message: `after merge ${input.certificateId} has thumbprint ${state.thumbprint}, expected ${input.expectedThumbprint}`,
          type: 'MergeMismatch',
          nonRetryable: true,
        });
      }
      deps.metrics?.renewed(input.certificateId);
      return state;
    },

    /** The names of the binding targets of a certificate, in configuration order (staged rollout plans over them). */
    async bindingTargets(input: { certificateId: string }): Promise<string[]> {
      const { vault, name } = vaultFor(input.certificateId);
      const state = await vault.describe(name);
      return [
        ...(deps.bindings?.(input.certificateId, state.tags) ?? []).map((t) => t.name),
        ...(deps.fileBindings?.(input.certificateId, state.tags) ?? []).map((f) => f.name),
      ];
    },

    async syncBindings(input: {
      certificateId: string;
      version: string;
      thumbprint: string;
      previousThumbprint?: string | null;
      /** Only these binding targets (names or id globs; a staged rollout's stage); default every one. */
      only?: string[];
    }): Promise<BindingOutcome[]> {
      const { vault, name } = vaultFor(input.certificateId);
      const state = await vault.describe(name);
      const picked = (n: string) => !input.only || input.only.some((p) => p === n || globMatch(p, n));
      const listed = [
        ...(deps.bindings?.(input.certificateId, state.tags) ?? []).filter((t) => picked(t.name)),
        ...(deps.fileBindings?.(input.certificateId, state.tags) ?? [])
          .filter((f) => picked(f.name))
          .map(createFileReloadTarget),
      ];
      // file targets of one server are bound as one batch: one validation and one reload for all its sites
      const targets = deps.batchFileBindings === false ? listed : batchFileTargets(listed);
      if (targets.length === 0) return [];
      let material: ReturnType<BindingContext['material']> | undefined;
      const ctx: BindingContext = {
        certificateId: input.certificateId,
        version: input.version,
        thumbprint: input.thumbprint,
        previousThumbprint: input.previousThumbprint ?? null,
        secretId: vault.secretIdOf(name, input.version),
        notAfter: state.version === input.version ? state.notAfter : null,
        // the key is fetched here only when a target writes files, and never leaves this activity
        material: () => (material ??= vault.exportSecret(name, input.version)),
      };
      const perTarget = await withHeartbeat(() =>
        mapLimit(targets, deps.bindingConcurrency ?? 8, async (target) => {
          try {
            return await target.sync(ctx);
          } catch (err) {
            // a target that throws is one failed outcome; the others carry on
            return [
              {
                target: target.name,
                binding: target.kind,
                before: input.previousThumbprint ?? null,
                after: null,
                status: 'failed' as const,
                detail: (err as Error).message,
              },
            ];
          }
        }),
      );
      const outcomes = perTarget.flat();
      deps.metrics?.bindings(input.certificateId, outcomes);
      return outcomes;
    },

    /**
     * Drift watch: what every binding of the certificate serves now, against `thumbprint` (the vault's current
     * version), changing nothing. Network failures are answers (`unreachable`), not errors; a target kind that
     * cannot be watched answers `unprobeable`. The lifecycle's safety buffer rides along for the metrics gauge.
     */
    async probeBindings(input: {
      certificateId: string;
      thumbprint: string;
      safetyBufferSeconds?: number | null;
    }): Promise<BindingProbe[]> {
      const { vault, name } = vaultFor(input.certificateId);
      const state = await vault.describe(name);
      const files = deps.fileBindings?.(input.certificateId, state.tags) ?? [];
      const others = deps.bindings?.(input.certificateId, state.tags) ?? [];
      const answers = await withHeartbeat(async () => [
        ...(await watchTargets(others, input.thumbprint, deps.bindingConcurrency ?? 8)),
        ...(await mapLimit(files, deps.bindingConcurrency ?? 8, (f) => watchFileTarget(f, input.thumbprint))),
      ]);
      deps.metrics?.probed?.(input.certificateId, answers);
      if (input.safetyBufferSeconds !== undefined)
        deps.metrics?.safetyBuffer?.(input.certificateId, input.safetyBufferSeconds);
      return answers;
    },

    /** Every App Service Certificate order with its Key Vault secret and its state as data (empty when none configured). */
    async listCertificateOrders(): Promise<{
      orders: CertificateOrderState[];
      problems: { where: string; detail: string }[];
    }> {
      if (!deps.certificateOrders) return { orders: [], problems: [] };
      return deps.certificateOrders.list();
    },

    /** One order's state (status, auto-renew, Key Vault secret, conditions such as DomainVerificationPending). */
    async describeCertificateOrder(input: { orderId: string }): Promise<CertificateOrderState> {
      return orderCall(() => ordersOf().describe(input.orderId));
    },

    /**
     * Observe mode's "renew now" for an App Service Certificate: the order's renew action. `started: false` with
     * the order's reason when it refuses (domain verification pending, not renewable yet); throttling and outages
     * are retryable failures (Retry-After honoured), authorization and a deleted order are not.
     */
    async renewCertificateOrder(input: { orderId: string }): Promise<{ started: boolean; status: string }> {
      const result = await orderCall(() => ordersOf().renew(input.orderId));
      log.info('App Service Certificate order renewal', { orderId: input.orderId, ...result });
      return result;
    },

    async notify(
      input: NotifyInput,
    ): Promise<{ sent: boolean; messageId?: string; invalidRecipients: string[] }> {
      if (input.kind === 'renewal-failed' && input.outcome?.error && !countedFailures.has(input.eventId)) {
        countedFailures.add(input.eventId);
        deps.metrics?.failed(input.certificateId, input.outcome.error.type);
      }
      if (input.kind === 'escalation' && !countedFailures.has(input.eventId)) {
        countedFailures.add(input.eventId);
        deps.metrics?.escalated?.(input.certificateId);
      }
      if (!deps.notifier && !deps.chat) return { sent: false, invalidRecipients: [] };
      // the tag and state the workflow saw: mail must not depend on the vault being up now
      let current = input.current;
      let tag = input.recipientTag;
      if (!current) {
        const { vault, name } = vaultFor(input.certificateId);
        const state = await vault.describe(name);
        current = { thumbprint: state.thumbprint, notAfter: state.notAfter };
        tag = state.tags.Recipient;
      }
      const { valid, invalid } = parseRecipients(tag);
      const recipients = [...new Set([...valid, ...(deps.defaultRecipients ?? [])])];
      if (invalid.length)
        log.warn('invalid addresses in the Recipient tag', { certificateId: input.certificateId, invalid });
      const event = toNotificationEvent(input, recipients, invalid, current, now());
      // each channel deduplicates by event id, so a retry after one channel failed never repeats the other
      const channels = [deps.notifier, deps.chat].filter((n): n is Notifier => !!n);
      const results = await Promise.allSettled(channels.map((n) => n.send(event)));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      const sent = results.some(
        (r) =>
          r.status === 'fulfilled' &&
          (r.value.duplicate || (r.value.accepted?.length ?? 0) > 0 || r.value.status !== undefined),
      );
      const first = results[0];
      const messageId = first?.status === 'fulfilled' ? first.value.messageId : undefined;
      return { sent, ...(messageId ? { messageId } : {}), invalidRecipients: invalid };
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
