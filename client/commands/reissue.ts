/**
 * `certflow reissue`: an emergency re-issue wave (workflows/wave.ts) over a selection, followed live until it
 * ends with its report; and `certflow reissue status|pause|resume|cancel|report <name>` for a wave that runs.
 * The wave runs in Temporal: Ctrl-C stops following, never the wave.
 */
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
} from '@temporalio/client';
import { DEFAULT_TASK_QUEUE, listLifecycles } from '../../activities/lifecycles';
import {
  MAX_CONCURRENCY,
  MAX_PARTS,
  combinedProgress,
  partOfId,
  partsNeeded,
  progressBar,
  progressLine,
  type ProgressCounts,
  selectCandidates,
  waveSizeProblem,
  selectionProblem,
} from '../../workflows/wave-plan';
import {
  WAVE_REASONS,
  WAVE_PART_WORKFLOW_TYPE,
  WAVE_WORKFLOW_TYPE,
  type WaveInput,
  type WaveProgress,
  type WaveReason,
  type WaveReport,
  type WaveSelection,
  waveCancelSignal,
  wavePauseSignal,
  waveProgressQuery,
  waveReportQuery,
  waveResumeSignal,
  waveWorkflowId,
} from '../../workflows/wave-messages';
import { CliError, EXIT, parseDuration, parseTag, parseWholeNumber, usageError } from '../args';
import { type CommandContext, type CommandImpl, JSON_OPTION, NotFoundError } from '../context';
import { csv, dash, table } from '../format';
import { WAVE_NAME, earliestSince, partName, splitsIn, stillRunning, wavesOfName } from '../wave-family';

const VERBS = ['status', 'pause', 'resume', 'cancel', 'report'] as const;
type Verb = (typeof VERBS)[number];

export const reissue: CommandImpl = {
  options: {
    reason: {
      type: 'string',
      value: 'REASON',
      description: `why: ${WAVE_REASONS.join(' | ')} (required to start; pause: the pause's reason)`,
    },
    note: { type: 'string', value: 'TEXT', description: 'free text for history, mail and the report' },
    all: { type: 'boolean', description: 'every enrolled certificate (no filter)' },
    issuer: {
      type: 'string',
      value: 'NAME',
      description: "only certificates of this issuer (e.g. the distrusted CA's)",
    },
    vault: { type: 'string', value: 'NAME', description: 'only certificates of this vault' },
    tag: {
      type: 'string',
      value: 'KEY=VALUE',
      description: 'only certificates with this vault tag (needs --config)',
    },
    'expiring-within': {
      type: 'string',
      value: 'DURATION',
      description: 'only those expiring within, e.g. 30d',
    },
    'new-key': {
      type: 'boolean',
      description: 'a new key for every certificate (always: a wave never reuses a key)',
    },
    'revoke-old': {
      type: 'boolean',
      description:
        'revoke each old certificate at its CA once replaced (ACME; command issuers with a revoke verb)',
    },
    'ignore-windows': { type: 'boolean', description: 're-bind at once, outside change windows' },
    concurrency: {
      type: 'string',
      value: 'N',
      description: `certificates under way at once (default 20, 1-${MAX_CONCURRENCY}; each part's own with --parts)`,
    },
    rate: {
      type: 'string',
      value: 'N',
      description:
        "starts per second across all vaults (each part's own with --parts; default: each vault's key-create rate bounds it)",
    },
    parts: {
      type: 'string',
      value: 'N',
      description: `split the selection into N waves, <name>-part-<k>-of-<N>, all at once (1-${MAX_PARTS}; for a selection larger than one wave carries)`,
    },
    name: {
      type: 'string',
      value: 'NAME',
      description:
        "the wave's name (default reissue-<reason>-<time>); re-running a name skips what it re-issued",
    },
    since: {
      type: 'string',
      value: 'TIME',
      description:
        'skip certificates re-issued since this time (ISO 8601; default: the earliest wave of this name, split or not, else now)',
    },
    'task-queue': {
      type: 'string',
      value: 'QUEUE',
      description: `the workers' task queue (default ${DEFAULT_TASK_QUEUE})`,
    },
    'dry-run': { type: 'boolean', description: 'list what the selection takes, start nothing' },
    'no-wait': {
      type: 'boolean',
      description: 'start (or ask) and return; follow with: certflow reissue status <wave>',
    },
    csv: { type: 'boolean', description: 'report: CSV' },
    config: {
      type: 'string',
      value: 'FILE',
      description: "the worker's configuration (vault access for --tag with --dry-run)",
    },
    ...JSON_OPTION,
  },
  notes: `Progress: a live bar on a terminal, plain lines otherwise (and with --json, whose report goes to stdout).
The report lists every certificate: re-issued (old and new thumbprints, key new, revoked), skipped (re-issued
since the wave began), failed (why), cancelled. Exit code 1 when any failed.
A wave carries about 3,200 certificates (2,000 at the longest names); split a larger selection with --parts N
(--dry-run names N): one wave per part, each certificate in exactly one part, all running at once (the vaults' key
creates and ACME orders keep their rates: the server enforces them per queue), followed as one progress line.
pause, resume and cancel <name> reach every part; status and report <name> answer for all its parts. Refused while waves of the name split another way still run.
examples:
  certflow reissue --reason ca-distrust --issuer old-ca --revoke-old
  certflow reissue --reason ca-distrust --all --parts 4 --name distrust-2026
  certflow reissue --reason key-compromise --vault kv-prod --tag team=payments --ignore-windows
  certflow reissue pause reissue-ca-distrust-20261202T1400 --reason "CA outage"`,
  async run(ctx, positionals) {
    const verb = positionals[0] as Verb | undefined;
    if (verb !== undefined) {
      if (!VERBS.includes(verb))
        throw usageError(
          `reissue: expected no argument (start a wave) or one of ${VERBS.join(', ')} <wave>, got ${JSON.stringify(verb)}`,
        );
      if (positionals.length !== 2) throw usageError(`reissue ${verb}: expected the wave's name`);
      return steer(ctx, verb, waveName(positionals[1]));
    }
    return start(ctx);
  },
};

function waveName(text: string | undefined): string {
  const name = (text ?? '').replace(/^wave:/, '');
  if (!WAVE_NAME.test(name))
    throw usageError(`wave: expected a name of letters, digits and ._- (got ${JSON.stringify(text)})`);
  return name;
}

/** The selection from the flags, checked by the same rule the workflow applies. */
function selectionOf(ctx: CommandContext): WaveSelection {
  const o = ctx.options;
  const tag = o.string('tag');
  const within = o.string('expiring-within');
  const sel: WaveSelection = {
    ...(o.flag('all') ? { all: true } : {}),
    ...(o.string('issuer') !== undefined ? { issuer: o.string('issuer')! } : {}),
    ...(o.string('vault') !== undefined ? { vault: o.string('vault')! } : {}),
    ...(tag !== undefined ? { tag: (([name, value]) => ({ name, value }))(parseTag(tag, '--tag')) } : {}),
    ...(within !== undefined
      ? { expiringWithinSeconds: parseDuration(within, '--expiring-within') / 1000 }
      : {}),
  };
  const problem = selectionProblem(sel);
  if (problem)
    throw usageError(
      problem.replace(/^(\w+):/, (_m, f: string) => `--${f === 'expiringWithin' ? 'expiring-within' : f}:`),
    );
  return sel;
}

async function start(ctx: CommandContext): Promise<number> {
  const o = ctx.options;
  const reason = o.string('reason') as WaveReason | undefined;
  if (!reason || !WAVE_REASONS.includes(reason))
    throw usageError(
      `--reason: required, one of ${WAVE_REASONS.join(', ')} (got ${JSON.stringify(reason ?? null)})`,
    );
  const selection = selectionOf(ctx);
  const note = o.string('note');
  if (note !== undefined && note.length > 300) throw usageError('--note: expected at most 300 characters');
  const concurrency = o.has('concurrency')
    ? parseWholeNumber(o.string('concurrency'), '--concurrency', 1, MAX_CONCURRENCY)
    : undefined;
  const rateText = o.string('rate');
  const rate = rateText === undefined ? undefined : Number(rateText);
  if (rate !== undefined && !(Number.isFinite(rate) && rate > 0 && rate <= 1000))
    throw usageError(
      `--rate: expected certificates per second, a number > 0 and at most 1000 (got ${JSON.stringify(rateText)})`,
    );
  const sinceText = o.string('since');
  if (sinceText !== undefined && Number.isNaN(Date.parse(sinceText)))
    throw usageError(
      `--since: expected an ISO 8601 time like 2026-12-02T09:00:00Z (got ${JSON.stringify(sinceText)})`,
    );
  const parts = o.has('parts') ? parseWholeNumber(o.string('parts'), '--parts', 1, MAX_PARTS) : 1;
  const stamp = ctx.now().toISOString().replace(/[-:]/g, '').slice(0, 13);
  const name = o.string('name') !== undefined ? waveName(o.string('name')) : `reissue-${reason}-${stamp}`;
  const names = partNames(name, parts);
  const client = await ctx.client();

  if (o.flag('dry-run')) return dryRun(ctx, name, selection, parts);

  const input: WaveInput = {
    reason,
    selection,
    ...(note ? { note } : {}),
    revokeOld: o.flag('revoke-old'),
    ignoreWindows: o.flag('ignore-windows'),
    ...(concurrency !== undefined ? { concurrency } : {}),
    ...(rate !== undefined ? { ratePerSecond: rate } : {}),
    requestedBy: ctx.env.USER ? `${ctx.env.USER} (cli)` : 'cli',
  };
  // waves of this name split another way must not run beside these: both would force a renewal of one certificate
  const runs = await wavesOfName(client, name);
  const others = await stillRunning(
    client,
    runs.filter((r) => r.running && !names.includes(r.wave)).map((r) => r.wave),
  );
  if (others.length)
    throw new CliError(
      `wave ${name}: ${others.length === 1 ? 'a wave' : 'waves'} of this name split another way still ${others.length === 1 ? 'runs' : 'run'}: ` +
        `${others.join(', ')}; beside ${parts > 1 ? `${parts} parts` : 'one wave'} ${others.length === 1 ? 'it' : 'they'} would re-issue certificates twice. ` +
        `Wait for ${others.length === 1 ? 'it' : 'them'} (certflow reissue status <wave>) or cancel, then run again`,
      EXIT.failed,
    );
  // a re-run of a name skips what any earlier wave of it re-issued, split or not: since = the earliest, unless told
  const since = sinceText ? new Date(sinceText).toISOString() : await earliestSince(client, runs);
  const started: Array<{ wave: string; workflowId: string; started: boolean }> = [];
  for (const [i, part] of names.entries()) {
    const partInput: WaveInput = {
      ...input,
      selection: parts > 1 ? { ...selection, part: { index: i + 1, of: parts } } : selection,
      ...(since ? { since } : {}),
    };
    let attached = false;
    try {
      await client.workflow.start(parts > 1 ? WAVE_PART_WORKFLOW_TYPE : WAVE_WORKFLOW_TYPE, {
        taskQueue: o.string('task-queue') ?? DEFAULT_TASK_QUEUE,
        workflowId: waveWorkflowId(part),
        args: [partInput],
        staticSummary: `Emergency re-issue ${part} (${reason})`,
        staticDetails: `Re-issues with new keys: ${JSON.stringify(partInput.selection)}${input.revokeOld ? ', revoking the old certificates' : ''}.`,
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      attached = true;
    }
    started.push({ wave: part, workflowId: waveWorkflowId(part), started: !attached });
    if (!ctx.json || ctx.tty)
      ctx.note(
        attached
          ? `wave ${part} is already running: following it (Ctrl-C stops following; the wave goes on)`
          : `wave ${part} started${since ? `, skipping certificates re-issued since ${since}` : ''} (Ctrl-C stops following; the wave goes on)`,
      );
  }
  if (o.flag('no-wait')) {
    if (ctx.json) ctx.printJson(parts > 1 ? { waves: started } : started[0]);
    return EXIT.ok;
  }
  if (parts === 1) return follow(ctx, name);
  // the parts run at once and are followed at once, as one; their reports come one after the other (with
  // --json, one document with all of them). A part that failed as a whole (e.g. refused as too large) does not
  // stop following the others: they go on
  return printParts(ctx, await followParts(ctx, name, names));
}

interface PartsOutcome {
  reports: WaveReport[];
  failed: Array<{ wave: string; error: string }>;
}

/** The parts' reports (with --json one document), the parts that failed as a whole named; exit 1 on any failure. */
function printParts(ctx: CommandContext, { reports, failed }: PartsOutcome): number {
  if (ctx.json) ctx.printJson({ waves: reports, ...(failed.length ? { failed } : {}) });
  else for (const r of reports) printReport(ctx, r);
  for (const f of failed) ctx.note(f.error);
  return failed.length || reports.some((r) => r.failed > 0) ? EXIT.failed : EXIT.ok;
}

/** The waves a selection split into `parts` runs as: the name itself when not split. */
function partNames(name: string, parts: number): string[] {
  if (parts === 1) return [name];
  const names = Array.from({ length: parts }, (_, i) => partName(name, i + 1, parts));
  if (!WAVE_NAME.test(names.at(-1)!))
    throw usageError(
      `--name: with --parts ${parts} at most ${100 - names.at(-1)!.length + name.length} characters (each part's wave is named ${names.at(-1)})`,
    );
  return names;
}

/** What the selection takes (and, split, which part each goes to), and whether each wave would take it. */
async function dryRun(
  ctx: CommandContext,
  name: string,
  selection: WaveSelection,
  parts: number,
): Promise<number> {
  const client = await ctx.client();
  const rows = await listLifecycles(client, selection.vault ? { vault: selection.vault } : {});
  let tagged: Set<string> | undefined;
  if (selection.tag) {
    const vaults = await ctx.vaults('--tag with --dry-run');
    tagged = new Set();
    for (const [vn, v] of vaults)
      for await (const c of v.list())
        if (c.tags[selection.tag.name] === selection.tag.value) tagged.add(`${vn}/${c.name}`);
  }
  const entries = selectCandidates(rows, selection, ctx.now(), tagged);
  const names = partNames(name, parts);
  const split = names.map((wave, i) => {
    const mine = parts === 1 ? entries : entries.filter((e) => partOfId(e.id, parts) === i + 1);
    return {
      wave,
      entries: mine,
      refused: waveSizeProblem(mine, parts > 1 ? { index: i + 1, of: parts } : undefined),
    };
  });
  // a split too coarse: name how many parts would do (the whole selection's count)
  const tooCoarse = parts > 1 && split.some((p) => p.refused);
  const enough = tooCoarse ? partsNeeded(entries) : undefined;
  const refusals = [
    ...split.flatMap((p) => (p.refused ? [p.refused] : [])),
    ...(tooCoarse
      ? [
          enough === undefined
            ? `even ${MAX_PARTS} parts would be too large: narrow the selection with --vault, --issuer, --tag or --expiring-within`
            : `--parts ${enough} would split it into waves that each fit`,
        ]
      : []),
  ];
  const partOf = new Map(split.flatMap((p) => p.entries.map((e) => [e.id, p.wave] as const)));
  if (ctx.json)
    ctx.printJson({
      wave: name,
      dryRun: true,
      selected: entries.map((e) => ({
        id: e.id,
        issuer: e.issuer,
        expiresAt: e.expiresAt,
        ...(parts > 1 ? { wave: partOf.get(e.id) } : {}),
      })),
      ...(parts > 1 ? { parts: split.map((p) => ({ wave: p.wave, count: p.entries.length })) } : {}),
      ...(refusals.length ? { refused: refusals.join('; ') } : {}),
    });
  else {
    ctx.print(
      table(
        ['CERTIFICATE', 'ISSUER', 'EXPIRES', ...(parts > 1 ? ['WAVE'] : [])],
        entries.map((e) => [
          e.id,
          dash(e.issuer),
          dash(e.expiresAt),
          ...(parts > 1 ? [partOf.get(e.id)!] : []),
        ]),
      ),
    );
    ctx.print(
      parts > 1
        ? `${entries.length} certificate(s) would be re-issued by ${parts} waves: ${split.map((p) => `${p.wave} ${p.entries.length}`).join(', ')} (nothing started: --dry-run)`
        : `${entries.length} certificate(s) would be re-issued by wave ${name} (nothing started: --dry-run)`,
    );
  }
  // the waves would refuse these selections when they start: say so now
  for (const r of refusals) ctx.note(r);
  return refusals.length ? EXIT.failed : EXIT.ok;
}

async function steer(ctx: CommandContext, verb: Verb, name: string): Promise<number> {
  const client = await ctx.client();
  const handle = client.workflow.getHandle(waveWorkflowId(name));
  const reason = ctx.options.string('reason')?.trim();
  if (verb === 'pause' && !reason) throw usageError('--reason: required for pause (say why)');
  const d = await handle.describe().catch((err: unknown) => {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  });
  if (!d) return steerSplit(ctx, verb, name, reason);
  const running = d.status.name === 'RUNNING';
  if (verb === 'report' || (verb === 'status' && !running)) {
    const report: WaveReport = running
      ? await handle.query(waveReportQuery)
      : await waveResult(name, handle.result() as Promise<WaveReport>);
    printReport(ctx, report);
    return report.failed > 0 ? EXIT.failed : EXIT.ok;
  }
  if (verb === 'status') {
    if (ctx.options.flag('no-wait')) {
      const p = await handle.query(waveProgressQuery);
      if (ctx.json) ctx.printJson(p);
      else ctx.print(waveLine(name, p));
      return EXIT.ok;
    }
    return follow(ctx, name);
  }
  if (!running) throw new NotFoundError(`wave ${name} is not running (${d.status.name.toLowerCase()})`);
  const p = await signalWave(ctx, verb, name, reason);
  if (ctx.json) ctx.printJson({ wave: name, asked: verb, progress: p });
  return EXIT.ok;
}

/**
 * A name that ran split (no wave of its own): pause, resume and cancel go to every part still running (an
 * outage must not need a command per part); status and report answer for its parts as one when it ran split one
 * way, and name the parts to ask when it ran split several ways.
 */
async function steerSplit(
  ctx: CommandContext,
  verb: Verb,
  name: string,
  reason: string | undefined,
): Promise<number> {
  const client = await ctx.client();
  const runs = await wavesOfName(client, name);
  const splits = splitsIn(name, runs);
  const running = await stillRunning(
    client,
    runs.filter((r) => r.running).map((r) => r.wave),
  );
  if (splits.length === 1 && (verb === 'status' || verb === 'report'))
    return splitStatus(ctx, verb, name, splits[0]!, running.length > 0);
  if (splits.length && running.length && (verb === 'pause' || verb === 'resume' || verb === 'cancel')) {
    const parts: Array<{ wave: string; progress: WaveProgress }> = [];
    for (const wave of running) parts.push({ wave, progress: await signalWave(ctx, verb, wave, reason) });
    if (ctx.json) ctx.printJson({ wave: name, asked: verb, parts });
    return EXIT.ok;
  }
  throw new NotFoundError(
    `no wave named ${name} (workflow ${waveWorkflowId(name)})` +
      splits
        .map((n) => `; it ran split in ${n} parts: ${partName(name, 1, n)} ... ${partName(name, n, n)}`)
        .join('') +
      (splits.length && !running.length && verb !== 'status' && verb !== 'report'
        ? '; none of its parts is running'
        : ''),
  );
}

/**
 * status and report of a name split in `parts`: followed as one while any part runs (status), or each part's
 * report (report, or status once all have ended); `status --no-wait`: each part's line and the parts as one.
 */
async function splitStatus(
  ctx: CommandContext,
  verb: 'status' | 'report',
  name: string,
  parts: number,
  anyRunning: boolean,
): Promise<number> {
  const names = partNames(name, parts);
  const noWait = ctx.options.flag('no-wait');
  if (verb === 'status' && anyRunning && !noWait) return printParts(ctx, await followParts(ctx, name, names));
  // like one wave's: the status of a name whose waves have all ended is their reports
  if (verb === 'status' && !noWait) verb = 'report';
  const client = await ctx.client();
  const now: Array<{ wave: string; progress: WaveReport | WaveProgress }> = [];
  const failed: PartsOutcome['failed'] = [];
  for (const wave of names) {
    const handle = client.workflow.getHandle(waveWorkflowId(wave));
    try {
      const running = (await handle.describe()).status.name === 'RUNNING';
      const progress = !running
        ? await waveResult(wave, handle.result() as Promise<WaveReport>)
        : verb === 'report'
          ? await handle.query(waveReportQuery)
          : await handle.query(waveProgressQuery);
      now.push({ wave, progress });
    } catch (err) {
      if (!(err instanceof CliError || err instanceof WorkflowNotFoundError)) throw err;
      failed.push({ wave, error: err instanceof CliError ? err.message : `wave ${wave} does not exist` });
    }
  }
  if (verb === 'report')
    return printParts(ctx, { reports: now.map((p) => p.progress as WaveReport), failed });
  const combined = combinedProgress(now.map((p) => p.progress));
  // progress only: an ended part's report (every entry) is `report`'s
  const progressOnly = now.map(({ wave, progress }) => {
    const { entries: _entries, finishedAt: _finishedAt, ...counts } = progress as WaveReport;
    return { wave, progress: counts };
  });
  if (ctx.json)
    ctx.printJson({ wave: name, parts: progressOnly, ...(failed.length ? { failed } : {}), combined });
  else {
    for (const p of now) ctx.print(waveLine(p.wave, p.progress));
    ctx.print(`${waveLine(name, combined)} · ${parts} parts`);
  }
  for (const f of failed) ctx.note(f.error);
  return failed.length ? EXIT.failed : EXIT.ok;
}

/** Sends pause, resume or cancel to one running wave; its progress after. */
async function signalWave(
  ctx: CommandContext,
  verb: Verb,
  name: string,
  reason: string | undefined,
): Promise<WaveProgress> {
  const handle = (await ctx.client()).workflow.getHandle(waveWorkflowId(name));
  const by = ctx.env.USER ?? 'cli';
  if (verb === 'pause') await handle.signal(wavePauseSignal, { reason: (reason ?? '').slice(0, 500), by });
  else if (verb === 'resume') await handle.signal(waveResumeSignal);
  else await handle.signal(waveCancelSignal, { by });
  const p = await handle.query(waveProgressQuery);
  if (!ctx.json) ctx.print(`${name}: ${verb} sent; ${progressLine(p)}`);
  return p;
}

/** Shows progress until the wave ends, then its report. A live bar on a terminal; plain lines otherwise. */
async function follow(ctx: CommandContext, name: string): Promise<number> {
  const report = await followed(ctx, name);
  printReport(ctx, report);
  return report.failed > 0 ? EXIT.failed : EXIT.ok;
}

/** Shows progress until the wave ends; its report. */
async function followed(ctx: CommandContext, name: string): Promise<WaveReport> {
  const [part] = await followWaves(ctx, name, [name]);
  return waveResult(name, part!.result);
}

/** Follows the parts of a split wave at once, shown as one: each part's report, and the parts that failed. */
async function followParts(ctx: CommandContext, base: string, names: string[]): Promise<PartsOutcome> {
  const reports: WaveReport[] = [];
  const failed: PartsOutcome['failed'] = [];
  for (const part of await followWaves(ctx, base, names))
    await waveResult(part.name, part.result).then(
      (r) => reports.push(r),
      (err: unknown) => {
        // one part lost track of (the connection failed while following) must not cost the others' reports
        const error =
          err instanceof CliError
            ? err.message
            : `wave ${part.name}: lost track of it while following (${(err as Error).message}); \`certflow reissue status ${part.name}\` asks again`;
        failed.push({ wave: part.name, error });
      },
    );
  return { reports, failed };
}

/** A wave's (or the parts') progress in one line: name, bar, counts. */
const waveLine = (name: string, p: ProgressCounts) => `${name} ${progressBar(p)} ${progressLine(p)}`;

/** Parts asked for their progress per tick: a wave split in 100 parts is not 100 queries a second. */
const QUERIES_PER_TICK = 10;

/**
 * Shows the progress of waves that run at once until every one has ended: one line (a single wave's, or the
 * parts' together, combinedProgress), redrawn on a terminal, else printed when it changed at most every 5 s;
 * each part's last line as it ends. Returns each wave's result (settled).
 */
async function followWaves(
  ctx: CommandContext,
  label: string,
  names: string[],
): Promise<Array<{ name: string; result: Promise<WaveReport> }>> {
  const client = await ctx.client();
  const live = ctx.tty && !ctx.json;
  const waves = names.map((name) => {
    const handle = client.workflow.getHandle(waveWorkflowId(name));
    const wave = {
      name,
      handle,
      result: handle.result() as Promise<WaveReport>,
      done: false,
      /** ended with a report (not failed as a whole) */
      ok: false,
      last: undefined as WaveProgress | undefined,
    };
    void wave.result.then(
      (report) => ((wave.last = report), (wave.ok = wave.done = true)),
      () => (wave.done = true),
    );
    return wave;
  });
  const split = names.length > 1;
  // a wave that failed as a whole counts no more: its last answer is stale (its failure is reported apart)
  const line = () => {
    const known = waves.flatMap((w) => (w.last && (w.ok || !w.done) ? [w.last] : []));
    if (!known.length) return null;
    const p = split ? combinedProgress(known) : known[0]!;
    const ended = waves.filter((w) => w.ok).length;
    const lost = waves.filter((w) => w.done && !w.ok).length;
    const silent = waves.filter((w) => !w.done && !w.last).length;
    const paused = waves.filter((w) => !w.done && w.last?.state === 'Paused').length;
    const parts = split
      ? ` · parts: ${ended} of ${waves.length} ended` +
        (paused ? `, ${paused} paused` : '') +
        (lost ? `, ${lost} failed` : '') +
        (silent ? `, ${silent} not answering yet` : '')
      : '';
    return `${waveLine(label, p)}${parts}`;
  };
  let lastLine = '';
  let lastPrinted = 0;
  let next = 0;
  const reported = new Set<string>();
  for (;;) {
    const open = waves.filter((w) => !w.done);
    // round-robin over the parts still running
    const asked =
      open.length <= QUERIES_PER_TICK
        ? open
        : Array.from({ length: QUERIES_PER_TICK }, (_, i) => open[(next + i) % open.length]!);
    next += asked.length;
    await Promise.all(
      asked.map(async (w) => {
        try {
          const p = await w.handle.query(waveProgressQuery);
          if (!w.done) w.last = p;
        } catch {
          // between runs (continue-as-new) or the worker busy: try again next tick
        }
      }),
    );
    // a part that ended: its last line, once (the single wave's comes after the loop)
    for (const w of waves)
      if (split && w.ok && w.last && !reported.has(w.name) && !ctx.json) {
        reported.add(w.name);
        if (live) ctx.live('');
        ctx.note(waveLine(w.name, w.last));
      }
    if (!open.length) break;
    const text = line();
    if (text) {
      if (live) ctx.live(text);
      else if (text !== lastLine && Date.now() - lastPrinted >= Math.max(ctx.pollIntervalMs, 5_000)) {
        ctx.note(text);
        lastPrinted = Date.now();
      }
      lastLine = text;
    }
    await Promise.race([
      ...open.map((w) => w.result.catch(() => undefined)),
      new Promise((r) => setTimeout(r, ctx.pollIntervalMs)),
    ]);
  }
  if (live) ctx.live('');
  const last = line();
  if (!ctx.json && last && waves.some((w) => w.ok)) ctx.note(last);
  return waves;
}

/** The wave's report, or why the wave itself failed, in its own words (not "Workflow execution failed"). */
async function waveResult(name: string, result: Promise<WaveReport>): Promise<WaveReport> {
  try {
    return await result;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new NotFoundError(`wave ${name} does not exist`);
    if (!(err instanceof WorkflowFailedError)) throw err;
    let cause: Error = err;
    while (cause.cause instanceof Error) cause = cause.cause;
    const type = (cause as { type?: string }).type;
    throw new CliError(`wave ${name} failed: ${type ? `${type}: ` : ''}${cause.message}`, EXIT.failed);
  }
}

const short = (t: string | null | undefined) => (t ? t.slice(0, 12) : '-');

export function printReport(ctx: CommandContext, r: WaveReport): void {
  if (ctx.json) return ctx.printJson(r);
  const header = ['CERTIFICATE', 'RESULT', 'OLD', 'NEW', 'NEW KEY', 'REVOKED', 'NOT AFTER', 'DETAIL'];
  const rows = r.entries.map((e) => [
    e.id,
    e.status,
    short(e.oldThumbprint),
    short(e.newThumbprint),
    e.newKey === undefined ? '-' : e.newKey ? 'yes' : 'NO',
    e.revoked ?? '-',
    dash(e.notAfter),
    e.error ? `${e.error.type}: ${e.error.message}` : (e.note ?? ''),
  ]);
  if (ctx.options.flag('csv'))
    return ctx.print(
      csv(
        [
          'certificate',
          'result',
          'oldThumbprint',
          'newThumbprint',
          'newKey',
          'revoked',
          'notAfter',
          'detail',
        ],
        r.entries.map((e) => [
          e.id,
          e.status,
          e.oldThumbprint ?? null,
          e.newThumbprint ?? null,
          e.newKey ?? null,
          e.revoked ?? null,
          e.notAfter ?? null,
          e.error ? `${e.error.type}: ${e.error.message}` : (e.note ?? null),
        ]),
      ),
    );
  ctx.print(table(header, rows));
  ctx.print(
    `wave ${r.waveId.replace(/^wave:/, '')} (${r.reason}) ${r.state.toLowerCase()}: ${r.reissued} re-issued, ${r.skipped} skipped, ${r.failed} failed, ${r.cancelled} cancelled of ${r.total}` +
      (r.finishedAt ? `; ${r.startedAt} → ${r.finishedAt}` : ''),
  );
}
