/**
 * certflow: steer certificate lifecycles from a terminal. `runCli(argv, deps)` dispatches to client/commands/*;
 * everything it touches (Temporal client, vaults, output, clock) is injected, so tests run the real commands.
 * Exit codes: 0 ok, 1 the operation failed, 2 bad usage, 3 not found or Temporal unreachable.
 */
import {
  type Client,
  QueryNotRegisteredError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import { CliError, EXIT, type OptionSpecs, parseCommandArgs, usageError } from './args';
import { type CliDeps, type Command, createContext, GLOBAL_OPTIONS } from './context';
import { clientSettingsFromEnv, connectClient } from './connect';
import { createRequire } from 'node:module';
import { printableLines } from './format';
import { audit } from './commands/audit';
import { enroll } from './commands/enroll';
import { history } from './commands/history';
import { list } from './commands/list';
import { pause, resume } from './commands/pause';
import { policy } from './commands/policy';
import { reissue } from './commands/reissue';
import { renew } from './commands/renew';
import { report } from './commands/report';
import { status } from './commands/status';
import { sync } from './commands/sync';
import { ui } from './commands/ui';
import { unenroll } from './commands/unenroll';
import { upgrade } from './commands/upgrade';

export type { CliDeps } from './context';

export const COMMANDS: Command[] = [
  enroll,
  unenroll,
  list,
  status,
  renew,
  sync,
  pause,
  resume,
  policy,
  history,
  report,
  reissue,
  audit,
  ui,
  upgrade,
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
    const cmd = COMMANDS.find((c) => c.name === topic);
    if (!cmd)
      return fail(say, usageError(`help: unknown command ${JSON.stringify(topic)} (${commandNames()})`));
    deps.out.write(`${commandHelp(cmd)}\n`);
    return EXIT.ok;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd)
    return fail(
      say,
      usageError(`unknown command ${JSON.stringify(name)} (expected one of: ${commandNames()})`),
    );

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
    return fail(say, err, name);
  } finally {
    await opened?.connection.close();
  }
}

/** Prints the error (for people, or as JSON under --json) and returns its exit code. */
function fail(say: (text: string, exitCode?: number) => void, err: unknown, command?: string): number {
  const [message, code] = describeError(err, command);
  say(message, code);
  if (err instanceof CliError && err.exitCode === EXIT.usage && command) say(`see: certflow help ${command}`);
  return code;
}

/** What went wrong, in words, and the exit code it means. */
function describeError(err: unknown, command?: string): [string, number] {
  if (err instanceof CliError) return [err.message, err.exitCode];
  if (err instanceof WorkflowNotFoundError) {
    const id = err.workflowId?.startsWith(ID_PREFIX)
      ? err.workflowId.slice(ID_PREFIX.length)
      : err.workflowId;
    return [
      `no lifecycle is running for ${id} (workflow ${err.workflowId}); enroll it: certflow enroll ${id} --issuer <name>`,
      EXIT.notFound,
    ];
  }
  if (err instanceof WorkflowUpdateFailedError)
    return [`${command} refused: ${err.cause?.message ?? err.message}`, EXIT.failed];
  if (err instanceof QueryNotRegisteredError)
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
