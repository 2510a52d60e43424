/** `certflow list`: the running lifecycles, from Temporal visibility over Certflow's search attributes. */
import { type Phase, Phases } from '../../workflows/messages';
import { EXIT, expectPositionals, parseDuration, usageError } from '../args';
import { type CommandImpl, JSON_OPTION } from '../context';
import { type FleetFilter, listLifecycles, statusesOf } from '../../activities/lifecycles';
import { dash, table, when } from '../format';
import { lastResultText } from '../render';

const VAULT_NAME = /^[0-9A-Za-z][0-9A-Za-z-]{0,62}$/;

export const list: CommandImpl = {
  options: {
    vault: { type: 'string', value: 'VAULT', description: 'only this vault' },
    phase: { type: 'string', value: 'PHASE', description: `only this phase (${Phases.join(', ')})` },
    'expiring-within': {
      type: 'string',
      value: 'DURATION',
      description: 'only those expiring within, e.g. 7d, 12h',
    },
    ...JSON_OPTION,
  },
  async run(ctx, positionals) {
    expectPositionals('list', positionals, []);
    const filter = fleetFilter(ctx.options.string('vault'), ctx.options.string('phase'));
    const within = ctx.options.string('expiring-within');
    if (within !== undefined)
      filter.expiresBefore = new Date(ctx.now().getTime() + parseDuration(within, '--expiring-within'));
    const client = await ctx.client();
    const rows = await listLifecycles(client, filter);
    const statuses = await statusesOf(
      client,
      rows.map((r) => r.workflowId),
    );
    const now = ctx.now();
    const withLast = rows.map((r) => {
      const st = statuses.get(r.workflowId);
      return {
        ...r,
        lastResult: st && !(st instanceof Error) ? (st.lastAttempt ?? null) : null,
        mode: st && !(st instanceof Error) ? (st.mode ?? 'issue') : null,
        paused: st && !(st instanceof Error) ? st.paused : null,
        changeControl: st && !(st instanceof Error) ? (st.changeControl?.text ?? null) : null,
        statusError: st instanceof Error ? st.message : null,
      };
    });
    if (ctx.json) {
      ctx.printJson(withLast);
      return EXIT.ok;
    }
    if (!rows.length) {
      ctx.print('no enrolled certificate matches');
      return EXIT.ok;
    }
    ctx.print(
      table(
        ['ID', 'MODE', 'PHASE', 'EXPIRES', 'RENEWS AT', 'LAST RESULT'],
        withLast.map((r) => [
          r.certificateId,
          dash(r.mode),
          dash(r.phase),
          when(r.expiresAt, now),
          when(r.renewAt, now),
          r.statusError
            ? '? (no answer from the lifecycle)'
            : lastResultText(r.lastResult, now) + (r.changeControl ? `; ${r.changeControl}` : ''),
        ]),
      ),
    );
    return EXIT.ok;
  },
};

/** --vault and --phase validated into a visibility filter (also used by report and audit). */
export function fleetFilter(vault: string | undefined, phase: string | undefined): FleetFilter {
  const f: FleetFilter = {};
  if (vault !== undefined) {
    if (!VAULT_NAME.test(vault))
      throw usageError(
        `--vault: expected a vault name (letters, digits, dashes), got ${JSON.stringify(vault)}`,
      );
    f.vault = vault;
  }
  if (phase !== undefined) {
    const p = Phases.find((x) => x.toLowerCase() === phase.toLowerCase());
    if (!p) throw usageError(`--phase: expected one of ${Phases.join(', ')}, got ${JSON.stringify(phase)}`);
    f.phase = p as Phase;
  }
  return f;
}
