/**
 * Reaching a production-style vault URL (https://<name>.vault.azure.net, no port) served by our test Key Vault:
 * an https.Agent for the SDK clients' `agent` option whose connections go to 127.0.0.1:<port>. Only the address
 * is replaced (no DNS here); TLS verification stays whole: the server name sent and checked is the vault's host,
 * and the chain must lead to `caPem`. Nothing else of the client's configuration changes.
 */
import https from 'node:https';
import type { Duplex } from 'node:stream';

type Connect = (options: { host?: string; servername?: string }, callback?: unknown) => Duplex;

export function agentToLocalVault(port: number, caPem: string): https.Agent {
  const agent = new https.Agent({ ca: caPem });
  const open = agent as unknown as { createConnection: Connect };
  const connect = open.createConnection.bind(agent);
  open.createConnection = (options, callback) =>
    connect(
      { ...options, servername: options.servername ?? options.host, host: '127.0.0.1', port } as never,
      callback,
    );
  return agent;
}
