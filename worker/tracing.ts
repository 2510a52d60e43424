/**
 * OpenTelemetry tracing, opt-in (`tracing` in the configuration; off when absent): spans of every workflow,
 * activity and client call through Temporal's OpenTelemetry plugin (@temporalio/interceptors-opentelemetry: the
 * trace context travels in Temporal headers, workflow spans leave the sandbox through a sink), the Azure SDK's
 * own spans (Key Vault, ARM) inside the activities' spans, exported over OTLP/HTTP (JSON) to the configured
 * collector. Span attributes are the SDKs' own (workflow type and id, activity type, HTTP method and host);
 * no payload, header or secret is recorded.
 */
import { createRequire } from 'node:module';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { createAzureSdkInstrumentation } from '@azure/opentelemetry-instrumentation-azure-sdk';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, NoopSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { OpenTelemetryPlugin } from '@temporalio/interceptors-opentelemetry';
import { resolveSecret, type CertflowConfig } from './config';

const require = createRequire(import.meta.url);

export type TracingConfig = NonNullable<CertflowConfig['tracing']>;

export interface Tracing {
  /** For Worker.create and bundleWorkflowCode (`plugins`): client, activity and workflow interceptors. */
  plugin: OpenTelemetryPlugin;
  /** Exports the spans still buffered, then stops. */
  shutdown(): Promise<void>;
}

export function startTracing(cfg: TracingConfig, env: NodeJS.ProcessEnv = process.env): Tracing {
  const headers = Object.fromEntries(
    Object.entries(cfg.headers ?? {}).map(([name, ref]) => [
      name,
      resolveSecret(ref, env, `tracing.headers.${name}`),
    ]),
  );
  const resource = new Resource({ 'service.name': cfg.serviceName });
  const processor = new BatchSpanProcessor(new OTLPTraceExporter({ url: cfg.endpoint, headers }), {
    scheduledDelayMillis: 1_000,
  });
  const provider = new NodeTracerProvider({ resource, spanProcessors: [processor] });
  // global tracer provider, AsyncLocalStorage context and W3C trace-context propagation
  provider.register();
  const unregister = cfg.azureSdk ? instrumentAzureSdk() : () => {};
  return {
    plugin: new OpenTelemetryPlugin({ resource, spanProcessor: processor }),
    async shutdown() {
      unregister();
      await provider.shutdown();
    },
  };
}

/**
 * The plugin as the bundler sees it, for the build's traced workflow bundle (worker/workflow-bundle.ts): bundling
 * takes only its workflow interceptor modules, so it exports nothing; the worker runs with startTracing's plugin.
 */
export function tracingBundlerPlugins(): OpenTelemetryPlugin[] {
  return [new OpenTelemetryPlugin({ resource: new Resource({}), spanProcessor: new NoopSpanProcessor() })];
}

/**
 * The Azure SDK traces through @azure/core-tracing's instrumenter. The instrumentation sets it when core-tracing
 * is required after registration; our code imports the SDK as ES modules (no require hook sees them), so the
 * CommonJS entry is required here once: core-tracing shares its state between its CJS and ESM builds.
 */
function instrumentAzureSdk(): () => void {
  const unregister = registerInstrumentations({ instrumentations: [createAzureSdkInstrumentation()] });
  const fromInstrumentation = createRequire(
    require.resolve('@azure/opentelemetry-instrumentation-azure-sdk'),
  );
  fromInstrumentation('@azure/core-tracing');
  return unregister;
}
