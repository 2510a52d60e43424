/** `certflow sync <id>`: re-bind every consumer to the current version without renewing. */
import { syncNowUpdate } from '../../workflows/messages';
import { EXIT } from '../args';
import { type Command, JSON_OPTION } from '../context';
import { bindingLine } from '../render';
import { ID_ARG, lifecycleHandle, singleId } from './common';

export const sync: Command = {
  name: 'sync',
  summary: 're-bind every consumer to the current certificate (no renewal); prints each binding',
  args: ID_ARG,
  options: { ...JSON_OPTION },
  notes: 'exit code 1 when a binding failed or was rolled back.',
  async run(ctx, positionals) {
    const id = singleId(ctx, positionals);
    const outcomes = await (
      await lifecycleHandle(ctx, id)
    ).executeUpdate(syncNowUpdate, {
      args: [{ requestedBy: 'cli' }],
    });
    const bad = outcomes.filter((b) => b.status === 'failed' || b.status === 'rolled-back');
    if (ctx.json) ctx.printJson(outcomes);
    else if (!outcomes.length) ctx.print(`${id}: no bindings to sync`);
    else ctx.print([`synced ${id}:`, ...outcomes.map((b) => `  ${bindingLine(b)}`)].join('\n'));
    return bad.length ? EXIT.failed : EXIT.ok;
  },
};
