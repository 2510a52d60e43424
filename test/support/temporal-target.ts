/**
 * Which Temporal the tests, benchmarks and chaos suite run against, chosen by one setting:
 *   - CERTFLOW_TEST_TEMPORAL=host:port   an existing server or cluster (namespace CERTFLOW_TEST_TEMPORAL_NAMESPACE,
 *                                         default `default`); Certflow's search attributes are registered there;
 *   - CERTFLOW_TEST_CLUSTER=services|single|1   a real cluster on PostgreSQL started here (temporal-cluster.ts;
 *                                         `1` means `services`: one process per service);
 *   - neither: the CLI's dev server (SQLite), started here: the default.
 */
import { Connection } from '@temporalio/client';
import { ensureSearchAttributes } from '../../worker/search-attributes';
import { startTemporalCluster, type TemporalCluster } from './temporal-cluster';
import { startDevServer } from './temporal';

export type TemporalKind = 'dev-server' | 'cluster' | 'existing';

export interface TemporalTarget {
  kind: TemporalKind;
  address: string;
  namespace: string;
  /** The cluster, when this process started one (to kill and restart its services). */
  cluster?: TemporalCluster;
  /** PIDs of the server processes started here (none for an existing server). */
  pids: () => number[];
  stop(): Promise<void>;
}

const HOST_PORT = /^[A-Za-z0-9.-]+:\d{1,5}$/;

/** The kind of target the environment asks for, validated (a bad value names the variable). */
export function temporalTargetFromEnv(env: NodeJS.ProcessEnv = process.env): {
  kind: TemporalKind;
  address?: string;
  namespace?: string;
  topology?: 'services' | 'single';
} {
  const existing = env.CERTFLOW_TEST_TEMPORAL?.trim();
  const cluster = env.CERTFLOW_TEST_CLUSTER?.trim();
  if (existing && cluster)
    throw new Error(
      'set either CERTFLOW_TEST_TEMPORAL (an existing server) or CERTFLOW_TEST_CLUSTER, not both',
    );
  if (existing) {
    if (!HOST_PORT.test(existing))
      throw new Error(`CERTFLOW_TEST_TEMPORAL must be host:port (e.g. 127.0.0.1:7233), not '${existing}'`);
    return {
      kind: 'existing',
      address: existing,
      namespace: env.CERTFLOW_TEST_TEMPORAL_NAMESPACE || 'default',
    };
  }
  if (cluster) {
    const topology = cluster === '1' ? 'services' : cluster;
    if (topology !== 'services' && topology !== 'single')
      throw new Error(`CERTFLOW_TEST_CLUSTER must be 'services', 'single' or '1', not '${cluster}'`);
    return { kind: 'cluster', topology };
  }
  return { kind: 'dev-server' };
}

export async function startTemporalTarget(opts: { dir: string }): Promise<TemporalTarget> {
  const want = temporalTargetFromEnv();
  if (want.kind === 'existing') {
    const address = want.address!;
    const namespace = want.namespace!;
    const c = await Connection.connect({ address, connectTimeout: 10_000 });
    try {
      await ensureSearchAttributes(c, namespace);
    } finally {
      await c.close();
    }
    return { kind: 'existing', address, namespace, pids: () => [], stop: async () => undefined };
  }
  if (want.kind === 'cluster') {
    const cluster = await startTemporalCluster({ topology: want.topology });
    return {
      kind: 'cluster',
      address: cluster.address,
      namespace: cluster.namespace,
      cluster,
      pids: () => [...Object.values(cluster.pids()), cluster.postgres.pid],
      stop: () => cluster.stop(),
    };
  }
  const server = await startDevServer({ dir: opts.dir });
  return {
    kind: 'dev-server',
    address: server.address,
    namespace: server.namespace,
    pids: () => [server.process.pid],
    stop: () => server.stop(),
  };
}
