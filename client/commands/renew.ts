/**
 * `certflow renew <id>`: renew now and wait for the outcome (an update), showing the phases as status moves;
 * `--no-wait` only asks (a signal).
 */
import type { WorkflowHandle } from '@temporalio/client';
import { type RenewRequest, renewNowSignal, renewNowUpdate, statusQuery } from '../../workflows/messages';
import { EXIT, usageError } from '../args';
import { type Command, type CommandContext, JSON_OPTION } from '../context';
import { outcomeText } from '../render';
import { ID_ARG, lifecycleHandle, singleId } from './common';

export const renew: Command = {
  name: 'renew',
  summary: 'renew now and wait for the outcome (--no-wait: just ask)',
  args: ID_ARG,
  options: {
    reason: { type: 'string', value: 'TEXT', description: 'why (shown in history, status and emails)' },
    'no-wait': { type: 'boolean', description: 'send the request and return at once' },
    ...JSON_OPTION,
  },
  notes: 'exit code 1 when the renewal failed or was refused (e.g. the certificate is paused).',
  async run(ctx, positionals) {
    const id = singleId(ctx, positionals);
    const reason = ctx.options.string('reason');
    if (reason !== undefined && (!reason.trim() || reason.length > 500))
      throw usageError('--reason: expected a text of 1 to 500 characters');
    const req: RenewRequest = { reason: reason ?? 'manual renew from the CLI', requestedBy: 'cli' };
    const handle = await lifecycleHandle(ctx, id);
    if (ctx.options.flag('no-wait')) {
      await handle.signal(renewNowSignal, req);
      if (ctx.json) ctx.printJson({ certificateId: id, requested: true });
      else ctx.print(`renewal of ${id} requested; follow it with: certflow status ${id}`);
      return EXIT.ok;
    }
    if (!ctx.json) ctx.print(`renewing ${id} (Ctrl-C stops waiting; the renewal goes on) ...`);
    const stopProgress = ctx.json ? () => {} : showProgress(ctx, handle);
    let outcome;
    try {
      outcome = await handle.executeUpdate(renewNowUpdate, { args: [req] });
    } finally {
      await stopProgress();
    }
    if (ctx.json) ctx.printJson(outcome);
    else ctx.print(outcomeText(id, outcome));
    return outcome.status === 'renewed' ? EXIT.ok : EXIT.failed;
  },
};

/** Polls status and prints a line each time the phase changes; returns a function that stops it. */
function showProgress(ctx: CommandContext, handle: WorkflowHandle): () => Promise<void> {
  let last = '';
  let stopped = false;
  let wake = (): void => {};
  const loop = (async () => {
    while (!stopped) {
      try {
        const st = await handle.query(statusQuery);
        if (!stopped && st.phase !== last) {
          last = st.phase;
          ctx.print(`  ${ctx.now().toISOString().slice(11, 19)}  ${st.phase}`);
        }
      } catch {
        // progress is a courtesy: the update's answer is what counts
      }
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, ctx.pollIntervalMs);
      });
    }
  })();
  return async () => {
    stopped = true;
    wake();
    await loop;
  };
}
