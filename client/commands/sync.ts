/** `certflow sync <id>`: re-bind every consumer to the current version without renewing. */
import { randomUUID } from 'node:crypto';
import { syncLifecycle } from '../../activities/lifecycles';
import { EXIT } from '../args';
import { type CommandImpl, JSON_OPTION } from '../context';
import { bindingLine } from '../render';
import { singleId } from './common';

export const sync: CommandImpl = {
  options: { ...JSON_OPTION },
  notes: 'exit code 1 when a binding failed or was rolled back.',
  async run(ctx, positionals) {
    const id = singleId(ctx, positionals);
    // one request id for every retry of this request: a repeat is answered, never run twice
    const outcomes = await syncLifecycle(await ctx.client(), id, {
      requestedBy: 'cli',
      requestId: randomUUID(),
    });
    const bad = outcomes.filter((b) => b.status === 'failed' || b.status === 'rolled-back');
    if (ctx.json) ctx.printJson(outcomes);
    else if (!outcomes.length) ctx.print(`${id}: no bindings to sync`);
    else ctx.print([`synced ${id}:`, ...outcomes.map((b) => `  ${bindingLine(b)}`)].join('\n'));
    return bad.length ? EXIT.failed : EXIT.ok;
  },
};
