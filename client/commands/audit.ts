/**
 * `certflow audit`: the Key Vault auto-renew compliance rule (KeyVault-006) over the fleet and the App Service
 * Certificate orders (see client/audit-rule.ts). Table, JSON or CSV like `report`; exit code 1 when anything fails.
 */
import type { CertificateState } from '../../activities/types';
import type { CertificateStatus } from '../../workflows/messages';
import { CERTIFICATE_MODES, type CertificateMode } from '../../workflows/lifecycle/mode';
import { EXIT, expectPositionals, usageError } from '../args';
import {
  type AuditSubject,
  auditCertificate,
  auditOrder,
  type Finding,
  type OrderAuditSubject,
} from '../audit-rule';
import { CONFIG_OPTION, type CommandImpl, type CommandContext, JSON_OPTION } from '../context';
import { statusesOf } from '../../activities/lifecycles';
import { csv, table } from '../format';
import { inventory, type InventoryItem } from '../inventory';
import { fleetFilter } from './list';

export const audit: CommandImpl = {
  options: {
    vault: { type: 'string', value: 'VAULT', description: 'only this vault' },
    csv: { type: 'boolean', description: 'CSV output (RFC 4180)' },
    ...JSON_OPTION,
    ...CONFIG_OPTION,
  },
  notes: `Rules (Key Vault auto-renew compliance, Conformity KeyVault-006):
  NoAutomaticRenewal        a certificate the vault cannot renew (issuer Unknown) has no running lifecycle
  RenewalPaused             its lifecycle is paused
  RenewsTooLate             the renewal rule leaves less than 7 days (or a tenth of a shorter lifetime) before expiry
  IntegratedCaNotAutoRenew  the vault renews it (DigiCert, GlobalSign, Self) but its lifetime action is not AutoRenew
  LifetimeActionUnknown     (warning) the vault adapter does not report the lifetime action
  NoLifecycle               the vault renews it, but no lifecycle re-binds its consumers when it does
  ModeMismatch              the lifecycle observes a certificate its vault cannot renew (a take-over in issue mode: warning)
  OrderAutoRenewOff         an App Service Certificate order with auto-renew off
  OrderRenewalFailed        an order whose renewal failed or cannot reach its Key Vault
  OrderDomainVerificationPending  (warning) an order waiting for domain verification
With --config every enabled certificate of the vaults (and the configured certificateOrders) is checked; without
it, only enrolled certificates can be. Exit code 1 when anything fails (warnings alone exit 0).`,
  async run(ctx, positionals) {
    expectPositionals('audit', positionals, []);
    if (ctx.json && ctx.options.flag('csv')) throw usageError('--json, --csv: choose one output format');
    const { vault } = fleetFilter(ctx.options.string('vault'), undefined);
    const inv = await inventory(ctx, vault);
    const items = inv.items.filter((i) => i.enabled);
    const subjects = await subjectsOf(ctx, items);
    const orders = await ordersOf(ctx);
    const findings = [...subjects.flatMap(auditCertificate), ...orders.subjects.flatMap(auditOrder)];
    const failing = new Set(findings.filter((f) => f.severity === 'fail').map((f) => f.certificateId));
    const summary = {
      scope: inv.scope,
      checked: subjects.length,
      compliant: subjects.filter((s) => !failing.has(s.certificateId)).length,
      orders: {
        checked: orders.subjects.length,
        compliant: orders.subjects.filter((o) => !failing.has(o.id)).length,
        problems: orders.problems,
      },
      failed: findings.filter((f) => f.severity === 'fail').length,
      warnings: findings.filter((f) => f.severity === 'warn').length,
      findings,
    };
    if (ctx.json) ctx.printJson(summary);
    else if (ctx.options.flag('csv'))
      ctx.print(
        csv(
          ['subject', 'rule', 'severity', 'message'],
          findings.map((f) => [f.certificateId, f.rule, f.severity, f.message]),
        ).trimEnd(),
      );
    else printFindings(ctx, summary);
    return summary.failed ? EXIT.failed : EXIT.ok;
  },
};

/** Policy and validity: from the lifecycle's status when it answers, else from the vault; the vault's policy always. */
async function subjectsOf(ctx: CommandContext, items: InventoryItem[]): Promise<AuditSubject[]> {
  const client = await ctx.client();
  const enrolled = items.filter((i) => i.lifecycle).map((i) => i.lifecycle!.workflowId);
  const statuses = await statusesOf(client, enrolled);
  const vaults = ctx.hasVaultAccess() ? await ctx.vaults('audit') : null;
  const out: AuditSubject[] = [];
  for (const i of items) {
    const vault = i.inVault ? vaults?.get(i.vault) : undefined;
    const state = vault ? await vault.describe(i.name) : null;
    // lifetimeAction absent: the vault adapter does not report it, which the rule treats as unknown
    const vaultPolicy = state?.policy
      ? { issuerName: state.policy.issuerName, lifetimeAction: state.policy.lifetimeAction }
      : undefined;
    const st = i.lifecycle ? statuses.get(i.lifecycle.workflowId) : undefined;
    if (st && !(st instanceof Error)) {
      out.push({ ...fromStatus(st), ...(vaultPolicy ? { vaultPolicy } : {}) });
      continue;
    }
    out.push({
      certificateId: i.certificateId,
      lifecycle: i.lifecycle ? 'running' : 'none',
      notBefore: state?.notBefore ?? null,
      notAfter: state?.notAfter ?? i.notAfter,
      policy: vaultRule(state),
      ...(vaultPolicy ? { vaultPolicy } : {}),
    });
  }
  return out;
}

function vaultRule(state: CertificateState | null): AuditSubject['policy'] {
  const p = state?.policy;
  return p && (p.lifetimePercentage !== undefined || p.daysBeforeExpiry !== undefined)
    ? { lifetimePercentage: p.lifetimePercentage, daysBeforeExpiry: p.daysBeforeExpiry, source: 'vault' }
    : null;
}

function fromStatus(st: CertificateStatus): AuditSubject {
  // the lifecycle's mode (release 3+); whether it was configured is not in the status yet: read it if it comes
  const extra = st as unknown as { modeForced?: unknown };
  const mode = CERTIFICATE_MODES.find((m) => m === st.mode) as CertificateMode | undefined;
  return {
    certificateId: st.certificateId,
    lifecycle: st.paused ? 'paused' : 'running',
    notBefore: st.notBefore,
    notAfter: st.notAfter,
    policy: st.policy ?? null,
    ...(mode ? { lifecycleMode: mode, modeForced: extra.modeForced === true } : {}),
  };
}

async function ordersOf(
  ctx: CommandContext,
): Promise<{ subjects: OrderAuditSubject[]; problems: { where: string; detail: string }[] }> {
  const orders = await ctx.certificateOrders();
  if (!orders) return { subjects: [], problems: [] };
  const listed = await orders.list();
  return {
    subjects: listed.orders.map((o) => ({
      id: o.id,
      name: o.name,
      autoRenew: o.autoRenew,
      notAfter: o.notAfter,
      conditions: o.conditions,
    })),
    problems: listed.problems,
  };
}

function printFindings(
  ctx: CommandContext,
  s: {
    scope: string;
    checked: number;
    compliant: number;
    orders: { checked: number; compliant: number; problems: { where: string; detail: string }[] };
    warnings: number;
    findings: Finding[];
  },
): void {
  if (s.findings.length)
    ctx.print(
      table(
        ['CERTIFICATE', 'RULE', 'FINDING'],
        s.findings.map((f) => [
          f.certificateId,
          f.severity === 'warn' ? `${f.rule} (warning)` : f.rule,
          f.message,
        ]),
      ) + '\n',
    );
  for (const p of s.orders.problems) ctx.print(`orders not checked in ${p.where}: ${p.detail}`);
  ctx.print(
    `${s.compliant} of ${s.checked} certificates comply` +
      (s.orders.checked
        ? `, ${s.orders.compliant} of ${s.orders.checked} App Service Certificate orders`
        : '') +
      (s.warnings ? ` (${s.warnings} warning${s.warnings === 1 ? '' : 's'})` : '') +
      (s.scope === 'lifecycles'
        ? ' (enrolled certificates only: pass --config to check every vault certificate)'
        : ''),
  );
}
