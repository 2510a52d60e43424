/**
 * Issuer for any ACME CA (Let's Encrypt, ZeroSSL, Google, step-ca, pebble) with DNS-01 or HTTP-01, for a CSR
 * made elsewhere (the vault holds the private key; it never reaches us). Two steps, so nothing is ordered or
 * finalized twice: `placeOrder` creates the order and returns its URL (recorded in workflow history), `poll(url)`
 * drives that order to a certificate from wherever it stands, also after a crash; `submit` does both in one call.
 * Failures are classified; challenge answers are removed on every path.
 * Failing is fast (no 75 s of acme-client retries): Temporal owns retrying, see acme-http.ts.
 */
import https from 'node:https';
import tls from 'node:tls';
import * as acme from 'acme-client';
import { ApplicationFailure } from '@temporalio/common';
import type { Issued, Issuer, IssueRequest, PendingIssue, RenewalWindow } from '../types';
import { splitPemChain } from '../verify/x509';
import {
  checkEab,
  loadAccountKey,
  registerAccount,
  type AccountKeySource,
  type ExternalAccountBinding,
} from './acme-account';
import { ariCertId, parseRenewalInfo } from './acme-ari';
import { createChallengeSolver, type ChallengeOptions, type Presented } from './acme-challenges';
import { authorizationFailure, classifyAcmeError, orderFailure } from './acme-errors';
import { reuseNonces, runWithAcmeContext, signWithParsedKey, type AcmeCallContext } from './acme-http';

export interface AcmeIssuerOptions extends AccountKeySource, ChallengeOptions {
  name: string;
  directoryUrl: string;
  contactEmail?: string;
  /** For CAs that require External Account Binding (ZeroSSL, Google, Sectigo, ...). */
  externalAccountBinding?: ExternalAccountBinding;
  /** Extra CAs to trust for the directory's HTTPS, added to Node's roots (never replaces verification). */
  caBundlePem?: string;
  /** Per HTTP request. Default 10 s. */
  requestTimeoutMs?: number;
  /** Validation plus finalization, before giving up with a retryable AcmeTimeout. Default 60 s. */
  orderTimeoutMs?: number;
  /**
   * The certificate profile to order (draft-ietf-acme-profiles; Let's Encrypt: `classic`, `tlsserver` 45 days,
   * `shortlived` 160 hours). Checked against the directory's `meta.profiles` before each order: a CA that does not
   * offer it refuses with AcmeProfileUnavailable (not retried) instead of issuing its default.
   */
  profile?: string;
  logger?: { warn(message: string, attrs?: Record<string, unknown>): void };
}

/** The ACME issuer: an Issuer with ARI, and its account URL (for operators and tests). */
export interface AcmeIssuer extends Issuer {
  renewalWindow(leafPem: string): Promise<RenewalWindow | null>;
  /** Finds or registers the account on first call. */
  accountUrl(): Promise<string>;
}

type Authorization = acme.Authorization;
type Challenge = Authorization['challenges'][number];

export function createAcmeIssuer(opts: AcmeIssuerOptions): AcmeIssuer {
  const { directoryUrl } = opts;
  const eab = checkEab(opts.externalAccountBinding);
  const solver = createChallengeSolver(opts, opts.logger);
  // one SecureContext for every connection: building one from ~140 roots costs ~40 ms per new socket
  const agent = new https.Agent({
    keepAlive: true,
    ...(opts.caBundlePem
      ? { secureContext: tls.createSecureContext({ ca: [...tls.rootCertificates, opts.caBundlePem] }) }
      : {}),
  });
  const requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
  const orderTimeoutMs = opts.orderTimeoutMs ?? 60_000;
  /** Nonces from the CA's answers, used for the next signed requests instead of asking newNonce each time. */
  const nonces: string[] = [];
  const context = (): AcmeCallContext => ({
    directoryUrl,
    agent,
    timeoutMs: requestTimeoutMs,
    step: 'start',
    nonces,
  });
  let account: Promise<acme.Client> | undefined;
  let renewalInfoBase: Promise<string | null> | undefined;

  function registeredClient(): Promise<acme.Client> {
    if (account) return account;
    account = (async () => {
      const client = await registerAccount({
        directoryUrl,
        accountKeyPem: await loadAccountKey(opts),
        contactEmail: opts.contactEmail,
        externalAccountBinding: eab,
      });
      reuseNonces(client, nonces);
      signWithParsedKey(client);
      return client;
    })();
    account.catch(() => (account = undefined)); // a failed registration is retried next time
    return account;
  }

  /** Runs `fn` in an ACME call context; whatever it throws leaves as a classified failure. */
  function call<T>(fn: (ctx: AcmeCallContext) => Promise<T>): Promise<T> {
    const ctx = context();
    return runWithAcmeContext(ctx, async () => {
      try {
        return await fn(ctx);
      } catch (err) {
        const failure = classifyAcmeError(err, ctx.step, directoryUrl, ctx.lastProblem);
        if (failure.type === 'AcmeAccount') account = undefined; // deactivated or unknown: look it up again
        throw failure;
      }
    });
  }

  /** Places a new order for the request's names; its URL is the reference every later step resumes from. */
  async function placeOrder(req: IssueRequest, ctx: AcmeCallContext): Promise<acme.Order> {
    const names = normaliseNames(req.dnsNames);
    normaliseCsr(req.csrPem); // a malformed CSR is refused before an order exists
    ctx.step = 'register the ACME account';
    const client = await registeredClient();
    const profile = opts.profile;
    if (profile) {
      ctx.step = `check that the CA offers profile "${profile}"`;
      const offered = await offeredProfiles(client);
      if (!(profile in offered))
        throw ApplicationFailure.create({
          message: `issuer ${opts.name}: the CA at ${directoryUrl} does not offer profile "${profile}" (${Object.keys(offered).length ? `its directory offers: ${Object.keys(offered).join(', ')}` : 'its directory advertises no profiles (meta.profiles)'})`,
          type: 'AcmeProfileUnavailable',
          nonRetryable: true,
        });
    }
    ctx.step = `create an order for ${names.join(', ')}${profile ? ` (profile ${profile})` : ''}`;
    // acme-client 5.4 sends the newOrder payload as given: `profile` reaches the CA unchanged
    return client.createOrder({
      identifiers: names.map((value) => ({ type: 'dns', value })),
      ...(profile ? { profile } : {}),
    } as Parameters<acme.Client['createOrder']>[0]);
  }

  /**
   * Drives an order to a certificate from wherever it stands (pending: validate; ready: finalize; processing:
   * wait; valid: download), so a retry after a crash or a lost answer resumes the same order and never orders
   * or finalizes twice. An order that went invalid fails (the next attempt places a new one).
   */
  async function complete(orderUrl: string, req: IssueRequest, ctx: AcmeCallContext): Promise<Issued> {
    const csrPem = normaliseCsr(req.csrPem);
    const presented: Presented[] = [];
    try {
      ctx.step = 'register the ACME account';
      const client = await registeredClient();
      ctx.step = `read the order ${orderUrl}`;
      let order = await client.getOrder({ url: orderUrl } as acme.Order);
      if (order.status === 'invalid') throw orderFailure(order, `${ctx.step} at ${directoryUrl}`);
      const deadline = Date.now() + orderTimeoutMs;
      if (order.status === 'pending') {
        ctx.step = 'read the authorizations';
        const toValidate: { authz: Authorization; challenge: Challenge }[] = [];
        for (const authz of await client.getAuthorizations(order)) {
          if (authz.status === 'valid') continue;
          const challenge = solver.pick(authz);
          if (challenge.status === 'pending') {
            ctx.step = `publish the ${challenge.type} answer for ${authz.identifier.value}`;
            const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
            await solver.present(authz, challenge, keyAuthorization, presented);
          }
          toValidate.push({ authz, challenge });
        }
        ctx.step = 'wait until the DNS-01 answers are visible';
        await solver.ready(presented);

        for (const { authz, challenge } of toValidate) {
          if (challenge.status !== 'pending') continue; // already asked (a resumed order)
          ctx.step = `ask the CA to validate ${authz.identifier.value}`;
          await client.completeChallenge(challenge);
        }
        for (const { authz, challenge } of toValidate) {
          ctx.step = `${challenge.type.toUpperCase()} validation of ${authz.identifier.value}`;
          const done = await pollUntil(
            ctx.step,
            deadline,
            ['valid', 'invalid', 'deactivated', 'expired', 'revoked'],
            async () => {
              const [fresh] = await client.getAuthorizations({ ...order, authorizations: [authz.url] });
              return fresh!;
            },
          );
          if (done.status !== 'valid') {
            throw authorizationFailure(done, challenge.type, `${ctx.step} at ${directoryUrl}`);
          }
        }
        ctx.step = 'wait for the order to be ready';
        order = await pollUntil(ctx.step, deadline, ['ready', 'valid', 'invalid'], () =>
          client.getOrder(order),
        );
      }
      if (order.status === 'ready') {
        ctx.step = 'finalize the order with the CSR';
        order = await client.finalizeOrder(order, csrPem);
      }
      ctx.step = 'wait for the certificate';
      order = await pollUntil(ctx.step, deadline, ['valid', 'invalid'], () => client.getOrder(order));
      if (order.status === 'invalid') throw orderFailure(order, `${ctx.step} at ${directoryUrl}`);

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
    } finally {
      await solver.cleanup(presented);
    }
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

  async function readRenewalInfoBase(ctx: AcmeCallContext): Promise<string | null> {
    ctx.step = 'read the ACME directory';
    const res = await acme.axios.get<Record<string, unknown>>(directoryUrl);
    if (res.status >= 400) throw new Error(`directory answered HTTP ${res.status}`);
    const url = res.data?.renewalInfo;
    return typeof url === 'string' ? url.replace(/\/+$/, '') : null;
  }

  async function renewalWindow(leafPem: string, ctx: AcmeCallContext): Promise<RenewalWindow | null> {
    const certId = ariCertId(leafPem);
    renewalInfoBase ??= readRenewalInfoBase(ctx);
    renewalInfoBase.catch(() => (renewalInfoBase = undefined));
    const base = await renewalInfoBase;
    if (!base) return null; // this CA offers no ARI
    const url = `${base}/${certId}`;
    ctx.step = `read the ARI renewal window ${url}`;
    const res = await acme.axios.get(url);
    if (res.status === 404) return null; // the CA does not know this certificate (another CA issued it)
    if (res.status >= 400) throw new Error(`renewalInfo answered HTTP ${res.status}`);
    return parseRenewalInfo(res.data, res.headers['retry-after'], url);
  }

  return {
    name: opts.name,
    /** Order and issuance in one call (the CLI's and benchmarks' path; the workflow uses placeOrder + poll). */
    submit: (req: IssueRequest): Promise<Issued | PendingIssue> =>
      call(async (ctx) => complete((await placeOrder(req, ctx)).url, req, ctx)),
    placeOrder: (req: IssueRequest): Promise<PendingIssue> =>
      call(async (ctx) => ({
        status: 'pending',
        ref: (await placeOrder(req, ctx)).url,
        retryAfterSeconds: 0,
      })),
    poll: (ref: string, req: IssueRequest): Promise<Issued | PendingIssue> =>
      call((ctx) => complete(ref, req, ctx)),
    renewalWindow: (leafPem: string) => call((ctx) => renewalWindow(leafPem, ctx)),
    /** RFC 8555 §7.6 with the account key; a certificate the CA revoked before is `already`. */
    revoke: (certPem: string, reason: { code: number; name: string }) =>
      call(async (ctx) => {
        ctx.step = 'register the ACME account';
        const client = await registeredClient();
        ctx.step = `revoke a certificate (${reason.name})`;
        try {
          await client.revokeCertificate(certPem, { reason: reason.code });
          return { already: false };
        } catch (err) {
          if (ctx.lastProblem?.type?.endsWith(':alreadyRevoked')) return { already: true };
          throw err;
        }
      }),
    accountUrl: () =>
      call(async (ctx) => {
        ctx.step = 'register the ACME account';
        return (await registeredClient()).getAccountUrl();
      }),
  };
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
    details: [{ discardCsr: true }],
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * The profiles the CA's directory advertises (`meta.profiles`: name to description), read through acme-client's
 * own directory cache. acme-client 5.4 has no public accessor for the directory, so this reads its `http` member
 * (present since 5.0); a version without it fails loudly here rather than ordering the CA's default profile.
 */
export async function offeredProfiles(client: acme.Client): Promise<Record<string, string>> {
  const http = (client as unknown as { http?: { getMetaField?(f: string): Promise<unknown> } }).http;
  if (typeof http?.getMetaField !== 'function')
    throw ApplicationFailure.create({
      message:
        'acme-client has no directory accessor (client.http.getMetaField): cannot check the CA profiles',
      type: 'AcmeProfileUnavailable',
      nonRetryable: true,
    });
  const profiles = await http.getMetaField('profiles');
  return profiles && typeof profiles === 'object' ? (profiles as Record<string, string>) : {};
}
