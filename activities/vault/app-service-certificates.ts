/**
 * App Service Certificate orders as a Vault, so each order gets a lifecycle in observe mode like any certificate
 * its vault renews itself: certificate ids `<vaultName>/<order name>`. Azure buys and renews the certificate (the
 * order's auto-renew, or its renew action, which `certflow renew` calls) and keeps it as a secret in the customer's
 * Key Vault; the lifecycle notices the new certificate, re-imports it into every App Service plan that uses it and
 * re-binds every host name and slot at once (the `app-service-certificate-order` binding target), instead of App
 * Service's 24-48 h sync. The order's state that needs a person (domain verification pending, renewal failed,
 * auto-renew off, Key Vault sync failed) is carried as `conditions` into status and mail.
 *
 * What it cannot do, by design: make keys or CSRs, merge chains, create orders (`issue` mode is refused with
 * PolicyNotOwned: Azure owns the order), or hand out the private key (a file target for an order's certificate
 * reads the Key Vault secret through a Key Vault vault instead).
 */
import { ApplicationFailure } from '@temporalio/common';
import type { CertificateState, CertificateSummary, PendingCsr, Vault } from '../types';
import type { CertificateOrders, CertificateOrderState } from '../bindings/app-service-certificate-orders';
import { CertificateOrderError } from '../bindings/certificate-order-error';

/** The policy's issuer name of an order: not Unknown, so the lifecycle runs in observe mode (workflows/lifecycle/mode.ts). */
export const ORDER_ISSUER = 'AppServiceCertificate';
const DAY_MS = 86_400_000;
/** When Azure renews an order with auto-renew but says no date: a conservative guess, before expiry. */
const DEFAULT_RENEW_DAYS = 30;

export interface AppServiceCertificatesVaultOptions {
  /** Short name, the first half of certificate ids (`<name>/<order>`). */
  name: string;
  orders: CertificateOrders;
  /** The Key Vault DNS suffix of the orders' cloud, for secret ids (default vault.azure.net). */
  vaultDnsSuffix?: string;
}

export function createAppServiceCertificatesVault(opts: AppServiceCertificatesVaultOptions): Vault {
  const suffix = opts.vaultDnsSuffix ?? 'vault.azure.net';
  const who = (name: string) => `App Service Certificate order '${name}'`;

  const classified = (err: unknown, what: string): never => {
    if (err instanceof CertificateOrderError) {
      const f = err.failure;
      throw ApplicationFailure.create({
        message: `${what}: ${err.message}`,
        type:
          f.kind === 'gone'
            ? 'CertificateNotFound'
            : `CertificateOrder${f.kind[0]!.toUpperCase()}${f.kind.slice(1)}`,
        nonRetryable: !f.retryable,
        ...(f.retryAfterSeconds ? { nextRetryDelay: `${f.retryAfterSeconds}s` } : {}),
      });
    }
    throw err;
  };

  /** The orders last read, by name: secretIdOf answers from it (the binding targets find an order by its secret). */
  const known = new Map<string, CertificateOrderState>();
  const remember = (orders: CertificateOrderState[]) => {
    for (const o of orders) known.set(o.name.toLowerCase(), o);
  };

  /** The order of a certificate id's name; orders are found by name across the configured scopes. */
  const orderNamed = async (name: string): Promise<CertificateOrderState> => {
    let listed: Awaited<ReturnType<CertificateOrders['list']>>;
    try {
      listed = await opts.orders.list();
    } catch (err) {
      return classified(err, `listing App Service Certificate orders for '${name}'`);
    }
    remember(listed.orders);
    const found = listed.orders.filter((o) => o.name.toLowerCase() === name.toLowerCase());
    if (found.length > 1)
      throw ApplicationFailure.create({
        message: `${found.length} App Service Certificate orders are named '${name}' (${found.map((o) => o.resourceGroup).join(', ')}): certificate ids name orders, so keep the names unique in the configured subscriptions`,
        type: 'AmbiguousCertificateOrder',
        nonRetryable: true,
      });
    if (!found[0]) {
      const problems = listed.problems.map((p) => `${p.where}: ${p.detail}`).join('; ');
      throw ApplicationFailure.create({
        message: `${who(name)} not found in the configured subscriptions${problems ? ` (some could not be listed: ${problems})` : ''}`,
        type: listed.problems.length ? 'CertificateOrderListFailed' : 'CertificateNotFound',
        nonRetryable: listed.problems.length === 0,
      });
    }
    return found[0];
  };

  const secretUrl = (o: CertificateOrderState, version?: string): string => {
    const vault = o.keyVault?.keyVaultId.split('/').pop() ?? 'unknown-vault';
    return `https://${vault}.${suffix}/secrets/${o.keyVault?.secretName ?? o.name}${version ? `/${version}` : ''}`;
  };

  const stateOf = (o: CertificateOrderState): CertificateState => {
    const notAfter = o.notAfter;
    const renewDays =
      o.nextAutoRenewalAt && notAfter
        ? Math.max(1, Math.round((Date.parse(notAfter) - Date.parse(o.nextAutoRenewalAt)) / DAY_MS))
        : DEFAULT_RENEW_DAYS;
    return {
      id: `${opts.name}/${o.name}`,
      vault: opts.name,
      name: o.name,
      // a new certificate is a new thumbprint: the order's "version" for the lifecycle
      version: o.thumbprint,
      thumbprint: o.thumbprint,
      notBefore: o.lastIssuedAt,
      notAfter,
      subject: o.distinguishedName,
      dnsNames: [],
      tags: {},
      policy: {
        subject: o.distinguishedName ?? '',
        dnsNames: [],
        issuerName: ORDER_ISSUER,
        key: { keyType: 'RSA', keySize: 2048, reuseKey: false, exportable: true },
        daysBeforeExpiry: renewDays,
        lifetimeAction: o.autoRenew ? 'AutoRenew' : 'EmailContacts',
      },
      key: null,
      pendingOperation: o.status?.toLowerCase() === 'pendingissuance',
      ...(o.conditions.length
        ? { conditions: o.conditions.map((c) => ({ type: c.type, message: c.message })) }
        : {}),
    };
  };

  const notOwned = (name: string): never => {
    throw ApplicationFailure.create({
      message: `${who(name)} is bought and renewed by Azure (observe mode): Certflow never makes its key, CSR or chain; renew it with certflow renew (the order's renew action)`,
      type: 'PolicyNotOwned',
      nonRetryable: true,
    });
  };

  return {
    name: opts.name,
    async describe(name) {
      return stateOf(await orderNamed(name));
    },
    async *list(): AsyncIterable<CertificateSummary> {
      let listed: Awaited<ReturnType<CertificateOrders['list']>>;
      try {
        listed = await opts.orders.list();
      } catch (err) {
        return classified(err, 'listing App Service Certificate orders');
      }
      remember(listed.orders);
      for (const o of listed.orders) {
        yield {
          id: `${opts.name}/${o.name}`,
          name: o.name,
          version: o.thumbprint,
          thumbprint: o.thumbprint,
          notAfter: o.notAfter,
          enabled: o.status?.toLowerCase() !== 'canceled',
          tags: {},
        };
      }
    },
    create: async (name): Promise<PendingCsr> => notOwned(name),
    secretIdOf(name, version) {
      const o = known.get(name.toLowerCase());
      return o ? secretUrl(o, version) : `https://unknown.${suffix}/secrets/${name}/${version}`;
    },
    async certificatePem() {
      return null; // the order's leaf is read by the App Service side; no ARI for orders
    },
    beginRenewal: async (name): Promise<PendingCsr> => notOwned(name),
    async renewInVault(name) {
      const o = await orderNamed(name);
      try {
        return await opts.orders.renew(o.id);
      } catch (err) {
        return classified(err, `renewing ${who(name)}`);
      }
    },
    merge: async (name) => notOwned(name),
    async cancelRenewal() {
      // nothing of Certflow's is pending on an order
    },
    async exportSecret(name) {
      throw ApplicationFailure.create({
        message: `${who(name)}: its private key stays in its Key Vault; a file or SSH binding for it needs that Key Vault configured as a vault (and the certificate enrolled from there)`,
        type: 'NotSupported',
        nonRetryable: true,
      });
    },
  };
}
