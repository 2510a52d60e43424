/**
 * certflow: steer certificate lifecycles from a terminal. `runCli(argv, deps)` dispatches to client/commands/*;
 * everything it touches (Temporal client, vaults, output, clock) is injected, so tests run the real commands.
 * Exit codes: 0 ok, 1 the operation failed, 2 bad usage, 3 not found or Temporal unreachable.
 */
import type { Client } from '@temporalio/client';
import { CliError, EXIT, type OptionSpecs, parseCommandArgs, usageError } from './args';
import { type CliDeps, type Command, type CommandSpec, createContext, GLOBAL_OPTIONS } from './context';
import { createRequire } from 'node:module';
import { printableLines } from './format';

export type { CliDeps } from './context';

const ID = ['<vault>/<name>'];

/**
 * Every command, as `certflow --help` lists it. Each command's module (and with it the Temporal client, the
 * renderers, the workflow messages) is imported only when that command runs or its own help is asked for, so
 * `certflow --help` loads none of them and `certflow status` loads what status needs.
 */
export const COMMANDS: CommandSpec[] = [
  {
    name: 'enroll',
    summary: 'start the lifecycle of a certificate, or of every certificate in a vault',
    args: ['[<vault>/<name>]'],
    load: () => import('./commands/enroll').then((m) => m.enroll),
  },
  {
    name: 'unenroll',
    summary: "end a certificate's lifecycle (the certificate and its consumers stay as they are)",
    args: ID,
    load: () => import('./commands/unenroll').then((m) => m.unenroll),
  },
  {
    name: 'list',
    summary: 'the enrolled certificates: phase, expiry, next renewal, last result',
    args: [],
    load: () => import('./commands/list').then((m) => m.list),
  },
  {
    name: 'status',
    summary: 'phase, thumbprints, expiry, next renewal, policy, last attempt, bindings',
    args: ID,
    load: () => import('./commands/status').then((m) => m.status),
  },
  {
    name: 'renew',
    summary: 'renew now and wait for the outcome (--no-wait: just ask)',
    args: ID,
    load: () => import('./commands/renew').then((m) => m.renew),
  },
  {
    name: 'sync',
    summary: 're-bind every consumer to the current certificate (no renewal); prints each binding',
    args: ID,
    load: () => import('./commands/sync').then((m) => m.sync),
  },
  {
    name: 'pause',
    summary: 'stop automatic renewal (manual renew and sync are refused while paused)',
    args: ID,
    load: () => import('./commands/pause').then((m) => m.pause),
  },
  {
    name: 'resume',
    summary: 'resume automatic renewal',
    args: ID,
    load: () => import('./commands/pause').then((m) => m.resume),
  },
  {
    name: 'approve',
    summary: 'approve the change waiting for approval (re-binding, or issuance per rule)',
    args: ID,
    load: () => import('./commands/approve').then((m) => m.approve),
  },
  {
    name: 'deny',
    summary: 'deny the change waiting for approval; a new version stays in the vault, unbound',
    args: ID,
    load: () => import('./commands/approve').then((m) => m.deny),
  },
  {
    name: 'reissue',
    summary: 'emergency re-issue wave: new keys for a selection, at a bounded rate, with a report',
    args: ['[status|pause|resume|cancel|report <wave>]'],
    load: () => import('./commands/reissue').then((m) => m.reissue),
  },
  {
    name: 'policy',
    summary: "override the certificate's renewal policy (or --clear to use the vault's again)",
    args: ID,
    load: () => import('./commands/policy').then((m) => m.policy),
  },
  {
    name: 'history',
    summary: 'the last renewal attempts: outcome, thumbprints, bindings (newest first)',
    args: ID,
    load: () => import('./commands/history').then((m) => m.history),
  },
  {
    name: 'report',
    summary: 'the fleet by expiry: expired / expiring soon / valid (table, --json or --csv)',
    args: [],
    load: () => import('./commands/report').then((m) => m.report),
  },
  {
    name: 'audit',
    summary:
      'KeyVault-006: certificates and App Service Certificate orders that do not renew automatically (--json, --csv)',
    args: [],
    load: () => import('./commands/audit').then((m) => m.audit),
  },
  {
    name: 'ui',
    summary: "print the Web UI link of the fleet, or of a certificate's lifecycle",
    args: ['[<vault>/<name>]'],
    load: () => import('./commands/ui').then((m) => m.ui),
  },
  {
    name: 'upgrade',
    summary: 'move every running lifecycle onto the workers’ current code (after deploying a new release)',
    args: [],
    load: () => import('./commands/upgrade').then((m) => m.upgrade),
  },
];
const ID_PREFIX = 'certificate:';

/** The package's version (package.json: beside the sources, or one level up from a build), for `--version`. */
export const VERSION: string = (() => {
  const require = createRequire(import.meta.url);
  for (const p of ['../package.json', '../../package.json']) {
    try {
      const pkg = require(p) as { name?: string; version?: string };
      if (pkg.name === 'certflow' && pkg.version) return pkg.version;
    } catch {
      // not there: try the next place
    }
  }
  return 'unknown';
})();

export async function runCli(argv: string[], deps: CliDeps): Promise<number> {
  const [name, ...rest] = argv;
  // under --json an error is JSON too (on stderr), so scripts never parse prose
  const json = rest.includes('--json');
  const say = (text: string, exitCode?: number) =>
    void deps.err.write(
      json && exitCode !== undefined
        ? `${JSON.stringify({ error: { message: text, exitCode } })}\n`
        : `certflow: ${printableLines(text)}\n`,
    );
  if (name === '--version' || name === '-V' || name === 'version') {
    deps.out.write(`${json ? JSON.stringify({ version: VERSION }) : `certflow ${VERSION}`}\n`);
    return EXIT.ok;
  }
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? rest[0] : undefined;
    if (!topic) {
      (name ? deps.out : deps.err).write(`${generalHelp()}\n`);
      return name ? EXIT.ok : EXIT.usage;
    }
    const spec = COMMANDS.find((c) => c.name === topic);
    if (!spec)
      return fail(say, usageError(`help: unknown command ${JSON.stringify(topic)} (${commandNames()})`));
    deps.out.write(`${commandHelp(await loadCommand(spec))}\n`);
    return EXIT.ok;
  }
  const spec = COMMANDS.find((c) => c.name === name);
  if (!spec)
    return fail(
      say,
      usageError(`unknown command ${JSON.stringify(name)} (expected one of: ${commandNames()})`),
    );
  const cmd = await loadCommand(spec);

  let parsed;
  try {
    parsed = parseCommandArgs(name, rest, { ...cmd.options, ...GLOBAL_OPTIONS });
  } catch (err) {
    return fail(say, err, name);
  }
  const { options, positionals } = parsed;
  if (options.flag('help')) {
    deps.out.write(`${commandHelp(cmd)}\n`);
    return EXIT.ok;
  }
  const { clientSettingsFromEnv, connectClient } = await import('./connect');
  const settings = clientSettingsFromEnv(deps.env);
  if (options.string('address')) settings.address = options.string('address')!;
  if (options.string('namespace')) settings.namespace = options.string('namespace')!;
  let opened: Client | undefined;
  let connecting: Promise<Client> | undefined;
  const connectOnce = (): Promise<Client> => {
    if (deps.client) return Promise.resolve(deps.client);
    connecting ??= (deps.connect ?? connectClient)(settings).then(
      (c) => (opened = c),
      (err: Error) => {
        throw new CliError(err.message, EXIT.notFound);
      },
    );
    return connecting;
  };
  try {
    return await cmd.run(createContext(name, options, deps, settings, connectOnce), positionals);
  } catch (err) {
    return fail(say, err, name, await import('@temporalio/client'));
  } finally {
    await opened?.connection.close();
  }
}

/** A command's spec with its module's options and code. */
async function loadCommand(spec: CommandSpec): Promise<Command> {
  const { load: _load, ...listed } = spec;
  return { ...listed, ...(await spec.load()) };
}

/** The Temporal client's error classes, once a command has loaded the client (none before: usage errors only). */
type TemporalErrors = Pick<
  typeof import('@temporalio/client'),
  'QueryNotRegisteredError' | 'WorkflowNotFoundError' | 'WorkflowUpdateFailedError'
>;

/** Prints the error (for people, or as JSON under --json) and returns its exit code. */
function fail(
  say: (text: string, exitCode?: number) => void,
  err: unknown,
  command?: string,
  temporal?: TemporalErrors,
): number {
  const [message, code] = describeError(err, command, temporal);
  say(message, code);
  if (err instanceof CliError && err.exitCode === EXIT.usage && command) say(`see: certflow help ${command}`);
  return code;
}

/** What went wrong, in words, and the exit code it means. */
function describeError(err: unknown, command?: string, temporal?: TemporalErrors): [string, number] {
  if (err instanceof CliError) return [err.message, err.exitCode];
  if (temporal && err instanceof temporal.WorkflowNotFoundError) {
    const id = err.workflowId?.startsWith(ID_PREFIX)
      ? err.workflowId.slice(ID_PREFIX.length)
      : err.workflowId;
    return [
      `no lifecycle is running for ${id} (workflow ${err.workflowId}); enroll it: certflow enroll ${id} --issuer <name>`,
      EXIT.notFound,
    ];
  }
  if (temporal && err instanceof temporal.WorkflowUpdateFailedError)
    return [`${command} refused: ${err.cause?.message ?? err.message}`, EXIT.failed];
  if (temporal && err instanceof temporal.QueryNotRegisteredError)
    return [
      `${command}: the lifecycle does not answer this yet (a worker with older code?): ${err.message}`,
      EXIT.failed,
    ];
  const e = err as Error & { code?: number };
  const grpc = (e as { cause?: { code?: number } }).cause?.code ?? e.code;
  // gRPC UNAVAILABLE (14) / DEADLINE_EXCEEDED (4) from the frontend: the server is not reachable
  if (grpc === 14 || grpc === 4)
    return [
      `cannot reach Temporal (set --address or CERTFLOW_TEMPORAL_ADDRESS): ${e.message}`,
      EXIT.notFound,
    ];
  // NOT_FOUND naming a namespace (the code is not always passed through): a mistyped --namespace
  if (/namespace/i.test(e?.message ?? '') && (grpc === 5 || /not found/i.test(e?.message ?? '')))
    return [
      `Temporal has no such namespace (set --namespace or CERTFLOW_TEMPORAL_NAMESPACE): ${e.message}`,
      EXIT.notFound,
    ];
  return [`${command ?? 'certflow'} failed: ${e?.message ?? String(err)}`, EXIT.failed];
}

const commandNames = (): string => COMMANDS.map((c) => c.name).join(', ');

function optionLines(specs: OptionSpecs): string[] {
  const rows = Object.entries(specs).map(([name, s]) => {
    const flag = `${s.short ? `-${s.short}, ` : ''}--${name}${s.value ? ` ${s.value}` : ''}`;
    return [flag + (s.multiple ? ' (repeatable)' : ''), s.description];
  });
  const width = Math.max(...rows.map(([f]) => f!.length));
  return rows.map(([f, d]) => `  ${f!.padEnd(width)}  ${d}`);
}

export function commandHelp(cmd: Command): string {
  return [
    `usage: certflow ${cmd.name}${cmd.args.length ? ` ${cmd.args.join(' ')}` : ''} [options]`,
    '',
    cmd.summary,
    '',
    'options:',
    ...optionLines({ ...cmd.options, ...GLOBAL_OPTIONS }),
    ...(cmd.notes ? ['', cmd.notes] : []),
  ].join('\n');
}

export function generalHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => `${c.name} ${c.args.join(' ')}`.length));
  return [
    'usage: certflow <command> [arguments] [options]',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${`${c.name} ${c.args.join(' ')}`.padEnd(width)}  ${c.summary}`),
    '',
    'certflow help <command> (or certflow <command> --help) for its options; certflow --version.',
    'exit codes: 0 ok, 1 the operation failed, 2 bad usage, 3 not found or Temporal unreachable.',
    'environment: CERTFLOW_TEMPORAL_ADDRESS, CERTFLOW_TEMPORAL_NAMESPACE, CERTFLOW_TASK_QUEUE, CERTFLOW_UI_URL;',
    '  TLS: CERTFLOW_TEMPORAL_TLS_CERT, _KEY, _CA, _SERVER_NAME (files); Temporal Cloud: CERTFLOW_TEMPORAL_API_KEY.',
    '  Plaintext beyond loopback: CERTFLOW_TEMPORAL_ALLOW_INSECURE=true; encrypted payloads: CERTFLOW_TEMPORAL_PAYLOAD_KEYS=id=key,...',
  ].join('\n');
}

/** The process entry (bin.ts): real stdout/stderr, a connection from the environment. */
export async function main(argv: string[], deps: Partial<CliDeps> = {}): Promise<number> {
  return runCli(argv, { out: process.stdout, err: process.stderr, ...deps });
}
