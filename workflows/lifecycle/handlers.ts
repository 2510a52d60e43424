/**
 * Every message the lifecycle takes, installed from one place: queries (status, history), updates that answer
 * (renewNow, syncNow, setPolicy; validated before they are accepted, so a refused request leaves no trace) and
 * signals (renewNow, syncNow, pause, resume, retire, observeNow, upgrade). Handlers only change the state and the
 * inbox; the loop acts on them.
 *
 * A renew or sync request carries a request id (the CLI's update id, an Event Grid event id). The lifecycle keeps
 * recent ids with their outcome across continue-as-new, so a client that retries after a server failure gets the
 * first answer back and nothing is done twice.
 */
import { condition, log, setHandler } from '@temporalio/workflow';
import {
  approveUpdate,
  denyUpdate,
  historyQuery,
  observeNowSignal,
  pauseSignal,
  type RenewalOutcome,
  type RenewRequest,
  renewNowSignal,
  renewNowUpdate,
  resumeSignal,
  retireSignal,
  setPolicyUpdate,
  statusQuery,
  syncNowSignal,
  syncNowUpdate,
  upgradeSignal,
} from '../messages';
import { mergeOverride, renewalGuardUntil, validatePolicyOverride } from '../policy';
import { decisionProblem } from './approval';
import { appliedTo } from './change-control';
import type { Ctx } from './context';
import { decide as decideApproval, pendingApproval } from './rebind';
import type { Display } from './display';
import { rememberRequest, requestRecord } from './state';
import { observedOf } from './triggers';

const REQUEST_ID = /^[\w.:@/-]{1,200}$/;

export function installHandlers(ctx: Ctx, display: Display): void {
  const { s, inbox, id } = ctx;

  /** Why a renew request cannot be taken now, or undefined. */
  const refusal = (req: RenewRequest | undefined): string | undefined => {
    if (req?.reason !== undefined && (typeof req.reason !== 'string' || req.reason.length > 500))
      return 'reason: expected a string of at most 500 characters';
    if (
      req?.requestId !== undefined &&
      !(typeof req.requestId === 'string' && REQUEST_ID.test(req.requestId))
    )
      return 'requestId: expected 1-200 letters, digits or ._:@/-';
    if (req?.force !== undefined && typeof req.force !== 'boolean') return 'force: expected true or false';
    if (req?.ignoreWindows !== undefined && typeof req.ignoreWindows !== 'boolean')
      return 'ignoreWindows: expected true or false';
    if (requestRecord(s, req?.requestId)) return undefined; // a repeat: answered with the first outcome
    if (s.paused) return `certificate ${id} is paused (${s.paused.reason}); resume it first`;
    if (inbox.renewing || req?.force) return undefined; // joins the running attempt / forced past the guard
    const until = renewalGuardUntil(observedOf(s.observed), s.lastRenewedAt);
    if (until && until.getTime() > Date.now())
      return `certificate ${id} was renewed at ${s.lastRenewedAt}; the renewal-loop guard holds renewals until ${until.toISOString()} (renew with --force to override it, e.g. after a key compromise)`;
    return undefined;
  };

  /** Waits for the attempt this request starts or joins, and answers with its outcome. */
  const renewed = async (req: RenewRequest): Promise<RenewalOutcome> => {
    const known = requestRecord(s, req.requestId);
    if (known?.outcome) return known.outcome;
    if (!inbox.renewing) s.manual = req;
    if (s.issueApproval?.status === 'denied') s.issueApproval = null; // a new request asks for approval again
    if (req.requestId) rememberRequest(s, { id: req.requestId, kind: 'renew', at: new Date().toISOString() });
    const target = inbox.finished + 1;
    await condition(() => inbox.finished >= target);
    const outcome = s.lastAttempt as RenewalOutcome;
    if (req.requestId) rememberRequest(s, { ...requestRecord(s, req.requestId)!, outcome });
    return outcome;
  };

  setHandler(statusQuery, display.status);
  setHandler(historyQuery, () => s.recent);
  setHandler(renewNowUpdate, (req) => renewed(req ?? {}), {
    validator: (req) => {
      const problem = refusal(req);
      if (problem) throw new Error(problem);
    },
  });
  setHandler(renewNowSignal, (req) => {
    const problem = refusal(req);
    if (problem || requestRecord(s, req?.requestId)) {
      log.warn('renew request ignored', {
        certificateId: id,
        why: problem ?? 'a repeat of an earlier request',
      });
      return;
    }
    if (req?.requestId)
      rememberRequest(s, { id: req.requestId, kind: 'renew', at: new Date().toISOString() });
    if (!inbox.renewing) s.manual = req ?? {}; // while renewing, the request joins the running attempt
    if (s.issueApproval?.status === 'denied') s.issueApproval = null;
  });

  // approval (approval.ts): validated, so a refused decision leaves no trace; who decided is in the update's
  // input (history) and in the state (status)
  const approvalRule = () => appliedTo(ctx.input.changeControl, id, s.observed?.tags ?? {}).approval;
  for (const [def, verb] of [
    [approveUpdate, 'approve'],
    [denyUpdate, 'deny'],
  ] as const) {
    setHandler(
      def,
      (d) => {
        decideApproval(s, verb, d ?? {});
        log.info(`change ${verb === 'approve' ? 'approved' : 'denied'}`, {
          certificateId: id,
          by: d?.by ?? 'unknown',
        });
        inbox.wakes += 1;
        return display.status().changeControl ?? null;
      },
      {
        validator: (d) => {
          const problem = decisionProblem(verb, d, pendingApproval(s)?.a ?? null, approvalRule(), id);
          if (problem) throw new Error(problem);
        },
      },
    );
  }

  setHandler(
    syncNowUpdate,
    async (req) => {
      const known = requestRecord(s, req?.requestId);
      if (known?.bindings) return known.bindings;
      let bindings;
      if (inbox.renewing) {
        // the running renewal binds every consumer when it merges: answer with its outcome
        const target = inbox.finished + 1;
        await condition(() => inbox.finished >= target);
        bindings = s.lastAttempt?.bindings ?? [];
      } else {
        inbox.syncRequested = true;
        inbox.wakes += 1;
        const target = inbox.syncsDone + 1;
        await condition(() => inbox.syncsDone >= target);
        bindings = inbox.lastSync;
      }
      if (req?.requestId)
        rememberRequest(s, { id: req.requestId, kind: 'sync', at: new Date().toISOString(), bindings });
      return bindings;
    },
    {
      validator: (_req) => {
        if (s.paused) throw new Error(`certificate ${id} is paused (${s.paused.reason}); resume it first`);
      },
    },
  );
  setHandler(syncNowSignal, (_req) => {
    if (s.paused) return;
    inbox.syncRequested = true;
    inbox.wakes += 1;
  });

  setHandler(
    setPolicyUpdate,
    (o) => {
      s.override = mergeOverride(s.override, o);
      inbox.wakes += 1;
      return display.status(); // the next renewal time under the new policy
    },
    {
      validator: (o) => {
        if (ctx.mode() === 'observe')
          throw new Error(
            `certificate ${id} is renewed by its vault (mode observe): its renewal time is the vault's policy; change the lifetime action in the vault instead`,
          );
        const o2 = s.observed;
        const lifetimeMs =
          o2?.notBefore && o2.notAfter ? Date.parse(o2.notAfter) - Date.parse(o2.notBefore) : undefined;
        const problem = validatePolicyOverride(o, lifetimeMs ? { lifetimeMs } : undefined);
        if (problem) throw new Error(problem);
      },
    },
  );

  setHandler(pauseSignal, ({ reason, by }: { reason: string; by?: string }) => {
    s.paused = {
      reason: String(reason ?? '').slice(0, 500) || 'no reason given',
      since: new Date().toISOString(),
      ...(by ? { by: String(by).slice(0, 200) } : {}),
    };
    s.manual = null;
    inbox.wakes += 1;
  });
  setHandler(resumeSignal, () => {
    s.paused = null;
    inbox.wakes += 1;
  });
  setHandler(retireSignal, ({ reason }) => {
    inbox.retired = String(reason ?? '').slice(0, 500) || 'retired';
    inbox.wakes += 1;
  });
  setHandler(observeNowSignal, () => {
    inbox.stale = true;
    inbox.wakes += 1;
  });
  setHandler(upgradeSignal, () => {
    inbox.upgrade = true;
    inbox.wakes += 1;
  });
}
