/**
 * FROZEN (release 2): the v2 lifecycle's trigger decision, composed from the named rules of
 * `workflows/lifecycle/triggers.ts` in v2's order (a manual request last) and without the v3 loop guard, so v2
 * histories replay with the decisions they recorded.
 */
import { type DecisionContext, type ObservedCertificate, renewalTime, windowTime } from '../policy';
import {
  Expired,
  firstTrigger,
  Manual,
  Missing,
  NearingRenewal,
  PolicyChanged,
  type Trigger,
} from '../lifecycle/triggers';

const V2_RULES = [Missing, Expired, PolicyChanged, NearingRenewal, Manual];

export function dueTrigger(
  c: ObservedCertificate,
  now: Date,
  ctx: DecisionContext = {},
): Trigger | undefined {
  const at = renewalTime(c, ctx);
  const byCa =
    at !== null && windowTime(ctx, c.notBefore ? Date.parse(c.notBefore) : undefined) === at.getTime();
  return firstTrigger(
    {
      cert: c,
      now,
      plan: at ? { at, basis: byCa ? 'ari' : 'policy' } : null,
      manual: ctx.manual ?? null,
      failures: 0,
      retryAt: null,
    },
    V2_RULES,
  );
}
