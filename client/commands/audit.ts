/** `certflow audit`: the Key Vault auto-renew compliance rule over the fleet (see client/audit-rule.ts). */
import type { CertificateStatus } from '../../workflows/messages';
import { EXIT, expectPositionals } from '../args';
import { type AuditSubject, auditCertificate, type Finding } from '../audit-rule';
import { CONFIG_OPTION, type Command, type CommandContext, JSON_OPTION } from '../context';
import { statusesOf } from '../../activities/lifecycles';
import { table } from '../format';
import { inventory, type InventoryItem } from '../inventory';
import { fleetFilter } from './list';

export const audit: Command = {
  name: 'audit',
  summary: 'certificates without automatic renewal, or whose policy renews too late for their lifetime',
  args: [],
  options: {
    vault: { type: 'string', value: 'VAULT', description: 'only this vault' },
    ...JSON_OPTION,
    ...CONFIG_OPTION,
  },
  notes: `Rules (Key Vault auto-renew compliance, Conformity KeyVault-006):
  NoAutomaticRenewal  no running lifecycle renews the certificate
  RenewalPaused       its lifecycle is paused
  RenewsTooLate       the renewal rule leaves less than 7 days (or a tenth of a shorter lifetime) before expiry
With --config every enabled certificate of the vaults is checked; without it, only enrolled ones can be.
exit code 1 when any certificate does not comply.`,
  async run(ctx, positionals) {
    expectPositionals('audit', positionals, []);
    const { vault } = fleetFilter(ctx.options.string('vault'), undefined);
    const inv = await inventory(ctx, vault);
    const items = inv.items.filter((i) => i.enabled);
    const subjects = await subjectsOf(ctx, items);
    const findings = subjects.flatMap(auditCertificate);
    const failing = new Set(findings.map((f) => f.certificateId));
    const summary = {
      scope: inv.scope,
      checked: subjects.length,
      compliant: subjects.length - failing.size,
      findings,
    };
    if (ctx.json) ctx.printJson(summary);
    else printFindings(ctx, summary);
    return findings.length ? EXIT.failed : EXIT.ok;
  },
};

/** Policy and validity: from the lifecycle's status when it answers, else from the vault. */
async function subjectsOf(ctx: CommandContext, items: InventoryItem[]): Promise<AuditSubject[]> {
  const client = await ctx.client();
  const enrolled = items.filter((i) => i.lifecycle).map((i) => i.lifecycle!.workflowId);
  const statuses = await statusesOf(client, enrolled);
  const vaults = ctx.hasVaultAccess() ? await ctx.vaults('audit') : null;
  const out: AuditSubject[] = [];
  for (const i of items) {
    const st = i.lifecycle ? statuses.get(i.lifecycle.workflowId) : undefined;
    if (st && !(st instanceof Error)) {
      out.push(fromStatus(st));
      continue;
    }
    const lifecycle = i.lifecycle ? 'running' : 'none';
    const vault = i.inVault ? vaults?.get(i.vault) : undefined;
    const state = vault ? await vault.describe(i.name) : null;
    const p = state?.policy;
    out.push({
      certificateId: i.certificateId,
      lifecycle,
      notBefore: state?.notBefore ?? null,
      notAfter: state?.notAfter ?? i.notAfter,
      policy:
        p && (p.lifetimePercentage !== undefined || p.daysBeforeExpiry !== undefined)
          ? {
              lifetimePercentage: p.lifetimePercentage,
              daysBeforeExpiry: p.daysBeforeExpiry,
              source: 'vault',
            }
          : null,
    });
  }
  return out;
}

function fromStatus(st: CertificateStatus): AuditSubject {
  return {
    certificateId: st.certificateId,
    lifecycle: st.paused ? 'paused' : 'running',
    notBefore: st.notBefore,
    notAfter: st.notAfter,
    policy: st.policy ?? null,
  };
}

function printFindings(
  ctx: CommandContext,
  s: { scope: string; checked: number; compliant: number; findings: Finding[] },
): void {
  if (s.findings.length)
    ctx.print(
      table(
        ['CERTIFICATE', 'RULE', 'FINDING'],
        s.findings.map((f) => [f.certificateId, f.rule, f.message]),
      ) + '\n',
    );
  ctx.print(
    `${s.compliant} of ${s.checked} certificates comply` +
      (s.scope === 'lifecycles'
        ? ' (enrolled certificates only: pass --config to check every vault certificate)'
        : ''),
  );
}
