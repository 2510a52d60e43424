/**
 * Benchmark (a script, not a test): N ACME orders at once through Certflow's ACME issuer on pebble (DNS-01 through
 * challtestsrv, PEBBLE_VA_NOSLEEP), without Temporal, the vault or the worker's other work: how long driving an
 * order to its certificate (`poll`, the pollIssuance step) takes when the CA is all there is, and how many requests
 * an order makes, by kind and answer. Prints; writes nothing.
 *
 *   npx tsx bench/acme-orders.ts --n 30
 */
import * as acme from 'acme-client';
import type { InternalAxiosRequestConfig } from 'axios';
import { makeCsr, request } from '../test/support/acme';
import { pebbleIssuer, startPebble } from '../test/support/pebble';
import { parseArgs } from './lib/args';
import { treeCpuSecondsOf } from './lib/machine';
import { summarize } from './lib/stats';

const args = parseArgs(process.argv.slice(2), { n: 30 });
const N = args.n;

interface Seen {
  kind: string;
  ms: number;
}

async function run() {
  const pebble = await startPebble();
  try {
    const issuer = pebbleIssuer(pebble, 'pebble');
    const seen: Seen[] = [];
    const startedAt = new WeakMap<InternalAxiosRequestConfig, number>();
    acme.axios.interceptors.request.use((config) => {
      startedAt.set(config, performance.now());
      return config;
    });
    acme.axios.interceptors.response.use((res) => {
      const path = new URL(String(res.config.url)).pathname.replace(/\/[0-9A-Za-z_-]{8,}/g, '/…');
      const status = (res.data as { status?: unknown } | null)?.status;
      seen.push({
        kind: `${String(res.config.method).toUpperCase()} ${path} → ${typeof status === 'string' ? status : res.status}`,
        ms: performance.now() - (startedAt.get(res.config) ?? performance.now()),
      });
      return res;
    });
    await issuer.accountUrl();
    const names = Array.from({ length: N }, (_, i) => `o${i + 1}.orders.bench.test`);
    const csrs = await Promise.all(names.map((n) => makeCsr('EC', [n])));
    seen.length = 0;
    const cpu0 = { pebble: await treeCpuSecondsOf(pebble.pids.pebble), self: process.cpuUsage() };
    const elu0 = performance.eventLoopUtilization();
    const started = performance.now();
    const pollMs: number[] = [];
    await Promise.all(
      names.map(async (name, i) => {
        const req = request([name], csrs[i]!);
        const placed = await issuer.placeOrder!(req);
        const s = performance.now();
        if (placed.status !== 'pending') throw new Error(`${name}: placeOrder answered ${placed.status}`);
        const out = await issuer.poll!(placed.ref, req);
        pollMs.push(performance.now() - s);
        if (out.status !== 'issued') throw new Error(`${name}: not issued (${out.status})`);
      }),
    );
    const wallMs = performance.now() - started;
    const elu = performance.eventLoopUtilization(elu0).utilization;
    const selfCpu = process.cpuUsage(cpu0.self);
    const pebbleS = (await treeCpuSecondsOf(pebble.pids.pebble)) - cpu0.pebble;
    const byKind = new Map<string, number[]>();
    for (const s of seen) byKind.set(s.kind, [...(byKind.get(s.kind) ?? []), s.ms]);
    console.log(
      `${N} orders at once: ${Math.round(wallMs)} ms in all; poll (pollIssuance) per order ms`,
      summarize(pollMs),
    );
    console.log(
      `CPU: this process ${((selfCpu.user + selfCpu.system) / 1e6).toFixed(2)} s (event loop ${Math.round(elu * 100)} % busy), ` +
        `pebble ${pebbleS.toFixed(2)} s`,
    );
    console.log(`${seen.length} requests, ${(seen.length / N).toFixed(1)} an order:`);
    for (const [kind, ms] of [...byKind].sort((a, b) => b[1].length - a[1].length))
      console.log(`  ${String(ms.length).padStart(5)}  median ${summarize(ms).median} ms  ${kind}`);
  } finally {
    await pebble.stop();
  }
}

run().catch((err: Error) => {
  console.error(`acme-orders failed: ${err.stack ?? err.message}`);
  process.exitCode = 1;
});
