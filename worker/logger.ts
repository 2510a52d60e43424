/**
 * Structured logs for the worker service: one JSON object a line (or a readable line in a terminal), with the
 * certificate id and workflow id on every line that has them. It implements Temporal's Logger, so installed
 * with `Runtime.install({ logger })` the SDK's, the workflows' and the activities' logs all come through here.
 * Every line passes a redaction step: PEM private keys, `password=`-style pairs (Azure connection strings'
 * `AccountKey=` and `SharedAccessKey=`, SAS `sig=`, a URL's `?code=`), SAS tokens, bearer tokens, secret HTTP
 * headers (`aeg-sas-key`, `x-functions-key`, `ocp-apim-subscription-key`, `authorization`, `cookie`) and fields
 * whose names say they are secrets never reach the output.
 */
import type { Logger as TemporalLogger, LogLevel, LogMetadata } from '@temporalio/common';

export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
const LEVELS: readonly Level[] = ['trace', 'debug', 'info', 'warn', 'error'];

export interface CertflowLogger extends TemporalLogger {
  /** A logger that adds these fields to every line. */
  child(fields: Record<string, unknown>): CertflowLogger;
}

export interface LoggerOptions {
  level?: Level;
  /** 'auto': readable when the output is a terminal, JSON otherwise. */
  format?: 'json' | 'pretty' | 'auto';
  out?: { write(line: string): unknown; isTTY?: boolean };
  now?: () => Date;
  /** Where NO_COLOR and FORCE_COLOR are read (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/**
 * Whether pretty lines are coloured, as Node decides for its own output: FORCE_COLOR, when set, decides ("0" or
 * "false" off, anything else on); else NO_COLOR, when set and not empty, turns colour off; else a terminal has it.
 */
export function useColor(env: NodeJS.ProcessEnv, isTTY: boolean): boolean {
  const force = env.FORCE_COLOR;
  if (force !== undefined) return force !== '0' && force.toLowerCase() !== 'false';
  if (env.NO_COLOR) return false;
  return isTTY;
}

/** Temporal passes the event time as nanoseconds under this symbol (DefaultLogger's LogTimestamp). */
const LOG_TIMESTAMP = Symbol.for('log_timestamp');
/** SDK fields that add noise and no meaning for an operator. */
const DROPPED = new Set(['taskToken']);
/** HTTP headers that carry a credential (Event Grid, Azure Functions, API Management, plain HTTP). */
const SECRET_HEADERS = [
  'aeg-sas-key',
  'aeg-sas-token',
  'x-functions-key',
  'ocp-apim-subscription-key',
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-certflow-key',
];
const SECRET_KEY =
  /(password|passwd|secret(?!Id)|token|authorization|api[-_]?key|private[-_]?key|keyPem|hmac|cookie|sas[-_]?key|functions[-_]key|subscription[-_]key|account[-_]?key|shared[-_]?access)/i;

const PEM_PRIVATE_KEY = /-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?(?:-----END \1PRIVATE KEY-----|$)/g;
const KEY_VALUE =
  /\b(password|passwd|pwd|pass|secret|client_secret|token|access_token|refresh_token|api[_-]?key|sig|AccountKey|SharedAccessKey)=("[^"]*"|[^\s&"',;]+)/gi;
/** A query parameter that is a key in Azure's conventions (`?code=` of Functions and Event Grid webhooks). */
const QUERY_KEY = /([?&](?:code|key|subscription-key))=[^\s&#"',;]+/gi;
/** `code=` outside a URL too, when what follows is long enough to be a key (not `status code=404`). */
const LONG_CODE = /\b(code)=(?=[A-Za-z0-9+/_%=-]{16,})[^\s&#"',;]+/gi;
/** A SAS token (`SharedAccessSignature sr=...&sig=...`) or a connection string's `SharedAccessSignature=...`. */
const SAS_TOKEN = /\b(SharedAccessSignature)([ =])[^\s"',;]+/g;
/** `name: value` of a secret header (a Bearer or Basic value keeps its scheme; AUTH_SCHEME takes the rest). */
const HEADER_LINE = new RegExp(
  `\\b(${SECRET_HEADERS.join('|')})(\\s*:\\s*)(?!\\s|(?:Bearer|Basic)\\s)[^\\r\\n]+`,
  'gi',
);
const JSON_SECRET = new RegExp(
  `("(?:password|passwd|secret|clientSecret|client_secret|token|apiKey|api_key|${SECRET_HEADERS.join('|')})"\\s*:\\s*)"(?:[^"\\\\]|\\\\.)*"`,
  'gi',
);
const AUTH_SCHEME = /\b(Bearer|Basic)\s+[A-Za-z0-9\-._~+/]+=*/g;

/** Removes secret-looking material from free text. */
export function redact(text: string): string {
  return text
    .replace(PEM_PRIVATE_KEY, '[REDACTED PRIVATE KEY]')
    .replace(JSON_SECRET, '$1"[REDACTED]"')
    .replace(HEADER_LINE, '$1$2[REDACTED]')
    .replace(SAS_TOKEN, '$1$2[REDACTED]')
    .replace(KEY_VALUE, '$1=[REDACTED]')
    .replace(QUERY_KEY, '$1=[REDACTED]')
    .replace(LONG_CODE, '$1=[REDACTED]')
    .replace(AUTH_SCHEME, '$1 [REDACTED]');
}

/** `certificate:<id>` (lifecycle) and `renewal:<id>:...` (renewal attempt) carry the certificate id. */
export function certificateIdFromWorkflowId(workflowId: unknown): string | undefined {
  if (typeof workflowId !== 'string') return undefined;
  const m = /^(?:certificate:([^:]+)$|renewal:([^:]+):)/.exec(workflowId);
  return m ? (m[1] ?? m[2]) : undefined;
}

function clean(value: unknown, key: string, seen: WeakSet<object>, depth: number): unknown {
  if (SECRET_KEY.test(key) && value !== undefined && value !== null && value !== '') return '[REDACTED]';
  if (typeof value === 'string') return redact(value);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value !== 'object' || value === null) return value;
  if (seen.has(value) || depth > 6) return '[...]';
  seen.add(value);
  if (value instanceof Error) {
    const e = value as Error & { type?: string; cause?: unknown };
    return {
      name: e.name,
      message: redact(e.message),
      ...(e.type ? { type: e.type } : {}),
      ...(e.stack ? { stack: redact(e.stack) } : {}),
      ...(e.cause !== undefined ? { cause: clean(e.cause, 'cause', seen, depth + 1) } : {}),
    };
  }
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((v) => clean(v, key, seen, depth + 1));
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, clean(v, k, seen, depth + 1)] as const),
  );
}

interface Line {
  time: string;
  level: Level;
  msg: string;
  fields: Record<string, unknown>;
}

function toLine(level: Level, message: string, meta: LogMetadata, now: () => Date): Line {
  const nanos = meta[LOG_TIMESTAMP];
  const time = typeof nanos === 'bigint' ? new Date(Number(nanos / 1_000_000n)) : now();
  const seen = new WeakSet<object>();
  const fields: Record<string, unknown> = {};
  const certificateId = meta.certificateId ?? certificateIdFromWorkflowId(meta.workflowId);
  if (certificateId !== undefined) fields.certificateId = clean(certificateId, 'certificateId', seen, 0);
  if (meta.workflowId !== undefined) fields.workflowId = clean(meta.workflowId, 'workflowId', seen, 0);
  for (const [k, v] of Object.entries(meta)) {
    if (DROPPED.has(k) || k in fields || v === undefined) continue;
    fields[k] = clean(v, k, seen, 0);
  }
  return { time: time.toISOString(), level, msg: redact(message), fields };
}

const COLORS: Record<Level, string> = {
  trace: '\x1b[90m',
  debug: '\x1b[36m',
  info: '\x1b[32m',
  warn: '\x1b[33m',
  error: '\x1b[31m',
};

function pretty(l: Line, color: boolean): string {
  const lvl = l.level.toUpperCase().padEnd(5);
  const head = `${l.time.slice(11, 23)} ${color ? `${COLORS[l.level]}${lvl}\x1b[0m` : lvl} ${l.msg}`;
  const rest = Object.entries(l.fields).map(
    ([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`,
  );
  return `${[head, ...rest].join('  ')}\n`;
}

export function createLogger(opts: LoggerOptions = {}): CertflowLogger {
  const out = opts.out ?? process.stdout;
  const threshold = LEVELS.indexOf(opts.level ?? 'info');
  const asPretty = opts.format === 'pretty' || (opts.format !== 'json' && !!out.isTTY);
  const color = asPretty && useColor(opts.env ?? process.env, !!out.isTTY);
  const now = opts.now ?? (() => new Date());

  const make = (base: Record<string, unknown>): CertflowLogger => {
    const log = (level: LogLevel | Level, message: string, meta?: LogMetadata) => {
      const lvl = level.toLowerCase() as Level;
      if (LEVELS.indexOf(lvl) < threshold) return;
      const line = toLine(lvl, message, { ...base, ...meta }, now);
      out.write(
        asPretty
          ? pretty(line, color)
          : `${JSON.stringify({ time: line.time, level: line.level, msg: line.msg, ...line.fields })}\n`,
      );
    };
    return {
      log,
      trace: (m, meta) => log('trace', m, meta),
      debug: (m, meta) => log('debug', m, meta),
      info: (m, meta) => log('info', m, meta),
      warn: (m, meta) => log('warn', m, meta),
      error: (m, meta) => log('error', m, meta),
      child: (fields) => make({ ...base, ...fields }),
    };
  };
  return make({});
}
