/**
 * `certflow report`: the fleet by expiry, like certlc's workbook: Expired (red), Expiring soon (yellow), Valid
 * (green); plus Not issued for certificates without a version. Table, JSON or CSV. Enrolled certificates also show
 * their safety buffer (workflows/buffer.ts), from their lifecycle's status.
 */
import { statusesOf } from '../../activities/lifecycles';
import { spanText } from '../../workflows/buffer';
import { workflowIdFor, type CertificateStatus } from '../../workflows/messages';
import { EXIT, expectPositionals, parseDuration, usageError } from '../args';
import { CONFIG_OPTION, type CommandImpl, JSON_OPTION } from '../context';
import { csv, daysLeft, humanDuration, shortTime, table } from '../format';
import { inventory, type InventoryItem } from '../inventory';
import { fleetFilter } from './list';

export type ExpiryState = 'expired' | 'expiring' | 'valid' | 'not-issued';
const ORDER: ExpiryState[] = ['expired', 'expiring', 'valid', 'not-issued'];
const LABEL: Record<ExpiryState, string> = {
  expired: 'Expired',
  expiring: 'Expiring soon',
  valid: 'Valid',
  'not-issued': 'Not issued',
};

export interface ReportRow {
  certificateId: string;
  state: ExpiryState;
  notAfter: string | null;
  daysLeft: number | null;
  enrolled: boolean;
  phase: string | null;
  enabled: boolean;
  /** Issue mode: time left after a reference CA outage at renewal (ms) and its state; null: not known. */
  safetyBuffer: { ms: number; state: string; text: string } | null;
}

export const report: CommandImpl = {
  options: {
    within: { type: 'string', value: 'DURATION', description: '"expiring soon" horizon (default 30d)' },
    vault: { type: 'string', value: 'VAULT', description: 'only this vault' },
    csv: { type: 'boolean', description: 'CSV output (RFC 4180)' },
    ...JSON_OPTION,
    ...CONFIG_OPTION,
  },
  notes: `With --config every certificate of the vaults is reported, enrolled or not; without it, the enrolled ones.`,
  async run(ctx, positionals) {
    expectPositionals('report', positionals, []);
    if (ctx.json && ctx.options.flag('csv')) throw usageError('--json, --csv: choose one output format');
    const withinMs = parseDuration(ctx.options.string('within') ?? '30d', '--within');
    const { vault } = fleetFilter(ctx.options.string('vault'), undefined);
    const inv = await inventory(ctx, vault);
    const now = ctx.now();
    const enrolled = inv.items.filter((i) => i.lifecycle).map((i) => workflowIdFor(i.certificateId));
    const statuses = enrolled.length ? await statusesOf(await ctx.client(), enrolled) : new Map();
    const rows = inv.items
      .map((i) => reportRow(i, now, withinMs, statuses.get(workflowIdFor(i.certificateId))))
      .sort(
        (a, b) => ORDER.indexOf(a.state) - ORDER.indexOf(b.state) || (a.daysLeft ?? 0) - (b.daysLeft ?? 0),
      );
    const counts = Object.fromEntries(
      ORDER.map((s) => [s, rows.filter((r) => r.state === s).length]),
    ) as Record<ExpiryState, number>;
    if (ctx.json) {
      ctx.printJson({
        generatedAt: now.toISOString(),
        within: humanDuration(withinMs),
        scope: inv.scope,
        counts,
        certificates: rows,
      });
    } else if (ctx.options.flag('csv')) {
      ctx.print(
        csv(
          [
            'certificate',
            'state',
            'notAfter',
            'daysLeft',
            'enrolled',
            'phase',
            'enabled',
            'safetyBufferHours',
            'safetyBufferState',
          ],
          rows.map((r) => [
            r.certificateId,
            r.state,
            r.notAfter,
            r.daysLeft,
            r.enrolled,
            r.phase,
            r.enabled,
            r.safetyBuffer ? Math.round(r.safetyBuffer.ms / 3_600_000) : null,
            r.safetyBuffer?.state ?? null,
          ]),
        ).trimEnd(),
      );
    } else {
      ctx.print(
        rows.length
          ? table(
              ['CERTIFICATE', 'STATE', 'EXPIRES', 'DAYS LEFT', 'LIFECYCLE', 'BUFFER'],
              rows.map((r) => [
                r.certificateId,
                LABEL[r.state],
                r.notAfter ? shortTime(new Date(r.notAfter)) : '-',
                r.daysLeft === null ? '-' : String(r.daysLeft),
                // the lifecycle's phase, or NO when the certificate has none (not enrolled)
                r.enrolled ? (r.phase ?? 'running') : 'NO',
                bufferCell(r.safetyBuffer),
              ]),
            )
          : 'no certificates',
      );
      ctx.print(
        `\n${ORDER.map((s) => `${LABEL[s]}: ${counts[s]}`).join(', ')} (expiring soon = within ${humanDuration(withinMs)}` +
          `${inv.scope === 'lifecycles' ? '; enrolled certificates only, pass --config for every vault certificate' : ''})`,
      );
    }
    return EXIT.ok;
  },
};

/** The buffer for the table: "17.5 days", "6 hours (small)", "none", or "-" when not known. */
export function bufferCell(b: ReportRow['safetyBuffer']): string {
  if (!b) return '-';
  if (b.state === 'none') return 'none';
  return `${spanText(b.ms)}${b.state === 'small' ? ' (small)' : ''}`;
}

export function reportRow(
  i: InventoryItem,
  now: Date,
  withinMs: number,
  status?: CertificateStatus | Error,
): ReportRow {
  const b = status && !(status instanceof Error) ? status.safetyBuffer : null;
  const t = i.notAfter ? Date.parse(i.notAfter) : NaN;
  const state: ExpiryState = Number.isNaN(t)
    ? 'not-issued'
    : t <= now.getTime()
      ? 'expired'
      : t <= now.getTime() + withinMs
        ? 'expiring'
        : 'valid';
  return {
    certificateId: i.certificateId,
    state,
    notAfter: i.notAfter,
    daysLeft: daysLeft(i.notAfter, now),
    enrolled: i.lifecycle !== null,
    phase: i.lifecycle?.phase ?? null,
    enabled: i.enabled,
    safetyBuffer: b ? { ms: b.bufferMs, state: b.state, text: b.text } : null,
  };
}
