/**
 * The worker's connection to Temporal: TLS / mTLS / API key from the configuration, retried at start-up until
 * `connectTimeoutSeconds`, then a clear error with address, namespace and cause. A missing namespace is not
 * retried. Once connected, a monitor keeps asking the server so that /readyz can tell when it is gone.
 */
import { readFileSync } from 'node:fs';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, type NativeConnectionOptions } from '@temporalio/worker';
import { hostOfAddress, isLoopbackHost } from '../activities/loopback';
import { dataConverterOf, payloadKeyBytes, type PayloadKey } from '../client/payload-codec';
import { resolveSecret, type CertflowConfig } from './config';
import type { CertflowLogger } from './logger';

type TemporalConfig = CertflowConfig['temporal'];

export class TemporalConnectError extends Error {
  override name = 'TemporalConnectError';
}

export function connectionOptions(t: TemporalConfig, env: NodeJS.ProcessEnv): NativeConnectionOptions {
  const read = (file: string, field: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new TemporalConnectError(
        `temporal.tls.${field}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`,
      );
    }
  };
  const tls = t.tls
    ? {
        ...(t.tls.serverName ? { serverNameOverride: t.tls.serverName } : {}),
        ...(t.tls.caFile ? { serverRootCACertificate: read(t.tls.caFile, 'caFile') } : {}),
        ...(t.tls.certFile && t.tls.keyFile
          ? { clientCertPair: { crt: read(t.tls.certFile, 'certFile'), key: read(t.tls.keyFile, 'keyFile') } }
          : {}),
      }
    : undefined;
  const apiKey = t.apiKey ? resolveSecret(t.apiKey, env, 'temporal.apiKey') : undefined;
  // the configuration refuses this already; kept here for callers that build options themselves
  if (!tls && !apiKey && !t.allowInsecure && !isLoopbackHost(hostOfAddress(t.address)))
    throw new TemporalConnectError(
      `temporal.address ${t.address}: plaintext gRPC beyond this machine is refused; configure temporal.tls or an API key, or set temporal.allowInsecure: true`,
    );
  // an API key is only ever sent over TLS (Temporal Cloud)
  return {
    address: t.address,
    ...(tls || apiKey ? { tls: tls ?? true } : {}),
    ...(apiKey ? { apiKey } : {}),
  };
}

/** The payload keys of `temporal.payloadEncryption` (the first one seals), resolved from their references. */
export function payloadKeysOf(t: TemporalConfig, env: NodeJS.ProcessEnv): PayloadKey[] | undefined {
  return t.payloadEncryption?.keys.map((k, i) => {
    const field = `temporal.payloadEncryption.keys[${i}].key`;
    return { id: k.id, key: payloadKeyBytes(resolveSecret(k.key, env, field), field) };
  });
}

/** The data converter the worker's Workers and Clients share (encrypting payloads when configured). */
export function workerDataConverter(t: TemporalConfig, env: NodeJS.ProcessEnv): DataConverter | undefined {
  return dataConverterOf(payloadKeysOf(t, env));
}

const grpcCode = (err: unknown) => (err as { code?: number }).code;
const NOT_FOUND = 5;

export async function connectTemporal(
  t: TemporalConfig,
  opts: { env?: NodeJS.ProcessEnv; logger?: CertflowLogger; sleep?: (ms: number) => Promise<void> } = {},
): Promise<NativeConnection> {
  const options = connectionOptions(t, opts.env ?? process.env);
  const sleep = opts.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
  const started = Date.now();
  const deadline = started + t.connectTimeoutSeconds * 1000;
  for (let attempt = 1; ; attempt++) {
    let connection: NativeConnection | undefined;
    try {
      connection = await NativeConnection.connect(options);
      await connection.workflowService.describeNamespace({ namespace: t.namespace });
      return connection;
    } catch (err) {
      await connection?.close().catch(() => undefined);
      const cause = ((err as Error).message ?? String(err)).split('\n')[0];
      if (connection && grpcCode(err) === NOT_FOUND) {
        throw new TemporalConnectError(
          `Temporal at ${t.address} has no namespace "${t.namespace}": create it or set temporal.namespace (CERTFLOW_TEMPORAL_NAMESPACE)`,
        );
      }
      const waited = Math.round((Date.now() - started) / 1000);
      if (Date.now() >= deadline) {
        throw new TemporalConnectError(
          `cannot connect to Temporal at ${t.address} (namespace "${t.namespace}") after ${attempt} attempts in ${waited} s: ${cause}`,
        );
      }
      const delay = Math.min(5_000, 500 * 2 ** (attempt - 1), Math.max(0, deadline - Date.now()));
      opts.logger?.warn('Temporal not reachable yet, retrying', {
        address: t.address,
        namespace: t.namespace,
        attempt,
        retryInMs: delay,
        cause,
      });
      await sleep(delay);
    }
  }
}

export interface ConnectionMonitor {
  /** True when the last check (at most `intervalMs` ago) reached the server. */
  readonly ok: boolean;
  readonly detail: string;
  stop(): void;
}

/** Asks the server for its system info every `intervalMs`; a failure shows on /readyz until the next success. */
export function monitorConnection(connection: NativeConnection, intervalMs = 5_000): ConnectionMonitor {
  const state = { ok: true, detail: 'connected' };
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const check = async () => {
    try {
      await connection.withDeadline(Date.now() + Math.min(intervalMs, 3_000), () =>
        connection.workflowService.getSystemInfo({}),
      );
      Object.assign(state, { ok: true, detail: 'connected' });
    } catch (err) {
      Object.assign(state, {
        ok: false,
        detail: `Temporal unreachable: ${(err as Error).message.split('\n')[0]}`,
      });
    }
    if (!stopped) timer = setTimeout(check, intervalMs).unref();
  };
  timer = setTimeout(check, intervalMs).unref();
  return {
    get ok() {
      return state.ok;
    },
    get detail() {
      return state.detail;
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
