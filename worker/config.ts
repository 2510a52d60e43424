/**
 * Certflow's one validated configuration: a JSON file plus environment overrides, checked in full so that
 * every problem is reported at once, each naming its field and what was expected. Secrets are references
 * ({ env } or { file }) resolved only where they are used; no message here ever contains a secret value.
 */
import { globMatch } from '../activities/globs';
import { readFileSync } from 'node:fs';
import { discoveryIssues } from './discovery-config';
import { hostIssues } from './hosts-config';
import type { z } from 'zod';
import { parseCertificateId } from '../activities/ids';
import {
  configSchema,
  type BindingConfig,
  type CertflowConfig,
  type SecretRef,
  type SelectorConfig,
} from './config-schema';

export { configSchema };
export type { BindingConfig, CertflowConfig, IssuerConfig, SecretRef, VaultConfig } from './config-schema';

export interface ConfigIssue {
  /** `vaults[1].url`; `(config)` for the whole file. */
  path: string;
  message: string;
}

export class ConfigError extends Error {
  readonly issues: ConfigIssue[];
  constructor(issues: ConfigIssue[], heading = 'invalid configuration') {
    const n = issues.length;
    super(
      `${heading} (${n} problem${n === 1 ? '' : 's'}):\n${issues.map((i) => `  ${i.path}: ${i.message}`).join('\n')}`,
    );
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/** Environment variables that override a field of the file (string values; numbers converted). */
const ENV_OVERRIDES: ReadonlyArray<{
  variable: string;
  path: string[];
  number?: boolean;
  lower?: boolean;
  boolean?: boolean;
}> = [
  { variable: 'CERTFLOW_TEMPORAL_ALLOW_INSECURE', path: ['temporal', 'allowInsecure'], boolean: true },
  { variable: 'CERTFLOW_TEMPORAL_ADDRESS', path: ['temporal', 'address'] },
  { variable: 'CERTFLOW_TEMPORAL_NAMESPACE', path: ['temporal', 'namespace'] },
  { variable: 'CERTFLOW_TASK_QUEUE', path: ['taskQueue'] },
  { variable: 'CERTFLOW_HTTP_PORT', path: ['http', 'port'], number: true },
  { variable: 'CERTFLOW_HTTP_HOST', path: ['http', 'host'] },
  { variable: 'CERTFLOW_LOG_LEVEL', path: ['log', 'level'], lower: true },
  { variable: 'CERTFLOW_LOG_FORMAT', path: ['log', 'format'], lower: true },
  { variable: 'CERTFLOW_SHUTDOWN_GRACE_SECONDS', path: ['shutdownGraceSeconds'], number: true },
];
/** Set in the environment, the Temporal Cloud API key is used by reference (never copied into the config). */
const API_KEY_VARIABLE = 'CERTFLOW_TEMPORAL_API_KEY';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function applyEnv(raw: Json, env: NodeJS.ProcessEnv): { merged: Json; origins: Map<string, string> } {
  const merged: Json = structuredClone(raw);
  const origins = new Map<string, string>();
  const set = (path: string[], value: unknown, variable: string) => {
    let node: Json = merged;
    for (const key of path.slice(0, -1)) {
      if (node[key] === undefined) node[key] = {};
      const next = node[key];
      if (!isObject(next)) return; // the file's own type error is reported instead
      node = next;
    }
    node[path[path.length - 1]!] = value;
    origins.set(path.join('.'), variable);
  };
  for (const o of ENV_OVERRIDES) {
    const v = env[o.variable];
    if (v === undefined || v === '') continue;
    const value = o.boolean
      ? /^(1|true|yes)$/i.test(v.trim())
        ? true
        : /^(0|false|no)$/i.test(v.trim())
          ? false
          : v
      : o.number && /^\d+$/.test(v.trim())
        ? Number(v.trim())
        : o.lower
          ? v.toLowerCase()
          : v;
    set(o.path, value, o.variable);
  }
  if (env[API_KEY_VARIABLE] && !(isObject(merged.temporal) && merged.temporal.apiKey)) {
    set(['temporal', 'apiKey'], { env: API_KEY_VARIABLE }, API_KEY_VARIABLE);
  }
  return { merged, origins };
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(config)';
}

function toIssues(error: z.ZodError, origins: Map<string, string>): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const iss of error.issues) {
    const path = formatPath(iss.path);
    const from = origins.get(iss.path.join('.'));
    const suffix = from ? ` (set by ${from})` : '';
    if (iss.code === 'unrecognized_keys') {
      for (const key of iss.keys)
        out.push({ path: formatPath([...iss.path, key]), message: 'unknown field' });
      continue;
    }
    if (iss.code === 'invalid_union' && 'discriminator' in iss && iss.discriminator) {
      const options = (iss as { options?: unknown[] }).options ?? [];
      out.push({ path, message: `expected one of ${options.map((o) => JSON.stringify(o)).join(' | ')}` });
      continue;
    }
    out.push({ path, message: plainMessage(iss.message) + suffix });
  }
  return out;
}

/** zod's own wording ("Invalid input: expected object, received string") in the form our messages use. */
function plainMessage(message: string): string {
  const m = /^Invalid input: expected (\w+), received (\w+)$/.exec(message);
  if (!m) return message;
  const [, expected, received] = m;
  return received === 'undefined'
    ? `missing: expected ${article(expected!)}`
    : `expected ${article(expected!)}, got ${article(received!)}`;
}
const article = (t: string) => (t === 'array' || t === 'object' ? `an ${t}` : `a ${t}`);

/** Cross-references the schema cannot see: unique names, certificate ids and issuers that exist. */
function crossCheck(raw: Json): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const list = (key: string): Json[] =>
    Array.isArray(raw[key]) ? (raw[key] as unknown[]).filter(isObject) : [];
  const names = (key: string, field = 'name'): Set<string> => {
    const seen = new Set<string>();
    (Array.isArray(raw[key]) ? (raw[key] as unknown[]) : []).forEach((item, i) => {
      const v = isObject(item) ? item[field] : undefined;
      if (typeof v !== 'string') return;
      if (seen.has(v))
        issues.push({
          path: `${key}[${i}].${field}`,
          message: `expected a unique ${field}: "${v}" appears twice`,
        });
      seen.add(v);
    });
    return seen;
  };
  const vaults = names('vaults');
  // App Service Certificate orders form a vault of their own (certificateOrders.name, default appservice)
  const orders = isObject(raw.certificateOrders) ? raw.certificateOrders : undefined;
  if (orders) vaults.add(typeof orders.name === 'string' ? orders.name : 'appservice');
  const issuers = names('issuers');
  names('bindings');
  names('certificates', 'id');
  const defaults = isObject(raw.defaults) ? raw.defaults : {};
  const known = (set: Set<string>) => [...set].map((n) => `"${n}"`).join(', ') || 'none';
  if (typeof defaults.issuer === 'string' && !issuers.has(defaults.issuer)) {
    issues.push({
      path: 'defaults.issuer',
      message: `expected a configured issuer (known: ${known(issuers)})`,
    });
  }
  list('certificates').forEach((c, i) => {
    if (typeof c.id === 'string') {
      try {
        const { vault } = parseCertificateId(c.id, 'id');
        if (!vaults.has(vault))
          issues.push({
            path: `certificates[${i}].id`,
            message: `expected a configured vault before "/" (known: ${known(vaults)})`,
          });
      } catch (err) {
        issues.push({ path: `certificates[${i}].id`, message: (err as Error).message.replace(/^id: /, '') });
      }
    }
    const issuer = c.issuer ?? defaults.issuer;
    if (issuer === undefined)
      issues.push({
        path: `certificates[${i}].issuer`,
        message: 'missing: expected a configured issuer name (or set defaults.issuer)',
      });
    else if (typeof issuer === 'string' && !issuers.has(issuer) && c.issuer !== undefined)
      issues.push({
        path: `certificates[${i}].issuer`,
        message: `expected a configured issuer (known: ${known(issuers)})`,
      });
  });
  list('issuers').forEach((iss, i) => {
    if (iss.kind !== 'acme') return;
    if (typeof iss.accountKeyVault === 'string' && !vaults.has(iss.accountKeyVault))
      issues.push({
        path: `issuers[${i}].accountKeyVault`,
        message: `expected a configured vault (known: ${known(vaults)})`,
      });
    else if (iss.accountKeyVault === undefined && vaults.size === 0)
      issues.push({
        path: `issuers[${i}].accountKeySecretName`,
        message: 'expected a vault to keep the account key in: configure a vault',
      });
  });
  return issues;
}

/** Validates a configuration object (e.g. parsed JSON) with the environment's overrides applied. */
export function parseConfig(obj: unknown, env: NodeJS.ProcessEnv = process.env): CertflowConfig {
  if (!isObject(obj)) throw new ConfigError([{ path: '(config)', message: 'expected a JSON object' }]);
  const { merged, origins } = applyEnv(obj, env);
  const result = configSchema.safeParse(merged);
  const issues = [...(result.success ? [] : toIssues(result.error, origins)), ...crossCheck(merged)];
  if (result.success) {
    const d = result.data;
    issues.push(
      ...discoveryIssues(d.discovery, {
        vaults: new Set([
          ...d.vaults.map((v) => v.name),
          ...(d.certificateOrders ? [d.certificateOrders.name] : []),
        ]),
        issuers: new Set(d.issuers.map((i) => i.name)),
        defaultIssuer: d.defaults.issuer,
      }),
      ...hostIssues(d.hosts, d.bindings),
    );
  }
  if (issues.length > 0 || !result.success) throw new ConfigError(issues);
  return result.data;
}

/** Reads the file (JSON; `file` or $CERTFLOW_CONFIG; none = defaults and environment only) and validates it. */
export function loadConfig(opts: { file?: string; env?: NodeJS.ProcessEnv } = {}): CertflowConfig {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.CERTFLOW_CONFIG;
  if (!file) return parseConfig({}, env);
  if (/\.ya?ml$/i.test(file)) {
    throw new ConfigError(
      [{ path: file, message: 'expected a JSON file (YAML is not supported yet)' }],
      'unreadable configuration',
    );
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? 'unreadable');
    throw new ConfigError(
      [{ path: file, message: `cannot read the configuration file (${why})` }],
      'unreadable configuration',
    );
  }
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(
      [{ path: file, message: jsonErrorWithoutText(err as Error, text) }],
      'unreadable configuration',
    );
  }
  return parseConfig(obj, env);
}

/** V8's message quotes the input ("... is not valid JSON"): it may hold a secret, so only say where. */
function jsonErrorWithoutText(err: Error, text: string): string {
  const pos = /at position (\d+)/.exec(err.message);
  const what = err.message
    .replace(/,? ".*" is not valid JSON$/s, '')
    .replace(/ in JSON at position \d+$/, '');
  if (!pos) return `not valid JSON (${what})`;
  const before = text.slice(0, Number(pos[1]));
  const line = before.split('\n').length;
  const column = Number(pos[1]) - before.lastIndexOf('\n');
  return `not valid JSON at line ${line} column ${column} (${what})`;
}

/** The value a secret reference points to. Errors name the reference (variable or file), never a value. */
export function resolveSecret(
  ref: SecretRef,
  env: NodeJS.ProcessEnv = process.env,
  field = 'secret',
): string {
  if ('env' in ref) {
    const v = env[ref.env];
    if (v === undefined || v === '')
      throw new ConfigError(
        [{ path: field, message: `expected the environment variable ${ref.env} to be set` }],
        'missing secret',
      );
    return v;
  }
  try {
    return readFileSync(ref.file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError(
      [{ path: field, message: `expected a readable secret file ${ref.file} (${code})` }],
      'missing secret',
    );
  }
}

/** The configuration as it may be logged: references stay (they are not secrets), anything else sensitive goes. */
export function redactedConfig(config: CertflowConfig): unknown {
  const walk = (v: unknown, key: string): unknown => {
    if (typeof v === 'string') return key === 'url' || key === 'endpoint' ? redactUrl(v) : v;
    if (Array.isArray(v)) return v.map((x) => walk(x, key));
    if (!isObject(v)) return v;
    // a command's environment (issuers[].env) may carry plain-text values: show only the names
    if (key === 'env')
      return Object.fromEntries(
        Object.entries(v).map(([k, x]) => [k, typeof x === 'string' ? '[redacted]' : x]),
      );
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, k)]));
  };
  return walk(config, '');
}

function redactUrl(v: string): string {
  try {
    const u = new URL(v);
    if (!u.username && !u.password && !u.search) return v;
    u.username = '';
    u.password = '';
    if (u.search) u.search = '?[redacted]';
    return u.toString();
  } catch {
    return v;
  }
}

export function selectorMatches(
  s: SelectorConfig,
  certificateId: string,
  tags: Record<string, string>,
): boolean {
  const picked =
    (s.ids?.includes(certificateId) ?? false) ||
    (s.pattern !== undefined && globMatch(s.pattern, certificateId));
  // the tag narrows what ids or pattern picked, never widens it (config-schema.ts refuses a tag alone)
  return picked && (s.tag === undefined || tags[s.tag.name] === s.tag.value);
}

/** The bindings whose selector picks this certificate (by id or id pattern, narrowed by tag), in configuration order. */
export function selectBindings(
  config: Pick<CertflowConfig, 'bindings'>,
  certificateId: string,
  tags: Record<string, string> = {},
): BindingConfig[] {
  return config.bindings.filter((b) => selectorMatches(b.certificates, certificateId, tags));
}
