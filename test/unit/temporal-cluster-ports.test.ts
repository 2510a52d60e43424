// Temporal's PostgreSQL schema keeps membership ports in a smallint: the cluster helper must never hand out a port
// from the kernel's ephemeral range (32768+), where "any free port" comes from (every service died at start with
// `value "38577" is out of range for type smallint` before this).
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { clusterPort } from '../support/temporal-cluster';

describe('clusterPort', () => {
  it('gives distinct free loopback ports that fit a smallint', async () => {
    const taken = new Set<number>();
    const ports: number[] = [];
    for (let i = 0; i < 20; i++) ports.push(await clusterPort(taken));
    expect(new Set(ports).size).toBe(20);
    for (const p of ports) {
      expect(p).toBeGreaterThanOrEqual(20_000);
      expect(p).toBeLessThanOrEqual(32_767);
    }
    // each was free: it can be bound
    const srv = net.createServer();
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(ports[0], '127.0.0.1', resolve);
    });
    await new Promise((r) => srv.close(r));
  });
});
