/**
 * An emergency re-issue wave (workflow id `wave:<name>`): every certificate of a selection re-issued with a new
 * key, at a bounded rate, and reported.
 *
 *   select (visibility + the vaults' tags) → for each certificate, soonest expiry first, paced per vault at its
 *   key-create rate and at most `concurrency` under way: inspect (already re-issued since the wave began? skip)
 *   → renew through its lifecycle (forced, a request id per wave and certificate, so a retry or a re-run never
 *   renews twice) → check the key is new → revoke the old certificate where asked and the issuer can → report.
 *
 * Pause, resume and cancel are signals; progress and the report are queries, and the current details and the
 * WaveState / WaveRemaining search attributes show progress in the Web UI. Long waves continue as new between
 * certificates, carrying the entries. The lifecycles still do the renewing: the wave only asks them.
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { WaveActivities } from '../activities/wave';
import { describeFailure } from './failures';
import {
  DEFAULT_CONCURRENCY,
  fitEntries,
  MAX_CONCURRENCY,
  newPacer,
  nextStart,
  paced,
  progressBar,
  progressLine,
  progressOf,
  refunded,
  selectionProblem,
} from './wave-plan';
import {
  WAVE_REASONS,
  WAVE_SA,
  type WaveCarried,
  type WaveEntry,
  type WaveInput,
  type WaveReport,
  type WaveState,
  waveCancelSignal,
  wavePauseSignal,
  waveProgressQuery,
  waveReportQuery,
  waveResumeSignal,
} from './wave-messages';

const { selectWave } = proxyActivities<WaveActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 5 },
});
const { inspectForWave } = proxyActivities<WaveActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 5 },
});
/** A renewal may wait hours for its vault's and issuer's queues in a large wave; the request id makes retries safe. */
const { renewForWave } = proxyActivities<WaveActivities>({
  startToCloseTimeout: '12 hours',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '10s', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 5 },
});

/**
 * Since release 3.2 the entries a run carries into the next one and into its report are fitted to Temporal's
 * payload limit (wave-plan.ts fitEntries: long messages and notes cut when all would not fit).
 */
export const WAVE_FIT_ENTRIES = 'wave-fit-entries';

/** Search attributes are written at most this often (one history event each), and on every change of state. */
const SA_EVERY = 0.05;

export async function reissueWave(input: WaveInput): Promise<WaveReport> {
  const problem =
    (!WAVE_REASONS.includes(input.reason) && `reason: expected one of ${WAVE_REASONS.join(', ')}`) ||
    selectionProblem(input.selection) ||
    (input.concurrency !== undefined &&
      !(
        Number.isInteger(input.concurrency) &&
        input.concurrency >= 1 &&
        input.concurrency <= MAX_CONCURRENCY
      ) &&
      `concurrency: expected a whole number 1-${MAX_CONCURRENCY}`) ||
    (input.since !== undefined &&
      Number.isNaN(Date.parse(input.since)) &&
      'since: expected an ISO 8601 time') ||
    (input.ratePerSecond !== undefined &&
      !(input.ratePerSecond > 0) &&
      'rate: expected a number of certificates per second > 0');
  // an Error would fail the workflow task and be retried forever: fail the wave, naming the field
  if (problem) throw ApplicationFailure.nonRetryable(problem, 'InvalidWave');
  const waveId = workflowInfo().workflowId;
  const concurrency = input.concurrency ?? DEFAULT_CONCURRENCY;
  const c: WaveCarried = input.carried ?? {
    startedAt: new Date(workflowInfo().runStartTime).toISOString(),
    entries: [],
    vaultRates: {},
    paused: null,
    cancelled: false,
    pausedMs: 0,
  };
  let state: WaveState = input.carried ? 'Running' : 'Selecting';
  let wakes = 0;
  let finishedAt: string | null = null;

  const stateNow = (): WaveState =>
    state === 'Selecting' || state === 'Done' || state === 'Cancelled'
      ? state
      : c.cancelled
        ? 'Cancelling'
        : c.paused
          ? 'Paused'
          : 'Running';
  const progress = () => progressOf(waveId, input.reason, stateNow(), c, Date.now());

  // `since`: what this wave skips from (a re-run of its name, split otherwise or not, starts from the earliest)
  setHandler(waveProgressQuery, () => ({ ...progress(), since: input.since ?? c.startedAt }));
  // a query's answer is a payload too: fitted as the report is (a query changes no history, so no patch)
  setHandler(waveReportQuery, () => ({ ...progress(), finishedAt, entries: fitEntries(c.entries) }));
  setHandler(wavePauseSignal, ({ reason, by }) => {
    if (c.paused || c.cancelled) return;
    c.paused = {
      reason: String(reason ?? 'paused').slice(0, 500),
      ...(by ? { by } : {}),
      since: new Date().toISOString(),
    };
    wakes++;
  });
  setHandler(waveResumeSignal, () => {
    if (!c.paused) return;
    c.pausedMs += Math.max(0, Date.now() - Date.parse(c.paused.since));
    c.paused = null;
    wakes++;
  });
  setHandler(waveCancelSignal, () => {
    if (c.cancelled) return;
    c.cancelled = true;
    if (c.paused) {
      c.pausedMs += Math.max(0, Date.now() - Date.parse(c.paused.since));
      c.paused = null;
    }
    wakes++;
  });

  const useSA = input.searchAttributes !== false;
  let shownState: WaveState | null = null;
  let shownRemaining = -1;
  const show = () => {
    const p = progress();
    const remaining = p.pending + p.running;
    setCurrentDetails(detailsMarkdown(p, input, c.entries));
    if (!useSA) return;
    const step = Math.max(1, Math.floor(p.total * SA_EVERY));
    if (p.state === shownState && shownRemaining - remaining < step && remaining !== 0) return;
    upsertSearchAttributes([
      { key: WAVE_SA.state, value: p.state },
      { key: WAVE_SA.remaining, value: remaining },
    ]);
    shownState = p.state;
    shownRemaining = remaining;
  };

  if (!input.carried) {
    show();
    const selected = await selectWave.executeWithOptions(
      { summary: `select the certificates to re-issue (${describeSelection(input)})` },
      [{ selection: input.selection, now: c.startedAt }],
    );
    c.entries = selected.entries;
    c.vaultRates = selected.vaultRates;
    state = 'Running';
    log.info('re-issue wave selected', { waveId, certificates: c.entries.length, reason: input.reason });
  }

  // entries left "running" by a previous run were finished before it continued as new (it drains first)
  let pacer = newPacer();
  let running = 0;
  let draining = false;

  const runEntry = async (e: WaveEntry): Promise<void> => {
    e.status = 'running';
    try {
      const seen = await inspectForWave.executeWithOptions(
        { summary: `is ${e.id} already re-issued since ${input.since ?? c.startedAt}?` },
        [{ certificateId: e.id, since: input.since ?? c.startedAt, revokeOld: !!input.revokeOld }],
      );
      e.oldThumbprint = seen.thumbprint;
      if (seen.skip) {
        Object.assign(e, { status: 'skipped', note: seen.skip, newThumbprint: seen.thumbprint });
        pacer = refunded(pacer, e.vault, c.vaultRates, Date.now()); // no key made: its slot goes to the next
        return;
      }
      const r = await renewForWave.executeWithOptions(
        { summary: `re-issue ${e.id} with a new key (${input.reason})` },
        [
          {
            waveId,
            certificateId: e.id,
            reason: input.reason,
            ...(input.note ? { note: input.note } : {}),
            ignoreWindows: !!input.ignoreWindows,
            ...(input.requestedBy ? { requestedBy: input.requestedBy } : {}),
            oldKeyId: seen.keyId,
            issuer: e.issuer,
            ...(input.revokeOld && seen.certificatePem ? { revokeOldPem: seen.certificatePem } : {}),
          },
        ],
      );
      Object.assign(e, r);
    } catch (err) {
      e.status = 'failed';
      e.error = describeFailure(err);
    } finally {
      e.finishedAt = new Date().toISOString();
      running--;
      wakes++;
    }
  };

  for (;;) {
    show();
    if (c.cancelled) for (const e of c.entries) if (e.status === 'pending') e.status = 'cancelled';
    if (!draining && workflowInfo().continueAsNewSuggested) draining = true;
    if (running === 0 && !c.entries.some((e) => e.status === 'pending')) break;
    if (draining && running === 0) {
      await condition(allHandlersFinished);
      if (patched(WAVE_FIT_ENTRIES)) c.entries = fitEntries(c.entries);
      await continueAsNew<typeof reissueWave>({ ...input, carried: c });
    }
    const seenWakes = wakes;
    if (c.paused || draining) {
      await condition(() => wakes !== seenWakes);
      continue;
    }
    const now = Date.now();
    const next = nextStart(c.entries, pacer, c.vaultRates, {
      now,
      running,
      concurrency,
      ratePerSecond: input.ratePerSecond,
    });
    if ('start' in next) {
      const e = c.entries[next.start]!;
      pacer = paced(pacer, e.vault, c.vaultRates, now, input.ratePerSecond);
      running++;
      void runEntry(e);
      continue;
    }
    if ('waitMs' in next) await condition(() => wakes !== seenWakes, next.waitMs);
    else await condition(() => wakes !== seenWakes);
  }

  state = c.cancelled ? 'Cancelled' : 'Done';
  finishedAt = new Date().toISOString();
  if (patched(WAVE_FIT_ENTRIES)) c.entries = fitEntries(c.entries);
  show();
  const report: WaveReport = { ...progress(), finishedAt, entries: c.entries };
  log.info('re-issue wave finished', {
    waveId,
    state,
    reissued: report.reissued,
    skipped: report.skipped,
    failed: report.failed,
    cancelled: report.cancelled,
  });
  await condition(allHandlersFinished);
  return report;
}

function describeSelection(input: WaveInput): string {
  const s = input.selection;
  if (s.all) return 'all';
  return [
    s.issuer && `issuer ${s.issuer}`,
    s.vault && `vault ${s.vault}`,
    s.tag && `tag ${s.tag.name}=${s.tag.value}`,
    s.expiringWithinSeconds !== undefined &&
      `expiring within ${Math.round(s.expiringWithinSeconds / 3600)} h`,
  ]
    .filter(Boolean)
    .join(', ');
}

function detailsMarkdown(p: ReturnType<typeof progressOf>, input: WaveInput, entries: WaveEntry[]): string {
  const failed = entries.filter((e) => e.status === 'failed').slice(0, 10);
  return [
    `**Emergency re-issue** (${input.reason}${input.note ? `: ${input.note}` : ''}) · ${describeSelection(input)}`,
    '',
    `\`${progressBar(p)}\` ${progressLine(p)}`,
    p.paused ? `\nPaused since ${p.paused.since}: ${p.paused.reason}` : '',
    `\nOptions: new key always${input.revokeOld ? ', revoke old' : ''}${input.ignoreWindows ? ', ignoring change windows' : ''}` +
      ` · vault rates ${
        Object.entries(p.vaultRates)
          .map(([v, r]) => `${v} ${r ?? '∞'}/s`)
          .join(', ') || '-'
      }`,
    ...(failed.length
      ? ['', '| failed | error |', '|---|---|', ...failed.map((e) => `| ${e.id} | ${e.error?.type ?? '?'} |`)]
      : []),
  ].join('\n');
}

/** A part of a split selection: the wave itself, under the type only part-aware workers register (wave-messages.ts). */
export const reissueWavePart = reissueWave;
