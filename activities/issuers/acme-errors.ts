/**
 * ACME failures as Temporal sees them: retryable (outage, throttling, flaky nonce) or not (the CA said no
 * to this request, retrying the same thing cannot help). Stable `type` strings for the UI and the workflow.
 */
import { ApplicationFailure } from '@temporalio/common';
import { AcmeTransportError, type AcmeProblem } from './acme-http';

const ACME = 'urn:ietf:params:acme:error:';

/** ACME error type (after the urn prefix) -> our failure type and whether retrying can help. */
const KNOWN: Record<string, { type: string; retryable: boolean; discardCsr?: boolean }> = {
  rateLimited: { type: 'AcmeRateLimited', retryable: true },
  badNonce: { type: 'AcmeBadNonce', retryable: true },
  serverInternal: { type: 'AcmeServerInternal', retryable: true },
  orderNotReady: { type: 'AcmeOrderNotReady', retryable: true },
  dns: { type: 'AcmeDns', retryable: true },
  connection: { type: 'AcmeConnection', retryable: true },
  tls: { type: 'AcmeTls', retryable: true },
  // discardCsr: the CA refused this CSR (or its names): the workflow drops it and the next attempt makes a new one
  unauthorized: { type: 'AcmeUnauthorized', retryable: false, discardCsr: true },
  rejectedIdentifier: { type: 'AcmeRejectedIdentifier', retryable: false, discardCsr: true },
  unsupportedIdentifier: { type: 'AcmeRejectedIdentifier', retryable: false, discardCsr: true },
  badCSR: { type: 'AcmeBadCsr', retryable: false, discardCsr: true },
  malformed: { type: 'AcmeMalformed', retryable: false },
  caa: { type: 'AcmeCaa', retryable: false },
  incorrectResponse: { type: 'AcmeUnauthorized', retryable: false, discardCsr: true },
  accountDoesNotExist: { type: 'AcmeAccount', retryable: false },
  externalAccountRequired: { type: 'AcmeExternalAccountRequired', retryable: false },
  userActionRequired: { type: 'AcmeAccount', retryable: false },
  badPublicKey: { type: 'AcmeBadCsr', retryable: false, discardCsr: true },
  badSignatureAlgorithm: { type: 'AcmeBadSignatureAlgorithm', retryable: false },
};

export function problemFailure(problem: AcmeProblem, where: string): ApplicationFailure {
  const short = problem.type.startsWith(ACME) ? problem.type.slice(ACME.length) : problem.type;
  const known = KNOWN[short];
  // unknown problem types: the server's status decides (5xx and 429 are the server's trouble)
  const retryable = known ? known.retryable : problem.status >= 500 || problem.status === 429;
  const type = known?.type ?? 'AcmeProblem';
  const retryAfter = problem.retryAfterSeconds;
  return ApplicationFailure.create({
    message: `${where}: ${problem.detail || '(no detail)'} [${problem.type}, HTTP ${problem.status}]`,
    type,
    nonRetryable: !retryable,
    details: [
      {
        acmeType: problem.type,
        status: problem.status,
        url: problem.url,
        ...(known?.discardCsr ? { discardCsr: true } : {}),
      },
    ],
    ...(retryable && retryAfter !== undefined && retryAfter > 0 ? { nextRetryDelay: `${retryAfter}s` } : {}),
  });
}

/**
 * Turns whatever acme-client threw into a classified failure. `lastProblem` is the problem document of the
 * latest response, which is what acme-client's `Error(detail)` came from.
 */
export function classifyAcmeError(
  err: unknown,
  where: string,
  directoryUrl: string,
  lastProblem: AcmeProblem | undefined,
): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof AcmeTransportError) {
    return ApplicationFailure.create({
      message: `${where}: ACME server ${directoryUrl} unreachable: ${err.message} (request to ${err.url})`,
      type: isTlsCode(err.code) ? 'AcmeTls' : 'AcmeUnreachable',
      nonRetryable: false,
      cause: err,
    });
  }
  if (lastProblem) return problemFailure(lastProblem, `${where} at ${directoryUrl}`);
  const message = err instanceof Error ? err.message : String(err);
  return ApplicationFailure.create({
    message: `${where} at ${directoryUrl}: ${message}`,
    type: 'AcmeError',
    nonRetryable: false,
    ...(err instanceof Error ? { cause: err } : {}),
  });
}

function isTlsCode(code: string | undefined): boolean {
  return (
    !!code &&
    (/CERT|SELF_SIGNED|UNABLE_TO|ERR_TLS|ERR_SSL|HOSTNAME|DEPTH_ZERO/.test(code) ||
      code.startsWith('ERR_OSSL'))
  );
}

type Problemish = { type?: string; detail?: string; status?: number } | undefined;

/** An authorization that ended other than valid: the failed challenge's problem, or its status. */
export function authorizationFailure(
  authz: {
    status: string;
    url: string;
    identifier: { value: string };
    challenges: { type: string; error?: unknown }[];
  },
  challengeType: string,
  where: string,
): ApplicationFailure {
  const error = authz.challenges.find((c) => c.type === challengeType)?.error as Problemish;
  return problemFailure(
    {
      type: error?.type ?? `authorization:${authz.status}`,
      detail: error?.detail ?? `authorization for ${authz.identifier.value} is ${authz.status}`,
      status: error?.status ?? 403,
      url: authz.url,
    },
    where,
  );
}

/** An order that became invalid. */
export function orderFailure(order: { url: string; error?: unknown }, where: string): ApplicationFailure {
  const error = order.error as Problemish;
  return problemFailure(
    {
      type: error?.type ?? 'order:invalid',
      detail: error?.detail ?? `order ${order.url} is invalid`,
      status: error?.status ?? 403,
      url: order.url,
    },
    where,
  );
}
