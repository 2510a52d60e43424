/**
 * The `changeControl` block of the configuration (zod 4): change windows, freezes, the deadline before expiry,
 * approval rules and staged rollouts (workflows/lifecycle/change-control.ts applies them). Every lifecycle the
 * worker starts carries it; each picks the rules that select it (by id, id pattern or tag) and its targets.
 */
import { z } from 'zod';
import { MAX_WINDOW_MINUTES, parseCron, timeZoneProblem } from '../workflows/lifecycle/windows';

const expect = (what: string) => (iss: { input?: unknown }) =>
  iss.input === undefined ? `missing: expected ${what}` : `expected ${what}`;
const text = (what: string) => z.string({ error: expect(what) }).min(1, { error: `expected ${what}` });
const hours = (what: string, max: number) =>
  z
    .number({ error: expect(`${what} in hours (a number > 0)`) })
    .positive({ error: `expected ${what} in hours > 0` })
    .max(max, { error: `expected ${what} of at most ${max} hours` });

/** Which certificates a rule is for: all when absent; ids or a pattern, a tag alone or to narrow them. */
const certificates = z
  .strictObject({
    ids: z.array(text('a certificate id "<vault>/<name>"')).optional(),
    pattern: text('a glob on certificate ids, like "kv-prod/*"').optional(),
    tag: z
      .strictObject({ name: text('a tag name'), value: z.string({ error: expect('a tag value') }) })
      .optional(),
  })
  .optional();
const targets = z.array(text('a binding name (or a glob of binding names)')).min(1).optional();

const cron = z.string({ error: expect('a 5-field cron expression like "0 22 * * 1-4"') }).check((ctx) => {
  try {
    parseCron(ctx.value);
  } catch (err) {
    ctx.issues.push({ code: 'custom', message: (err as Error).message, input: ctx.value });
  }
});
const timeZone = z.string({ error: expect('an IANA time zone like Europe/Berlin') }).check((ctx) => {
  const problem = timeZoneProblem(ctx.value);
  if (problem) ctx.issues.push({ code: 'custom', message: problem, input: ctx.value });
});
const instant = (what: string) =>
  z
    .string({ error: expect(`${what} (ISO 8601 with an offset, like 2026-12-20T00:00:00Z)`) })
    .regex(/(Z|[+-]\d\d:\d\d)$/i, {
      error: `expected ${what} with an offset or Z, like 2026-12-20T00:00:00Z`,
    })
    .refine((v) => !Number.isNaN(Date.parse(v)), { error: `expected ${what} as an ISO 8601 instant` });

const window = z.strictObject({
  name: text('a window name'),
  cron,
  timeZone: timeZone.optional(),
  durationMinutes: z
    .number({ error: expect(`durationMinutes (a whole number 1-${MAX_WINDOW_MINUTES})`) })
    .int({ error: 'expected durationMinutes as a whole number' })
    .min(1, { error: 'expected durationMinutes of at least 1' })
    .max(MAX_WINDOW_MINUTES, { error: `expected durationMinutes of at most ${MAX_WINDOW_MINUTES} (a week)` }),
  certificates,
  targets,
});

const freeze = z
  .strictObject({
    name: text('a freeze name'),
    start: instant('start'),
    end: instant('end'),
    reason: z.string().max(500).optional(),
    certificates,
    targets,
  })
  .refine((f) => Date.parse(f.end) > Date.parse(f.start), {
    path: ['end'],
    error: 'expected end after start',
  });

const approval = z.strictObject({
  name: text('an approval rule name'),
  certificates,
  /** What waits for approval: re-binding the new version (default) or issuing it. */
  before: z.enum(['rebind', 'issue'], { error: expect('"rebind" or "issue"') }).optional(),
  /** Who may decide (the identity the client states: `certflow approve --as`, else the OS user). */
  approvers: z.array(text('an approver name')).min(1).optional(),
  reminderHours: hours('reminderHours', 24 * 30).optional(),
  timeoutHours: hours('timeoutHours', 24 * 90).optional(),
});

const rollout = z.strictObject({
  name: text('a rollout name'),
  certificates,
  /** Ordered stages of binding names or globs: the first is the canary; bindings no stage names go last. */
  stages: z
    .array(
      z
        .array(text('a binding name (or a glob)'))
        .min(1, { error: 'expected at least one binding per stage' }),
      {
        error: expect('a list of stages, each a list of binding names, like [["canary-nginx"], ["web-*"]]'),
      },
    )
    .min(1, { error: 'expected at least one stage' }),
});

export const changeControlSchema = z
  .strictObject({
    /** Hours before the served certificate's expiry after which re-binding ignores windows and freezes. */
    deadlineHours: hours('deadlineHours', 24 * 60).optional(),
    windows: z.array(window, { error: expect('a list of change windows') }).optional(),
    freezes: z.array(freeze, { error: expect('a list of freezes') }).optional(),
    approval: z.array(approval, { error: expect('a list of approval rules') }).optional(),
    rollout: z.array(rollout, { error: expect('a list of staged rollouts') }).optional(),
  })
  .optional();

export type ChangeControlConfig = z.infer<typeof changeControlSchema>;
