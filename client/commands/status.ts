/** `certflow status <id>`: the lifecycle's status query, readable. */
import { statusQuery } from '../../workflows/messages';
import { EXIT } from '../args';
import { type Command, JSON_OPTION } from '../context';
import { statusText } from '../render';
import { ID_ARG, lifecycleHandle, singleId } from './common';

export const status: Command = {
  name: 'status',
  summary: 'phase, thumbprints, expiry, next renewal, policy, last attempt, bindings',
  args: ID_ARG,
  options: { ...JSON_OPTION },
  async run(ctx, positionals) {
    const id = singleId(ctx, positionals);
    const st = await (await lifecycleHandle(ctx, id)).query(statusQuery);
    if (ctx.json) ctx.printJson(st);
    else ctx.print(statusText(st, ctx.now()));
    return EXIT.ok;
  },
};
