/**
 * What a CLI command gets to work with: output, a Temporal client (connected on first use), vault access
 * (injected, or built from `--config`), the clock. Everything is injected so tests drive the real commands.
 */
import type { Client } from '@temporalio/client';
import type { Vault } from '../activities/types';
import type { LifecycleSettings } from '../activities/lifecycles';
import type { CertificateOrders } from '../activities/bindings/app-service-certificate-orders';
import { CliError, EXIT, type Options, type OptionSpecs, usageError } from './args';
import type { ClientSettings } from './connect';
import { printable, printableLines } from './format';

export interface Output {
  write(text: string): unknown;
}

export interface CliDeps {
  /** A connected client (tests, the HTTP server); otherwise one is connected from --address / the environment. */
  client?: Client;
  connect?: (settings: ClientSettings) => Promise<Client>;
  /** Vault access for `enroll --vault`, `report` and `audit`; otherwise built from `--config <file>`. */
  vaults?: ReadonlyMap<string, Vault>;
  loadVaults?: (configFile: string) => Promise<ReadonlyMap<string, Vault>>;
  /** App Service Certificate orders for `audit`; otherwise built from `--config <file>` (null: none configured). */
  certificateOrders?: CertificateOrders | null;
  loadCertificateOrders?: (configFile: string) => Promise<CertificateOrders | null>;
  /**
   * What a lifecycle carries from the workers' configuration (change control, policy, drift watch), for `enroll`
   * when no worker answers with it; otherwise read from `--config <file>` (worker/lifecycle-settings.ts).
   */
  lifecycleSettings?: (certificateId: string) => LifecycleSettings;
  loadLifecycleSettings?: (configFile: string) => Promise<(certificateId: string) => LifecycleSettings>;
  out: Output;
  err: Output;
  env?: NodeJS.ProcessEnv;
  now?: () => Date;
  /** How often `renew` polls status to show progress (default 1 s). */
  pollIntervalMs?: number;
}

export interface CommandContext {
  readonly command: string;
  readonly options: Options;
  readonly json: boolean;
  readonly namespace: string;
  readonly env: NodeJS.ProcessEnv;
  readonly pollIntervalMs: number;
  now(): Date;
  /** A line on stdout (human mode). */
  print(text: string): void;
  /** A line on stderr (notes, warnings, progress). */
  note(text: string): void;
  /** The machine-readable answer on stdout. */
  printJson(data: unknown): void;
  /** stderr is a terminal: a live line (`live`) may be redrawn in place. */
  readonly tty: boolean;
  /** Redraws one status line on stderr in place (terminals only; `tty`). */
  live(text: string): void;
  client(): Promise<Client>;
  /** The configured vaults; a usage error naming --config when there are none. */
  vaults(why: string): Promise<ReadonlyMap<string, Vault>>;
  hasVaultAccess(): boolean;
  /** The configured App Service Certificate orders, or null when there are none (or no --config). */
  certificateOrders(): Promise<CertificateOrders | null>;
  /** What lifecycles carry from the configuration given with --config (null: no --config). */
  lifecycleSettings(): Promise<((certificateId: string) => LifecycleSettings) | null>;
}

/** A command as the CLI lists it (client/cli.ts): what `certflow --help` shows, and where its code is. */
export interface CommandSpec {
  name: string;
  summary: string;
  /** Positional arguments, e.g. ['<vault>/<name>']; optional ones in brackets. */
  args: string[];
  /** The command's module, imported only when the command runs or its own help is asked for. */
  load(): Promise<CommandImpl>;
}

/** A command's options and code (client/commands/*). */
export interface CommandImpl {
  options: OptionSpecs;
  /** Extra help text after the options (examples, exit codes). */
  notes?: string;
  run(ctx: CommandContext, positionals: string[]): Promise<number>;
}

export type Command = Omit<CommandSpec, 'load'> & CommandImpl;

export const GLOBAL_OPTIONS: OptionSpecs = {
  address: {
    type: 'string',
    value: 'HOST:PORT',
    description: 'Temporal frontend (default $CERTFLOW_TEMPORAL_ADDRESS or 127.0.0.1:7233)',
  },
  namespace: {
    type: 'string',
    value: 'NS',
    description: 'Temporal namespace (default $CERTFLOW_TEMPORAL_NAMESPACE or default)',
  },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
};
export const JSON_OPTION: OptionSpecs = { json: { type: 'boolean', description: 'machine-readable output' } };
export const CONFIG_OPTION: OptionSpecs = {
  config: {
    type: 'string',
    value: 'FILE',
    description: "the worker's configuration file, for vault access",
  },
};

export class NotFoundError extends CliError {
  constructor(message: string) {
    super(message, EXIT.notFound);
  }
}

export function createContext(
  command: string,
  options: Options,
  deps: CliDeps,
  settings: ClientSettings,
  connectOnce: () => Promise<Client>,
): CommandContext {
  let vaults: Promise<ReadonlyMap<string, Vault>> | undefined;
  const json = options.flag('json');
  return {
    command,
    options,
    json,
    namespace: settings.namespace,
    env: deps.env ?? process.env,
    pollIntervalMs: deps.pollIntervalMs ?? 1_000,
    now: deps.now ?? (() => new Date()),
    // the last line of defence against terminal escapes in text from outside: line breaks only
    print: (text) => void deps.out.write(`${printableLines(text)}\n`),
    note: (text) => void deps.err.write(`${printableLines(text)}\n`),
    printJson: (data) => void deps.out.write(`${JSON.stringify(data, null, 2)}\n`),
    tty: (deps.err as { isTTY?: boolean }).isTTY === true,
    // carriage return and erase-line: the only control characters written, around printable text
    live: (text) => void deps.err.write(`\r\x1b[2K${printable(text)}`),
    client: connectOnce,
    hasVaultAccess: () => Boolean(deps.vaults || options.string('config')),
    async certificateOrders() {
      if (deps.certificateOrders !== undefined) return deps.certificateOrders;
      const file = options.string('config');
      if (!file || !deps.loadCertificateOrders) return null;
      return deps.loadCertificateOrders(file).catch((err: Error) => {
        throw usageError(`--config ${file}: ${err.message}`);
      });
    },
    async lifecycleSettings() {
      if (deps.lifecycleSettings) return deps.lifecycleSettings;
      const file = options.string('config');
      if (!file || !deps.loadLifecycleSettings) return null;
      return deps.loadLifecycleSettings(file).catch((err: Error) => {
        throw usageError(`--config ${file}: ${err.message}`);
      });
    },
    vaults(why) {
      if (deps.vaults) return Promise.resolve(deps.vaults);
      const file = options.string('config');
      if (!file) throw usageError(`${command}: ${why} needs vault access: pass --config <file>`);
      if (!deps.loadVaults) throw usageError(`--config: vault access is not available in this build`);
      vaults ??= deps.loadVaults(file).catch((err: Error) => {
        throw usageError(`--config ${file}: ${err.message}`);
      });
      return vaults;
    },
  };
}
