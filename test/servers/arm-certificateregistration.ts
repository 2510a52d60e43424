/**
 * A FAKE of Azure Resource Manager's App Service Certificate orders API (Microsoft.CertificateRegistration,
 * api-version 2024-11-01, what `@azure/arm-certificateregistration` 1.0 speaks), on the common fake ARM core:
 * - GET  /subscriptions/{s}[/resourceGroups/{rg}]/providers/Microsoft.CertificateRegistration/certificateOrders
 *   (paged), GET …/certificateOrders/{name}
 * - GET  …/certificateOrders/{name}/certificates (paged): the order's Key Vault secret (`keyVaultId` ARM id,
 *   `keyVaultSecretName`, `provisioningState` a KeyVaultSecretStatus such as `Succeeded` or
 *   `AzureServiceUnauthorizedToAccessKeyVault`)
 * - POST …/certificateOrders/{name}/renew (`{ properties: { keySize, forceRenew, isPrivateKeyExternal } }`):
 *   refused (400) while domain verification is pending or when the order cannot renew; otherwise the CA issues a
 *   new certificate (from the test's `issue()`), the order shows it (`signedCertificate`, `expirationTime`,
 *   `lastCertificateIssuanceTime`) and the order's Key Vault secret gets a new version (in the core's secrets,
 *   under `{vault}.vault.azure.net`), as App Service's sync does.
 * Not modelled: purchase, domain verification itself, reissue, rekey, email history, site seal.
 */
import { X509Certificate } from 'node:crypto';
import {
  ArmError,
  noRoute,
  startFakeArmCore,
  topLevel,
  type ArmCall,
  type FakeArmCore,
  type KeyMaterial,
} from './arm-fake';

export const CERTREG_API_VERSION = '2024-11-01';

export interface FakeOrder {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  distinguishedName: string;
  autoRenew: boolean;
  status: string;
  /** null: no Key Vault linked yet. */
  keyVault: { keyVaultId: string; secretName: string; provisioningState: string } | null;
  certificate: KeyMaterial;
  nextAutoRenewal: string | null;
  lastIssued: string;
  notRenewableReasons: string[];
  renewals: number;
}

export interface FakeCertificateOrders extends FakeArmCore {
  orders: Map<string, FakeOrder>;
  addOrder(
    o: Partial<FakeOrder> & Pick<FakeOrder, 'subscriptionId' | 'resourceGroup' | 'name' | 'certificate'>,
  ): FakeOrder;
  order(subscriptionId: string, resourceGroup: string, name: string): FakeOrder | undefined;
  /** What the CA issues on renew (the test makes a certificate). */
  issue: (order: FakeOrder) => KeyMaterial;
}

const k = (...p: string[]) => p.join('/').toLowerCase();
const vaultHostOf = (keyVaultId: string) => `${keyVaultId.split('/').pop()}.vault.azure.net`.toLowerCase();

export async function startFakeCertificateOrders(): Promise<FakeCertificateOrders> {
  const orders = new Map<string, FakeOrder>();

  const handle = (call: ArmCall) => {
    const top = topLevel(call, 'Microsoft.CertificateRegistration', 'certificateOrders', orders, orderJson);
    if ('listed' in top) return top.listed;
    const { path: p, item: o } = top;
    const { types } = p;
    if (types === 'certificateorders' && call.method === 'GET') return orderJson(o);
    if (types === 'certificateorders/certificates' && p.collection && call.method === 'GET')
      return call.page(o.keyVault ? [certificateJson(o)] : []);
    if (types === 'certificateorders/renew' && call.method === 'POST') {
      if (o.status === 'Pendingissuance' || o.status === 'PendingRekey')
        throw new ArmError(
          400,
          'BadRequest',
          `Certificate order ${o.name} is pending domain verification and cannot be renewed.`,
        );
      if (o.notRenewableReasons.length)
        throw new ArmError(
          400,
          'BadRequest',
          `Certificate order ${o.name} cannot be renewed: ${o.notRenewableReasons.join(', ')}.`,
        );
      o.certificate = fake.issue(o);
      o.renewals++;
      o.lastIssued = new Date().toISOString();
      o.status = 'Issued';
      if (o.keyVault?.provisioningState === 'Succeeded')
        fake.vault.put(vaultHostOf(o.keyVault.keyVaultId), o.keyVault.secretName, o.certificate);
      return { status: 204 };
    }
    throw noRoute(call.url.pathname);
  };

  const core = await startFakeArmCore({
    apiVersions: [CERTREG_API_VERSION],
    handle,
    label: 'certificate orders',
  });
  const fake: FakeCertificateOrders = {
    ...core,
    orders,
    issue: () => {
      throw new ArmError(500, 'InternalServerError', 'the test gave the fake CA nothing to issue');
    },
    addOrder(s) {
      core.addResourceGroup(s.subscriptionId, s.resourceGroup);
      const o: FakeOrder = {
        distinguishedName: `CN=${/CN=([^\n,]+)/.exec(new X509Certificate(s.certificate.certPem).subject)?.[1] ?? s.name}`,
        autoRenew: true,
        status: 'Issued',
        keyVault: null,
        nextAutoRenewal: null,
        lastIssued: new Date(new X509Certificate(s.certificate.certPem).validFrom).toISOString(),
        notRenewableReasons: [],
        renewals: 0,
        ...s,
      };
      if (o.keyVault?.provisioningState === 'Succeeded')
        core.vault.put(vaultHostOf(o.keyVault.keyVaultId), o.keyVault.secretName, o.certificate);
      orders.set(k(s.subscriptionId, s.resourceGroup, s.name), o);
      return o;
    },
    order: (sub, rg, name) => orders.get(k(sub, rg, name)),
    reset() {
      core.reset();
      orders.clear();
    },
  };
  return fake;
}

const orderId = (o: FakeOrder) =>
  `/subscriptions/${o.subscriptionId}/resourceGroups/${o.resourceGroup}/providers/Microsoft.CertificateRegistration/certificateOrders/${o.name}`;

function details(pem: string) {
  const x = new X509Certificate(pem);
  return {
    version: 3,
    serialNumber: x.serialNumber,
    thumbprint: x.fingerprint.replace(/:/g, '').toUpperCase(),
    subject: x.subject.replace(/\n/g, ', '),
    notBefore: new Date(x.validFrom).toISOString(),
    notAfter: new Date(x.validTo).toISOString(),
    signatureAlgorithm: 'SHA256withECDSA',
    issuer: x.issuer.replace(/\n/g, ', '),
  };
}

function orderJson(o: FakeOrder) {
  const signed = details(o.certificate.certPem);
  return {
    id: orderId(o),
    name: o.name,
    type: 'Microsoft.CertificateRegistration/certificateOrders',
    location: 'global',
    properties: {
      certificates: o.keyVault
        ? {
            [o.keyVault.secretName]: {
              keyVaultId: o.keyVault.keyVaultId,
              keyVaultSecretName: o.keyVault.secretName,
              provisioningState: o.keyVault.provisioningState,
            },
          }
        : {},
      distinguishedName: o.distinguishedName,
      domainVerificationToken: 'fake-domain-verification-token',
      validityInYears: 1,
      keySize: 2048,
      productType: 'StandardDomainValidatedSsl',
      autoRenew: o.autoRenew,
      provisioningState: 'Succeeded',
      status: o.status,
      signedCertificate: signed,
      serialNumber: signed.serialNumber,
      lastCertificateIssuanceTime: o.lastIssued,
      expirationTime: signed.notAfter,
      isPrivateKeyExternal: false,
      appServiceCertificateNotRenewableReasons: o.notRenewableReasons,
      ...(o.nextAutoRenewal ? { nextAutoRenewalTimeStamp: o.nextAutoRenewal } : {}),
    },
  };
}

function certificateJson(o: FakeOrder) {
  const kv = o.keyVault as NonNullable<FakeOrder['keyVault']>;
  return {
    id: `${orderId(o)}/certificates/${kv.secretName}`,
    name: kv.secretName,
    type: 'Microsoft.CertificateRegistration/certificateOrders/certificates',
    location: 'global',
    properties: {
      keyVaultId: kv.keyVaultId,
      keyVaultSecretName: kv.secretName,
      provisioningState: kv.provisioningState,
    },
  };
}
