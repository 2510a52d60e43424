/**
 * Fleet discovery, one run per tick of a Temporal Schedule (worker/schedule.ts): for each configured vault, start
 * the lifecycles that are missing and retire those whose certificate was deleted from the vault.
 *
 * Retiring is guarded three times, because ending a lifecycle by mistake stops renewals:
 * 1. only after a listing that succeeded (a vault that cannot be listed retires nothing);
 * 2. only after the certificate was missing in `graceRuns` consecutive runs. The counts travel from run to run in
 *    the run's own result: a Schedule hands each run the last completed run's result (`workflowInfo().lastResult`),
 *    so no store, memo or search attribute is needed, and a run that fails leaves the counts as they were;
 * 3. only when the vault, asked for that one certificate, answers "not found" (retireLifecycles).
 */
import type { DriftWatchConfig } from './lifecycle/drift';
import { log, proxyActivities, setCurrentDetails, workflowInfo } from '@temporalio/workflow';
import type { FleetActivities, TagFilter, VaultListing } from '../activities/fleet';
import { describeFailure } from './failures';

export interface FleetInput {
  /** The vaults to scan (names configured on the workers). */
  vaults: string[];
  /** Glob on certificate ids, like "kv-prod/api-*". */
  pattern?: string;
  tag?: TagFilter;
  /** Issuer of the lifecycles this run starts. */
  issuer: string;
  /** Consecutive runs a certificate must be missing before its lifecycle is retired (default 2). */
  graceRuns?: number;
  /** The fleet's jitter default for the lifecycles this run starts (defaults.policy.jitterMinutes). */
  jitterMinutes?: number;
  /** The drift-watch schedule of the lifecycles this run starts (defaults.driftWatch); default daily. */
  driftWatch?: DriftWatchConfig;
}

export interface VaultReport {
  vault: string;
  /** Certificates in the vault (all of them) and those matching the filter. */
  listed: number;
  matching: number;
  started: string[];
  alreadyRunning: number;
  retired: string[];
  /** Lifecycles whose certificate is gone from the vault, with the consecutive runs it has been missing. */
  missing: Record<string, number>;
  errors: Array<{ step: string; type: string; message: string }>;
}

export interface FleetReport {
  vaults: VaultReport[];
}

const acts = (startToCloseTimeout: string) =>
  proxyActivities<FleetActivities>({
    startToCloseTimeout,
    heartbeatTimeout: '1 minute',
    retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 3 },
  });
const { listVaultCertificates, listLifecycles } = acts('10 minutes');
const { startLifecycles, retireLifecycles } = acts('30 minutes');

export async function fleetDiscovery(input: FleetInput): Promise<FleetReport> {
  const graceRuns = Math.max(1, Math.floor(input.graceRuns ?? 2));
  const previous = previousMarks(workflowInfo().lastResult);
  const report: FleetReport = { vaults: [] };
  const filter = [
    input.pattern && `pattern \`${input.pattern}\``,
    input.tag && `tag ${input.tag.name}=${input.tag.value}`,
  ]
    .filter(Boolean)
    .join(', ');
  const show = (state: string) =>
    setCurrentDetails(
      detailsMarkdown(report, `${state} · issuer \`${input.issuer}\`${filter ? ` · ${filter}` : ''}`),
    );

  for (const vault of input.vaults) {
    show(`scanning ${vault}`);
    report.vaults.push(await discoverVault(vault, input, graceRuns, previous.get(vault) ?? {}));
  }
  show('done');
  for (const v of report.vaults)
    log.info('fleet discovery', {
      vault: v.vault,
      matching: v.matching,
      started: v.started.length,
      retired: v.retired.length,
      missing: Object.keys(v.missing).length,
      errors: v.errors.length,
    });
  return report;
}

async function discoverVault(
  vault: string,
  input: FleetInput,
  graceRuns: number,
  previous: Record<string, number>,
): Promise<VaultReport> {
  const r: VaultReport = {
    vault,
    listed: 0,
    matching: 0,
    started: [],
    alreadyRunning: 0,
    retired: [],
    missing: previous, // carried unchanged unless this run can judge
    errors: [],
  };
  const attempt = async <T>(step: string, fn: () => Promise<T>): Promise<T | null> => {
    try {
      return await fn();
    } catch (err) {
      r.errors.push({ step, ...describeFailure(err) });
      return null;
    }
  };

  const listing: VaultListing | null = await attempt('list certificates', () =>
    listVaultCertificates.executeWithOptions({ summary: `list the certificates of ${vault}` }, [
      { vault, pattern: input.pattern, tag: input.tag },
    ]),
  );
  if (!listing) return r;
  r.listed = listing.present.length;
  r.matching = listing.matching.length;

  // without visibility every matching certificate is offered to startLifecycles, which is idempotent
  const running = await attempt('list lifecycles', () =>
    listLifecycles.executeWithOptions({ summary: `list the running lifecycles of ${vault}` }, [{ vault }]),
  );
  const runningSet = new Set(running ?? []);
  const toStart = listing.matching.filter((id) => !runningSet.has(id));
  r.alreadyRunning = listing.matching.length - toStart.length;
  if (toStart.length) {
    const s = await attempt('start lifecycles', () =>
      startLifecycles.executeWithOptions({ summary: `start ${toStart.length} lifecycle(s) in ${vault}` }, [
        {
          ids: toStart,
          issuer: input.issuer,
          jitterMinutes: input.jitterMinutes,
          ...(input.driftWatch ? { driftWatch: input.driftWatch } : {}),
        },
      ]),
    );
    if (s) {
      r.started = s.started;
      r.alreadyRunning += s.alreadyRunning.length;
      for (const f of s.failed) r.errors.push({ step: `start ${f.id}`, type: f.type, message: f.message });
    }
  }
  if (!running) return r;

  const present = new Set(listing.present);
  const gone = running.filter((id) => !present.has(id));
  r.missing = Object.fromEntries(gone.map((id) => [id, (previous[id] ?? 0) + 1]));
  const due = gone.filter((id) => (r.missing[id] ?? 0) >= graceRuns);
  if (!due.length) return r;
  const reason = `deleted from vault ${vault} (missing in ${graceRuns} consecutive discovery runs)`;
  const out = await attempt('retire lifecycles', () =>
    retireLifecycles.executeWithOptions({ summary: `retire ${due.length} lifecycle(s) in ${vault}` }, [
      { ids: due, reason },
    ]),
  );
  if (!out) return r;
  r.retired = out.retired;
  // settled either way: retired, already ended, or the vault still has it after all (counting starts over)
  for (const id of [...out.retired, ...out.notRunning, ...out.stillPresent]) delete r.missing[id];
  for (const f of out.failed) r.errors.push({ step: `retire ${f.id}`, type: f.type, message: f.message });
  return r;
}

/** The missing-counts of the last completed run, per vault; anything unexpected (older code) counts as none. */
function previousMarks(last: unknown): Map<string, Record<string, number>> {
  const marks = new Map<string, Record<string, number>>();
  const vaults = (last as Partial<FleetReport> | undefined)?.vaults;
  if (!Array.isArray(vaults)) return marks;
  for (const v of vaults as Array<Partial<VaultReport>>) {
    if (typeof v?.vault !== 'string' || typeof v.missing !== 'object' || v.missing === null) continue;
    const counts = Object.entries(v.missing).filter(
      (e): e is [string, number] => Number.isInteger(e[1]) && e[1] > 0,
    );
    marks.set(v.vault, Object.fromEntries(counts));
  }
  return marks;
}

function detailsMarkdown(report: FleetReport, state: string): string {
  const rows = report.vaults.map((v) => {
    const missing = Object.keys(v.missing);
    return (
      `| ${v.vault} | ${v.listed} | ${v.matching} | ${v.started.length} | ${v.alreadyRunning} | ` +
      `${v.retired.join(', ') || '-'} | ${missing.join(', ') || '-'} | ` +
      `${v.errors.map((e) => `${e.step}: ${e.type}`).join('; ') || '-'} |`
    );
  });
  return [
    `**Fleet discovery**: ${state}`,
    '',
    '| vault | listed | matching | started | running | retired | missing | errors |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}
