/**
 * Argument parsing for the CLI on node:util parseArgs: command specs, typed option access and value parsers whose
 * errors name the argument and what was expected (exit code 2).
 */
import { parseArgs } from 'node:util';
import { parseCertificateId } from '../activities/ids';

export const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error that ends the command with a given exit code; the message is for people. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
  }
}
export const usageError = (message: string): CliError => new CliError(message, EXIT.usage);

export interface OptionSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
  /** Shown in help after the flag: `--reason TEXT`. */
  value?: string;
  description: string;
}
export type OptionSpecs = Record<string, OptionSpec>;

/** Parsed options of one command, read through typed accessors. */
export class Options {
  constructor(private readonly values: Record<string, unknown>) {}
  string(name: string): string | undefined {
    const v = this.values[name];
    return typeof v === 'string' ? v : undefined;
  }
  flag(name: string): boolean {
    return this.values[name] === true;
  }
  strings(name: string): string[] {
    const v = this.values[name];
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  }
  has(name: string): boolean {
    return this.values[name] !== undefined;
  }
}

/** Parses `argv` against the specs; unknown options and missing values become usage errors naming the flag. */
export function parseCommandArgs(
  command: string,
  argv: string[],
  specs: OptionSpecs,
): { options: Options; positionals: string[] } {
  const options = Object.fromEntries(
    Object.entries(specs).map(([name, s]) => [
      name,
      { type: s.type, ...(s.multiple ? { multiple: true } : {}), ...(s.short ? { short: s.short } : {}) },
    ]),
  );
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { options: new Options(values), positionals };
  } catch (err) {
    throw usageError(explainParseError(command, err as Error & { code?: string }));
  }
}

function explainParseError(command: string, err: Error & { code?: string }): string {
  const flag = /'(-{1,2}[^' ]+)/.exec(err.message)?.[1] ?? '';
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `${command}: unknown option ${flag}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return /argument missing/.test(err.message)
        ? `${flag}: expected a value after it`
        : `${flag}: takes no value (it is a switch)`;
    default:
      return `${command}: ${err.message}`;
  }
}

/** `<vault>/<name>`, or a usage error naming the argument. */
export function certificateIdArg(value: string | undefined, command: string): string {
  if (!value) throw usageError(`${command}: missing <vault>/<name> (e.g. kv-prod/api-cert)`);
  try {
    parseCertificateId(value, '<vault>/<name>');
  } catch (err) {
    throw usageError(`${command}: ${(err as Error).message}`);
  }
  return value;
}

const UNIT_MS: Record<string, number> = { w: 604_800_000, d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000 };

/** `7d`, `12h`, `1d12h`, `90m`, `2w` → milliseconds. */
export function parseDuration(text: string | undefined, flag: string): number {
  const t = (text ?? '').trim().toLowerCase();
  if (!/^(\d+[wdhms])+$/.test(t))
    throw usageError(`${flag}: expected a duration like 7d, 12h, 90m or 1d12h, got ${JSON.stringify(text)}`);
  let ms = 0;
  for (const [, n, unit] of t.matchAll(/(\d+)([wdhms])/g)) ms += Number(n) * UNIT_MS[unit!]!;
  if (ms <= 0)
    throw usageError(`${flag}: expected a duration greater than zero, got ${JSON.stringify(text)}`);
  return ms;
}

/** A whole number within [lo, hi], or a usage error naming the flag and the range. */
export function parseWholeNumber(text: string | undefined, flag: string, lo: number, hi: number): number {
  const n = /^-?\d+$/.test((text ?? '').trim()) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n < lo || n > hi)
    throw usageError(`${flag}: expected a whole number from ${lo} to ${hi}, got ${JSON.stringify(text)}`);
  return n;
}

/** `key=value` (the value may be empty; the key may not). */
export function parseTag(text: string, flag: string): [string, string] {
  const i = text.indexOf('=');
  if (i <= 0) throw usageError(`${flag}: expected key=value, got ${JSON.stringify(text)}`);
  return [text.slice(0, i), text.slice(i + 1)];
}

/** A usage error unless there are exactly the positionals the command takes. */
export function expectPositionals(command: string, positionals: string[], names: string[]): void {
  if (positionals.length > names.length) {
    const extra = positionals[names.length];
    throw usageError(
      `${command}: unexpected argument ${JSON.stringify(extra)}` +
        (names.length ? ` (takes ${names.join(' ')})` : ' (takes no arguments)'),
    );
  }
}
