/** `certflow history <id>`: the last renewal attempts with thumbprints and bindings, newest first. */
import { historyQuery } from '../../workflows/messages';
import { EXIT } from '../args';
import { type CommandImpl, JSON_OPTION } from '../context';
import { dash, shortTime } from '../format';
import { bindingLine } from '../render';
import { lifecycleHandle, singleId } from './common';

export const history: CommandImpl = {
  options: { ...JSON_OPTION },
  async run(ctx, positionals) {
    const id = singleId(ctx, positionals);
    const attempts = await (await lifecycleHandle(ctx, id)).query(historyQuery);
    if (ctx.json) {
      ctx.printJson(attempts);
      return EXIT.ok;
    }
    if (!attempts.length) {
      ctx.print(`${id}: no renewal attempts yet`);
      return EXIT.ok;
    }
    const lines: string[] = [];
    for (const a of attempts) {
      const result = a.status === 'renewed' ? 'renewed' : `FAILED (${a.error?.type ?? 'unknown'})`;
      lines.push(
        `#${a.attempt} ${result}, trigger ${a.trigger}, ${shortTime(new Date(a.finishedAt))}: ` +
          `${dash(a.oldThumbprint)} -> ${dash(a.newThumbprint)}`,
      );
      if (a.error) lines.push(`  error: ${a.error.message}`);
      if (a.newVersion) lines.push(`  version ${a.newVersion}, expires ${dash(a.notAfter)}`);
      lines.push(...a.bindings.map((b) => `  binding ${bindingLine(b)}`));
      lines.push(`  notified: ${a.notified ? 'yes' : 'no'}`);
    }
    ctx.print(lines.join('\n').trimEnd());
    return EXIT.ok;
  },
};
