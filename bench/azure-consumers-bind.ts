/**
 * Benchmark part (a script, not a test), used by bench/bindings.ts: time from "sync called" to the last of N
 * bindings of one Azure consumer re-bound and verified live, with the real ARM SDK client against its FAKE ARM
 * server (test/servers/arm-*.ts: ARM cannot run here):
 * - app-gateway: N SSL certificates (versioned Key Vault references), 10 per gateway, one listener each;
 * - front-door: N customer-certificate secrets (pinned versions), 10 per profile, one custom domain each;
 * - api-management: N custom domains (versioned Key Vault ids), 10 per service.
 * Each update is a long-running operation the fake ends after one poll; the SDK polls every `pollIntervalMs`
 * (100 ms here; Azure's own Retry-After is 10 s or more and its updates take minutes, which no fake can show).
 * `latencyMs` adds a simulated ARM round trip to every call. The live probe is a real TLS handshake with SNI against
 * the fake's front end, checked against the test CA. Azure's consumers alone pick a new version up in 4-72 hours.
 */
import { createApiManagementTarget } from '../activities/bindings/api-management';
import { createAppGatewayTarget } from '../activities/bindings/app-gateway';
import { createFrontDoorTarget } from '../activities/bindings/front-door';
import type { BindingContext, BindingTarget } from '../activities/types';
import { startFakeApiManagement } from '../test/servers/arm-apimanagement';
import { startFakeFrontDoor } from '../test/servers/arm-cdn';
import type { FakeArmCore } from '../test/servers/arm-fake';
import { startFakeNetwork } from '../test/servers/arm-network';
import { createTestCa } from '../test/support/test-ca';
import { round, summarize, type Summary } from './lib/stats';

export type AzureConsumer = 'app-gateway' | 'front-door' | 'api-management';
export const AZURE_CONSUMERS: AzureConsumer[] = ['app-gateway', 'front-door', 'api-management'];

export interface AzureConsumerBenchResult {
  consumer: AzureConsumer;
  bindings: number;
  /** Bindings per gateway / profile / service (one update each). */
  perResource: number;
  runs: number;
  latencyMs: number;
  pollIntervalMs: number;
  concurrency: number;
  ms: Summary;
  samplesMs: number[];
  armRequestsPerRun: number;
  allVerified: boolean;
}

const SUB = '00000000-0000-4000-8000-0000000000b3';
const KV = 'kv-bench.vault.azure.net';
const KV_ARM_ID = `/subscriptions/${SUB}/resourceGroups/rg-sec/providers/Microsoft.KeyVault/vaults/kv-bench`;
const PER_RESOURCE = 10;
const POLL_MS = 100;

export async function runAzureConsumerBench(opts: {
  consumer: AzureConsumer;
  bindings: number;
  runs: number;
  latencyMs: number;
  concurrency?: number;
}): Promise<AzureConsumerBenchResult> {
  const ca = createTestCa({ keyType: 'ec' });
  const issue = () => ca.issueServerCert(['*.bench.test'], { keyType: 'ec' });
  const n = opts.bindings;
  const resources = Math.ceil(n / PER_RESOURCE);
  const hostOf = (r: number, i: number) => `r${r}-${i}.bench.test`;
  const concurrency = opts.concurrency ?? 4;
  const slots = Array.from({ length: resources }, (_, r) =>
    Array.from({ length: Math.min(PER_RESOURCE, n - r * PER_RESOURCE) }, (_, i) => i),
  );
  const { fake, seed } = await startConsumer(opts.consumer);
  try {
    fake.setPageSize(100);
    fake.setLroPolls(1);
    let version = 1;
    let current = fake.vault.put(KV, 'web', issue(), `v${version}`);
    const port = await seed(slots, hostOf);
    const common = {
      name: opts.consumer,
      credential: fake.credential,
      clientOptions: fake.clientOptions,
      subscriptions: [{ subscriptionId: SUB }],
      concurrency,
      pollIntervalMs: POLL_MS,
      probe: (hostName: string) => ({ host: '127.0.0.1', port, servername: hostName, caPem: ca.caCertPem }),
      probeSettleMs: 5_000,
    };
    const target: BindingTarget =
      opts.consumer === 'app-gateway'
        ? createAppGatewayTarget(common)
        : opts.consumer === 'front-door'
          ? createFrontDoorTarget({ ...common, keyVaultResourceId: () => KV_ARM_ID })
          : createApiManagementTarget(common);

    const samplesMs: number[] = [];
    let armRequests = 0;
    let allVerified = true;
    // one unmeasured warm-up run (JIT, TLS session setup, SDK pipeline construction)
    for (let run = -1; run < opts.runs; run++) {
      const previous = current;
      current = fake.vault.put(KV, 'web', issue(), `v${++version}`);
      const ctx: BindingContext = {
        certificateId: 'kv-bench/web',
        version: current.version,
        thumbprint: current.thumbprint,
        previousThumbprint: previous.thumbprint,
        secretId: `https://${KV}/secrets/web/${current.version}`,
        notAfter: null,
        material: () => Promise.reject(new Error('not used by Azure consumers')),
      };
      fake.setLatency(opts.latencyMs);
      fake.requests.length = 0;
      const started = performance.now();
      const outcomes = await target.sync(ctx);
      const elapsed = performance.now() - started;
      fake.setLatency(0);
      const verified = outcomes.filter((o) => o.status === 'bound' && o.probe?.ok).length;
      if (outcomes.length !== n || verified !== n) {
        allVerified = false;
        const bad = outcomes.find((o) => o.status !== 'bound' || !o.probe?.ok);
        console.log(
          `  ${opts.consumer} run ${run}: ${verified}/${n} verified (first: ${bad?.binding}: ${bad?.detail?.slice(0, 200)})`,
        );
      }
      if (run >= 0) {
        samplesMs.push(round(elapsed));
        armRequests = fake.requests.length;
      }
      console.log(
        `  ${opts.consumer}, ${n} bindings, +${opts.latencyMs} ms/call, run ${run < 0 ? 'warm-up' : run + 1}: ${round(elapsed)} ms, ${verified}/${n} verified live`,
      );
    }
    return {
      consumer: opts.consumer,
      bindings: n,
      perResource: PER_RESOURCE,
      runs: opts.runs,
      latencyMs: opts.latencyMs,
      pollIntervalMs: POLL_MS,
      concurrency,
      ms: summarize(samplesMs),
      samplesMs,
      armRequestsPerRun: armRequests,
      allVerified,
    };
  } finally {
    await fake.close();
  }
}

type Slots = number[][];
type HostOf = (r: number, i: number) => string;

/** The consumer's fake, and a seeder that creates its resources (10 bindings each) and starts its TLS front end. */
async function startConsumer(
  consumer: AzureConsumer,
): Promise<{ fake: FakeArmCore; seed: (slots: Slots, hostOf: HostOf) => Promise<number> }> {
  if (consumer === 'app-gateway') {
    const f = await startFakeNetwork();
    return {
      fake: f,
      async seed(slots, hostOf) {
        for (const [r, items] of slots.entries())
          await f.addGateway({
            subscriptionId: SUB,
            resourceGroup: 'rg-bench',
            name: `gw${r}`,
            sslCertificates: items.map((i) => ({
              name: `c${i}`,
              keyVaultSecretId: `https://${KV}/secrets/web/v1`,
            })),
            listeners: items.map((i) => ({
              name: `l${i}`,
              hostNames: [hostOf(r, i)],
              sslCertificate: `c${i}`,
            })),
          });
        return f.startListeners();
      },
    };
  }
  if (consumer === 'front-door') {
    const f = await startFakeFrontDoor();
    return {
      fake: f,
      async seed(slots, hostOf) {
        for (const [r, items] of slots.entries())
          await f.addProfile({
            subscriptionId: SUB,
            resourceGroup: 'rg-bench',
            name: `afd${r}`,
            secrets: items.map((i) => ({
              name: `s${i}`,
              secretSource: `${KV_ARM_ID}/secrets/web`,
              secretVersion: 'v1',
            })),
            domains: items.map((i) => ({ name: `d${i}`, hostName: hostOf(r, i), secret: `s${i}` })),
          });
        return f.startDomains();
      },
    };
  }
  const f = await startFakeApiManagement();
  return {
    fake: f,
    async seed(slots, hostOf) {
      for (const [r, items] of slots.entries())
        await f.addService({
          subscriptionId: SUB,
          resourceGroup: 'rg-bench',
          name: `apim${r}`,
          hostnames: items.map((i) => ({
            type: 'Proxy' as const,
            hostName: hostOf(r, i),
            keyVaultId: `https://${KV}/secrets/web/v1`,
          })),
        });
      return f.startGateway();
    },
  };
}
