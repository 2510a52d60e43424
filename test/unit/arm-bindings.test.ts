/**
 * The pure parts of the Azure Resource Manager binding targets: error classification (with the SDK's own
 * RestError), Key Vault secret references in their spellings, App Service's Key Vault secret statuses, the state
 * of an App Service Certificate order, the leaf of a PKCS#7 bundle, and the activity failures of the orders API.
 */
import { RestError, createHttpHeaders, createPipelineRequest } from '@azure/core-rest-pipeline';
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import 'reflect-metadata';
import { X509Certificate as PeculiarX509, X509Certificates } from '@peculiar/x509';
import { createActivities } from '../../activities/index';
import {
  CertificateOrderError,
  orderConditions,
  parseOrderId,
  type CertificateOrderState,
} from '../../activities/bindings/app-service-certificate-orders';
import {
  classifyArmError,
  keyVaultSecretStatus,
  parseSecretUri,
  sameSecret,
  secretNameOf,
  secretUriWithVersion,
} from '../../activities/bindings/arm-common';
import { leafThumbprintOfBase64 } from '../../activities/bindings/pkcs7';
import { thumbprintOf } from '../../activities/verify/probe';
import { createTestCa } from '../support/test-ca';
import { X509Certificate } from 'node:crypto';

function restError(status: number, body: unknown, headers: Record<string, string> = {}): RestError {
  const request = createPipelineRequest({ url: 'https://management.azure.com/x' });
  const text = JSON.stringify(body);
  const err = new RestError(`${(body as { error?: { message?: string } }).error?.message ?? 'failed'}`, {
    statusCode: status,
    code:
      (body as { error?: { code?: string }; code?: string }).error?.code ?? (body as { code?: string }).code,
    request,
    response: { status, headers: createHttpHeaders(headers), request, bodyAsText: text },
  });
  return err;
}

describe('classifyArmError', () => {
  const role = 'Network Contributor';
  const cases: Array<[string, unknown, Partial<ReturnType<typeof classifyArmError>>, RegExp]> = [
    [
      '429 with Retry-After',
      restError(429, { error: { code: 'TooManyRequests', message: 'slow down' } }, { 'retry-after': '17' }),
      { kind: 'throttled', retryable: true, retryAfterSeconds: 17, code: 'TooManyRequests' },
      /^HTTP 429 TooManyRequests: slow down \(throttled .*Retry-After 17 s\)/,
    ],
    [
      '503',
      restError(503, { error: { code: 'ServiceUnavailable', message: 'busy' } }),
      { kind: 'unavailable', retryable: true },
      /HTTP 503/,
    ],
    [
      '403 names the role',
      restError(403, { error: { code: 'AuthorizationFailed', message: 'no' } }),
      { kind: 'forbidden', retryable: false },
      /needs Network Contributor/,
    ],
    [
      '404',
      restError(404, { error: { code: 'ResourceNotFound', message: 'gone' } }),
      { kind: 'gone', retryable: false },
      /not found/,
    ],
    [
      'ResourceGroupNotFound',
      restError(404, {
        error: { code: 'ResourceGroupNotFound', message: "Resource group 'x' could not be found." },
      }),
      { kind: 'gone', code: 'ResourceGroupNotFound' },
      /HTTP 404 ResourceGroupNotFound/,
    ],
    [
      'Azure DNS body without the error wrapper',
      restError(404, { code: 'NotFound', message: 'The resource record set was not found.' }),
      { kind: 'gone', code: 'NotFound' },
      /HTTP 404 NotFound/,
    ],
    [
      '409',
      restError(409, { error: { code: 'Conflict', message: 'busy' } }),
      { kind: 'conflict', retryable: true },
      /conflicting change/,
    ],
    [
      '400',
      restError(400, { error: { code: 'BadRequest', message: 'no' } }),
      { kind: 'rejected', retryable: false },
      /refused by Azure/,
    ],
    [
      'network',
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      { kind: 'unavailable', retryable: true },
      /ECONNREFUSED/,
    ],
    [
      'failed long-running operation',
      new Error(
        'The long-running operation has failed. ApplicationGatewayKeyVaultSecretException. no secret',
      ),
      { kind: 'rejected', code: 'ApplicationGatewayKeyVaultSecretException', retryable: false },
      /^ApplicationGatewayKeyVaultSecretException: The long-running/,
    ],
    [
      'failed long-running operation, server side',
      new Error('The long-running operation has failed. InternalServerError. oops'),
      { kind: 'unavailable', retryable: true },
      /InternalServerError/,
    ],
  ];
  it.each(cases)('%s', (_, err, expected, text) => {
    const f = classifyArmError(err, role);
    expect(f).toMatchObject(expected);
    expect(f.text).toMatch(text);
  });
});

describe('Key Vault secret references', () => {
  it('parses versioned and versionless URIs, compares by vault host and name, rewrites the version', () => {
    expect(parseSecretUri('https://KV-Prod.vault.azure.net/secrets/Web/abc')).toEqual({
      vaultHost: 'kv-prod.vault.azure.net',
      name: 'Web',
      version: 'abc',
    });
    expect(parseSecretUri('https://kv.vault.azure.net/secrets/web')).toMatchObject({ version: null });
    expect(parseSecretUri('https://kv.vault.azure.net/certificates/web/v1')).toMatchObject({
      name: 'web',
      version: 'v1',
    });
    for (const bad of [
      '',
      'not a url',
      'https://kv.vault.azure.net/keys/web',
      'https://kv.vault.azure.net/secrets',
      'https://kv/secrets/a/b/c',
    ])
      expect(parseSecretUri(bad), bad).toBeNull();
    expect(
      sameSecret(
        parseSecretUri('https://kv.vault.azure.net/secrets/web/v1'),
        parseSecretUri('https://KV.vault.azure.net/secrets/WEB'),
      ),
    ).toBe(true);
    expect(
      sameSecret(
        parseSecretUri('https://kv.vault.azure.net/secrets/web'),
        parseSecretUri('https://kv2.vault.azure.net/secrets/web'),
      ),
    ).toBe(false);
    expect(
      sameSecret(
        parseSecretUri('https://127.0.0.1:8443/secrets/web'),
        parseSecretUri('https://127.0.0.1:9443/secrets/web'),
      ),
    ).toBe(false);
    expect(secretUriWithVersion('https://kv.vault.azure.net/secrets/web/v1', 'v2')).toBe(
      'https://kv.vault.azure.net/secrets/web/v2',
    );
    expect(secretUriWithVersion('https://kv.vault.azure.net/secrets/web', 'v2')).toBe(
      'https://kv.vault.azure.net/secrets/web/v2',
    );
    expect(secretUriWithVersion('https://kv.vault.azure.net/secrets/web/v1', null)).toBe(
      'https://kv.vault.azure.net/secrets/web',
    );
    expect(
      secretNameOf({ secretId: 'https://kv.vault.azure.net/secrets/web/v1', certificateId: 'kv/x' }),
    ).toBe('web');
    expect(secretNameOf({ secretId: 'opaque', certificateId: 'kv/x' })).toBe('x');
  });

  it('classifies App Service’s Key Vault secret statuses, naming the grant for an access failure', () => {
    expect(keyVaultSecretStatus('Succeeded').state).toBe('succeeded');
    for (const s of ['Initialized', 'WaitingOnCertificateOrder'])
      expect(keyVaultSecretStatus(s).state, s).toBe('pending');
    for (const s of [
      'AccessDenied',
      'AzureServiceUnauthorizedToAccessKeyVault',
      'OperationNotPermittedOnKeyVault',
    ])
      expect(keyVaultSecretStatus(s).hint, s).toMatch(/Key Vault Certificate User/);
    expect(keyVaultSecretStatus('KeyVaultSecretDoesNotExist').hint).toMatch(/does not exist in the vault/);
    expect(keyVaultSecretStatus(undefined)).toMatchObject({ state: 'failed' });
  });
});

describe('App Service Certificate order state', () => {
  const base: Omit<CertificateOrderState, 'conditions'> = {
    id: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.CertificateRegistration/certificateOrders/o',
    subscriptionId: 's',
    resourceGroup: 'rg',
    name: 'o',
    distinguishedName: 'CN=www.contoso.com',
    status: 'Issued',
    autoRenew: true,
    thumbprint: 'AA',
    notAfter: '2031-01-01T00:00:00.000Z',
    lastIssuedAt: '2030-01-01T00:00:00.000Z',
    nextAutoRenewalAt: '2030-12-01T00:00:00.000Z',
    notRenewableReasons: [],
    keyVault: { keyVaultId: '/subscriptions/s/…/vaults/kv', secretName: 'o', status: 'Succeeded' },
  };
  const now = new Date('2030-06-01T00:00:00Z');
  const types = (over: Partial<typeof base>, at = now) =>
    orderConditions({ ...base, ...over }, at).map((c) => c.type);
  it.each([
    ['healthy', {}, []],
    ['auto-renew off', { autoRenew: false }, ['AutoRenewOff']],
    ['domain verification pending', { status: 'Pendingissuance' }, ['DomainVerificationPending']],
    ['rekey pending', { status: 'PendingRekey' }, ['DomainVerificationPending']],
    ['denied', { status: 'Denied' }, ['RenewalFailed']],
    [
      'expired and auto-renew off',
      { status: 'Expired', autoRenew: false },
      ['AutoRenewOff', 'RenewalFailed'],
    ],
    ['not renewable', { notRenewableReasons: ['SubscriptionNotActive'] }, ['NotRenewable']],
    ['no Key Vault', { keyVault: null }, ['KeyVaultNotLinked']],
    ['Key Vault still syncing', { keyVault: { ...base.keyVault!, status: 'Initialized' } }, []],
    [
      'Key Vault access denied',
      { keyVault: { ...base.keyVault!, status: 'AzureServiceUnauthorizedToAccessKeyVault' } },
      ['KeyVaultSyncFailed'],
    ],
    ['auto-renewal overdue', { nextAutoRenewalAt: '2030-05-01T00:00:00Z' }, ['RenewalFailed']],
    ['auto-renewal due today (grace)', { nextAutoRenewalAt: '2030-05-31T12:00:00Z' }, []],
    [
      'auto-renewal done after it was due',
      { nextAutoRenewalAt: '2030-05-01T00:00:00Z', lastIssuedAt: '2030-05-02T00:00:00Z' },
      [],
    ],
    [
      'overdue but auto-renew off: only AutoRenewOff',
      { nextAutoRenewalAt: '2030-05-01T00:00:00Z', autoRenew: false },
      ['AutoRenewOff'],
    ],
  ] as Array<[string, Partial<typeof base>, string[]]>)('%s', (_, over, expected) => {
    expect(types(over)).toEqual(expected);
  });

  it('parses order ids and names the expected form', () => {
    expect(parseOrderId(base.id)).toEqual({ subscriptionId: 's', resourceGroup: 'rg', name: 'o' });
    expect(() => parseOrderId('kv/o')).toThrow(
      /certificate order id: expected \/subscriptions\/<id>\/resourceGroups\/<rg>\/providers\/Microsoft\.CertificateRegistration\/certificateOrders\/<name>, got "kv\/o"/,
    );
  });

  it('turns order API failures into activity failures with stable types (Retry-After honoured)', async () => {
    const failing = (err: Error) => ({
      list: () => Promise.reject(err),
      describe: () => Promise.reject(err),
      renew: () => Promise.reject(err),
      orderOfSecret: () => Promise.reject(err),
    });
    const acts = (err: Error) =>
      createActivities({
        vaults: new Map(),
        issuers: new Map(),
        notifier: null,
        certificateOrders: failing(err),
      });
    const throttled = new CertificateOrderError(
      'renewing: throttled',
      classifyArmError(
        restError(429, { error: { code: 'TooManyRequests', message: 'x' } }, { 'retry-after': '30' }),
        'r',
      ),
    );
    const got = await acts(throttled)
      .renewCertificateOrder({ orderId: base.id })
      .catch((e: unknown) => e);
    expect(got).toBeInstanceOf(ApplicationFailure);
    expect(got).toMatchObject({
      type: 'CertificateOrderThrottled',
      nonRetryable: false,
      nextRetryDelay: '30s',
    });
    const forbidden = new CertificateOrderError(
      'no',
      classifyArmError(restError(403, { error: { code: 'AuthorizationFailed', message: 'x' } }), 'r'),
    );
    await expect(acts(forbidden).describeCertificateOrder({ orderId: base.id })).rejects.toMatchObject({
      type: 'CertificateOrderForbidden',
      nonRetryable: true,
    });
    const gone = new CertificateOrderError(
      'gone',
      classifyArmError(restError(404, { error: { code: 'ResourceNotFound', message: 'x' } }), 'r'),
    );
    await expect(acts(gone).describeCertificateOrder({ orderId: base.id })).rejects.toMatchObject({
      type: 'CertificateOrderNotFound',
      nonRetryable: true,
    });
    await expect(
      createActivities({ vaults: new Map(), issuers: new Map(), notifier: null }).renewCertificateOrder({
        orderId: base.id,
      }),
    ).rejects.toMatchObject({ type: 'CertificateOrdersNotConfigured', nonRetryable: true });
    expect(
      await createActivities({
        vaults: new Map(),
        issuers: new Map(),
        notifier: null,
      }).listCertificateOrders(),
    ).toEqual({ orders: [], problems: [] });
  });
});

describe('leafThumbprintOfBase64', () => {
  it('finds the leaf of a PKCS#7 bundle in any order, reads a single DER certificate, and gives null for junk', () => {
    const ca = createTestCa({ keyType: 'ec' });
    const leaf = ca.issueServerCert(['www.contoso.test'], { keyType: 'ec' });
    const expected = thumbprintOf(new X509Certificate(leaf.certPem));
    for (const order of [
      [ca.caCertPem, leaf.certPem],
      [leaf.certPem, ca.caCertPem],
    ]) {
      const p7 = new X509Certificates(order.map((pem) => new PeculiarX509(pem))).export('raw');
      expect(leafThumbprintOfBase64(Buffer.from(p7).toString('base64'))).toBe(expected);
    }
    expect(leafThumbprintOfBase64(new X509Certificate(leaf.certPem).raw.toString('base64'))).toBe(expected);
    expect(leafThumbprintOfBase64('bm90IGEgY2VydA==')).toBeNull();
  });
});
