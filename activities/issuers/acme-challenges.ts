/**
 * Answering an order's challenges: which challenge to take per authorization (DNS-01 through a DnsProvider,
 * HTTP-01 through an Http01Provider), publishing the answer, waiting until DNS answers are visible, and
 * removing every answer again, also after a failure.
 */
import type * as acme from 'acme-client';
import { ApplicationFailure } from '@temporalio/common';
import type { DnsProvider } from './dns';
import { createPropagationCheck, type PropagationOptions } from './dns-propagation';
import type { Http01Provider } from './http01';

export type ChallengeType = 'dns-01' | 'http-01';
type Challenge = acme.Authorization['challenges'][number];

export interface ChallengeOptions {
  /** DNS-01 answers (required for wildcard names). */
  dns?: DnsProvider;
  /** HTTP-01 answers, for names whose port 80 we serve (webroot or the built-in server). */
  http01?: Http01Provider;
  /** With both configured: the challenge to take where the CA offers both. Default 'dns-01'. */
  preferredChallenge?: ChallengeType;
  /** DNS-01: check that each TXT value is visible before asking the CA to validate. Off by default. */
  propagation?: PropagationOptions;
  /** DNS-01: an extra fixed wait after publishing (and after the propagation check). Default 0. */
  propagationDelayMs?: number;
}

/** One published answer, kept so it can be removed whatever happens next. */
export interface Presented {
  type: ChallengeType;
  /** For people: `TXT _acme-challenge.x` or `http://x/.well-known/acme-challenge/<token>`. */
  what: string;
  remove(): Promise<void>;
  /** DNS-01 only: the record to check for propagation. */
  txt?: { fqdn: string; value: string };
}

export interface ChallengeSolver {
  /** The challenge we answer for this authorization; a non-retryable failure when none fits. */
  pick(authz: acme.Authorization): Challenge;
  /** Publishes the answer; pushes it onto `into` before publishing, so a half-done answer is removed too. */
  present(
    authz: acme.Authorization,
    challenge: Challenge,
    keyAuthorization: string,
    into: Presented[],
  ): Promise<void>;
  /** Resolves when the CA can see every published answer (DNS propagation). */
  ready(presented: Presented[]): Promise<void>;
  /** Removes every answer; failures are logged, never thrown (the order's outcome matters more). */
  cleanup(presented: Presented[]): Promise<void>;
}

export function createChallengeSolver(
  opts: ChallengeOptions,
  log?: { warn(message: string, attrs?: Record<string, unknown>): void },
): ChallengeSolver {
  const { dns, http01 } = opts;
  if (!dns && !http01) {
    throw ApplicationFailure.create({
      message: 'ACME issuer has no way to answer challenges: configure dns (DNS-01) or http01 (HTTP-01)',
      type: 'InvalidIssuerConfig',
      nonRetryable: true,
    });
  }
  const order: ChallengeType[] =
    opts.preferredChallenge === 'http-01' ? ['http-01', 'dns-01'] : ['dns-01', 'http-01'];
  const usable = order.filter((t) => (t === 'dns-01' ? !!dns : !!http01));
  const propagated = opts.propagation && dns ? createPropagationCheck(opts.propagation, dns) : undefined;

  return {
    pick(authz) {
      const name = `${authz.wildcard ? '*.' : ''}${authz.identifier.value}`;
      const types = authz.wildcard ? usable.filter((t) => t === 'dns-01') : usable;
      for (const t of types) {
        const c = authz.challenges.find((ch) => ch.type === t);
        if (c) return c;
      }
      throw ApplicationFailure.create({
        message:
          `CA offers no challenge we can answer for ${name}: we answer ${types.join(', ') || 'none (a wildcard needs dns-01)'}, ` +
          `it offered ${authz.challenges.map((c) => c.type).join(', ') || 'none'}`,
        type: 'AcmeNoUsableChallenge',
        nonRetryable: true,
      });
    },

    async present(authz, challenge, keyAuthorization, into) {
      if (challenge.type === 'dns-01') {
        const fqdn = `_acme-challenge.${authz.identifier.value}`;
        into.push({
          type: 'dns-01',
          what: `TXT ${fqdn}`,
          txt: { fqdn, value: keyAuthorization },
          remove: () => dns!.cleanup(fqdn, keyAuthorization),
        });
        await providerCall('DNS provider could not publish', `TXT ${fqdn}`, 'DnsProviderError', () =>
          dns!.present(fqdn, keyAuthorization),
        );
        return;
      }
      const host = authz.identifier.value;
      const { token } = challenge as { token: string };
      const what = `http://${host}/.well-known/acme-challenge/${token}`;
      into.push({ type: 'http-01', what, remove: () => http01!.cleanup(host, token) });
      await providerCall('HTTP-01 provider could not publish', what, 'Http01ProviderError', () =>
        http01!.present(host, token, keyAuthorization),
      );
    },

    async ready(presented) {
      const records = presented.flatMap((p) => (p.txt ? [p.txt] : []));
      if (records.length === 0) return;
      if (propagated) await Promise.all(records.map((r) => propagated(r.fqdn, r.value)));
      if (opts.propagationDelayMs) await new Promise((r) => setTimeout(r, opts.propagationDelayMs));
    },

    async cleanup(presented) {
      const results = await Promise.allSettled(presented.map((p) => p.remove()));
      results.forEach((r, i) => {
        if (r.status === 'rejected') {
          log?.warn(
            `${presented[i]!.type} cleanup failed for ${presented[i]!.what}; remove it by hand if it stays`,
            {
              error: (r.reason as Error)?.message,
            },
          );
        }
      });
    },
  };
}

async function providerCall(
  what: string,
  target: string,
  type: string,
  fn: () => Promise<void>,
): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof ApplicationFailure) throw err; // the provider classified it (authorization, throttling)
    throw ApplicationFailure.create({
      message: `${what} ${target}: ${(err as Error).message}`,
      type,
      nonRetryable: false,
      cause: err as Error,
    });
  }
}
