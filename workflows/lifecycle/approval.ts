/**
 * Approval before re-binding (or before issuance, per rule), pure: the durable wait's state, its reminders and its
 * escalation on timeout, and the checks an `approve` / `deny` update must pass. Temporal hands workflow code no
 * authenticated caller identity: `by` is what the client says (the CLI: `--as`, else the OS user), so an
 * `approvers` list guards against mistakes, and the real boundary is who may reach the namespace (mTLS, API keys,
 * an authorizer). README "Approval" says so.
 */

const HOUR_MS = 3_600_000;
export const DEFAULT_REMINDER_HOURS = 24;
export const DEFAULT_APPROVAL_TIMEOUT_HOURS = 72;
/** Reminders stop after this many (the timeout escalation and the expiry ladder take over). */
export const MAX_REMINDERS = 10;

export interface ApprovalRule {
  name: string;
  /** What waits for approval: re-binding the new version (default) or issuing it. */
  before?: 'rebind' | 'issue';
  /** Who may approve or deny (the `by` the client states); absent: anyone who can reach the namespace. */
  approvers?: string[];
  reminderHours?: number;
  timeoutHours?: number;
}

export interface ApprovalState {
  /** What is to be approved, in words (the version and thumbprint, or "issue a new certificate"). */
  subject: string;
  requestedAt: string;
  status: 'pending' | 'approved' | 'denied';
  reminders: number;
  escalated: boolean;
  by?: string;
  at?: string;
  reason?: string;
}

export type ApprovalStep =
  | { kind: 'request' }
  | { kind: 'remind'; n: number }
  | { kind: 'escalate' }
  | { kind: 'denied' }
  | { kind: 'granted' }
  | { kind: 'wait'; until: Date | null; text: string };

/** The next step of an approval under `rule` at `now` (state null: not requested yet). */
export function approvalStep(a: Readonly<ApprovalState> | null, rule: ApprovalRule, now: Date): ApprovalStep {
  if (!a) return { kind: 'request' };
  if (a.status === 'approved') return { kind: 'granted' };
  if (a.status === 'denied') return { kind: 'denied' };
  const since = Date.parse(a.requestedAt);
  const timeoutAt = since + (rule.timeoutHours ?? DEFAULT_APPROVAL_TIMEOUT_HOURS) * HOUR_MS;
  if (!a.escalated && now.getTime() >= timeoutAt) return { kind: 'escalate' };
  const every = (rule.reminderHours ?? DEFAULT_REMINDER_HOURS) * HOUR_MS;
  const nextReminder = a.reminders < MAX_REMINDERS ? since + (a.reminders + 1) * every : Infinity;
  if (now.getTime() >= nextReminder) return { kind: 'remind', n: a.reminders + 1 };
  const next = Math.min(nextReminder, a.escalated ? Infinity : timeoutAt);
  return {
    kind: 'wait',
    until: Number.isFinite(next) ? new Date(next) : null,
    text: `waiting for approval since ${a.requestedAt} (${a.subject}): \`certflow approve\` or \`certflow deny --reason\`${a.escalated ? '; escalated: no answer in time' : ''}`,
  };
}

export interface Decision {
  by?: string;
  reason?: string;
}

/** Why an approve/deny cannot be taken (the update's validator throws it), or undefined. */
export function decisionProblem(
  verb: 'approve' | 'deny',
  d: Decision | undefined,
  pending: Readonly<ApprovalState> | null,
  rule: ApprovalRule | null,
  certificateId: string,
): string | undefined {
  if (d?.by !== undefined && (typeof d.by !== 'string' || d.by.length === 0 || d.by.length > 200))
    return 'by: expected who decides, 1-200 characters';
  if (d?.reason !== undefined && (typeof d.reason !== 'string' || d.reason.length > 500))
    return 'reason: expected a string of at most 500 characters';
  if (verb === 'deny' && !d?.reason?.trim()) return 'reason: expected why the change is denied (--reason)';
  if (!pending || pending.status !== 'pending' || !rule)
    return `certificate ${certificateId} has nothing waiting for approval`;
  if (rule.approvers?.length && !rule.approvers.includes(d?.by ?? ''))
    return `by: ${d?.by ?? '(nobody)'} is not an approver of rule "${rule.name}" (approvers: ${rule.approvers.join(', ')})`;
  return undefined;
}

/** The approval after a decision (validated before). */
export function decided(
  a: ApprovalState,
  verb: 'approve' | 'deny',
  d: Decision | undefined,
  now: Date,
): ApprovalState {
  return {
    ...a,
    status: verb === 'approve' ? 'approved' : 'denied',
    by: d?.by ?? 'unknown',
    at: now.toISOString(),
    ...(d?.reason ? { reason: d.reason.slice(0, 500) } : {}),
  };
}
