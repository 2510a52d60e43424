/**
 * The activities of an emergency re-issue wave (workflows/wave.ts): select the certificates, look at one before
 * re-issuing it (already done since the wave began? which key does it have?), and re-issue it through its
 * lifecycle (the one lifecycles client: a forced renew with a request id per wave and certificate), then check the
 * key is new and revoke the old certificate where asked. Inputs and outputs are ids, thumbprints, key digests and
 * public certificates; never a private key.
 */
import { Context, heartbeat } from '@temporalio/activity';
import { type Client, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { createHash, X509Certificate } from 'node:crypto';
import { parseCertificateId } from './ids';
import {
  lifecycleHandle,
  lifecycleStatus,
  listLifecycles,
  renewLifecycle,
  type LifecycleRow,
} from './lifecycles';
import { withHeartbeat } from './heartbeat';
import { sharedWork } from './shared-work';
import type { Issuer, Vault } from './types';
import { historyQuery } from '../workflows/messages';
import { reissuedSince, revocationReasonOf, selectCandidates, waveSizeProblem } from '../workflows/wave-plan';
import type { WaveEntry, WaveReason, WaveSelection } from '../workflows/wave-messages';

export interface WaveActivityDeps {
  client: Client;
  vaults: ReadonlyMap<string, Vault>;
  issuers: ReadonlyMap<string, Issuer>;
  /** Each vault's key-create rate (per second; null: not limited), as its vault queue runs it (worker/quotas.ts). */
  vaultRates: Readonly<Record<string, number | null>>;
  /** How often a waiting re-issue heartbeats (default 10 s). */
  heartbeatMs?: number;
  /** How long a listing or a vault's tag scan is reused by later selections (default 60 s; tests shorten it). */
  selectionReuseMs?: number;
}

/** Each certificate name of a vault → its tags. */
type TagScan = Map<string, Record<string, string>>;

/** SHA-256 of a certificate's public key (SPKI DER), hex: compares keys without handling any private material. */
export function keyIdOf(certPem: string): string {
  const spki = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('hex');
}

export function createWaveActivities(deps: WaveActivityDeps) {
  const vaultOf = (certificateId: string) => {
    const { vault, name } = parseCertificateId(certificateId);
    const v = deps.vaults.get(vault);
    if (!v)
      throw ApplicationFailure.create({
        message: `vault "${vault}" is not configured on this worker (known: ${[...deps.vaults.keys()].join(', ') || 'none'})`,
        type: 'UnknownVault',
        nonRetryable: true,
      });
    return { vault: v, name };
  };

  /** The wave a selection is for, its parts as one (`<name>-part-k-of-N`): waves of other names share nothing. */
  const family = () =>
    (Context.current().info.workflowExecution?.workflowId ?? '').replace(/-part-\d+-of-\d+$/, '');

  /**
   * What a selection reads, shared by the selections of one wave's parts that run at once (a wave split in N
   * parts selects N times as it starts; other waves share nothing): each would page through every running
   * lifecycle (visibility) and, with a tag, every certificate of each vault (Key Vault: 25 a request, under its
   * request quota). Joined in flight, reused for `selectionReuseMs` (default 60 s), then dropped
   * (activities/shared-work.ts).
   */
  const reuseMs = deps.selectionReuseMs ?? 60_000;
  // a listing in flight longer than half the selection's 10-minute timeout may hang: not joined, made anew
  const maxJoinMs = 5 * 60_000;
  const sharedTagScan = sharedWork<TagScan>(reuseMs, maxJoinMs);
  const tagScanOf = (vaultName: string, vault: Vault): Promise<TagScan> =>
    sharedTagScan(JSON.stringify([family(), vaultName]), async () => {
      const tags: TagScan = new Map();
      for await (const c of vault.list()) tags.set(c.name, c.tags);
      return tags;
    });
  const sharedListing = sharedWork<{ rows: LifecycleRow[]; bound: number | null }>(reuseMs, maxJoinMs);
  const listing = (sel: WaveSelection, before: number | null) =>
    listLifecycles(deps.client, {
      ...(sel.vault ? { vault: sel.vault } : {}),
      ...(before !== null ? { expiresBefore: new Date(before) } : {}),
    });
  /**
   * The running lifecycles a selection looks at. Shared by selections of the same vault and expiry window: the
   * shared listing reaches `reuseMs` further than the window, and selectCandidates applies each selection's own
   * bound; a selection whose bound lies beyond the shared listing's (a retry with a later time) lists for itself.
   */
  const listingFor = async (sel: WaveSelection, now: Date): Promise<LifecycleRow[]> => {
    const window = sel.expiringWithinSeconds;
    const own = window !== undefined ? now.getTime() + window * 1000 : null;
    const shared = await sharedListing(
      JSON.stringify([family(), sel.vault ?? null, window ?? null]),
      async () => {
        const bound =
          window !== undefined ? Math.max(now.getTime(), Date.now()) + window * 1000 + reuseMs : null;
        return { rows: await listing(sel, bound), bound };
      },
    );
    return own !== null && shared.bound !== null && own > shared.bound ? listing(sel, own) : shared.rows;
  };

  return {
    /** The running lifecycles the selection takes (visibility), narrowed by the vaults' tags when asked. */
    async selectWave(input: {
      selection: WaveSelection;
      now: string;
    }): Promise<{ entries: WaveEntry[]; vaultRates: Record<string, number | null> }> {
      const sel = input.selection;
      const now = new Date(input.now);
      const rows = await withHeartbeat(() => listingFor(sel, now));
      let tagged: Set<string> | undefined;
      if (sel.tag) {
        tagged = new Set();
        for (const vaultName of new Set(rows.map((r) => r.vault))) {
          const vault = deps.vaults.get(vaultName);
          if (!vault) continue; // not configured here: none of its certificates can be proven to carry the tag
          for (const [name, tags] of await withHeartbeat(() => tagScanOf(vaultName, vault)))
            if (tags[sel.tag.name] === sel.tag.value) tagged.add(`${vaultName}/${name}`);
        }
      }
      const entries = selectCandidates(rows, sel, now, tagged);
      const tooLarge = waveSizeProblem(entries, sel.part);
      if (tooLarge)
        throw ApplicationFailure.create({ message: tooLarge, type: 'InvalidWave', nonRetryable: true });
      const vaultRates = Object.fromEntries(
        [...new Set(entries.map((e) => e.vault))].map((v) => [v, deps.vaultRates[v] ?? null]),
      );
      return { entries, vaultRates };
    },

    /**
     * One certificate before its re-issue: its thumbprint and key digest, whether it was already re-issued since
     * the wave began (`skip` says by which attempt), and its PEM when the old one is to be revoked. A policy that
     * reuses its key is refused: a wave always makes a new key.
     */
    async inspectForWave(input: { certificateId: string; since: string; revokeOld: boolean }): Promise<{
      skip: string | null;
      thumbprint: string | null;
      keyId: string | null;
      certificatePem?: string;
    }> {
      const { vault, name } = vaultOf(input.certificateId);
      const status = await lifecycleStatus(deps.client, input.certificateId, 15_000);
      const attempts = await deps.client.withDeadline(Date.now() + 15_000, () =>
        lifecycleHandle(deps.client, input.certificateId).query(historyQuery),
      );
      const pem = await vault.certificatePem(name);
      const thumbprint = status.thumbprint;
      const at = reissuedSince(attempts, thumbprint, input.since);
      if (at)
        return {
          skip: `re-issued by an attempt that started at ${at}, after the wave began`,
          thumbprint,
          keyId: pem ? keyIdOf(pem) : null,
        };
      const state = await vault.describe(name);
      if (state.policy?.key.reuseKey)
        throw ApplicationFailure.create({
          message: `${input.certificateId}: its policy reuses the key (reuseKey: true); a re-issue needs a new key: set reuseKey to false in the vault's policy, then run the wave again`,
          type: 'ReuseKeyPolicy',
          nonRetryable: true,
        });
      return {
        skip: null,
        thumbprint,
        keyId: pem ? keyIdOf(pem) : null,
        ...(input.revokeOld && pem ? { certificatePem: pem } : {}),
      };
    },

    /**
     * Re-issues through the lifecycle and waits for the outcome (heartbeating): a forced renew whose request id is
     * the wave's and the certificate's, so a retried activity or a re-run wave joins the same renewal. Then the key
     * must be new; then the old certificate is revoked when asked and its issuer can.
     */
    async renewForWave(input: {
      waveId: string;
      certificateId: string;
      reason: WaveReason;
      note?: string;
      ignoreWindows: boolean;
      requestedBy?: string;
      oldKeyId: string | null;
      /** The lifecycle's issuer: the CA the old certificate is revoked at. */
      issuer: string | null;
      revokeOldPem?: string;
    }): Promise<Partial<WaveEntry>> {
      const { vault, name } = vaultOf(input.certificateId);
      const beat = setInterval(() => heartbeat(), deps.heartbeatMs ?? 10_000);
      let outcome;
      try {
        outcome = await renewLifecycle(deps.client, input.certificateId, {
          force: true,
          reason: `emergency re-issue (${input.reason})${input.note ? `: ${input.note}` : ''}`.slice(0, 500),
          requestedBy: input.requestedBy ?? `wave ${input.waveId}`,
          requestId: `${input.waveId}/${input.certificateId}`,
          ...(input.ignoreWindows ? { ignoreWindows: true } : {}),
        });
      } catch (err) {
        if (err instanceof WorkflowUpdateFailedError)
          throw ApplicationFailure.create({
            message: `${input.certificateId}: the lifecycle refused the renewal: ${err.cause?.message ?? err.message}`,
            type: 'RenewRefused',
            nonRetryable: true,
          });
        throw err;
      } finally {
        clearInterval(beat);
      }
      const base: Partial<WaveEntry> = {
        oldThumbprint: outcome.oldThumbprint,
        newThumbprint: outcome.newThumbprint,
        notAfter: outcome.notAfter,
      };
      if (outcome.status === 'requested')
        return {
          ...base,
          status: 'failed',
          error: {
            type: 'VaultRenews',
            message:
              'the vault renews this certificate itself: its renewal was requested, with the key its policy says',
          },
        };
      if (outcome.status !== 'renewed')
        return {
          ...base,
          status: 'failed',
          error: outcome.error ?? { type: 'Failed', message: 'renewal failed' },
        };
      const pem = await vault.certificatePem(name);
      const newKey = !!pem && keyIdOf(pem) !== input.oldKeyId;
      if (!newKey)
        return {
          ...base,
          status: 'failed',
          newKey: false,
          error: { type: 'KeyNotReplaced', message: 'the new certificate has the old public key' },
        };
      if (!input.revokeOldPem) return { ...base, status: 'reissued', newKey, revoked: 'not-asked' };
      return {
        ...base,
        status: 'reissued',
        newKey,
        ...(await revokeOld(input.issuer, input.revokeOldPem, input.reason)),
      };
    },
  };

  /** Revokes at the lifecycle's issuer; an issuer that cannot is reported, never an error of the re-issue. */
  async function revokeOld(
    issuerName: string | null,
    pem: string,
    reason: WaveReason,
  ): Promise<Partial<WaveEntry>> {
    const issuer = issuerName ? deps.issuers.get(issuerName) : undefined;
    if (!issuer?.revoke)
      return { revoked: 'unsupported', note: `issuer ${issuerName ?? '(unknown)'} cannot revoke here` };
    try {
      const r = await issuer.revoke(pem, revocationReasonOf(reason));
      return { revoked: 'revoked', ...(r.already ? { note: 'the CA had revoked it before' } : {}) };
    } catch (err) {
      const e = err as ApplicationFailure;
      if (e.type === 'RevokeUnsupported') return { revoked: 'unsupported', note: e.message };
      return { revoked: 'failed', note: `revocation failed: ${e.type ?? 'Error'}: ${e.message}` };
    }
  }
}

export type WaveActivities = ReturnType<typeof createWaveActivities>;
