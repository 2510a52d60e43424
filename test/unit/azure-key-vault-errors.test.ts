/**
 * How Key Vault failures reach Temporal, with the errors @azure/identity 4.13.1 really raises (its own classes,
 * constructed with the messages and causes its credentials use) and Azure SDK RestError-shaped service answers.
 */
import {
  AggregateAuthenticationError,
  AuthenticationError,
  AuthenticationRequiredError,
  CredentialUnavailableError,
} from '@azure/identity';
import { describe, expect, it } from 'vitest';
import { vaultFailure } from '../../activities/vault/azure-key-vault-errors';

const ctx = {
  vault: 'kv-prod',
  action: 'read the certificate',
  certName: 'api',
  permission: 'certificates/get',
};

const networkError = (code: string, message = `connect ${code} 20.190.160.1:443`) =>
  Object.assign(new Error(message), { code });

describe('CredentialUnavailableError', () => {
  it.each([
    [
      'IMDS unreachable',
      new CredentialUnavailableError(
        'ManagedIdentityCredential: Network unreachable. Message: connect ENETUNREACH 169.254.169.254:80',
        { cause: networkError('ENETUNREACH') },
      ),
    ],
    [
      'the IMDS probe not answering',
      new CredentialUnavailableError('Attempted to use the IMDS endpoint, but it is not available.'),
    ],
    [
      'MSAL failing to resolve the authority endpoints (login.microsoftonline.com not reachable)',
      new CredentialUnavailableError(
        'endpoints_resolution_error: See https://aka.ms/msal.js.errors#endpoints_resolution_error for details',
      ),
    ],
    [
      'a managed identity endpoint failing with 500',
      new CredentialUnavailableError(
        'ManagedIdentityCredential: Authentication failed. Message Internal Server Error',
        { cause: Object.assign(new Error('Internal Server Error'), { statusCode: 500 }) },
      ),
    ],
  ])('is retryable for transient trouble: %s', (_what, err) => {
    const f = vaultFailure(err, ctx);
    expect(f.type).toBe('VaultCredentialUnavailable');
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toContain("Key Vault 'kv-prod': read the certificate for certificate 'api'");
    expect(f.message).toContain(err.message.slice(0, 40));
    expect(f.cause).toBeUndefined();
  });

  it.each([
    [
      'ClientSecretCredential: clientSecret is a required parameter. To troubleshoot, visit https://aka.ms/azsdk/js/identity/serviceprincipalauthentication/troubleshoot.',
      /clientSecret.*AZURE_CLIENT_SECRET/,
    ],
    [
      'ClientSecretCredential: tenantId is a required parameter. To troubleshoot, visit https://aka.ms/azsdk/js/identity/serviceprincipalauthentication/troubleshoot.',
      /tenantId.*AZURE_TENANT_ID/,
    ],
    [
      'WorkloadIdentityCredential: is unavailable. federatedTokenFilePath is a required parameter. In DefaultAzureCredential and ManagedIdentityCredential, this can be provided as an environment variable - "AZURE_FEDERATED_TOKEN_FILE".',
      /AZURE_FEDERATED_TOKEN_FILE/,
    ],
    [
      'EnvironmentCredential is unavailable. No underlying credential could be used. To troubleshoot, visit https://aka.ms/azsdk/js/identity/environmentcredential/troubleshoot.',
      /AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET/,
    ],
    [
      "Azure CLI could not be found. Please visit https://aka.ms/azure-cli for installation instructions and then, once installed, authenticate to your Azure account using 'az login'.",
      /az login/,
    ],
    ["Please run 'az login' from a command prompt to authenticate before using this credential.", /az login/],
  ])('is non-retryable and says what to configure when nothing is set up: %s', (message, hint) => {
    const f = vaultFailure(new CredentialUnavailableError(message), ctx);
    expect(f.type).toBe('VaultCredentialMissing');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toMatch(/no credential is configured/);
    expect(f.message).toMatch(hint);
  });

  it('is non-retryable when the managed identity endpoint refuses the identity (400: none assigned)', () => {
    const err = new CredentialUnavailableError(
      'ManagedIdentityCredential: Authentication failed. Message Identity not found',
      { cause: Object.assign(new Error('Identity not found'), { statusCode: 400 }) },
    );
    const f = vaultFailure(err, ctx);
    expect(f.type).toBe('VaultUnauthorized');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toMatch(/managed identity/i);
  });
});

describe('AggregateAuthenticationError (DefaultAzureCredential / ChainedTokenCredential)', () => {
  it('is non-retryable when every credential in the chain is simply not configured', () => {
    const err = new AggregateAuthenticationError(
      [
        new CredentialUnavailableError(
          'EnvironmentCredential is unavailable. No underlying credential could be used.',
        ),
        new CredentialUnavailableError(
          "Azure CLI could not be found. Please visit https://aka.ms/azure-cli for installation instructions and then, once installed, authenticate to your Azure account using 'az login'.",
        ),
      ],
      'ChainedTokenCredential authentication failed.',
    );
    const f = vaultFailure(err, ctx);
    expect(f.type).toBe('VaultCredentialMissing');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toMatch(/AZURE_CLIENT_SECRET/);
    expect(f.message).toMatch(/az login/);
  });

  it('is final when one of them was refused (a wrong client secret in the environment), naming the fix', () => {
    const err = new AggregateAuthenticationError(
      [
        // what MSAL's invalid_client becomes in @azure/identity 4.13.1
        new AuthenticationRequiredError({
          scopes: ['https://vault.azure.net/.default'],
          message:
            'invalid_client: Error(s): 7000215 - Timestamp: 2026-01-01 00:00:00Z - Description: AADSTS7000215: Invalid client secret provided. - Correlation ID: 0 - Trace ID: 0',
        }),
        new CredentialUnavailableError('Attempted to use the IMDS endpoint, but it is not available.'),
      ],
      'ChainedTokenCredential authentication failed.',
    );
    const f = vaultFailure(err, ctx);
    expect(f).toMatchObject({ type: 'VaultUnauthorized', nonRetryable: true });
    expect(f.message).toMatch(/secret's value, not its id/);
  });

  it('is retryable when one of them failed for a transient reason (IMDS not answering)', () => {
    const err = new AggregateAuthenticationError(
      [
        new CredentialUnavailableError(
          'EnvironmentCredential is unavailable. No underlying credential could be used.',
        ),
        new CredentialUnavailableError('Attempted to use the IMDS endpoint, but it is not available.'),
      ],
      'ChainedTokenCredential authentication failed.',
    );
    const f = vaultFailure(err, ctx);
    expect(f.type).toBe('VaultCredentialUnavailable');
    expect(f.nonRetryable).toBe(false);
  });
});

describe('AuthenticationError (the token endpoint answered)', () => {
  it.each([
    [
      401,
      {
        error: 'invalid_client',
        error_description: 'AADSTS7000215: Invalid client secret provided.',
      },
    ],
    [
      400,
      {
        error: 'unauthorized_client',
        error_description: "AADSTS700016: Application with identifier 'x' was not found in the directory.",
      },
    ],
  ])('is non-retryable for %i (bad secret, unknown application)', (status, body) => {
    const f = vaultFailure(new AuthenticationError(status, body), ctx);
    expect(f.type).toBe('VaultUnauthorized');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain(`${status}`);
    expect(f.message).toContain(body.error);
    expect(f.message).toMatch(/client secret or certificate/);
  });

  it.each([500, 502, 503, 504, 429, 408])('is retryable for %i', (status) => {
    const f = vaultFailure(
      new AuthenticationError(status, { error: 'temporarily_unavailable', error_description: 'try later' }),
      ctx,
    );
    expect(f.type).toBe('VaultCredentialUnavailable');
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toContain(`${status}`);
  });

  it('is retryable when a network error caused it, whatever the status says', () => {
    const err = new AuthenticationError(0, 'socket hang up', {
      cause: networkError('ECONNRESET', 'socket hang up'),
    });
    const f = vaultFailure(err, ctx);
    expect(f.type).toBe('VaultCredentialUnavailable');
    expect(f.nonRetryable).toBe(false);
  });
});

describe('AuthenticationRequiredError without an MSAL code (an interactive credential needs a sign-in)', () => {
  it('is final and says to sign in or use a service identity', () => {
    const f = vaultFailure(
      new AuthenticationRequiredError({
        scopes: ['https://vault.azure.net/.default'],
        message: 'Silent authentication failed.',
      }),
      ctx,
    );
    expect(f).toMatchObject({ type: 'VaultCredentialMissing', nonRetryable: true });
    expect(f.message).toMatch(/sign in interactively/);
  });
});

describe('Key Vault answers (unchanged)', () => {
  // the shape of the Azure SDK's RestError, which is all the classifier reads
  const rest = (statusCode: number, code: string, message: string) =>
    Object.assign(new Error(message), { name: 'RestError', statusCode, code });

  it('keeps 401 from the vault non-retryable and 5xx / network errors retryable', () => {
    expect(vaultFailure(rest(401, 'Unauthorized', 'token expired'), ctx)).toMatchObject({
      type: 'VaultUnauthorized',
      nonRetryable: true,
    });
    expect(vaultFailure(rest(503, 'ServiceUnavailable', 'busy'), ctx)).toMatchObject({
      type: 'VaultUnavailable',
      nonRetryable: false,
    });
    expect(vaultFailure(networkError('ECONNREFUSED'), ctx)).toMatchObject({
      type: 'VaultUnreachable',
      nonRetryable: false,
    });
  });
});
