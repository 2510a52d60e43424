/**
 * The Azure Key Vault adapter over recorded Key Vault answers (test/support/recorded-http.ts): the real
 * CertificateClient/SecretClient pipeline with its 401 challenge handshake, answering from a table. For real
 * service behaviours our test server does not have (RBAC and firewall 403s, soft-delete 409s, a create that
 * races another). Bodies follow Key Vault's wire format (api-version 7.x): snake_case policies, epoch-second
 * attributes, errors as {"error":{"code","message","innererror"}}.
 */
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';
import crypto, { X509Certificate } from 'node:crypto';
import type { SecretStore, Vault } from '../../activities/types';
import { createAzureKeyVault } from '../../activities/vault/azure-key-vault';
import { recordedHttpClient, type Answer, type RecordedHttpClient, type Route } from './recorded-http';

export const RECORDED_TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
export const TEST_TOKEN = 'eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJ0ZXN0In0.c2lnbmF0dXJl';

export interface RecordedKeyVault {
  vault: Vault & SecretStore;
  http: RecordedHttpClient;
  /** Every token request the SDK made: the scopes and tenant it derived from the vault's challenge. */
  tokenRequests: { scopes: string[]; tenantId: string | undefined }[];
}

export function recordedKeyVault(
  routes: Record<string, Route>,
  opts: { url?: string; resource?: string } = {},
): RecordedKeyVault {
  const url = opts.url ?? 'https://kv-recorded.vault.azure.net';
  const challenge =
    `Bearer authorization="https://login.microsoftonline.com/${RECORDED_TENANT}", ` +
    `resource="${opts.resource ?? 'https://vault.azure.net'}"`;
  // Key Vault answers a request without a token with its challenge, before looking at anything else
  const http = recordedHttpClient(routes, {
    before: (req) =>
      req.authorization
        ? undefined
        : answer(401, kvError('Unauthorized', 'AKV10000: Request is missing a Bearer or PoP token.'), {
            'www-authenticate': challenge,
          }),
  });
  const tokenRequests: RecordedKeyVault['tokenRequests'] = [];
  const credential: TokenCredential = {
    async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken> {
      tokenRequests.push({ scopes: [scopes].flat(), tenantId: options?.tenantId });
      return { token: TEST_TOKEN, expiresOnTimestamp: Date.now() + 3_600_000 };
    },
  };
  const vault = createAzureKeyVault({
    name: 'kv-rec',
    url,
    credential,
    clientOptions: { httpClient: http },
  });
  return { vault, http, tokenRequests };
}

export function kvError(code: string, message: string, inner?: string) {
  return { error: { code, message, ...(inner ? { innererror: { code: inner } } : {}) } };
}

export const answer = (status: number, body: unknown, headers?: Record<string, string>): Answer => ({
  status,
  body,
  ...(headers ? { headers } : {}),
});

const epoch = (d: string | Date) => Math.floor(new Date(d).getTime() / 1000);
const RECOVERY = { recoveryLevel: 'Recoverable+Purgeable', recoverableDays: 90 };

export const POLICY = {
  key_props: { exportable: true, kty: 'EC', key_size: 256, reuse_key: false, crv: 'P-256' },
  secret_props: { contentType: 'application/x-pkcs12' },
  x509_props: {
    subject: 'CN=web.example.com',
    sans: { dns_names: ['web.example.com'] },
    ekus: ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'],
    key_usage: ['digitalSignature'],
    validity_months: 12,
    basic_constraints: { ca: false },
  },
  lifetime_actions: [{ trigger: { lifetime_percentage: 80 }, action: { action_type: 'EmailContacts' } }],
  issuer: { name: 'Unknown' },
  attributes: { enabled: true, created: 1_700_000_000, updated: 1_700_000_000 },
};

/** GET /certificates/{name}/{version?}: a merged version with its certificate and policy. */
export function certificateBundle(
  base: string,
  name: string,
  certPem: string,
  opts: { version?: string; tags?: Record<string, string> } = {},
) {
  const cert = new X509Certificate(certPem);
  const version = opts.version ?? crypto.randomBytes(16).toString('hex');
  return {
    id: `${base}/certificates/${name}/${version}`,
    kid: `${base}/keys/${name}/${version}`,
    sid: `${base}/secrets/${name}/${version}`,
    x5t: Buffer.from(cert.fingerprint.replace(/:/g, ''), 'hex').toString('base64url'),
    cer: cert.raw.toString('base64'),
    attributes: {
      enabled: true,
      nbf: epoch(cert.validFrom),
      exp: epoch(cert.validTo),
      created: 1_700_000_000,
      updated: 1_700_000_000,
      ...RECOVERY,
    },
    policy: { id: `${base}/certificates/${name}/policy`, ...POLICY },
    tags: opts.tags ?? {},
  };
}

/** GET /certificates/{name}/ of a certificate whose first version waits for its merge: no certificate yet. */
export function pendingCertificate(base: string, name: string) {
  const version = crypto.randomBytes(16).toString('hex');
  return {
    id: `${base}/certificates/${name}/${version}`,
    kid: `${base}/keys/${name}/${version}`,
    sid: `${base}/secrets/${name}/${version}`,
    attributes: { enabled: false, created: 1_700_000_000, updated: 1_700_000_000, ...RECOVERY },
    policy: { id: `${base}/certificates/${name}/policy`, ...POLICY },
    pending: { id: `${base}/certificates/${name}/pending` },
    tags: {},
  };
}

/** GET /certificates/{name}/pending while Key Vault waits for a merge. */
export function pendingOperation(base: string, name: string, csrDer: Uint8Array) {
  return {
    id: `${base}/certificates/${name}/pending`,
    issuer: { name: 'Unknown' },
    csr: Buffer.from(csrDer).toString('base64'),
    cancellation_requested: false,
    status: 'inProgress',
    status_details: 'Pending certificate created. Please Perform Merge to complete the request.',
    request_id: crypto.randomBytes(16).toString('hex'),
  };
}

export const noPending = (name: string) =>
  answer(404, kvError('PendingCertificateNotFound', `Pending certificate not found: ${name}`));

export const certificateNotFound = (name: string) =>
  answer(
    404,
    kvError(
      'CertificateNotFound',
      `A certificate with (name/id) ${name} was not found in this key vault. If you recently deleted this certificate you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
    ),
  );
