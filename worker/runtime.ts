/**
 * Installs Temporal's Runtime for the service, once, before any connection: SDK, workflow and activity logs
 * go through our logger (Core's own logs forwarded too), and the SDK's Prometheus exporter listens on a
 * loopback port that /metrics reads from. Signals are ours: the service drains in its own order.
 */
import net from 'node:net';
import { Runtime } from '@temporalio/worker';
import type { CertflowLogger, Level } from './logger';

/** A loopback port that was free a moment ago (the kernel picks it). */
export async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

const CORE_LEVEL = { trace: 'TRACE', debug: 'DEBUG', info: 'INFO', warn: 'WARN', error: 'ERROR' } as const;

/** Returns the URL of the SDK's metrics. */
export async function installRuntime(opts: {
  logger: CertflowLogger;
  level: Level;
  sdkMetricsPort?: number;
}): Promise<string> {
  const port = opts.sdkMetricsPort ?? (await freeLoopbackPort());
  // Core is chatty below WARN; our own level still filters what is printed
  const core = opts.level === 'trace' || opts.level === 'debug' ? CORE_LEVEL[opts.level] : 'WARN';
  Runtime.install({
    logger: opts.logger,
    shutdownSignals: [],
    telemetryOptions: {
      logging: { filter: { core, other: 'ERROR' }, forward: {} },
      metrics: { prometheus: { bindAddress: `127.0.0.1:${port}` } },
    },
  });
  return `http://127.0.0.1:${port}/metrics`;
}
