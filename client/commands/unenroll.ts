/**
 * `certflow unenroll <id> --reason`: end a certificate's lifecycle (a mistaken enrolment, a certificate handed to
 * another tool). The lifecycle finishes cleanly (the retire signal fleet discovery uses); the certificate stays in
 * its vault and its consumers stay as they are. `certflow enroll` starts it again.
 */
import { WorkflowNotFoundError } from '@temporalio/client';
import { retireSignal } from '../../workflows/messages';
import { EXIT, usageError } from '../args';
import { type CommandImpl, JSON_OPTION } from '../context';
import { runningHandle, singleId } from './common';

export const unenroll: CommandImpl = {
  options: {
    reason: { type: 'string', value: 'TEXT', description: 'why (required; kept in the lifecycle’s result)' },
    ...JSON_OPTION,
  },
  async run(ctx, positionals) {
    const id = singleId(ctx, positionals);
    const reason = ctx.options.string('reason')?.trim();
    if (!reason)
      throw usageError('--reason: required for unenroll (say why, e.g. --reason "enrolled by mistake")');
    if (reason.length > 500)
      throw usageError(`--reason: expected at most 500 characters, got ${reason.length}`);
    const handle = await runningHandle(ctx, id);
    await handle.signal(retireSignal, { reason: `unenrolled: ${reason}` });
    // the lifecycle finishes at its next step (a running attempt first completes)
    const finished = await Promise.race([
      handle.result().then(
        () => true,
        (err: unknown) => (err instanceof WorkflowNotFoundError ? true : Promise.reject(err)),
      ),
      new Promise<false>((r) => setTimeout(() => r(false), 30_000).unref()),
    ]);
    if (ctx.json) ctx.printJson({ certificateId: id, unenrolled: true, finished });
    else
      ctx.print(
        finished
          ? `unenrolled ${id}: its lifecycle has finished (the certificate stays in its vault)`
          : `unenroll of ${id} requested: its lifecycle finishes after the step it is in`,
      );
    return EXIT.ok;
  },
};
