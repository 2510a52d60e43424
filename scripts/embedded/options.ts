/**
 * The embedded start's settings: where its state lives and which loopback ports it takes. Each comes from a
 * flag, else an environment variable, else the default; a bad value is refused naming the flag and the variable.
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

export interface EmbeddedOptions {
  dataDir: string;
  ports: {
    temporal: number;
    ui: number;
    smtp: number;
    mail: number;
    demo: number;
    worker: number;
  };
  /** Lifetime of the demo certificates (the dev CA's validity). */
  validityMinutes: number;
  /**
   * An existing Temporal server or cluster (`host:port`, namespace `default`) to use instead of starting the dev
   * server; null: start the dev server on ports.temporal.
   */
  temporalAddress: string | null;
}

const SETTINGS = {
  'data-dir': { env: 'CERTFLOW_DATA_DIR', help: 'where all state is kept', fallback: '.data' },
  'temporal-port': { env: 'CERTFLOW_TEMPORAL_PORT', help: 'Temporal gRPC', fallback: '7233' },
  'ui-port': { env: 'CERTFLOW_UI_PORT', help: 'Temporal Web UI', fallback: '8233' },
  'smtp-port': { env: 'CERTFLOW_SMTP_PORT', help: 'mail sink, SMTP', fallback: '2525' },
  'mail-port': { env: 'CERTFLOW_MAIL_PORT', help: 'mail sink, web page', fallback: '8025' },
  'demo-port': { env: 'CERTFLOW_DEMO_PORT', help: 'demo site, HTTPS', fallback: '8443' },
  'worker-port': {
    env: 'CERTFLOW_WORKER_PORT',
    help: 'worker /healthz, /readyz, /metrics',
    fallback: '9464',
  },
  'temporal-address': {
    env: 'CERTFLOW_START_TEMPORAL_ADDRESS',
    help: 'use this Temporal (host:port) instead of starting the dev server',
    fallback: '',
  },
  'validity-minutes': {
    env: 'CERTFLOW_DEMO_VALIDITY_MINUTES',
    help: 'lifetime of the demo certificates',
    fallback: '5',
  },
} as const;
type Setting = keyof typeof SETTINGS;

export const USAGE = `usage: npm start -- [options]

Certflow on this machine: Temporal with its Web UI, the worker, a local vault, a dev CA, a mail sink and a
demo site, all on 127.0.0.1. Ctrl-C stops everything; the next start resumes the same state.

options (each also read from the environment variable shown):
${Object.entries(SETTINGS)
  .map(
    ([flag, s]) =>
      `  --${`${flag} <value>`.padEnd(26)} ${s.help} (${s.env}, default ${s.fallback || 'none'})`,
  )
  .join('\n')}
  --help                       this text`;

export class UsageError extends Error {}

function temporalAddress(v: string): string | null {
  if (!v) return null;
  if (!/^[A-Za-z0-9.-]+:\d{1,5}$/.test(v))
    throw new UsageError(
      `--temporal-address (${SETTINGS['temporal-address'].env}): expected host:port, got ${JSON.stringify(v)}`,
    );
  return v;
}

/** Where the worker, the client and the banner find Temporal. */
export const temporalAddressOf = (o: EmbeddedOptions): string =>
  o.temporalAddress ?? `127.0.0.1:${o.ports.temporal}`;

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv, root: string): EmbeddedOptions | null {
  let values: Partial<Record<Setting | 'help', string | boolean>>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        help: { type: 'boolean', short: 'h' },
        ...Object.fromEntries(Object.keys(SETTINGS).map((k) => [k, { type: 'string' as const }])),
      },
    }));
  } catch (err) {
    throw new UsageError(`${(err as Error).message} (see --help)`);
  }
  if (values.help) return null;
  const raw = (k: Setting): string =>
    (values[k] as string | undefined) ?? env[SETTINGS[k].env] ?? SETTINGS[k].fallback;
  const number = (k: Setting, min: number, max: number): number => {
    const v = raw(k);
    const n = /^\d+$/.test(v) ? Number(v) : NaN;
    if (!(n >= min && n <= max))
      throw new UsageError(
        `--${k} (${SETTINGS[k].env}): expected a whole number ${min}-${max}, got ${JSON.stringify(v)}`,
      );
    return n;
  };
  const port = (k: Setting) => number(k, 1, 65535);
  const options: EmbeddedOptions = {
    dataDir: path.resolve(root, raw('data-dir')),
    ports: {
      temporal: port('temporal-port'),
      ui: port('ui-port'),
      smtp: port('smtp-port'),
      mail: port('mail-port'),
      demo: port('demo-port'),
      worker: port('worker-port'),
    },
    validityMinutes: number('validity-minutes', 2, 1440),
    temporalAddress: temporalAddress(raw('temporal-address')),
  };
  const taken = new Map<number, string>();
  for (const [name, p] of Object.entries(options.ports)) {
    // with an existing Temporal, its ports are not ours to take
    if (options.temporalAddress && (name === 'temporal' || name === 'ui')) continue;
    const other = taken.get(p);
    if (other)
      throw new UsageError(`--${name}-port and --${other}-port: both are ${p}; give each its own port`);
    taken.set(p, name);
  }
  return options;
}

/** The Temporal CLI: $CERTFLOW_TEMPORAL_BIN, the project's tools folder (npm run setup), or `temporal` on PATH. */
export function findTemporal(env: NodeJS.ProcessEnv, toolsDir: string): string | null {
  const candidates = [
    env.CERTFLOW_TEMPORAL_BIN,
    path.join(toolsDir, 'venv/bin/temporal'),
    ...(env.PATH ?? '')
      .split(path.delimiter)
      .filter(Boolean)
      .map((d) => path.join(d, 'temporal')),
  ];
  for (const c of candidates) {
    if (!c) continue;
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not there: the next one
    }
  }
  return null;
}
