/**
 * Certflow's Prometheus metrics, on prom-client: the process and Node runtime metrics (CPU, memory, heap, event
 * loop lag, GC, handles), Certflow's own families, and the Temporal SDK's metrics appended to the same /metrics
 * body (the SDK serves them on a loopback port of its own: Runtime telemetryOptions.metrics.prometheus).
 *
 * Why prom-client and not the Temporal runtime's metric meter: the meter exports only through Core's exporter,
 * has no process or runtime metrics, and cannot remove a series (an unenrolled certificate's expiry would stay
 * forever) nor compute a value when scraped (the fleet below is read from Temporal's visibility at scrape time).
 *
 * Names follow Prometheus conventions and cert-manager's (`certmanager_certificate_expiration_timestamp_seconds`).
 * Labels carry only references: certificate ids (`<vault>/<name>`), vault, phase, binding target names and kinds
 * from the configuration, failure types. Never a URL, a message, a thumbprint or any secret.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { BindingOutcome, BindingProbe, CertificateState } from '../activities/types';
import type { LifecycleRow } from '../activities/lifecycles';
import { Phases } from '../workflows/messages';

/** What activities report; shaped like ActivityDeps.metrics. */
export interface MetricsSink {
  /** A certificate was read from its vault: its expiry becomes the gauge's value. */
  observed(state: CertificateState): void;
  renewed(certificateId: string): void;
  /** `type` is the failure's stable type (e.g. KeyMismatch, AcmeRateLimited). */
  failed(certificateId: string, type: string): void;
  bindings(certificateId: string, outcomes: BindingOutcome[]): void;
  /** An escalation was sent (the ladder while a certificate is not renewed). */
  escalated?(certificateId: string): void;
  /** Drift watch: every binding's answer to a probe (drift counted, the last answer per binding as a gauge). */
  probed?(certificateId: string, answers: BindingProbe[]): void;
  /** The certificate's safety buffer in seconds (null: not known, the series is dropped). */
  safetyBuffer?(certificateId: string, seconds: number | null): void;
}

export interface FleetSource {
  /** Running lifecycles with their search attributes (activities/lifecycles.ts listLifecycles). */
  list(): Promise<LifecycleRow[]>;
  /** Seconds a listing is reused between scrapes (default 30). */
  cacheSeconds?: number;
  /** A listing that takes longer is given up (default 5000 ms). */
  timeoutMs?: number;
}

export interface CertflowMetrics {
  sink: MetricsSink;
  registry: Registry;
  /** Read the fleet (phase, expiry and renewal time of every running lifecycle) from Temporal when scraped. */
  watchFleet(source: FleetSource): void;
  /** Whether each task queue's Worker is polling, read when scraped. */
  watchWorkers(polling: () => Array<{ taskQueue: string; polling: boolean }>): void;
  /** Certflow's families and the process metrics in the text format. */
  render(): Promise<string>;
}

const seconds = (iso: string) => Date.parse(iso) / 1000;
const vaultOf = (certificateId: string) => certificateId.split('/')[0] ?? '';
const BAD_BINDING: ReadonlySet<BindingOutcome['status']> = new Set(['failed', 'rolled-back']);

export interface MetricsOptions {
  /** Process and runtime metrics (default true; tests turn them off for a smaller body). */
  defaultMetrics?: boolean;
  now?: () => Date;
}

export function createMetrics(opts: MetricsOptions = {}): CertflowMetrics {
  const now = opts.now ?? (() => new Date());
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];

  let fleet: FleetSource | undefined;
  let listed: { at: number; done: boolean; run: Promise<void> } | undefined;
  /** One listing per cacheSeconds (and one at a time), shared by the gauges that read it in their collect. */
  const refreshFleet = async (): Promise<void> => {
    if (!fleet) return;
    const ttl = (fleet.cacheSeconds ?? 30) * 1000;
    if (!listed || (listed.done && Date.now() - listed.at >= ttl)) {
      const run: { at: number; done: boolean; run: Promise<void> } = {
        at: Date.now(),
        done: false,
        run: Promise.resolve(),
      };
      run.run = listFleet(fleet).finally(() => (run.done = true));
      listed = run;
    }
    await listed.run;
  };

  const expiration = new Gauge({
    name: 'certflow_certificate_expiration_timestamp_seconds',
    help: 'The date after which the certificate expires (notAfter of its current version), as a Unix timestamp.',
    labelNames: ['certificate', 'vault'],
    registers,
    collect: refreshFleet,
  });
  const renewal = new Gauge({
    name: 'certflow_certificate_renewal_timestamp_seconds',
    help: 'When the lifecycle will renew the certificate (CertificateRenewAt), as a Unix timestamp.',
    labelNames: ['certificate', 'vault'],
    registers,
    collect: refreshFleet,
  });
  const phase = new Gauge({
    name: 'certflow_certificate_phase',
    help: "1 for the certificate's current lifecycle phase (Waiting, Renewing, ..., Paused, Failing).",
    labelNames: ['certificate', 'vault', 'phase'],
    registers,
    collect: refreshFleet,
  });
  const certificates = new Gauge({
    name: 'certflow_certificates',
    help: 'Running certificate lifecycles by phase (from Temporal visibility).',
    labelNames: ['phase'],
    registers,
    collect: refreshFleet,
  });
  const fleetErrors = new Counter({
    name: 'certflow_fleet_listing_errors_total',
    help: 'Failed reads of the running lifecycles from Temporal visibility (the fleet gauges keep their last values).',
    registers,
    collect: refreshFleet,
  });
  const fleetListed = new Gauge({
    name: 'certflow_fleet_listed_timestamp_seconds',
    help: 'When the fleet gauges were last read from Temporal visibility, as a Unix timestamp.',
    registers,
    collect: refreshFleet,
  });
  const renewals = new Counter({
    name: 'certflow_renewals_total',
    help: 'Finished renewal attempts by certificate and result (success: merged into the vault; failure).',
    labelNames: ['certificate', 'vault', 'result'],
    registers,
  });
  const failures = new Counter({
    name: 'certflow_renewal_failures_total',
    help: 'Failed renewal attempts by certificate and failure type (e.g. AcmeRateLimited, KeyMismatch).',
    labelNames: ['certificate', 'vault', 'reason'],
    registers,
  });
  const lastRenewal = new Gauge({
    name: 'certflow_certificate_last_renewal_timestamp_seconds',
    help: 'When this worker last merged a renewed version of the certificate, as a Unix timestamp.',
    labelNames: ['certificate', 'vault'],
    registers,
  });
  const syncs = new Counter({
    name: 'certflow_binding_syncs_total',
    help: 'Binding syncs by certificate, target, binding kind and result (bound, unchanged, rolled-back, failed).',
    labelNames: ['certificate', 'target', 'binding', 'result'],
    registers,
  });
  const bindingFailing = new Gauge({
    name: 'certflow_binding_failing_since_timestamp_seconds',
    help: 'Since when a binding has failed to take the certificate (failed or rolled back); absent when it is on it.',
    labelNames: ['certificate', 'target', 'binding'],
    registers,
  });
  const failingBindings = new Set<string>();
  /** Certificates with an expiry gauge: their vault label and value. */
  const expiring = new Map<string, { vault: string; value: number }>();
  const escalations = new Counter({
    name: 'certflow_escalations_total',
    help: 'Escalations sent while a certificate was not renewed in time.',
    labelNames: ['certificate', 'vault'],
    registers,
  });
  const drift = new Counter({
    name: 'certflow_binding_drift_total',
    help: "Bindings the drift watch found serving another certificate than the vault's current one.",
    labelNames: ['certificate', 'target'],
    registers,
  });
  const probeState = new Gauge({
    name: 'certflow_binding_probe_state',
    help: 'The last drift-watch answer per binding: 1 for the state it is in (serving, drift, invalid, unreachable, unprobeable).',
    labelNames: ['certificate', 'target', 'binding', 'state'],
    registers,
  });
  /** The probe-state series of each certificate, to drop the old answers when new ones come. */
  const probeSeries = new Map<string, Array<Record<string, string>>>();
  const buffer = new Gauge({
    name: 'certflow_safety_buffer_seconds',
    help: 'Time left at renewal beyond what the retry schedule needs through a reference CA outage (workflows/buffer.ts).',
    labelNames: ['certificate'],
    registers,
  });
  let workers: (() => Array<{ taskQueue: string; polling: boolean }>) | undefined;
  new Gauge({
    name: 'certflow_worker_polling',
    help: "1 while this process's Worker polls the task queue, 0 when it does not (starting, draining, failed).",
    labelNames: ['task_queue'],
    registers,
    collect() {
      if (!workers) return;
      this.reset();
      for (const w of workers()) this.set({ task_queue: w.taskQueue }, w.polling ? 1 : 0);
    },
  });

  async function listFleet(source: FleetSource): Promise<void> {
    let rows: LifecycleRow[];
    let timer: NodeJS.Timeout | undefined;
    try {
      // a slow visibility store must not make the scrape time out: the last values stay, the error is counted
      rows = await Promise.race([
        source.list(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('fleet listing timed out')), source.timeoutMs ?? 5_000);
        }),
      ]);
    } catch {
      fleetErrors.inc();
      return;
    } finally {
      clearTimeout(timer);
    }
    for (const g of [renewal, phase, certificates]) g.reset();
    // the expiry is also set by the observe activity (fresher than visibility): only lifecycles gone are dropped
    const running = new Set(rows.map((r) => r.certificateId));
    for (const [certificate, { vault }] of expiring)
      if (!running.has(certificate)) {
        expiration.remove({ certificate, vault });
        expiring.delete(certificate);
      }
    const byPhase = new Map<string, number>(Phases.map((p) => [p, 0]));
    for (const r of rows) {
      const labels = { certificate: r.certificateId, vault: r.vault };
      // a renewal moves the expiry forward: the later of the observed and the listed value is the current one
      const listedExpiry = r.expiresAt ? seconds(r.expiresAt) : undefined;
      if (listedExpiry !== undefined && listedExpiry > (expiring.get(r.certificateId)?.value ?? -Infinity)) {
        expiration.set(labels, listedExpiry);
        expiring.set(r.certificateId, { vault: r.vault, value: listedExpiry });
      }
      if (r.renewAt) renewal.set(labels, seconds(r.renewAt));
      const p = r.phase ?? 'Unknown';
      phase.set({ ...labels, phase: p }, 1);
      byPhase.set(p, (byPhase.get(p) ?? 0) + 1);
    }
    for (const [p, n] of byPhase) certificates.set({ phase: p }, n);
    fleetListed.set(now().getTime() / 1000);
  }

  const sink: MetricsSink = {
    observed(state) {
      const labels = { certificate: state.id, vault: vaultOf(state.id) };
      if (state.notAfter) {
        expiration.set(labels, seconds(state.notAfter));
        expiring.set(state.id, { vault: labels.vault, value: seconds(state.notAfter) });
      } else {
        expiration.remove(labels);
        expiring.delete(state.id);
      }
    },
    renewed(certificateId) {
      const labels = { certificate: certificateId, vault: vaultOf(certificateId) };
      renewals.inc({ ...labels, result: 'success' });
      lastRenewal.set(labels, now().getTime() / 1000);
    },
    failed(certificateId, type) {
      const vault = vaultOf(certificateId);
      renewals.inc({ certificate: certificateId, vault, result: 'failure' });
      failures.inc({ certificate: certificateId, vault, reason: type || 'Unknown' });
    },
    bindings(certificateId, outcomes) {
      for (const o of outcomes) {
        const labels = { certificate: certificateId, target: o.target, binding: o.binding };
        syncs.inc({ ...labels, result: o.status });
        const key = JSON.stringify([certificateId, o.target, o.binding]);
        if (!BAD_BINDING.has(o.status)) {
          failingBindings.delete(key);
          bindingFailing.remove(labels);
        } else if (!failingBindings.has(key)) {
          // the first failure of a run of failures marks when the binding went stale
          failingBindings.add(key);
          bindingFailing.set(labels, now().getTime() / 1000);
        }
      }
    },
    escalated(certificateId) {
      escalations.inc({ certificate: certificateId, vault: vaultOf(certificateId) });
    },
    probed(certificateId, answers) {
      for (const labels of probeSeries.get(certificateId) ?? []) probeState.remove(labels);
      const now: Array<Record<string, string>> = [];
      for (const a of answers) {
        if (a.state === 'drift') drift.inc({ certificate: certificateId, target: a.target });
        const labels = { certificate: certificateId, target: a.target, binding: a.binding, state: a.state };
        probeState.set(labels, 1);
        now.push(labels);
      }
      probeSeries.set(certificateId, now);
    },
    safetyBuffer(certificateId, seconds) {
      if (seconds === null) buffer.remove({ certificate: certificateId });
      else buffer.set({ certificate: certificateId }, seconds);
    },
  };

  return {
    sink,
    registry,
    watchFleet(source) {
      fleet = source;
      listed = undefined;
    },
    watchWorkers(fn) {
      workers = fn;
    },
    render: () => registry.metrics(),
  };
}

/** The SDK's own exposition, fetched from its loopback exporter; a comment line when it cannot be read. */
export async function fetchSdkMetrics(url: string, timeoutMs = 2_000): Promise<string> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return `# temporal SDK metrics unavailable: HTTP ${res.status}\n`;
    const text = await res.text();
    return text.endsWith('\n') || text === '' ? text : `${text}\n`;
  } catch (err) {
    const cause = (err as { cause?: Error }).cause ?? (err as Error);
    return `# temporal SDK metrics unavailable: ${cause.message.replace(/\n/g, ' ')}\n`;
  }
}

/** The whole /metrics body: Certflow's and the process's families, then the SDK's (ours start certflow_). */
export function metricsEndpoint(metrics: CertflowMetrics, sdkMetricsUrl?: string): () => Promise<string> {
  return async () => {
    const own = await metrics.render();
    return (
      (own.endsWith('\n') ? own : `${own}\n`) + (sdkMetricsUrl ? await fetchSdkMetrics(sdkMetricsUrl) : '')
    );
  };
}
