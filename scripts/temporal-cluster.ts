/**
 * The real Temporal cluster (test/support/temporal-cluster.ts) from the command line:
 *   node --import tsx scripts/temporal-cluster.ts start [--topology services|single] [--port N] [--dir D] [--shards N]
 *     starts PostgreSQL and the server, registers the default namespace and Certflow's search attributes, prints
 *     the address and runs until Ctrl-C (then stops everything by PID);
 *   node --import tsx scripts/temporal-cluster.ts make-template
 *     the PostgreSQL data directory with both schemas applied that each start copies (.tools/cluster/pg-template).
 */
import { parseArgs } from 'node:util';
import { makePgTemplate, pgTemplateDir, startTemporalCluster } from '../test/support/temporal-cluster';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    topology: { type: 'string', default: 'services' },
    port: { type: 'string' },
    dir: { type: 'string' },
    shards: { type: 'string', default: '4' },
    'log-level': { type: 'string', default: 'warn' },
  },
});

async function main(): Promise<void> {
  const cmd = positionals[0] ?? 'start';
  if (cmd === 'make-template') {
    const t0 = Date.now();
    await makePgTemplate();
    console.log(`[cluster] ${pgTemplateDir} ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return;
  }
  if (cmd !== 'start') throw new Error(`unknown command '${cmd}' (start | make-template)`);
  const topology = values.topology;
  if (topology !== 'services' && topology !== 'single')
    throw new Error(`--topology must be 'services' or 'single', not '${topology}'`);
  const shards = Number(values.shards);
  if (!Number.isInteger(shards) || shards < 1) throw new Error(`--shards must be a positive integer`);
  const port = values.port === undefined ? undefined : Number(values.port);
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536))
    throw new Error(`--port must be a TCP port number`);
  const t0 = Date.now();
  const cluster = await startTemporalCluster({
    topology,
    historyShards: shards,
    port,
    dir: values.dir,
    logLevel: values['log-level'] as 'warn',
  });
  console.log(
    `[cluster] Temporal ${cluster.address} (namespace ${cluster.namespace}, ${topology}, ${shards} shards, ` +
      `PostgreSQL 127.0.0.1:${cluster.postgres.port}) ready in ${((Date.now() - t0) / 1000).toFixed(1)} s\n` +
      `[cluster] pids ${JSON.stringify(cluster.pids())}; logs in ${cluster.dir}\n` +
      `[cluster] CERTFLOW_TEST_TEMPORAL=${cluster.address} npm test -- test/integration   # run against it\n` +
      `[cluster] Ctrl-C stops it`,
  );
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    console.log('[cluster] stopping');
    cluster.stop({ keep: values.dir !== undefined }).then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(`[cluster] ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
