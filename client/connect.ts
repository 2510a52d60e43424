/** One place that turns CLI/HTTP settings into a Temporal client. */
import { Client, Connection } from '@temporalio/client';

export interface ClientSettings {
  address: string;
  namespace: string;
}

export function clientSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): ClientSettings {
  return {
    address: env.CERTFLOW_TEMPORAL_ADDRESS ?? env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233',
    namespace: env.CERTFLOW_TEMPORAL_NAMESPACE ?? env.TEMPORAL_NAMESPACE ?? 'default',
  };
}

export async function connectClient(s: ClientSettings): Promise<Client> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ address: s.address, connectTimeout: 5_000 });
  } catch (err) {
    throw new Error(
      `cannot reach Temporal at ${s.address} (set --address or CERTFLOW_TEMPORAL_ADDRESS): ${(err as Error).message}`,
    );
  }
  return new Client({ connection, namespace: s.namespace });
}
