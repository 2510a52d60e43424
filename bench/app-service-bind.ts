/**
 * Benchmark (a script, not a test): time from "sync called" to the last of N App Service host name bindings
 * re-bound and verified live, with the real `@azure/arm-appservice` client against the FAKE ARM server of
 * test/servers/arm-appservice.ts (ARM cannot run here). The fake answers at once unless `latencyMs` adds a
 * simulated round trip to every ARM call; the live probe is a real TLS handshake against the fake's SNI front end.
 * App Service alone picks up a renewed Key Vault certificate within 24-48 hours.
 *
 *   npx tsx bench/app-service-bind.ts      # N=200, 5 runs; prints figures, appends to bench/results/app-service.json
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import prettier from 'prettier';
import { createAppServiceTarget } from '../activities/bindings/app-service';
import type { BindingContext } from '../activities/types';
import { startFakeArm, type FakeArm } from '../test/servers/arm-appservice';
import { createTestCa } from '../test/support/test-ca';

export interface AppServiceBenchOptions {
  bindings: number;
  runs: number;
  /** Simulated ARM round trip added to every call (default 0). */
  latencyMs?: number;
  /** The target's ARM concurrency (default 8, the target's default). */
  concurrency?: number;
}

export interface AppServiceBenchResult {
  benchmark: 'app-service-bind';
  at: string;
  node: string;
  bindings: number;
  runs: number;
  latencyMs: number;
  concurrency: number;
  medianMs: number;
  p95Ms: number;
  samplesMs: number[];
  armRequestsPerRun: number;
}

const KV_ID =
  '/subscriptions/00000000-0000-4000-8000-0000000000aa/resourceGroups/rg-sec/providers/Microsoft.KeyVault/vaults/kv-bench';
const SUBSCRIPTIONS = ['00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002'];
const GROUPS = [
  { name: 'rg-weu', location: 'West Europe' },
  { name: 'rg-eus', location: 'East US' },
];
/** Each web app has one slot; the app and the slot each carry two host names. */
const HOSTS_PER_APP = 2;

export async function runAppServiceBench(opts: AppServiceBenchOptions): Promise<AppServiceBenchResult> {
  const latencyMs = opts.latencyMs ?? 0;
  const concurrency = opts.concurrency ?? 8;
  const ca = createTestCa({ keyType: 'ec' });
  const fake = await startFakeArm();
  try {
    const port = await fake.startFrontend();
    const target = createAppServiceTarget({
      name: 'bench',
      credential: fake.credential,
      clientOptions: fake.clientOptions,
      subscriptions: SUBSCRIPTIONS.map((subscriptionId) => ({ subscriptionId })),
      keyVaultResourceId: () => KV_ID,
      concurrency,
      // the fake finishes an import by the first read after the PUT; App Service itself takes seconds
      importPollMs: 50,
      probe: (hostName) => ({ host: '127.0.0.1', port, servername: hostName, caPem: ca.caCertPem }),
    });
    const samplesMs: number[] = [];
    let armRequests = 0;
    // one unmeasured warm-up run (JIT, TLS session setup, SDK pipeline construction)
    for (let run = -1; run < opts.runs; run++) {
      fake.setLatency(0);
      const ctx = seed(fake, ca, opts.bindings);
      fake.setImportPolls(0);
      fake.setLatency(latencyMs);
      const started = performance.now();
      const outcomes = await target.sync(ctx);
      const elapsed = performance.now() - started;
      const notBound = outcomes.filter((o) => o.status !== 'bound' || !o.probe?.ok);
      if (outcomes.length !== opts.bindings || notBound.length) {
        throw new Error(
          `run ${run}: ${outcomes.length} outcomes for ${opts.bindings} bindings, ${notBound.length} not bound and verified` +
            (notBound[0] ? ` (first: ${notBound[0].binding}: ${notBound[0].detail})` : ''),
        );
      }
      if (run >= 0) {
        samplesMs.push(Math.round(elapsed * 10) / 10);
        armRequests = fake.requests.length;
      }
    }
    const sorted = [...samplesMs].sort((a, b) => a - b);
    return {
      benchmark: 'app-service-bind',
      at: new Date().toISOString(),
      node: process.version,
      bindings: opts.bindings,
      runs: opts.runs,
      latencyMs,
      concurrency,
      medianMs: percentile(sorted, 50),
      p95Ms: percentile(sorted, 95),
      samplesMs,
      armRequestsPerRun: armRequests,
    };
  } finally {
    await fake.close();
  }
}

/** Nearest-rank percentile of sorted samples. */
function percentile(sorted: number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

/**
 * A fresh fleet with `n` bindings on the previous thumbprint, spread over two subscriptions, two resource
 * groups (regions) each, two plans per group, web apps and their slots; the Key Vault secret on the new
 * version and one linked App Service certificate per webspace. Returns the sync context.
 */
function seed(fake: FakeArm, ca: ReturnType<typeof createTestCa>, n: number): BindingContext {
  fake.reset();
  const issue = () => ca.issueServerCert(['*.bench.test'], { keyType: 'ec' });
  const [previous, next] = [issue(), issue()];
  const previousTp = fake.setSecret(KV_ID, 'web', previous);
  const thumbprint = fake.setSecret(KV_ID, 'web', next);
  const plans = SUBSCRIPTIONS.flatMap((subscriptionId) =>
    GROUPS.flatMap((g) => {
      const ids = [1, 2].map((i) =>
        fake.addPlan({
          subscriptionId,
          resourceGroup: g.name,
          name: `plan-${g.name}-${i}`,
          location: g.location,
        }),
      );
      fake.addCertificate({
        subscriptionId,
        resourceGroup: g.name,
        name: 'kv-bench-web',
        serverFarmId: ids[0] as string,
        material: previous,
        keyVault: { keyVaultId: KV_ID, secretName: 'web' },
      });
      return ids.map((serverFarmId) => ({ subscriptionId, resourceGroup: g.name, serverFarmId }));
    }),
  );
  let made = 0;
  const hosts = (app: string) => {
    const count = Math.min(HOSTS_PER_APP, n - made);
    made += count;
    return Array.from({ length: count }, (_, i) => ({
      hostName: `${app}-${i}.bench.test`,
      thumbprint: previousTp,
    }));
  };
  for (let i = 0; made < n; i++) {
    const plan = plans[i % plans.length] as (typeof plans)[number];
    const bindings = hosts(`app${i}`);
    fake.addSite({
      ...plan,
      name: `app${i}`,
      bindings,
      slots: made < n ? { staging: hosts(`app${i}-staging`) } : {},
    });
  }
  return {
    certificateId: 'kv-bench/web',
    version: 'v2',
    thumbprint,
    previousThumbprint: previousTp,
    secretId: 'https://kv-bench.vault.azure.net/secrets/web/v2',
    notAfter: null,
    material: () => Promise.reject(new Error('not used by App Service')),
  };
}

async function main(): Promise<void> {
  const file = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results', 'app-service.json');
  const results: AppServiceBenchResult[] = [];
  for (const latencyMs of [0, 100]) {
    const r = await runAppServiceBench({ bindings: 200, runs: 5, latencyMs });
    results.push(r);
    console.log(
      `App Service, ${r.bindings} bindings (fake ARM${latencyMs ? `, +${latencyMs} ms per ARM call` : ''}, ` +
        `concurrency ${r.concurrency}): median ${r.medianMs} ms, p95 ${r.p95Ms} ms over ${r.runs} runs ` +
        `(${r.armRequestsPerRun} ARM requests a run); App Service alone: 24-48 h`,
    );
  }
  await mkdir(path.dirname(file), { recursive: true });
  const earlier = await readFile(file, 'utf8').then(
    (s) => JSON.parse(s) as unknown[],
    () => [],
  );
  // formatted as the repository's `prettier --check` expects it
  const json = JSON.stringify([...earlier, ...results]);
  await writeFile(
    file,
    await prettier.format(json, { ...(await prettier.resolveConfig(file)), parser: 'json' }),
  );
  console.log(`appended to ${path.relative(process.cwd(), file)}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: Error) => {
    console.error(err.message);
    process.exitCode = 1;
  });
}
