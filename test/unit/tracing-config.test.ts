/** The `tracing` configuration key: off when absent, its fields validated by name, its header values secrets. */
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, redactedConfig } from '../../worker/config';
import { secretIssues } from '../../worker/config-secrets';

const problems = (tracing: unknown): string[] => {
  try {
    parseConfig({ tracing }, {});
    return [];
  } catch (err) {
    return (err as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
  }
};

describe('tracing configuration', () => {
  it('is off by default', () => {
    expect(parseConfig({}, {}).tracing).toBeUndefined();
  });

  it('takes an OTLP/HTTP endpoint, with defaults for the service name and the Azure SDK', () => {
    expect(parseConfig({ tracing: { endpoint: 'http://collector:4318/v1/traces' } }, {}).tracing).toEqual({
      endpoint: 'http://collector:4318/v1/traces',
      serviceName: 'certflow-worker',
      azureSdk: true,
    });
  });

  it('names the field that is wrong', () => {
    expect(problems({})).toEqual([expect.stringMatching(/^tracing\.endpoint: /)]);
    expect(problems({ endpoint: 'grpc://collector:4317' })).toEqual([
      'tracing.endpoint: expected an http or https URL like http://otel-collector:4318/v1/traces',
    ]);
    expect(problems({ endpoint: 'http://c:4318/v1/traces', azureSdk: 'yes' })).toEqual([
      expect.stringMatching(/^tracing\.azureSdk: expected true or false/),
    ]);
    expect(problems({ endpoint: 'http://c:4318/v1/traces', sampler: 1 })).toEqual([
      'tracing.sampler: unknown field',
    ]);
    // a header value is a secret reference, never the value itself
    expect(problems({ endpoint: 'http://c:4318/v1/traces', headers: { 'x-api-key': 'plain' } })).toEqual([
      expect.stringMatching(/^tracing\.headers\.x-api-key: expected /),
    ]);
  });

  it('checks the header secrets at start and never shows them', () => {
    const config = parseConfig(
      {
        tracing: {
          endpoint: 'https://otlp.example/v1/traces?token=abc',
          headers: { 'x-api-key': { env: 'OTLP_KEY' } },
        },
      },
      {},
    );
    expect(secretIssues(config, {}).map((i) => i.path)).toEqual(['tracing.headers.x-api-key']);
    expect(secretIssues(config, { OTLP_KEY: 'k' })).toEqual([]);
    expect(JSON.stringify(redactedConfig(config))).not.toContain('abc');
  });
});
