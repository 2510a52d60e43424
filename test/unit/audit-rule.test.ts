/** KeyVault-006, complete: the pure audit rule over certificates of every kind and App Service Certificate orders. */
import { describe, expect, it } from 'vitest';
import {
  auditCertificate,
  auditOrder,
  type AuditSubject,
  type OrderAuditSubject,
} from '../../client/audit-rule';

const DAY = 86_400_000;
const base: AuditSubject = {
  certificateId: 'kv/a',
  lifecycle: 'running',
  notBefore: '2025-01-01T00:00:00Z',
  notAfter: new Date(Date.parse('2025-01-01T00:00:00Z') + 365 * DAY).toISOString(),
  policy: { lifetimePercentage: 80 },
};
const rules = (over: Partial<AuditSubject>) =>
  auditCertificate({ ...base, ...over }).map((f) => `${f.rule}:${f.severity}`);

describe('audit rule: certificates', () => {
  it.each<[string, Partial<AuditSubject>, string[]]>([
    // issue mode: Certflow renews it
    ['Unknown issuer, running lifecycle', { vaultPolicy: { issuerName: 'Unknown' } }, []],
    [
      'Unknown issuer, no lifecycle',
      { lifecycle: 'none', vaultPolicy: { issuerName: 'Unknown' } },
      ['NoAutomaticRenewal:fail'],
    ],
    [
      'Unknown issuer, paused',
      { lifecycle: 'paused', vaultPolicy: { issuerName: 'unknown' } },
      ['RenewalPaused:fail'],
    ],
    ['no vault access, no lifecycle', { lifecycle: 'none' }, ['NoAutomaticRenewal:fail']],
    // observe mode: the vault renews it
    [
      'DigiCert with AutoRenew, watched',
      { vaultPolicy: { issuerName: 'DigiCert', lifetimeAction: 'AutoRenew' } },
      [],
    ],
    [
      'DigiCert with AutoRenew, no lifecycle',
      { lifecycle: 'none', vaultPolicy: { issuerName: 'DigiCert', lifetimeAction: 'AutoRenew' } },
      ['NoLifecycle:fail'],
    ],
    [
      'GlobalSign that only e-mails',
      { vaultPolicy: { issuerName: 'GlobalSign', lifetimeAction: 'EmailContacts' } },
      ['IntegratedCaNotAutoRenew:fail'],
    ],
    [
      'GlobalSign that only e-mails, no lifecycle',
      { lifecycle: 'none', vaultPolicy: { issuerName: 'GlobalSign', lifetimeAction: 'EmailContacts' } },
      ['NoLifecycle:fail', 'IntegratedCaNotAutoRenew:fail'],
    ],
    [
      'self-signed, lifetime action not reported',
      { vaultPolicy: { issuerName: 'Self' } },
      ['LifetimeActionUnknown:warn'],
    ],
    [
      'a partner CA taken over by Certflow (mode issue, configured): the lifetime action does not matter',
      {
        vaultPolicy: { issuerName: 'DigiCert', lifetimeAction: 'EmailContacts' },
        lifecycleMode: 'issue',
        modeForced: true,
      },
      [],
    ],
    // lifecycles whose mode does not match the policy
    [
      'observe lifecycle on an Unknown-issuer certificate',
      { vaultPolicy: { issuerName: 'Unknown' }, lifecycleMode: 'observe' },
      ['ModeMismatch:fail'],
    ],
    [
      'issue lifecycle on a DigiCert certificate (a take-over, configured or not said)',
      { vaultPolicy: { issuerName: 'DigiCert', lifetimeAction: 'AutoRenew' }, lifecycleMode: 'issue' },
      ['ModeMismatch:warn'],
    ],
    [
      'observe lifecycle forced on an Unknown-issuer certificate: still nothing renews it',
      { vaultPolicy: { issuerName: 'Unknown' }, lifecycleMode: 'observe', modeForced: true },
      ['ModeMismatch:fail'],
    ],
    [
      'observe lifecycle on a DigiCert certificate',
      { vaultPolicy: { issuerName: 'DigiCert', lifetimeAction: 'AutoRenew' }, lifecycleMode: 'observe' },
      [],
    ],
    ['mode unknown (older status): no judgement', { vaultPolicy: { issuerName: 'Unknown' } }, []],
    // the margin rule, for both kinds
    ['renews 3 days before expiry', { policy: { daysBeforeExpiry: 3 } }, ['RenewsTooLate:fail']],
    [
      'DigiCert renewing at 99 %',
      {
        policy: { lifetimePercentage: 99, source: 'vault' },
        vaultPolicy: { issuerName: 'DigiCert', lifetimeAction: 'AutoRenew' },
      },
      ['RenewsTooLate:fail'],
    ],
  ])('%s', (_, over, expected) => {
    expect(rules(over)).toEqual(expected);
  });

  it('says what to do in each finding', () => {
    const [noLifecycle, action] = auditCertificate({
      ...base,
      lifecycle: 'none',
      vaultPolicy: { issuerName: 'GlobalSign', lifetimeAction: 'EmailContacts' },
    });
    expect(noLifecycle?.message).toMatch(
      /when the vault renews it \(issuer GlobalSign\), nothing re-binds its consumers .*certflow enroll kv\/a/,
    );
    expect(action?.message).toMatch(
      /lifetime action is EmailContacts: it will only e-mail before expiry \(fix: set the lifetime action to AutoRenew/,
    );
    const [mismatch] = auditCertificate({
      ...base,
      vaultPolicy: { issuerName: 'Unknown' },
      lifecycleMode: 'observe',
    });
    expect(mismatch?.message).toMatch(
      /runs in observe mode, but the policy \(issuer Unknown\) implies issue: nothing renews it/,
    );
  });
});

describe('audit rule: App Service Certificate orders', () => {
  const order = (over: Partial<OrderAuditSubject>): OrderAuditSubject => ({
    id: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.CertificateRegistration/certificateOrders/o',
    name: 'o',
    autoRenew: true,
    notAfter: '2031-01-01T00:00:00Z',
    conditions: [],
    ...over,
  });
  const c = (type: string) => ({ type, message: `${type} message` });
  it.each<[string, Partial<OrderAuditSubject>, string[]]>([
    ['healthy', {}, []],
    ['auto-renew off', { autoRenew: false, conditions: [c('AutoRenewOff')] }, ['OrderAutoRenewOff:fail']],
    ['renewal failed', { conditions: [c('RenewalFailed')] }, ['OrderRenewalFailed:fail']],
    ['Key Vault sync failed', { conditions: [c('KeyVaultSyncFailed')] }, ['OrderRenewalFailed:fail']],
    [
      'domain verification pending',
      { conditions: [c('DomainVerificationPending')] },
      ['OrderDomainVerificationPending:warn'],
    ],
    ['no Key Vault linked', { conditions: [c('KeyVaultNotLinked')] }, ['OrderRenewalFailed:warn']],
    ['not renewable yet (outside the renewal window)', { conditions: [c('NotRenewable')] }, []],
  ])('%s', (_, over, expected) => {
    expect(auditOrder(order(over)).map((f) => `${f.rule}:${f.severity}`)).toEqual(expected);
  });
  it('uses the order’s own message when it has one', () => {
    expect(auditOrder(order({ autoRenew: false, conditions: [c('AutoRenewOff')] }))[0]?.message).toBe(
      'AutoRenewOff message',
    );
    expect(auditOrder(order({ autoRenew: false }))[0]?.message).toMatch(/order 'o' does not renew itself/);
  });
});
