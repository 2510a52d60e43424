/** `certflow enroll`: start the lifecycle of one certificate, or of every certificate of a vault (idempotent). */
import { ActivityFailure, type Client, TimeoutFailure, WorkflowFailedError } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import {
  DEFAULT_TASK_QUEUE,
  type LifecycleSettings,
  runningLifecycle,
  startLifecycle,
} from '../../activities/lifecycles';
import type { EnrollmentCheck, Vault } from '../../activities/types';
import type { enrollmentCheck } from '../../workflows/checks';
import { workflowIdFor } from '../../workflows/messages';
import { globToRegExp } from '../../activities/globs';
import { certificateIdArg, CliError, EXIT, parseTag, usageError } from '../args';
import { CONFIG_OPTION, type CommandImpl, type CommandContext, JSON_OPTION, NotFoundError } from '../context';
import { table } from '../format';
import { vaultNamed } from '../inventory';

export interface EnrollResult {
  certificateId: string;
  workflowId: string;
  status: 'started' | 'already-enrolled' | 'would-start' | 'skipped';
  issuer: string;
  /**
   * Where the lifecycle's change control, policy and drift watch came from: the worker's answer, the --config
   * file, or nowhere (started with none: the note on stderr says so). Only on `started`.
   */
  settingsFrom?: SettingsSource;
  detail?: string;
}

type SettingsSource = 'worker' | 'config' | 'none';
/** The configuration's settings of a certificate (client/context.ts `lifecycleSettings`), or null without one. */
type FromConfig = ((certificateId: string) => LifecycleSettings) | null;

export const enroll: CommandImpl = {
  options: {
    issuer: {
      type: 'string',
      value: 'NAME',
      description: 'the issuer (CA) from the configuration (required)',
    },
    vault: {
      type: 'string',
      value: 'VAULT',
      description: 'enroll every certificate of this vault (needs --config)',
    },
    tag: {
      type: 'string',
      multiple: true,
      value: 'K=V',
      description: 'with --vault: only certificates with this tag',
    },
    pattern: {
      type: 'string',
      value: 'GLOB',
      description: 'with --vault: only names matching (e.g. "api-*")',
    },
    'task-queue': {
      type: 'string',
      value: 'QUEUE',
      description: `the workers' task queue (default $CERTFLOW_TASK_QUEUE or ${DEFAULT_TASK_QUEUE})`,
    },
    'dry-run': { type: 'boolean', description: 'with --vault: show what would be enrolled' },
    'no-check': {
      type: 'boolean',
      description: 'enroll without asking a worker whether the vault, certificate and issuer exist',
    },
    config: {
      ...CONFIG_OPTION.config!,
      description:
        "the worker's configuration file: vault access for --vault, and the change control, policy and drift watch a lifecycle carries when no worker answers with them (--no-check)",
    },
    ...JSON_OPTION,
  },
  notes: `Enrolling is idempotent: a certificate that already has a running lifecycle keeps it.
The lifecycle carries the workers' change control (windows, freezes, approval, staged rollout), renewal policy
and drift watch, exactly as a certificate named in their configuration: from the worker's answer to the check,
else from --config.
examples:
  certflow enroll kv-prod/api-cert --issuer acme
  certflow enroll --vault kv-prod --issuer acme --tag team=web --pattern 'api-*' --config certflow.json`,
  async run(ctx, positionals) {
    const vaultName = ctx.options.string('vault');
    if (!vaultName && positionals.length === 0)
      throw usageError('enroll: expected <vault>/<name> (or --vault VAULT to enroll a whole vault)');
    const issuer = ctx.options.string('issuer');
    if (!issuer || !/^\S{1,128}$/.test(issuer))
      throw usageError(
        `--issuer: expected the name of a configured issuer, got ${JSON.stringify(issuer ?? '')}`,
      );
    if (positionals.length > 1)
      throw usageError(`enroll: unexpected argument ${JSON.stringify(positionals[1])}`);
    if (vaultName && positionals.length)
      throw usageError('enroll: give either <vault>/<name> or --vault VAULT, not both');
    if (!vaultName && (ctx.options.has('tag') || ctx.options.has('pattern') || ctx.options.flag('dry-run')))
      throw usageError('--tag, --pattern, --dry-run: only with --vault');
    const taskQueue = ctx.options.string('task-queue') ?? ctx.env.CERTFLOW_TASK_QUEUE ?? DEFAULT_TASK_QUEUE;
    const client = await ctx.client();
    const check = !ctx.options.flag('no-check');
    if (!vaultName) {
      const id = certificateIdArg(positionals[0], 'enroll');
      const fromConfig = await ctx.lifecycleSettings();
      const r = await enrollOne(client, { id, issuer, taskQueue, check, fromConfig });
      noteWithoutSettings(ctx, [r]);
      if (ctx.json) ctx.printJson(r);
      else ctx.print(resultLine(r));
      return EXIT.ok;
    }
    const vault = vaultNamed(await ctx.vaults('enroll --vault'), vaultName);
    const fromConfig = await ctx.lifecycleSettings();
    const results = await enrollVault(ctx, client, vault, { issuer, taskQueue, fromConfig });
    noteWithoutSettings(ctx, results);
    if (ctx.json) ctx.printJson(results);
    else printVaultResults(ctx, vaultName, results);
    return EXIT.ok;
  },
};

async function enrollOne(
  client: Client,
  {
    id,
    issuer,
    taskQueue,
    check = false,
    fromConfig,
  }: { id: string; issuer: string; taskQueue: string; check?: boolean; fromConfig: FromConfig },
): Promise<EnrollResult> {
  const workflowId = workflowIdFor(id);
  const existing = await runningLifecycle(client, id);
  if (existing) {
    const other =
      existing.issuer && existing.issuer !== issuer ? ` with issuer ${existing.issuer} (unchanged)` : '';
    return {
      certificateId: id,
      workflowId,
      status: 'already-enrolled',
      issuer: existing.issuer ?? issuer,
      detail: other,
    };
  }
  const answer = check ? await askWorker(client, { id, issuer, taskQueue }) : null;
  // the worker's own configuration first (what it would enrol with), else the --config file: the same function
  const [settings, settingsFrom]: [LifecycleSettings, SettingsSource] = answer?.settings
    ? [answer.settings, 'worker']
    : fromConfig
      ? [fromConfig(id), 'config']
      : [{}, 'none'];
  const { started } = await startLifecycle(client, { certificateId: id, issuer, taskQueue, ...settings });
  return started
    ? { certificateId: id, workflowId, status: 'started', issuer, settingsFrom }
    : { certificateId: id, workflowId, status: 'already-enrolled', issuer };
}

/** A lifecycle started without the workers' change control must not look like one that has it. */
function noteWithoutSettings(ctx: CommandContext, results: EnrollResult[]): void {
  const bare = results.filter((r) => r.settingsFrom === 'none');
  if (!bare.length) return;
  ctx.note(
    `note: ${bare.length === 1 ? bare[0]!.certificateId : `${bare.length} certificates`} started without the workers' change control, policy and drift watch settings ` +
      `(no worker answered with them: --no-check, or a worker before 3.1); pass --config <the worker's configuration file> to carry them`,
  );
}

/**
 * Asks a worker (a short workflow on the workers' task queue) whether the vault, the certificate and the issuer
 * exist in its configuration: a mistyped id or issuer is refused here instead of a lifecycle that fails forever.
 * The answer also carries what the lifecycle is to be started with from that configuration (change control).
 */
async function askWorker(
  client: Client,
  { id, issuer, taskQueue }: { id: string; issuer: string; taskQueue: string },
): Promise<EnrollmentCheck> {
  let answer: EnrollmentCheck;
  try {
    answer = await client.workflow.execute<typeof enrollmentCheck>('enrollmentCheck', {
      taskQueue,
      workflowId: `enroll-check:${id}:${randomUUID()}`,
      args: [{ certificateId: id, issuer }],
      workflowExecutionTimeout: '1 minute',
    });
  } catch (err) {
    if (
      err instanceof WorkflowFailedError &&
      err.cause instanceof ActivityFailure &&
      err.cause.cause instanceof TimeoutFailure
    )
      throw new CliError(
        `no worker answered on task queue ${taskQueue} within 15 s: is the worker running there (--task-queue, $CERTFLOW_TASK_QUEUE)? --no-check enrolls without asking`,
        EXIT.failed,
      );
    throw err;
  }
  if (!answer.ok) throw new NotFoundError(`cannot enroll ${id}: ${answer.problems.join('; ')}`);
  return answer;
}

async function enrollVault(
  ctx: CommandContext,
  client: Client,
  vault: Vault,
  { issuer, taskQueue, fromConfig }: { issuer: string; taskQueue: string; fromConfig: FromConfig },
): Promise<EnrollResult[]> {
  const tags = ctx.options.strings('tag').map((t) => parseTag(t, '--tag'));
  const pattern = ctx.options.string('pattern');
  const nameRe = pattern ? globToRegExp(pattern) : null;
  const dryRun = ctx.options.flag('dry-run');
  const results: EnrollResult[] = [];
  for await (const c of vault.list()) {
    if (nameRe && !nameRe.test(c.name)) continue;
    if (!tags.every(([k, v]) => c.tags[k] === v)) continue;
    const id = `${vault.name}/${c.name}`;
    const workflowId = workflowIdFor(id);
    if (!c.enabled) {
      results.push({
        certificateId: id,
        workflowId,
        status: 'skipped',
        issuer,
        detail: 'disabled in the vault',
      });
    } else if (dryRun) {
      const existing = await runningLifecycle(client, id);
      results.push({
        certificateId: id,
        workflowId,
        status: existing ? 'already-enrolled' : 'would-start',
        issuer,
      });
    } else {
      results.push(await enrollOne(client, { id, issuer, taskQueue, fromConfig }));
    }
  }
  return results.sort((a, b) => a.certificateId.localeCompare(b.certificateId));
}

function resultLine(r: EnrollResult): string {
  switch (r.status) {
    case 'started':
      return `enrolled ${r.certificateId} with issuer ${r.issuer} (workflow ${r.workflowId})`;
    case 'already-enrolled':
      return `${r.certificateId} is already enrolled${r.detail ?? ''} (workflow ${r.workflowId})`;
    case 'would-start':
      return `would enroll ${r.certificateId}`;
    case 'skipped':
      return `skipped ${r.certificateId}: ${r.detail}`;
  }
}

function printVaultResults(ctx: CommandContext, vault: string, results: EnrollResult[]): void {
  if (!results.length) {
    ctx.print(`no certificate of vault ${vault} matches`);
    return;
  }
  ctx.print(
    table(
      ['CERTIFICATE', 'RESULT', 'DETAIL'],
      results.map((r) => [r.certificateId, r.status, r.detail ?? '']),
    ),
  );
  const count = (s: EnrollResult['status']) => results.filter((r) => r.status === s).length;
  ctx.print(
    `\n${count('started')} enrolled, ${count('already-enrolled')} already enrolled, ${count('skipped')} skipped` +
      (count('would-start') ? `, ${count('would-start')} would be enrolled (dry run)` : ''),
  );
}
