/** `certflow policy <id>`: override the renewal policy (validated here with the workflow's own rules). */
import { type PolicyOverride, setPolicyUpdate } from '../../workflows/messages';
import { MAX_JITTER_MINUTES, MIN_LIFETIME_PERCENTAGE, validatePolicyOverride } from '../../workflows/policy';
import { policyText } from '../../workflows/lifecycle/view';
import { EXIT, parseWholeNumber, usageError } from '../args';
import { type CommandImpl, JSON_OPTION } from '../context';
import { when } from '../format';
import { lifecycleHandle, singleId } from './common';

/** Override fields and the flags that set them, so the workflow's messages can name the flag. */
const FLAGS: Record<keyof PolicyOverride, string> = {
  lifetimePercentage: '--percent',
  daysBeforeExpiry: '--days',
  jitterMinutes: '--jitter-minutes',
  clear: '--clear',
};

export const policy: CommandImpl = {
  options: {
    percent: {
      type: 'string',
      value: 'N',
      description: `renew at N % of the lifetime (${MIN_LIFETIME_PERCENTAGE}-99)`,
    },
    days: { type: 'string', value: 'N', description: 'renew N days before expiry (1-3650)' },
    'jitter-minutes': {
      type: 'string',
      value: 'N',
      description: `renew up to N minutes earlier, spread per certificate (0-${MAX_JITTER_MINUTES})`,
    },
    clear: { type: 'boolean', description: "drop the override: the vault's lifetime action applies again" },
    ...JSON_OPTION,
  },
  notes: `examples:
  certflow policy kv-prod/api-cert --days 30
  certflow policy kv-prod/api-cert --percent 70 --jitter-minutes 60
  certflow policy kv-prod/api-cert --clear`,
  async run(ctx, positionals) {
    const id = singleId(ctx, positionals);
    const override = overrideFromOptions(ctx.options);
    const st = await (await lifecycleHandle(ctx, id)).executeUpdate(setPolicyUpdate, { args: [override] });
    if (ctx.json) ctx.printJson(st);
    else
      ctx.print(
        `policy of ${id}: ${policyText(st.policy)}\n` +
          `  next renewal: ${when(st.nextRenewalAt, ctx.now())} (${st.nextRenewalReason ?? '-'})`,
      );
    return EXIT.ok;
  },
};

export function overrideFromOptions(o: {
  string(n: string): string | undefined;
  flag(n: string): boolean;
  has(n: string): boolean;
}): PolicyOverride {
  const p: PolicyOverride = {};
  if (o.has('percent'))
    p.lifetimePercentage = parseWholeNumber(o.string('percent'), '--percent', MIN_LIFETIME_PERCENTAGE, 99);
  if (o.has('days')) p.daysBeforeExpiry = parseWholeNumber(o.string('days'), '--days', 1, 3650);
  if (o.has('jitter-minutes'))
    p.jitterMinutes = parseWholeNumber(o.string('jitter-minutes'), '--jitter-minutes', 0, MAX_JITTER_MINUTES);
  if (o.flag('clear')) p.clear = true;
  const problem = validatePolicyOverride(p);
  if (problem) {
    // the workflow's message names override fields: speak in flags instead
    let text = problem;
    for (const [field, flag] of Object.entries(FLAGS)) text = text.replaceAll(field, flag);
    if (text.startsWith('policy: ')) text = `policy: expected --percent, --days, --jitter-minutes or --clear`;
    throw usageError(text);
  }
  return p;
}
