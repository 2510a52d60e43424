/** Small pieces several commands share. */
import { type LifecycleHandle, lifecycleHandle as handleOf } from '../../activities/lifecycles';
import { certificateIdArg, expectPositionals } from '../args';
import type { CommandContext } from '../context';

/** The one `<vault>/<name>` positional of a command, validated. */
export function singleId(ctx: CommandContext, positionals: string[]): string {
  expectPositionals(ctx.command, positionals, ['<vault>/<name>']);
  return certificateIdArg(positionals[0], ctx.command);
}

export async function lifecycleHandle(ctx: CommandContext, id: string): Promise<LifecycleHandle> {
  return handleOf(await ctx.client(), id);
}

export const ID_ARG = ['<vault>/<name>'];
