/** `certflow pause <id> --reason` and `certflow resume <id>`: stop and restart automatic renewal. */
import { pauseSignal, resumeSignal } from '../../workflows/messages';
import { EXIT, usageError } from '../args';
import { type Command, JSON_OPTION } from '../context';
import { ID_ARG, lifecycleHandle, singleId } from './common';

export const pause: Command = {
  name: 'pause',
  summary: 'stop automatic renewal (manual renew and sync are refused while paused)',
  args: ID_ARG,
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
    await (await lifecycleHandle(ctx, id)).signal(pauseSignal, { reason });
    if (ctx.json) ctx.printJson({ certificateId: id, paused: true, reason });
    else ctx.print(`paused ${id}: ${reason}`);
    return EXIT.ok;
  },
};

export const resume: Command = {
  name: 'resume',
  summary: 'resume automatic renewal',
  args: ID_ARG,
  options: { ...JSON_OPTION },
  async run(ctx, positionals) {
    const id = singleId(ctx, positionals);
    await (await lifecycleHandle(ctx, id)).signal(resumeSignal);
    if (ctx.json) ctx.printJson({ certificateId: id, paused: false });
    else ctx.print(`resumed ${id}`);
    return EXIT.ok;
  },
};
