/**
 * The `discovery` section of the configuration: fleet discovery on a Temporal Schedule (workflows/fleet.ts,
 * worker/schedule.ts). Kept apart from config-schema.ts, which plugs it in as `discovery: discoverySchema`.
 *
 *   "discovery": { "schedule": { "every": "15m" }, "vaults": ["kv-prod"], "pattern": "kv-prod/api-*",
 *                  "tag": { "name": "team", "value": "web" }, "issuer": "acme", "graceRuns": 2 }
 *
 * Opt-in by default: only certificates that carry the tag (`tag`, else `Certflow=enroll`) are discovered, so that
 * write access to a watched vault is not enough to have Certflow issue for it. `requireTag: false` (and no tag)
 * discovers every enabled certificate of the vaults, as before.
 */
import { z } from 'zod';
import type { FleetInput } from '../workflows/fleet';
import type { DiscoveryTiming } from './schedule';

/** The tag a certificate must carry to be discovered when `tag` is not set. */
export const DEFAULT_DISCOVERY_TAG = { name: 'Certflow', value: 'enroll' } as const;

const EVERY = /^(\d{1,6})(s|m|h|d)$/;
const SECONDS = { s: 1, m: 60, h: 3600, d: 86_400 } as const;
const EVERY_TEXT = 'an interval like "15m", "1h" or "1d" (at least 1m)';
const CRON_TEXT = 'a cron expression like "*/15 * * * *" (5 fields) or "@hourly"';
const CRON =
  /^(@(yearly|annually|monthly|weekly|daily|hourly)|@every \d+[smhd]|[\d*?/,\-A-Za-z#]+( +[\d*?/,\-A-Za-z#]+){4,6})$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9-]{0,62}$/;

const message = (what: string) => (iss: { input?: unknown }) =>
  iss.input === undefined ? `missing: expected ${what}` : `expected ${what}`;
const nameOf = (what: string) =>
  z.string({ error: message(what) }).regex(NAME, { error: `expected ${what}: letters, digits and dashes` });

const every = z.string({ error: message(EVERY_TEXT) }).refine(
  (v) => {
    const m = EVERY.exec(v);
    return !!m && Number(m[1]) * SECONDS[m[2] as keyof typeof SECONDS] >= 60;
  },
  { error: `expected ${EVERY_TEXT}` },
);

export const discoverySchema = z
  .strictObject({
    schedule: z
      .union(
        [
          z.strictObject({ every }),
          z.strictObject({
            cron: z.string({ error: message(CRON_TEXT) }).regex(CRON, { error: `expected ${CRON_TEXT}` }),
          }),
        ],
        { error: message(`{ "every": ${EVERY_TEXT} } or { "cron": ${CRON_TEXT} }`) },
      )
      .default({ every: '15m' }),
    /** Default: every configured vault. */
    vaults: z
      .array(nameOf('a configured vault name'), { error: message('a list of vault names') })
      .min(1, { error: 'expected at least one vault name (or leave vaults out for all of them)' })
      .optional(),
    pattern: z
      .string({ error: message('a glob on certificate ids like "kv-prod/api-*"') })
      .regex(/^[^/\s]+\/[^/\s]+$/, {
        error: 'expected a glob on certificate ids "<vault>/<name>", like "kv-prod/api-*" or "*/api-*"',
      })
      .optional(),
    tag: z
      .strictObject({
        name: z.string({ error: message('a tag name') }).min(1, { error: 'expected a tag name' }),
        value: z.string({ error: message('a tag value') }),
      })
      .optional(),
    /** Default true: without `tag`, only certificates tagged Certflow=enroll are discovered. */
    requireTag: z
      .boolean({ error: message('true or false (discover only tagged certificates)') })
      .default(true),
    /** Default: defaults.issuer. */
    issuer: nameOf('a configured issuer name').optional(),
    graceRuns: z
      .number({ error: message('a whole number 1-100') })
      .int({ error: 'expected a whole number 1-100' })
      .min(1, { error: 'expected at least 1 run' })
      .max(100, { error: 'expected at most 100 runs' })
      .default(2),
  })
  .refine((d) => d.requireTag || d.tag === undefined, {
    path: ['requireTag'],
    error:
      'expected no tag with requireTag: false (a tag always limits discovery to the certificates carrying it)',
  })
  .optional();

export type DiscoveryConfig = NonNullable<z.infer<typeof discoverySchema>>;

/** Names the configuration knows, for the cross-checks the schema cannot make. */
export interface DiscoveryContext {
  vaults: ReadonlySet<string>;
  issuers: ReadonlySet<string>;
  defaultIssuer?: string;
}

/** Problems as `{ path, message }`, like config.ts's ConfigIssue. */
export function discoveryIssues(d: DiscoveryConfig | undefined, known: DiscoveryContext) {
  const issues: Array<{ path: string; message: string }> = [];
  if (!d) return issues;
  const list = (set: ReadonlySet<string>) => [...set].map((n) => `"${n}"`).join(', ') || 'none';
  d.vaults?.forEach((v, i) => {
    if (!known.vaults.has(v))
      issues.push({
        path: `discovery.vaults[${i}]`,
        message: `expected a configured vault (known: ${list(known.vaults)})`,
      });
  });
  if (!d.vaults && known.vaults.size === 0)
    issues.push({ path: 'discovery.vaults', message: 'expected a vault to scan: configure a vault' });
  if (d.issuer !== undefined && !known.issuers.has(d.issuer))
    issues.push({
      path: 'discovery.issuer',
      message: `expected a configured issuer (known: ${list(known.issuers)})`,
    });
  if (d.issuer === undefined && known.defaultIssuer === undefined)
    issues.push({
      path: 'discovery.issuer',
      message: 'missing: expected a configured issuer name (or set defaults.issuer)',
    });
  return issues;
}

/** The tag a discovered certificate must carry (the opt-in), or undefined when discovery takes every certificate. */
export function discoveryTag(d: DiscoveryConfig): { name: string; value: string } | undefined {
  return d.tag ?? (d.requireTag ? { ...DEFAULT_DISCOVERY_TAG } : undefined);
}

/** What ensureDiscoverySchedule needs, with the defaults filled in (run discoveryIssues first). */
export function discoveryPlan(
  d: DiscoveryConfig,
  known: Pick<DiscoveryContext, 'vaults' | 'defaultIssuer'> & {
    jitterMinutes?: number;
    driftWatch?: FleetInput['driftWatch'];
  },
): { timing: DiscoveryTiming; input: FleetInput } {
  const issuer = d.issuer ?? known.defaultIssuer;
  if (!issuer)
    throw new Error('discovery.issuer: missing: expected a configured issuer name (or set defaults.issuer)');
  const timing: DiscoveryTiming =
    'cron' in d.schedule ? { cron: d.schedule.cron } : { every: d.schedule.every };
  return {
    timing,
    input: {
      vaults: d.vaults ?? [...known.vaults],
      issuer,
      graceRuns: d.graceRuns,
      ...(d.pattern !== undefined ? { pattern: d.pattern } : {}),
      ...(discoveryTag(d) ? { tag: discoveryTag(d) } : {}),
      ...(known.jitterMinutes !== undefined ? { jitterMinutes: known.jitterMinutes } : {}),
      ...(known.driftWatch ? { driftWatch: known.driftWatch } : {}),
    },
  };
}
