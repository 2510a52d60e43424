/**
 * createAzureCredential: the cloud mapping, config errors, and secrecy, with the real @azure/identity 4.13.1
 * credentials and MSAL; only the socket is replaced (an HttpClient answering as Entra ID's token endpoint would,
 * see test/support/recorded-http.ts). No request leaves the process.
 */
import { inspect } from 'node:util';
import { AzureAuthorityHosts } from '@azure/identity';
import { describe, expect, it } from 'vitest';
import {
  CLOUDS,
  checkVaultUrl,
  cloudEndpoints,
  createAzureCredential,
  type AzureCredentialConfig,
} from '../../activities/vault/azure-credential';
import { vaultFailure } from '../../activities/vault/azure-key-vault-errors';
import { recordedHttpClient, type Answer, type SeenRequest } from '../support/recorded-http';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
// characters a form body and a URL encode differently, so both spellings can be looked for
const SECRET = 'Q~s3cr+t/val=ue.Only_for~tests';
const ctx = { vault: 'kv', action: 'read the certificate', certName: 'api', permission: 'certificates/get' };

/** Entra ID as MSAL sees it: authority metadata, instance discovery, and a token endpoint answering `token`. */
function entra(token: (req: SeenRequest) => Answer) {
  const fallback = (req: SeenRequest): Answer | undefined => {
    const { origin, pathname } = req.url;
    if (pathname.endsWith('/openid-configuration')) {
      const base = `${origin}/${pathname.split('/')[1]}`;
      return {
        status: 200,
        body: {
          token_endpoint: `${base}/oauth2/v2.0/token`,
          authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
          end_session_endpoint: `${base}/oauth2/v2.0/logout`,
          issuer: `${base}/v2.0`,
          jwks_uri: `${origin}/common/discovery/v2.0/keys`,
          response_types_supported: ['code'],
        },
      };
    }
    if (pathname.endsWith('/oauth2/v2.0/token')) return token(req);
    return undefined;
  };
  return recordedHttpClient({}, { fallback });
}

const tokenOk: Answer = {
  status: 200,
  body: {
    token_type: 'Bearer',
    expires_in: 3599,
    ext_expires_in: 3599,
    access_token: 'eyJ0eXAi.eyJhdWQi.c2ln',
  },
};

const secretConfig = (cloud?: AzureCredentialConfig['cloud']): AzureCredentialConfig => ({
  kind: 'client-secret',
  tenantId: TENANT,
  clientId: '11111111-2222-3333-4444-555555555555',
  clientSecret: SECRET,
  ...(cloud ? { cloud } : {}),
});

async function thrown(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a failure');
}

function expectNoSecret(value: unknown) {
  const text = [
    String((value as Error)?.message),
    String((value as Error)?.stack),
    JSON.stringify(value),
    inspect(value, { depth: 6 }),
  ].join('\n');
  expect(text).not.toContain(SECRET);
  expect(text).not.toContain(encodeURIComponent(SECRET));
}

describe('clouds', () => {
  it.each([
    ['public', 'https://login.microsoftonline.com', 'https://vault.azure.net'],
    ['china', 'https://login.chinacloudapi.cn', 'https://vault.azure.cn'],
    ['usgov', 'https://login.microsoftonline.us', 'https://vault.usgovcloudapi.net'],
  ] as const)(
    'maps %s to its authority host and Key Vault audience',
    (cloud, authorityHost, keyVaultAudience) => {
      expect(cloudEndpoints(cloud)).toEqual({ authorityHost, keyVaultAudience });
      expect(createAzureCredential({ kind: 'managed-identity', cloud }).cloud).toEqual({
        authorityHost,
        keyVaultAudience,
      });
    },
  );

  it("keeps the SDK's authority hosts (written out in azure-cloud.ts so that config checks need no SDK)", () => {
    expect(CLOUDS.public.authorityHost).toBe(AzureAuthorityHosts.AzurePublicCloud);
    expect(CLOUDS.china.authorityHost).toBe(AzureAuthorityHosts.AzureChina);
    expect(CLOUDS.usgov.authorityHost).toBe(AzureAuthorityHosts.AzureGovernment);
  });

  it('takes a custom cloud (Azure Stack Hub and the like) as given', () => {
    const cloud = {
      authorityHost: 'https://adfs.local.azurestack.external/',
      keyVaultAudience: 'https://vault.local.azurestack.external',
    };
    expect(cloudEndpoints(cloud)).toEqual({
      authorityHost: 'https://adfs.local.azurestack.external',
      keyVaultAudience: 'https://vault.local.azurestack.external',
    });
  });

  it('defaults to the public cloud', () => {
    expect(createAzureCredential({ kind: 'default' }).cloud.keyVaultAudience).toBe('https://vault.azure.net');
  });

  it.each([
    ['usgov', 'https://login.microsoftonline.us', 'https://vault.usgovcloudapi.net/.default'],
    ['china', 'https://login.partner.microsoftonline.cn', 'https://vault.azure.cn/.default'],
  ] as const)(
    'sends the token request of a %s credential to that cloud (MSAL knows it as %s)',
    async (cloud, host, scope) => {
      const http = entra(() => tokenOk);
      const cred = createAzureCredential(secretConfig(cloud), { httpClient: http });
      // the scope is what the vault's 401 challenge names; CertificateClient passes it through
      expect((await cred.getToken(scope))?.token).toBe('eyJ0eXAi.eyJhdWQi.c2ln');
      const token = http.seen.find((r) => r.url.pathname.endsWith('/token'));
      expect(token?.url.origin).toBe(host);
      expect(token?.url.pathname).toBe(`/${TENANT}/oauth2/v2.0/token`);
      expect(new URLSearchParams(token?.body).get('scope')).toBe(scope);
      expect(http.seen.every((r) => !r.url.host.endsWith('microsoftonline.com'))).toBe(true);
    },
  );

  it('asks a custom authority for its metadata and nobody else', async () => {
    const http = entra(() => tokenOk);
    const cred = createAzureCredential(
      secretConfig({
        authorityHost: 'https://login.sovereign.example',
        keyVaultAudience: 'https://vault.sovereign.example',
      }),
      { httpClient: http },
    );
    await cred.getToken('https://vault.sovereign.example/.default');
    expect(new Set(http.seen.map((r) => r.url.host))).toEqual(new Set(['login.sovereign.example']));
  });

  it('checks that a vault URL belongs to the cloud', () => {
    expect(() => checkVaultUrl('https://kv-prod.vault.azure.cn/', cloudEndpoints('china'))).not.toThrow();
    expect(() => checkVaultUrl('https://kv-prod.vault.azure.net', cloudEndpoints('china'))).toThrow(
      /not a Key Vault of the credential's cloud \(expected https:\/\/<name>\.vault\.azure\.cn\)/,
    );
    expect(() => checkVaultUrl('http://kv-prod.vault.azure.net', cloudEndpoints('public'))).toThrow(/https/);
    expect(() => checkVaultUrl('https://vault.azure.net', cloudEndpoints('public'))).toThrow(/expected/);
  });
});

describe('configuration errors name the field and never echo a secret', () => {
  it.each([
    [
      'no client secret',
      { kind: 'client-secret', tenantId: TENANT, clientId: 'app' },
      /clientSecret is required/,
    ],
    [
      'a malformed tenant id',
      { kind: 'client-secret', tenantId: 'not a tenant!', clientId: 'app', clientSecret: SECRET },
      /tenantId must be a tenant GUID/,
    ],
    [
      'an empty client id',
      { kind: 'client-secret', tenantId: TENANT, clientId: '', clientSecret: SECRET },
      /clientId is empty/,
    ],
    [
      'an unknown field',
      { kind: 'client-secret', tenantId: TENANT, clientId: 'app', clientSecret: SECRET, extra: SECRET },
      /extra/,
    ],
    [
      'an unknown kind',
      { kind: 'password', username: 'u', password: SECRET },
      /kind must be 'default', 'managed-identity'/,
    ],
    ['an unknown cloud', { kind: 'default', cloud: 'germany' }, /cloud must be 'public', 'china', 'usgov'/],
    [
      'a custom cloud over http',
      {
        kind: 'default',
        cloud: { authorityHost: 'http://login.example', keyVaultAudience: 'https://vault.example' },
      },
      /cloud\.authorityHost must be an https URL/,
    ],
    [
      'no certificate path',
      { kind: 'client-certificate', tenantId: TENANT, clientId: 'app' },
      /certificateFile is required/,
    ],
  ])('refuses %s', (_what, config, message) => {
    const err = (() => {
      try {
        createAzureCredential(config as AzureCredentialConfig);
      } catch (e) {
        return e as Error;
      }
      throw new Error('expected a configuration error');
    })();
    expect(err.message).toMatch(/^Azure credential configuration is invalid: /);
    expect(err.message).toMatch(message);
    expectNoSecret(err);
  });
});

describe('secrecy', () => {
  it('shows kind and cloud, never the client secret, however the credential is printed', () => {
    const cred = createAzureCredential(secretConfig('china'));
    expect(JSON.parse(JSON.stringify(cred))).toEqual({
      kind: 'client-secret',
      cloud: cloudEndpoints('china'),
    });
    expectNoSecret(cred);
    expect(Object.isFrozen(cred)).toBe(true);
  });

  it('scrubs the secret from a token error even when the token endpoint echoes the request', async () => {
    const http = entra((req) => ({
      status: 401,
      body: {
        error: 'invalid_client',
        error_description: `AADSTS7000215: Invalid client secret provided. Request: ${req.body}`,
      },
    }));
    const cred = createAzureCredential(secretConfig(), { httpClient: http, retryOptions: { maxRetries: 0 } });
    const err = await thrown(cred.getToken('https://vault.azure.net/.default'));
    expect(http.seen.some((r) => r.body.includes(encodeURIComponent(SECRET)))).toBe(true); // it was sent...
    expect(err.message).toMatch(/AADSTS7000215/);
    expectNoSecret(err); // ...and is in no part of the error
    const f = vaultFailure(err, ctx);
    expectNoSecret(f);
  });
});

describe('token failures through the real MSAL stack, classified', () => {
  const failing = (answer: Answer | 'network') =>
    createAzureCredential(secretConfig(), {
      retryOptions: { maxRetries: 0 },
      httpClient:
        answer === 'network'
          ? {
              sendRequest: async () => {
                throw Object.assign(new Error('connect ECONNREFUSED 20.190.160.1:443'), {
                  code: 'ECONNREFUSED',
                });
              },
            }
          : entra(() => answer),
    });
  const entraError = (status: number, error: string, description: string): Answer => ({
    status,
    body: {
      error,
      error_description: description,
      error_codes: [Number(/AADSTS(\d+)/.exec(description)?.[1] ?? 0)],
    },
  });

  it.each([
    [
      'a wrong client secret',
      entraError(
        401,
        'invalid_client',
        "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '11111111-2222-3333-4444-555555555555'.",
      ),
      /secret's value, not its id/,
    ],
    [
      'an expired client secret',
      entraError(
        401,
        'invalid_client',
        "AADSTS7000222: The provided client secret keys for app '11111111-2222-3333-4444-555555555555' are expired.",
      ),
      /expired/,
    ],
    [
      'an unknown tenant',
      entraError(
        400,
        'invalid_request',
        `AADSTS90002: Tenant '${TENANT}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`,
      ),
      /tenant id and the cloud setting/,
    ],
    [
      'a vault audience of another cloud',
      entraError(
        400,
        'invalid_resource',
        'AADSTS500011: The resource principal named https://vault.azure.cn was not found in the tenant named Contoso.',
      ),
      /vault URL and the credential's cloud must match/,
    ],
  ])('is non-retryable with a precise hint for %s', async (_what, answer, hint) => {
    const f = vaultFailure(await thrown(failing(answer).getToken('https://vault.azure.net/.default')), ctx);
    expect(f).toMatchObject({ type: 'VaultUnauthorized', nonRetryable: true });
    expect(f.message).toMatch(hint);
    expect(f.message).toContain("Key Vault 'kv': read the certificate for certificate 'api'");
  });

  it.each([
    [
      'Entra ID answering 500',
      entraError(
        500,
        'temporarily_unavailable',
        'AADSTS90033: A transient error has occurred. Please try again.',
      ),
    ],
    ['Entra ID answering 503 without a body', { status: 503, body: '' } as Answer],
    ['no network', 'network' as const],
  ])('is retryable for %s', async (_what, answer) => {
    const f = vaultFailure(await thrown(failing(answer).getToken('https://vault.azure.net/.default')), ctx);
    expect(f).toMatchObject({ type: 'VaultCredentialUnavailable', nonRetryable: false });
  });
});
