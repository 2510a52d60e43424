/** `certflow pause <id> --reason` and `certflow resume <id>`: stop and restart automatic renewal. */
import { pauseSignal, resumeSignal, statusQuery } from '../../workflows/messages';
import { EXIT, usageError } from '../args';
import { type CommandImpl, JSON_OPTION } from '../context';
import { runningHandle, singleId } from './common';

export const pause: CommandImpl = {
  options: {
    reason: {
      type: 'string',
      value: 'TEXT',
      description: 'why (required; shown in status, the UI and emails)',
    },
    ...JSON_OPTION,
  },
  async run(ctx, positionals) {
    const id = singleId(ctx, positionals);
    const reason = ctx.options.string('reason')?.trim();
    if (!reason) throw usageError('--reason: required for pause (say why, e.g. --reason "change freeze")');
    if (reason.length > 500)
      throw usageError(`--reason: expected at most 500 characters, got ${reason.length}`);
    const handle = await runningHandle(ctx, id);
    await handle.signal(pauseSignal, { reason, by: ctx.env.USER ?? 'cli' });
    if (ctx.json) ctx.printJson({ certificateId: id, paused: true, reason });
    else ctx.print(`paused ${id}: ${reason}`);
    return EXIT.ok;
  },
};

export const resume: CommandImpl = {
  options: { ...JSON_OPTION },
  async run(ctx, positionals) {
    const id = singleId(ctx, positionals);
    const handle = await runningHandle(ctx, id);
    const before = await handle.query(statusQuery);
    if (!before.paused) {
      if (ctx.json) ctx.printJson({ certificateId: id, paused: false, wasPaused: false });
      else ctx.print(`${id} is not paused: nothing to resume`);
      return EXIT.ok;
    }
    await handle.signal(resumeSignal);
    if (ctx.json) ctx.printJson({ certificateId: id, paused: false, wasPaused: true });
    else ctx.print(`resumed ${id} (paused since ${before.paused.since}: ${before.paused.reason})`);
    return EXIT.ok;
  },
};
