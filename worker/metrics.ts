/**
 * Certflow's own Prometheus metrics (text exposition format 0.0.4, written by hand: seven families do not need
 * a client library), and the /metrics body that appends the Temporal SDK's metrics, which the SDK serves on a
 * loopback port of its own (Runtime telemetryOptions.metrics.prometheus).
 */
import type { BindingOutcome, BindingProbe, CertificateState } from '../activities/types';

/** What activities report; shaped like ActivityDeps.metrics. */
export interface MetricsSink {
  /** A certificate was read from its vault: its expiry becomes the gauge's value. */
  observed(state: CertificateState): void;
  renewed(certificateId: string): void;
  /** `type` is the failure's stable type (e.g. KeyMismatch, AcmeRateLimited). */
  failed(certificateId: string, type: string): void;
  bindings(certificateId: string, outcomes: BindingOutcome[]): void;
  /** Drift watch: every binding's answer to a probe (drift counted, the last answer per binding as a gauge). */
  probed?(certificateId: string, answers: BindingProbe[]): void;
  /** The certificate's safety buffer in seconds (null: not known, the series is dropped). */
  safetyBuffer?(certificateId: string, seconds: number | null): void;
}

export interface CertflowMetrics {
  sink: MetricsSink;
  /** Certflow's families in the text format. */
  render(): string;
}

type Labels = Record<string, string>;

interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  series: Map<string, { labels: Labels; value: number }>;
}

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const keyOf = (labels: Labels) => JSON.stringify(Object.entries(labels).sort());
const formatValue = (v: number) => (Number.isFinite(v) ? String(v) : v > 0 ? '+Inf' : v < 0 ? '-Inf' : 'NaN');

function family(name: string, type: Family['type'], help: string): Family {
  return { name, type, help, series: new Map() };
}

function add(f: Family, labels: Labels, by = 1): void {
  const k = keyOf(labels);
  const s = f.series.get(k);
  if (s) s.value += by;
  else f.series.set(k, { labels, value: by });
}

function renderFamily(f: Family): string {
  const lines = [`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`];
  for (const { labels, value } of f.series.values()) {
    const l = Object.entries(labels)
      .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
      .join(',');
    lines.push(`${f.name}${l ? `{${l}}` : ''} ${formatValue(value)}`);
  }
  return `${lines.join('\n')}\n`;
}

export function createMetrics(): CertflowMetrics {
  const expiry = family(
    'certflow_certificate_expiry_timestamp_seconds',
    'gauge',
    'Expiry (notAfter) of the current version of each certificate, as a Unix timestamp.',
  );
  const renewals = family(
    'certflow_renewals_total',
    'counter',
    'Renewal attempts by certificate and outcome.',
  );
  const failures = family(
    'certflow_renewal_failures_total',
    'counter',
    'Failed renewal attempts by failure type.',
  );
  const syncs = family('certflow_binding_syncs_total', 'counter', 'Binding syncs by target and outcome.');
  const drift = family(
    'certflow_binding_drift_total',
    'counter',
    "Bindings the drift watch found serving another certificate than the vault's current one.",
  );
  const probeState = family(
    'certflow_binding_probe_state',
    'gauge',
    'The last drift-watch answer per binding: 1 for the state it is in (serving, drift, invalid, unreachable, unprobeable).',
  );
  const buffer = family(
    'certflow_safety_buffer_seconds',
    'gauge',
    'Time left before expiry when a renewal that starts into a reference CA outage gets through (workflows/buffer.ts); negative: it would not.',
  );
  const families = [expiry, renewals, failures, syncs, drift, probeState, buffer];

  return {
    sink: {
      observed(state) {
        const k = keyOf({ certificate: state.id });
        if (!state.notAfter) expiry.series.delete(k);
        else
          expiry.series.set(k, {
            labels: { certificate: state.id },
            value: Date.parse(state.notAfter) / 1000,
          });
      },
      renewed(certificateId) {
        add(renewals, { certificate: certificateId, status: 'renewed' });
      },
      failed(certificateId, type) {
        add(renewals, { certificate: certificateId, status: 'failed' });
        add(failures, { reason: type || 'Unknown' });
      },
      bindings(_certificateId, outcomes) {
        for (const o of outcomes) add(syncs, { target: o.target, status: o.status });
      },
      probed(certificateId, answers) {
        for (const [k, s] of probeState.series)
          if (s.labels.certificate === certificateId) probeState.series.delete(k);
        for (const a of answers) {
          if (a.state === 'drift') add(drift, { certificate: certificateId, target: a.target });
          const labels = { certificate: certificateId, target: a.target, binding: a.binding, state: a.state };
          probeState.series.set(keyOf(labels), { labels, value: 1 });
        }
      },
      safetyBuffer(certificateId, seconds) {
        const labels = { certificate: certificateId };
        if (seconds === null) buffer.series.delete(keyOf(labels));
        else buffer.series.set(keyOf(labels), { labels, value: seconds });
      },
    },
    render: () => families.map(renderFamily).join(''),
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

/** The whole /metrics body: Certflow's families, then the SDK's (names do not collide: ours start certflow_). */
export function metricsEndpoint(metrics: CertflowMetrics, sdkMetricsUrl?: string): () => Promise<string> {
  return async () => metrics.render() + (sdkMetricsUrl ? await fetchSdkMetrics(sdkMetricsUrl) : '');
}
