/**
 * App Service Certificates (`Microsoft.CertificateRegistration/certificateOrders`, `@azure/arm-certificateregistration`:
 * the certificate-order operations left `@azure/arm-appservice` in version 19). An order is a certificate Azure
 * buys, renews (auto-renew) and keeps as a secret in the customer's Key Vault; App Service then syncs the apps that
 * use it only every 24-48 hours. Here:
 * - `list` / `describe`: the orders of the configured subscriptions, with their Key Vault secret and their state
 *   as data (`orderConditions`, pure: auto-renew off, domain verification pending, renewal failed or impossible,
 *   no Key Vault linked, Key Vault sync failed with the role to grant);
 * - `renew`: the order's renew action, the one thing Certflow may ask of a certificate it does not own (observe
 *   mode, see workflows/lifecycle/mode.ts); refusals are classified;
 * - `createCertificateOrderTarget`: a binding target that, for a certificate that is an order's Key Vault secret,
 *   re-imports it into every App Service webspace (resource group + region, hence every plan) that uses it and
 *   re-binds every host name and slot at once, through the App Service target (app-service.ts).
 */
import {
  CertificateRegistrationManagementClient,
  type AppServiceCertificateOrder,
  type CertificateRegistrationManagementClientOptionalParams,
} from '@azure/arm-certificateregistration';
import type { TokenCredential } from '@azure/identity';
import type { BindingContext, BindingOutcome, BindingTarget } from '../types';
import { normalizeThumbprint } from '../verify/probe';
import { createAppServiceTarget, type AppServiceTargetOptions } from './app-service';
import {
  classifyArmError,
  collect,
  keyVaultSecretStatus,
  listScopes,
  perSubscription,
  parseSecretUri,
  scopeOfId,
  type ArmScope,
  type ScopeProblem,
} from './arm-common';
import { mapLimit } from './concurrency';
import { CertificateOrderError } from './certificate-order-error';

export const CERTIFICATE_ORDER_ROLE =
  'a role with Microsoft.CertificateRegistration/certificateOrders/read (and /renew/action to renew), e.g. Website Contributor on the order’s resource group';

export type OrderConditionType =
  | 'AutoRenewOff'
  | 'DomainVerificationPending'
  | 'RenewalFailed'
  | 'NotRenewable'
  | 'KeyVaultNotLinked'
  | 'KeyVaultSyncFailed';

export interface OrderCondition {
  type: OrderConditionType;
  message: string;
}

/** One App Service Certificate order, as data: references and public facts only. */
export interface CertificateOrderState {
  /** ARM id of the order. */
  id: string;
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  distinguishedName: string | null;
  /** CertificateOrderStatus: `Issued`, `Pendingissuance`, `Denied`, `Expired`, … */
  status: string | null;
  autoRenew: boolean;
  thumbprint: string | null;
  notAfter: string | null;
  lastIssuedAt: string | null;
  nextAutoRenewalAt: string | null;
  notRenewableReasons: string[];
  /** The Key Vault secret App Service keeps the certificate in, and App Service's status of it. */
  keyVault: { keyVaultId: string; secretName: string; status: string | null } | null;
  conditions: OrderCondition[];
}

/** How late an auto-renewal may be before it counts as failed. */
const RENEWAL_GRACE_MS = 86_400_000;

/** The state a person must act on. Pure. */
export function orderConditions(o: Omit<CertificateOrderState, 'conditions'>, now: Date): OrderCondition[] {
  const out: OrderCondition[] = [];
  const where = `App Service Certificate order '${o.name}' (resource group '${o.resourceGroup}')`;
  const status = (o.status ?? '').toLowerCase();
  if (!o.autoRenew)
    out.push({
      type: 'AutoRenewOff',
      message: `${where} does not renew itself: auto-renew is off (fix: turn on auto-renew, or renew it with certflow before ${o.notAfter ?? 'it expires'})`,
    });
  if (status === 'pendingissuance' || status === 'pendingrekey')
    out.push({
      type: 'DomainVerificationPending',
      message: `${where} waits for domain verification (status ${o.status}): prove ownership of ${o.distinguishedName ?? 'the domain'} in the portal (App Service Certificate → Domain verification)`,
    });
  if (['denied', 'canceled', 'revoked', 'expired'].includes(status))
    out.push({
      type: 'RenewalFailed',
      message: `${where} is ${o.status}: it will not renew; order or reissue a certificate`,
    });
  else if (
    o.autoRenew &&
    o.nextAutoRenewalAt &&
    Date.parse(o.nextAutoRenewalAt) + RENEWAL_GRACE_MS < now.getTime() &&
    (!o.lastIssuedAt || Date.parse(o.lastIssuedAt) < Date.parse(o.nextAutoRenewalAt))
  )
    out.push({
      type: 'RenewalFailed',
      message: `${where} was due to renew itself at ${o.nextAutoRenewalAt} and has not (last issued ${o.lastIssuedAt ?? 'never'}): check the order's status and payment, or renew it now`,
    });
  if (o.notRenewableReasons.length)
    out.push({
      type: 'NotRenewable',
      message: `${where} cannot be renewed now: ${o.notRenewableReasons.join(', ')}`,
    });
  if (!o.keyVault)
    out.push({
      type: 'KeyVaultNotLinked',
      message: `${where} keeps its certificate in no Key Vault: link one (Certificate configuration → Store) so apps and Certflow can use it`,
    });
  else {
    const kv = keyVaultSecretStatus(o.keyVault.status);
    if (kv.state === 'failed')
      out.push({
        type: 'KeyVaultSyncFailed',
        message: `${where} could not store its certificate in Key Vault secret '${o.keyVault.secretName}': ${kv.hint}`,
      });
  }
  return out;
}

export interface CertificateOrdersOptions {
  credential: TokenCredential;
  subscriptions: ArmScope[];
  clientOptions?: CertificateRegistrationManagementClientOptionalParams;
  now?: () => Date;
}

export interface CertificateOrders {
  list(): Promise<{ orders: CertificateOrderState[]; problems: ScopeProblem[] }>;
  /** One order by ARM id; a classified failure when it cannot be read (`gone` when deleted). */
  describe(orderId: string): Promise<CertificateOrderState>;
  /**
   * Asks the order to renew now (its renew action). `started: false` with the reason when the order refuses
   * (domain verification pending, not renewable); throws an `ArmFailure`-carrying error for throttling, outages
   * and authorization, which callers classify.
   */
  renew(orderId: string): Promise<{ started: boolean; status: string }>;
  /** The order whose Key Vault secret this is (vault name and secret name, case-insensitive), if any. */
  orderOfSecret(vaultName: string, secretName: string): Promise<CertificateOrderState | null>;
}

// in a module of its own (no Azure SDK): the activities test for it without loading the SDK at worker start
export { CertificateOrderError } from './certificate-order-error';

const ORDER_ID =
  /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.CertificateRegistration\/certificateOrders\/([^/]+)$/i;

export function parseOrderId(id: string): { subscriptionId: string; resourceGroup: string; name: string } {
  const m = ORDER_ID.exec(id);
  if (!m)
    throw new Error(
      `certificate order id: expected /subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.CertificateRegistration/certificateOrders/<name>, got ${JSON.stringify(id)}`,
    );
  return { subscriptionId: m[1] as string, resourceGroup: m[2] as string, name: m[3] as string };
}

export function createCertificateOrders(opts: CertificateOrdersOptions): CertificateOrders {
  const now = opts.now ?? (() => new Date());
  const clientFor = perSubscription(
    (sub) => new CertificateRegistrationManagementClient(opts.credential, sub, opts.clientOptions),
  );

  const stateOf = async (o: AppServiceCertificateOrder): Promise<CertificateOrderState> => {
    const scope = scopeOfId(o.id) ?? { subscriptionId: '', resourceGroup: '' };
    let kv = Object.values(o.certificates ?? {}).find((c) => c.keyVaultId && c.keyVaultSecretName);
    if (!kv && o.name) {
      // older orders list their secret only under /certificates
      const listed = await collect(
        clientFor(scope.subscriptionId).appServiceCertificateOrders.listCertificates(
          scope.resourceGroup,
          o.name,
        ),
      );
      const first = listed.ok ? listed.items.find((c) => c.keyVaultId) : undefined;
      if (first) kv = first;
    }
    const p = o;
    const iso = (d: Date | string | undefined) => (d ? new Date(d).toISOString() : null);
    const base: Omit<CertificateOrderState, 'conditions'> = {
      id: o.id ?? '',
      ...scope,
      name: o.name ?? '',
      distinguishedName: p?.distinguishedName ?? null,
      status: p?.status ?? null,
      autoRenew: p?.autoRenew ?? false,
      thumbprint: p?.signedCertificate?.thumbprint
        ? normalizeThumbprint(p.signedCertificate.thumbprint)
        : null,
      notAfter: iso(p?.expirationTime ?? p?.signedCertificate?.notAfter),
      lastIssuedAt: iso(p?.lastCertificateIssuanceTime),
      nextAutoRenewalAt: iso(p?.nextAutoRenewalTimeStamp),
      notRenewableReasons: [...(p?.appServiceCertificateNotRenewableReasons ?? [])],
      keyVault: kv
        ? {
            keyVaultId: kv.keyVaultId as string,
            secretName: kv.keyVaultSecretName as string,
            status: kv.provisioningState ?? null,
          }
        : null,
    };
    return { ...base, conditions: orderConditions(base, now()) };
  };

  const list: CertificateOrders['list'] = async () => {
    const listed = await listScopes(
      opts.subscriptions,
      ({ subscriptionId, resourceGroup }) =>
        resourceGroup === null
          ? clientFor(subscriptionId).appServiceCertificateOrders.list()
          : clientFor(subscriptionId).appServiceCertificateOrders.listByResourceGroup(resourceGroup),
      'App Service Certificate orders',
      CERTIFICATE_ORDER_ROLE,
    );
    const orders = await mapLimit(listed.items, 8, stateOf);
    return { orders: orders.sort((a, b) => a.id.localeCompare(b.id)), problems: listed.problems };
  };

  const fail = (what: string, err: unknown): never => {
    const f = classifyArmError(err, CERTIFICATE_ORDER_ROLE);
    throw new CertificateOrderError(`${what}: ${f.text}`, f);
  };

  return {
    list,
    async describe(orderId) {
      const { subscriptionId, resourceGroup, name } = parseOrderId(orderId);
      try {
        return await stateOf(
          await clientFor(subscriptionId).appServiceCertificateOrders.get(resourceGroup, name),
        );
      } catch (err) {
        return fail(`reading App Service Certificate order '${name}'`, err);
      }
    },
    async renew(orderId) {
      const { subscriptionId, resourceGroup, name } = parseOrderId(orderId);
      try {
        await clientFor(subscriptionId).appServiceCertificateOrders.renew(resourceGroup, name, {
          keySize: 2048,
          isPrivateKeyExternal: false,
        });
        return { started: true, status: 'renewal requested' };
      } catch (err) {
        const f = classifyArmError(err, CERTIFICATE_ORDER_ROLE);
        // the order said no (domain verification pending, not renewable yet): an answer, not an outage
        if (f.kind === 'rejected' || f.kind === 'conflict') return { started: false, status: f.text };
        return fail(`renewing App Service Certificate order '${name}'`, err);
      }
    },
    async orderOfSecret(vaultName, secretName) {
      const { orders } = await list();
      return (
        orders.find(
          (o) =>
            o.keyVault &&
            (o.keyVault.keyVaultId.split('/').pop() ?? '').toLowerCase() === vaultName.toLowerCase() &&
            o.keyVault.secretName.toLowerCase() === secretName.toLowerCase(),
        ) ?? null
      );
    },
  };
}

export interface CertificateOrderTargetOptions extends Omit<
  AppServiceTargetOptions,
  'keyVaultResourceId' | 'name' | 'subscriptions'
> {
  name: string;
  orders: CertificateOrders;
  /** Where the apps are (default: the orders' subscriptions). */
  subscriptions: AppServiceTargetOptions['subscriptions'];
}

/**
 * The apps of an App Service Certificate: for a certificate that is an order's Key Vault secret, the App Service
 * target with that order's vault (re-import into every webspace that uses it, re-bind every host name and slot).
 * A certificate that is no order's secret has no binding here.
 */
export function createCertificateOrderTarget(opts: CertificateOrderTargetOptions): BindingTarget {
  let keyVaultId = '';
  const apps = createAppServiceTarget({ ...opts, keyVaultResourceId: () => keyVaultId });
  return {
    kind: 'app-service-certificate-order',
    name: opts.name,
    async sync(ctx: BindingContext): Promise<BindingOutcome[]> {
      const ref = parseSecretUri(ctx.secretId);
      const vaultName = ref?.vaultHost.split('.')[0] ?? ctx.certificateId.split('/')[0] ?? '';
      const order = await opts.orders.orderOfSecret(
        vaultName,
        ref?.name ?? ctx.certificateId.split('/').pop() ?? '',
      );
      if (!order?.keyVault) return [];
      keyVaultId = order.keyVault.keyVaultId;
      const outcomes = await apps.sync(ctx);
      const note = order.conditions.length
        ? ` [order: ${order.conditions.map((c) => c.type).join(', ')}]`
        : '';
      return outcomes.map((o) => ({ ...o, target: opts.name, detail: `${o.detail}${note}` }));
    },
  };
}
