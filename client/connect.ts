/**
 * One place that turns CLI/HTTP settings into a Temporal client: address and namespace, plus mTLS
 * (CERTFLOW_TEMPORAL_TLS_CERT / _KEY / _CA / _SERVER_NAME, file paths) or a Temporal Cloud API key
 * (CERTFLOW_TEMPORAL_API_KEY, the key itself, from the environment only; never echoed).
 * Plaintext to an address that is not loopback is refused unless CERTFLOW_TEMPORAL_ALLOW_INSECURE=true; the
 * worker's payload keys (CERTFLOW_TEMPORAL_PAYLOAD_KEYS, `id=key,...`) make the same data converter.
 */
import { Client, Connection, type TLSConfig } from '@temporalio/client';
import { readFileSync } from 'node:fs';
import { hostOfAddress, isLoopbackHost } from '../activities/loopback';
import { dataConverterOf, parseKeyRing } from './payload-codec';

export const PAYLOAD_KEYS_VARIABLE = 'CERTFLOW_TEMPORAL_PAYLOAD_KEYS';

export interface ClientSettings {
  address: string;
  namespace: string;
  tls?: { certFile?: string; keyFile?: string; caFile?: string; serverName?: string };
  apiKey?: string;
  /** Plaintext gRPC to a non-loopback address (CERTFLOW_TEMPORAL_ALLOW_INSECURE). */
  allowInsecure?: boolean;
  /** The payload key ring as in CERTFLOW_TEMPORAL_PAYLOAD_KEYS (`id=key,...`, the first one seals). */
  payloadKeyRing?: string;
}

export function clientSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): ClientSettings {
  const tls = {
    ...(env.CERTFLOW_TEMPORAL_TLS_CERT ? { certFile: env.CERTFLOW_TEMPORAL_TLS_CERT } : {}),
    ...(env.CERTFLOW_TEMPORAL_TLS_KEY ? { keyFile: env.CERTFLOW_TEMPORAL_TLS_KEY } : {}),
    ...(env.CERTFLOW_TEMPORAL_TLS_CA ? { caFile: env.CERTFLOW_TEMPORAL_TLS_CA } : {}),
    ...(env.CERTFLOW_TEMPORAL_TLS_SERVER_NAME ? { serverName: env.CERTFLOW_TEMPORAL_TLS_SERVER_NAME } : {}),
  };
  return {
    address: env.CERTFLOW_TEMPORAL_ADDRESS ?? env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233',
    namespace: env.CERTFLOW_TEMPORAL_NAMESPACE ?? env.TEMPORAL_NAMESPACE ?? 'default',
    ...(Object.keys(tls).length ? { tls } : {}),
    ...(env.CERTFLOW_TEMPORAL_API_KEY ? { apiKey: env.CERTFLOW_TEMPORAL_API_KEY } : {}),
    ...(/^(1|true|yes)$/i.test(env.CERTFLOW_TEMPORAL_ALLOW_INSECURE ?? '') ? { allowInsecure: true } : {}),
    ...(env[PAYLOAD_KEYS_VARIABLE] ? { payloadKeyRing: env[PAYLOAD_KEYS_VARIABLE] } : {}),
  };
}

/** The connection's TLS options; a file that cannot be read is named (its content never is). */
export function tlsOf(s: ClientSettings): TLSConfig | boolean | undefined {
  const t = s.tls;
  if (!t) return s.apiKey ? true : undefined; // Temporal Cloud with an API key speaks TLS
  if (!!t.certFile !== !!t.keyFile)
    throw new Error(
      'CERTFLOW_TEMPORAL_TLS_CERT and CERTFLOW_TEMPORAL_TLS_KEY: expected both files or neither',
    );
  const read = (what: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new Error(`${what}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  };
  return {
    ...(t.serverName ? { serverNameOverride: t.serverName } : {}),
    ...(t.caFile ? { serverRootCACertificate: read('CERTFLOW_TEMPORAL_TLS_CA', t.caFile) } : {}),
    ...(t.certFile && t.keyFile
      ? {
          clientCertPair: {
            crt: read('CERTFLOW_TEMPORAL_TLS_CERT', t.certFile),
            key: read('CERTFLOW_TEMPORAL_TLS_KEY', t.keyFile),
          },
        }
      : {}),
  };
}

export async function connectClient(s: ClientSettings): Promise<Client> {
  const tls = tlsOf(s);
  if (tls === undefined && !s.allowInsecure && !isLoopbackHost(hostOfAddress(s.address)))
    throw new Error(
      `refusing plaintext gRPC to ${s.address}, which is not loopback: set CERTFLOW_TEMPORAL_TLS_CA (and _CERT/_KEY) or CERTFLOW_TEMPORAL_API_KEY, or CERTFLOW_TEMPORAL_ALLOW_INSECURE=true on a network you trust`,
    );
  const dataConverter = dataConverterOf(
    s.payloadKeyRing ? parseKeyRing(s.payloadKeyRing, PAYLOAD_KEYS_VARIABLE) : undefined,
  );
  let connection: Connection;
  try {
    connection = await Connection.connect({
      address: s.address,
      connectTimeout: 5_000,
      ...(tls !== undefined ? { tls } : {}),
      ...(s.apiKey ? { apiKey: s.apiKey, metadata: { 'temporal-namespace': s.namespace } } : {}),
    });
  } catch (err) {
    throw new Error(
      `cannot reach Temporal at ${s.address} (set --address or CERTFLOW_TEMPORAL_ADDRESS): ${(err as Error).message}`,
    );
  }
  return new Client({ connection, namespace: s.namespace, ...(dataConverter ? { dataConverter } : {}) });
}
