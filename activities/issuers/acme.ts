/**
 * Issuer for any ACME CA (Let's Encrypt, ZeroSSL, Google, step-ca, pebble) with DNS-01, for a CSR made
 * elsewhere (the vault holds the private key; it never reaches us). Issuance is synchronous: submit()
 * returns the chain or throws a classified failure; DNS records are removed on every path.
 * Failing is fast (no 75 s of acme-client retries): Temporal owns retrying, see acme-http.ts.
 */
import { createPrivateKey } from 'node:crypto';
import https from 'node:https';
import tls from 'node:tls';
import * as acme from 'acme-client';
import { ApplicationFailure } from '@temporalio/common';
import type { Issued, Issuer, IssueRequest, PendingIssue } from '../types';
import { splitPemChain } from '../verify/x509';
import { classifyAcmeError, problemFailure } from './acme-errors';
import { AcmeTransportError, runWithAcmeContext, type AcmeCallContext } from './acme-http';
import type { DnsProvider } from './dns';

export interface AcmeIssuerOptions {
  name: string;
  directoryUrl: string;
  /** PEM (PKCS#8 or traditional), RSA or EC. A function is called once, when the account is first needed. */
  accountKeyPem: string | (() => Promise<string>);
  contactEmail?: string;
  dns: DnsProvider;
  /** Extra CAs to trust for the directory's HTTPS, added to Node's roots (never replaces verification). */
  caBundlePem?: string;
  /** Wait between publishing the TXT records and asking the CA to validate. Default 0. */
  propagationDelayMs?: number;
  /** Per HTTP request. Default 10 s. */
  requestTimeoutMs?: number;
  /** Validation plus finalization, before giving up with a retryable AcmeTimeout. Default 60 s. */
  orderTimeoutMs?: number;
  logger?: { warn(message: string, attrs?: Record<string, unknown>): void };
}

type Order = acme.Order;
type Authorization = acme.Authorization;

export function createAcmeIssuer(opts: AcmeIssuerOptions): Issuer {
  const { directoryUrl } = opts;
  // one SecureContext for every connection: building one from ~140 roots costs ~40 ms per new socket
  const agent = new https.Agent({
    keepAlive: true,
    ...(opts.caBundlePem
      ? { secureContext: tls.createSecureContext({ ca: [...tls.rootCertificates, opts.caBundlePem] }) }
      : {}),
  });
  const requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
  const orderTimeoutMs = opts.orderTimeoutMs ?? 60_000;
  let account: Promise<acme.Client> | undefined;

  async function registeredClient(): Promise<acme.Client> {
    if (account) return account;
    account = (async () => {
      const accountKey = await readAccountKey(opts.accountKeyPem);
      const client = new acme.Client({ directoryUrl, accountKey, backoffAttempts: 1 });
      // Look the account up first: acme-client answers "account exists" with an update carrying only
      // termsOfServiceAgreed, which pebble (rightly) refuses as an empty update.
      try {
        await client.createAccount({ onlyReturnExisting: true });
      } catch (err) {
        if (err instanceof AcmeTransportError) throw err;
        await client.createAccount({
          termsOfServiceAgreed: true,
          ...(opts.contactEmail ? { contact: [`mailto:${opts.contactEmail}`] } : {}),
        });
      }
      return client;
    })();
    account.catch(() => (account = undefined)); // a failed registration is retried next time
    return account;
  }

  async function issue(req: IssueRequest, ctx: AcmeCallContext): Promise<Issued> {
    const names = normaliseNames(req.dnsNames);
    const csrPem = normaliseCsr(req.csrPem);
    const presented: { fqdn: string; value: string }[] = [];
    try {
      ctx.step = 'register the ACME account';
      const client = await registeredClient();

      ctx.step = `create an order for ${names.join(', ')}`;
      let order = await client.createOrder({ identifiers: names.map((value) => ({ type: 'dns', value })) });

      ctx.step = 'read the authorizations';
      const toValidate: { authz: Authorization; challenge: acme.Authorization['challenges'][number] }[] = [];
      for (const authz of await client.getAuthorizations(order)) {
        if (authz.status === 'valid') continue;
        const challenge = authz.challenges.find((c) => c.type === 'dns-01');
        if (!challenge) {
          throw ApplicationFailure.create({
            message: `CA ${directoryUrl} offers no dns-01 challenge for ${authz.identifier.value} (offered: ${authz.challenges.map((c) => c.type).join(', ')})`,
            type: 'AcmeNoDnsChallenge',
            nonRetryable: true,
          });
        }
        const value = await client.getChallengeKeyAuthorization(challenge);
        const fqdn = `_acme-challenge.${authz.identifier.value}`;
        presented.push({ fqdn, value }); // before present(): a half-done present is cleaned up too
        await present(fqdn, value);
        toValidate.push({ authz, challenge });
      }
      if (opts.propagationDelayMs) await sleep(opts.propagationDelayMs);

      for (const { authz, challenge } of toValidate) {
        ctx.step = `ask the CA to validate ${authz.identifier.value}`;
        await client.completeChallenge(challenge);
      }
      const deadline = Date.now() + orderTimeoutMs;
      for (const { authz } of toValidate) {
        ctx.step = `DNS-01 validation of ${authz.identifier.value}`;
        const done = await pollUntil(
          ctx.step,
          deadline,
          ['valid', 'invalid', 'deactivated', 'expired', 'revoked'],
          async () => {
            const [fresh] = await client.getAuthorizations({ ...order, authorizations: [authz.url] });
            return fresh!;
          },
        );
        if (done.status !== 'valid') throw challengeFailure(done, ctx.step);
      }

      ctx.step = 'wait for the order to be ready';
      order = await pollUntil(ctx.step, deadline, ['ready', 'valid', 'invalid'], () =>
        client.getOrder(order),
      );
      if (order.status === 'ready') {
        ctx.step = 'finalize the order with the CSR';
        order = await client.finalizeOrder(order, csrPem);
      }
      ctx.step = 'wait for the certificate';
      order = await pollUntil(ctx.step, deadline, ['valid', 'invalid'], () => client.getOrder(order));
      if (order.status === 'invalid') throw orderFailure(order, ctx.step);

      ctx.step = 'download the certificate';
      const chainPem = splitPemChain(await client.getCertificate(order));
      if (chainPem.length === 0) {
        throw ApplicationFailure.create({
          message: `CA ${directoryUrl} returned no PEM certificate for order ${order.url}`,
          type: 'AcmeEmptyCertificate',
          nonRetryable: false,
        });
      }
      return { status: 'issued', chainPem };
    } catch (err) {
      const failure = classifyAcmeError(err, ctx.step, directoryUrl, ctx.lastProblem);
      if (failure.type === 'AcmeAccount') account = undefined; // deactivated or unknown: look it up again
      throw failure;
    } finally {
      await cleanup(presented);
    }
  }

  async function present(fqdn: string, value: string): Promise<void> {
    try {
      await opts.dns.present(fqdn, value);
    } catch (err) {
      throw ApplicationFailure.create({
        message: `DNS provider could not publish TXT ${fqdn}: ${(err as Error).message}`,
        type: 'DnsProviderError',
        nonRetryable: false,
        cause: err as Error,
      });
    }
  }

  async function cleanup(records: { fqdn: string; value: string }[]): Promise<void> {
    const results = await Promise.allSettled(records.map((r) => opts.dns.cleanup(r.fqdn, r.value)));
    results.forEach((r, i) => {
      if (r.status === 'rejected') {
        opts.logger?.warn(
          `DNS-01 cleanup failed for TXT ${records[i]!.fqdn}; remove it by hand if it stays`,
          {
            issuer: opts.name,
            error: (r.reason as Error)?.message,
          },
        );
      }
    });
  }

  function challengeFailure(authz: Authorization, where: string): ApplicationFailure {
    const challenge = authz.challenges.find((c) => c.type === 'dns-01');
    const error = challenge?.error as { type?: string; detail?: string; status?: number } | undefined;
    return problemFailure(
      {
        type: error?.type ?? `authorization:${authz.status}`,
        detail: error?.detail ?? `authorization for ${authz.identifier.value} is ${authz.status}`,
        status: error?.status ?? 403,
        url: authz.url,
      },
      `${where} at ${directoryUrl}`,
    );
  }

  function orderFailure(order: Order, where: string): ApplicationFailure {
    const error = order.error as { type?: string; detail?: string; status?: number } | undefined;
    return problemFailure(
      {
        type: error?.type ?? 'order:invalid',
        detail: error?.detail ?? `order ${order.url} is invalid`,
        status: error?.status ?? 403,
        url: order.url,
      },
      `${where} at ${directoryUrl}`,
    );
  }

  async function pollUntil<T extends { status: string }>(
    what: string,
    deadline: number,
    settled: string[],
    get: () => Promise<T>,
  ): Promise<T> {
    for (let delay = 20; ; delay = Math.min(delay * 2, 1_000)) {
      const item = await get();
      if (settled.includes(item.status)) return item;
      if (Date.now() + delay > deadline) {
        throw ApplicationFailure.create({
          message: `${what} at ${directoryUrl}: still '${item.status}' after ${orderTimeoutMs} ms`,
          type: 'AcmeTimeout',
          nonRetryable: false,
        });
      }
      await sleep(delay);
    }
  }

  return {
    name: opts.name,
    async submit(req: IssueRequest): Promise<Issued | PendingIssue> {
      const ctx: AcmeCallContext = { directoryUrl, agent, timeoutMs: requestTimeoutMs, step: 'start' };
      return runWithAcmeContext(ctx, () => issue(req, ctx));
    },
    async poll(ref: string): Promise<Issued | PendingIssue> {
      throw ApplicationFailure.create({
        message: `issuer '${opts.name}' (ACME) issues within submit() and never answers pending; poll('${ref}') is not supported`,
        type: 'NotSupported',
        nonRetryable: true,
      });
    },
  };
}

async function readAccountKey(source: AcmeIssuerOptions['accountKeyPem']): Promise<string> {
  const pem = typeof source === 'function' ? await source() : source;
  try {
    createPrivateKey(pem);
  } catch {
    // the parser's message is not echoed: it could quote part of the key
    throw ApplicationFailure.create({
      message:
        'ACME account key is not a readable PEM private key (expected PKCS#8 or traditional RSA/EC PEM)',
      type: 'InvalidAccountKey',
      nonRetryable: true,
    });
  }
  return pem;
}

function normaliseNames(names: string[]): string[] {
  const out = [...new Set((names ?? []).map((n) => n.trim().toLowerCase()).filter(Boolean))];
  if (out.length === 0) {
    throw ApplicationFailure.create({
      message: 'issue request has no dnsNames: expected at least one DNS name for the ACME order',
      type: 'InvalidRequest',
      nonRetryable: true,
    });
  }
  return out;
}

/** PEM as given, or bare base64 DER wrapped into PEM (acme-client only takes PEM). */
function normaliseCsr(csr: string): string {
  if (/-----BEGIN (NEW )?CERTIFICATE REQUEST-----/.test(csr)) return csr;
  const b64 = (csr ?? '').replace(/\s+/g, '');
  if (b64.length > 0 && /^[A-Za-z0-9+/]+=*$/.test(b64)) {
    return `-----BEGIN CERTIFICATE REQUEST-----\n${b64.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE REQUEST-----\n`;
  }
  throw ApplicationFailure.create({
    message: "issue request csrPem is not a PKCS#10 CSR (expected '-----BEGIN CERTIFICATE REQUEST-----' PEM)",
    type: 'AcmeBadCsr',
    nonRetryable: true,
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
