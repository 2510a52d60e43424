/** `certflow status <id>`: the lifecycle's status query, readable. */
import { statusQuery } from '../../workflows/messages';
import { EXIT } from '../args';
import { type CommandImpl, JSON_OPTION } from '../context';
import { statusText } from '../render';
import { lifecycleHandle, singleId } from './common';

export const status: CommandImpl = {
  options: { ...JSON_OPTION },
  async run(ctx, positionals) {
    const id = singleId(ctx, positionals);
    const st = await (await lifecycleHandle(ctx, id)).query(statusQuery);
    if (ctx.json) ctx.printJson(st);
    else ctx.print(statusText(st, ctx.now()));
    return EXIT.ok;
  },
};
