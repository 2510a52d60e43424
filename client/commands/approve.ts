/**
 * `certflow approve <id>` and `certflow deny <id> --reason`: decide a change waiting for approval (re-binding a
 * new version, or issuing one, per the `changeControl.approval` rule). Both are validated updates: a decision the
 * lifecycle refuses (nothing waiting, not an approver, no reason to deny) leaves no trace, and an accepted one is
 * in the workflow's history with who decided. `--as` names the approver (default: the OS user); Temporal does not
 * authenticate it, see README "Approval".
 */
import { approveUpdate, type ApprovalDecision, denyUpdate } from '../../workflows/messages';
import { EXIT, usageError } from '../args';
import { type CommandContext, type CommandImpl, JSON_OPTION } from '../context';
import { runningHandle, singleId } from './common';

const AS_OPTION = {
  as: {
    type: 'string' as const,
    value: 'NAME',
    description: "who decides (checked against the rule's approvers; default: the OS user)",
  },
};

function decision(ctx: CommandContext, reasonRequired: boolean): ApprovalDecision {
  const by = (ctx.options.string('as') ?? ctx.env.USER ?? 'cli').trim();
  if (!by || by.length > 200) throw usageError('--as: expected a name of 1 to 200 characters');
  const reason = ctx.options.string('reason')?.trim();
  if (reasonRequired && !reason)
    throw usageError('--reason: required for deny (say why, e.g. --reason "launch freeze")');
  if (reason !== undefined && reason.length > 500)
    throw usageError(`--reason: expected at most 500 characters, got ${reason.length}`);
  return { by, ...(reason ? { reason } : {}) };
}

export const approve: CommandImpl = {
  options: {
    ...AS_OPTION,
    reason: { type: 'string', value: 'TEXT', description: 'a note kept with the approval' },
    ...JSON_OPTION,
  },
  notes: 'exit code 1 when refused: nothing waits for approval, or --as is not an approver of the rule.',
  async run(ctx, positionals) {
    const id = singleId(ctx, positionals);
    const d = decision(ctx, false);
    const handle = await runningHandle(ctx, id);
    const after = await handle.executeUpdate(approveUpdate, { args: [d] });
    if (ctx.json) ctx.printJson({ certificateId: id, approved: true, by: d.by, changeControl: after });
    else ctx.print(`approved by ${d.by}: ${after?.approval?.subject ?? 'the change'} of ${id}`);
    return EXIT.ok;
  },
};

export const deny: CommandImpl = {
  options: {
    ...AS_OPTION,
    reason: { type: 'string', value: 'TEXT', description: 'why (required; shown in status and emails)' },
    ...JSON_OPTION,
  },
  notes: 'exit code 1 when refused: nothing waits for approval, or --as is not an approver of the rule.',
  async run(ctx, positionals) {
    const id = singleId(ctx, positionals);
    const d = decision(ctx, true);
    const handle = await runningHandle(ctx, id);
    const after = await handle.executeUpdate(denyUpdate, { args: [d] });
    if (ctx.json) ctx.printJson({ certificateId: id, denied: true, by: d.by, changeControl: after });
    else ctx.print(`denied by ${d.by}: ${after?.approval?.subject ?? 'the change'} of ${id} (${d.reason})`);
    return EXIT.ok;
  },
};
