/** Starts a real Temporal dev server (the CLI from PyPI) for tests and the local stack. */
import { Connection } from '@temporalio/client';
import path from 'node:path';
import { ensureSearchAttributes } from '../../worker/search-attributes';
import { freePort, startProcess, type Started } from './proc';
import { tools } from './tools';

export interface DevServer {
  address: string;
  uiUrl: string | null;
  namespace: string;
  process: Started;
  stop(): Promise<void>;
}

/**
 * SQLite in WAL mode with `synchronous=normal`: about twice the dev server's throughput of the CLI's default
 * rollback journal (bench/results/fleet-1000*.json). A killed server loses nothing committed; only a power cut
 * may lose the last transactions, acceptable for a dev server.
 */
export const WAL_PRAGMAS = ['journal_mode=wal', 'synchronous=normal'];

export async function startDevServer(opts: {
  dir: string;
  ui?: boolean;
  dbFile?: string;
  port?: number;
  uiPort?: number;
  /** `--sqlite-pragma` values; default WAL_PRAGMAS, `[]` for the CLI's defaults. */
  sqlitePragmas?: string[];
  /** `--dynamic-config-value KEY=JSON` for each entry (e.g. `system.enableActivityEagerExecution: true`). */
  dynamicConfig?: Record<string, unknown>;
}): Promise<DevServer> {
  const port = opts.port ?? (await freePort());
  const uiPort = opts.ui ? (opts.uiPort ?? (await freePort())) : null;
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--log-level', 'warn'];
  args.push('--http-port', String(await freePort()), '--metrics-port', String(await freePort()));
  if (uiPort) args.push('--ui-port', String(uiPort), '--ui-ip', '127.0.0.1', '--ui-disable-news-fetch');
  else args.push('--headless');
  args.push('--db-filename', opts.dbFile ?? path.join(opts.dir, 'temporal.db'));
  for (const pragma of opts.sqlitePragmas ?? WAL_PRAGMAS) args.push('--sqlite-pragma', pragma);
  for (const [key, value] of Object.entries(opts.dynamicConfig ?? {}))
    args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  const address = `127.0.0.1:${port}`;
  const proc = await startProcess({
    name: 'temporal',
    command: tools.temporal(),
    args,
    logDir: opts.dir,
    readyTimeoutMs: 60_000,
    ready: async () => {
      const c = await Connection.connect({ address, connectTimeout: 1_000 });
      try {
        await c.workflowService.getSystemInfo({});
        return true;
      } finally {
        await c.close();
      }
    },
  });
  const namespace = 'default';
  const c = await Connection.connect({ address });
  try {
    await ensureSearchAttributes(c, namespace);
  } finally {
    await c.close();
  }
  return {
    address,
    namespace,
    uiUrl: uiPort ? `http://127.0.0.1:${uiPort}` : null,
    process: proc,
    stop: () => proc.stop(),
  };
}
