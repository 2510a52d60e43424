/** Change control as people see it (status, the UI's details, `list`): pure. */
import type { ChangeControlStatus } from '../messages';
import { appliedTo, type ChangeControl } from './change-control';
import type { LifecycleState } from './state';

export function changeControlStatus(
  s: Readonly<LifecycleState>,
  cc: ChangeControl | undefined,
  certificateId: string,
  held: { until: Date | null; text: string } | null,
): ChangeControlStatus | null {
  const r = s.rebind ?? null;
  const ia = s.issueApproval ?? null;
  if (!r && !ia) return null;
  const rule = appliedTo(cc, certificateId, s.observed?.tags ?? {}).approval;
  const approval = r?.approval ?? ia;
  return {
    text: held?.text ?? (r ? `re-binding to ${r.thumbprint} in progress` : 'approval given'),
    waitingUntil: held?.until?.toISOString() ?? null,
    rebind: r
      ? {
          version: r.version,
          thumbprint: r.thumbprint,
          previousThumbprint: r.previousThumbprint,
          since: r.since,
          stages: r.stages,
          done: r.done,
          stopped: r.stopped,
        }
      : null,
    approval: approval
      ? {
          before: r?.approval ? 'rebind' : (rule?.before ?? 'issue'),
          status: approval.status,
          requestedAt: approval.requestedAt,
          subject: approval.subject,
          ...(approval.by ? { by: approval.by } : {}),
          ...(approval.at ? { at: approval.at } : {}),
          ...(approval.reason ? { reason: approval.reason } : {}),
        }
      : null,
  };
}
