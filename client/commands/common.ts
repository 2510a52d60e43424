/** Small pieces several commands share. */
import { type LifecycleHandle, lifecycleHandle as handleOf } from '../../activities/lifecycles';
import { certificateIdArg, expectPositionals } from '../args';
import { type CommandContext, NotFoundError } from '../context';

/** The one `<vault>/<name>` positional of a command, validated. */
export function singleId(ctx: CommandContext, positionals: string[]): string {
  expectPositionals(ctx.command, positionals, ['<vault>/<name>']);
  return certificateIdArg(positionals[0], ctx.command);
}

export async function lifecycleHandle(ctx: CommandContext, id: string): Promise<LifecycleHandle> {
  return handleOf(await ctx.client(), id);
}

/**
 * The handle of a lifecycle that runs, checked before a command sends or prints anything: a certificate never
 * enrolled, or retired, is a clear not-found error (exit 3) instead of a message that went nowhere.
 */
export async function runningHandle(ctx: CommandContext, id: string): Promise<LifecycleHandle> {
  const handle = await lifecycleHandle(ctx, id);
  const d = await handle.describe();
  if (d.status.name !== 'RUNNING')
    throw new NotFoundError(
      `the lifecycle of ${id} is not running (${d.status.name.toLowerCase()}); enroll it again: certflow enroll ${id} --issuer <name>`,
    );
  return handle;
}
