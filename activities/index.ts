/**
 * The activities of a renewal, created over injected dependencies (vaults, issuers, binding targets,
 * notifier). Each one is idempotent: retries and worker crashes replay them safely.
 * Inputs and outputs are recorded in workflow history, so they carry only references and public material.
 */
import { ApplicationFailure } from '@temporalio/common';
import { log } from '@temporalio/activity';
import { parseCertificateId } from './ids';
import type {
  BindingContext,
  BindingOutcome,
  BindingTarget,
  CertificateState,
  Issued,
  Issuer,
  IssueRequest,
  PendingIssue,
  Vault,
} from './types';
import { verifyIssuedChain, type VerifiedCertificate } from './verify/x509';
import { createFileReloadTarget, type FileBindingTarget } from './bindings/file-reload';
import { mapLimit } from './bindings/concurrency';
import type { RenewalOutcome } from '../workflows/messages';
import { parseRecipients, type NotificationEvent } from './notify/templates';

export interface Notifier {
  send(event: NotificationEvent): Promise<{ messageId: string; accepted: string[]; rejected: string[] }>;
}

export interface ActivityDeps {
  vaults: ReadonlyMap<string, Vault>;
  issuers: ReadonlyMap<string, Issuer>;
  /** The consumers of a certificate (App Service, files + reload, webhook). */
  bindings?: (certificateId: string) => BindingTarget[];
  /** File targets given as plain settings (nginx & co); wrapped as binding targets. */
  fileBindings?: (certificateId: string) => FileBindingTarget[];
  /** How many targets sync at once (default 8). */
  bindingConcurrency?: number;
  /** Told of observations, renewals, failures and binding outcomes (Prometheus metrics). */
  metrics?: ActivityMetrics;
  notifier: Notifier | null;
  /** People told about every certificate, besides its Recipient tag. */
  defaultRecipients?: string[];
  /** Extra trust anchors the issued chain must validate against (optional). */
  trustAnchorsPem?: (issuer: string) => string[] | undefined;
  now?: () => Date;
}

export interface ActivityMetrics {
  observed(state: CertificateState): void;
  renewed(certificateId: string): void;
  failed(certificateId: string, type: string): void;
  bindings(certificateId: string, outcomes: BindingOutcome[]): void;
}

export type NotifyKind = 'renewed' | 'partially-synced' | 'renewal-failed' | 'escalation' | 'paused-too-long';

export interface NotifyInput {
  kind: NotifyKind;
  eventId: string;
  certificateId: string;
  /** The attempt this is about (renewed, partially-synced, renewal-failed; the last attempt for escalations). */
  outcome?: RenewalOutcome;
  /** Escalation: the ladder step (days left; 0 = expired). */
  daysLeft?: number;
  /** Paused too long: since when and why. */
  paused?: { reason: string; since: string };
  /** When the lifecycle will try again if this attempt failed. */
  nextAttemptAt?: string | null;
  /** The certificate's Recipient tag as observed at the start of the attempt (the vault may be down now). */
  recipientTag?: string;
  /** The certificate in use when the attempt started. */
  current?: { thumbprint: string | null; notAfter: string | null };
}

export function createActivities(deps: ActivityDeps) {
  const now = deps.now ?? (() => new Date());

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

  return {
    async observe(certificateId: string): Promise<CertificateState> {
      const { vault, name } = vaultFor(certificateId);
      return vault.describe(name);
    },

    async beginRenewal(certificateId: string) {
      const { vault, name } = vaultFor(certificateId);
      const csr = await vault.beginRenewal(name);
      log.info('CSR ready in the vault', { certificateId, reused: csr.reused });
      return csr;
    },

    async issue(req: IssueRequest & { issuer: string }): Promise<Issued | PendingIssue> {
      return issuerFor(req.issuer).submit(req);
    },

    async pollIssuance(req: IssueRequest & { issuer: string; ref: string }): Promise<Issued | PendingIssue> {
      return issuerFor(req.issuer).poll(req.ref, req);
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
      });
    },

    async cancelRenewal(certificateId: string): Promise<void> {
      const { vault, name } = vaultFor(certificateId);
      await vault.cancelRenewal(name);
    },

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
      return state;
    },

    async syncBindings(input: {
      certificateId: string;
      version: string;
      thumbprint: string;
      previousThumbprint?: string | null;
    }): Promise<BindingOutcome[]> {
      const targets = [
        ...(deps.bindings?.(input.certificateId) ?? []),
        ...(deps.fileBindings?.(input.certificateId) ?? []).map(createFileReloadTarget),
      ];
      if (targets.length === 0) return [];
      const { vault, name } = vaultFor(input.certificateId);
      const state = await vault.describe(name);
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
      const perTarget = await mapLimit(targets, deps.bindingConcurrency ?? 8, async (target) => {
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
      });
      const outcomes = perTarget.flat();
      deps.metrics?.bindings(input.certificateId, outcomes);
      return outcomes;
    },

    async notify(
      input: NotifyInput,
    ): Promise<{ sent: boolean; messageId?: string; invalidRecipients: string[] }> {
      if (!deps.notifier) return { sent: false, invalidRecipients: [] };
      // the tag and state seen at the start of the attempt: mail must not depend on the vault being up now
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
      if (recipients.length === 0) return { sent: false, invalidRecipients: invalid };
      const event = toNotificationEvent(input, recipients, invalid, current, now());
      const res = await deps.notifier.send(event);
      return { sent: res.accepted.length > 0, messageId: res.messageId, invalidRecipients: invalid };
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;

// Interim mapping until the templates know every kind: partially-synced reads as renewed (its bindings show
// the failures), escalation and paused-too-long read as a failure notice with their own reason.
function toNotificationEvent(
  input: NotifyInput,
  recipients: string[],
  invalidRecipients: string[],
  current: { thumbprint: string | null; notAfter: string | null },
  now: Date,
): NotificationEvent {
  const o = input.outcome;
  const base = { eventId: input.eventId, certificateId: input.certificateId, recipients, invalidRecipients };
  if ((input.kind === 'renewed' || input.kind === 'partially-synced') && o) {
    return {
      ...base,
      kind: 'renewed',
      reason: o.trigger,
      oldThumbprint: o.oldThumbprint,
      newThumbprint: o.newThumbprint ?? '',
      notAfter: o.notAfter ?? '',
      bindings: o.bindings,
    };
  }
  const notAfter = current.notAfter;
  const failure = o?.error ? `${o.error.type}: ${o.error.message}` : 'no detail';
  const reason =
    input.kind === 'escalation'
      ? `not renewed with ${input.daysLeft ?? '?'} days left; last failure: ${failure}`
      : input.kind === 'paused-too-long'
        ? `paused since ${input.paused?.since ?? '?'}: ${input.paused?.reason ?? 'no reason given'}`
        : failure;
  return {
    ...base,
    kind: 'renewal-failed',
    reason,
    oldThumbprint: current.thumbprint,
    notAfter,
    daysLeft: notAfter ? Math.floor((Date.parse(notAfter) - now.getTime()) / 86_400_000) : null,
    nextAttemptAt: input.nextAttemptAt ?? null,
    attempt: o?.attempt ?? 0,
    bindings: o?.bindings ?? [],
  };
}
