/**
 * `certflow renew <id>`: renew now and wait for the outcome (an update), showing the phases as status moves;
 * `--no-wait` returns once the lifecycle accepted the request. The request carries an id: if the answer is lost
 * (a server restart, the lifecycle continuing as new), the same request is sent again and answered from the
 * lifecycle's records, never renewed twice.
 */
import { type WorkflowHandle, WorkflowUpdateStage } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { renewLifecycle } from '../../activities/lifecycles';
import { type RenewRequest, renewNowUpdate, statusQuery } from '../../workflows/messages';
import { EXIT, usageError } from '../args';
import { type CommandImpl, type CommandContext, JSON_OPTION } from '../context';
import { outcomeText } from '../render';
import { runningHandle, singleId } from './common';

export const renew: CommandImpl = {
  options: {
    reason: { type: 'string', value: 'TEXT', description: 'why (shown in history, status and emails)' },
    'no-wait': { type: 'boolean', description: 'return once the lifecycle accepted the request' },
    force: {
      type: 'boolean',
      description: 'renew even right after a renewal (the loop guard), e.g. after a key compromise',
    },
    'ignore-windows': {
      type: 'boolean',
      description:
        're-bind the new version at once, outside change windows and freezes (approval still applies)',
    },
    ...JSON_OPTION,
  },
  notes: `exit code 1 when the renewal failed or was refused (the certificate is paused, or was renewed so recently
that the renewal-loop guard holds renewals back: --force overrides it). A certificate its vault renews itself
(mode observe) is renewed by asking the vault, with its own policy and CA.`,
  async run(ctx, positionals) {
    const id = singleId(ctx, positionals);
    const reason = ctx.options.string('reason');
    if (reason !== undefined && (!reason.trim() || reason.length > 500))
      throw usageError('--reason: expected a text of 1 to 500 characters');
    const req: RenewRequest = {
      reason: reason ?? 'manual renew from the CLI',
      requestedBy: 'cli',
      requestId: randomUUID(),
      ...(ctx.options.flag('force') ? { force: true } : {}),
      ...(ctx.options.flag('ignore-windows') ? { ignoreWindows: true } : {}),
    };
    const handle = await runningHandle(ctx, id); // a missing lifecycle fails here, before anything is printed
    if (ctx.options.flag('no-wait')) {
      // validated and accepted by the lifecycle, not awaited. A refused request comes back with its outcome
      // already set, so its result() settles at once (no call to the server): surface that refusal here.
      const started = await handle.startUpdate(renewNowUpdate, {
        args: [req],
        updateId: req.requestId!,
        waitForStage: WorkflowUpdateStage.ACCEPTED,
      });
      const answer = started.result();
      answer.catch(() => undefined);
      await Promise.race([answer, new Promise((r) => setTimeout(r, 0))]);
      if (ctx.json) ctx.printJson({ certificateId: id, requested: true });
      else ctx.print(`renewal of ${id} requested; follow it with: certflow status ${id}`);
      return EXIT.ok;
    }
    if (!ctx.json) ctx.print(`renewing ${id} (Ctrl-C stops waiting; the renewal goes on) ...`);
    const stopProgress = ctx.json ? () => {} : showProgress(ctx, handle);
    let outcome;
    try {
      outcome = await renewLifecycle(await ctx.client(), id, req);
    } finally {
      await stopProgress();
    }
    if (ctx.json) ctx.printJson(outcome);
    else ctx.print(outcomeText(id, outcome));
    return outcome.status === 'failed' ? EXIT.failed : EXIT.ok;
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
