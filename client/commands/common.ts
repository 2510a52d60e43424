/** Small pieces several commands share. */
import type { WorkflowHandle } from '@temporalio/client';
import { workflowIdFor } from '../../workflows/messages';
import { certificateIdArg, expectPositionals } from '../args';
import type { CommandContext } from '../context';

/** The one `<vault>/<name>` positional of a command, validated. */
export function singleId(ctx: CommandContext, positionals: string[]): string {
  expectPositionals(ctx.command, positionals, ['<vault>/<name>']);
  return certificateIdArg(positionals[0], ctx.command);
}

export async function lifecycleHandle(ctx: CommandContext, id: string): Promise<WorkflowHandle> {
  return (await ctx.client()).workflow.getHandle(workflowIdFor(id));
}

export const ID_ARG = ['<vault>/<name>'];
