/**
 * Every secret reference checked at once (worker/config-secrets.ts), and the Event Grid section's own rules.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../worker/config';
import { checkSecrets, secretIssues, secretRefs } from '../../worker/config-secrets';

const config = (http: Record<string, unknown> = {}) =>
  parseConfig(
    {
      temporal: { apiKey: { env: 'API_KEY' } },
      vaults: [{ kind: 'local', name: 'lv', dir: '/tmp/x', encryptionKey: { env: 'VAULT_KEY' } }],
      issuers: [
        {
          kind: 'command',
          name: 'adcs',
          command: '/bin/true',
          // a variable named "env" with a plain value is not a secret reference
          env: { env: 'production', TOKEN: { env: 'ADCS_TOKEN' } },
        },
      ],
      notify: {
        email: {
          host: 'smtp.example.com',
          port: 587,
          from: 'x@example.com',
          user: 'u',
          password: { env: 'SMTP' },
        },
      },
      http,
    },
    {},
  );

describe('secretIssues', () => {
  it('finds every reference, with its path', () => {
    expect(secretRefs(config()).map((r) => r.path)).toEqual([
      'temporal.apiKey',
      'vaults[0].encryptionKey',
      'issuers[0].env.TOKEN',
      'notify.email.password',
    ]);
  });

  it('names every unset variable in one go, and no value', () => {
    const issues = secretIssues(config(), { SMTP: 'smtp-password-value' });
    expect(issues.map((i) => `${i.path}: ${i.message}`)).toEqual([
      'temporal.apiKey: expected the environment variable API_KEY to be set',
      'vaults[0].encryptionKey: expected the environment variable VAULT_KEY to be set',
      'issuers[0].env.TOKEN: expected the environment variable ADCS_TOKEN to be set',
    ]);
    expect(() => checkSecrets(config(), {})).toThrow(ConfigError);
    expect(() => checkSecrets(config(), {})).toThrow(/4 problems/);
  });

  it('checks the form of keys: 32 bytes for a vault, 32 characters for Event Grid', () => {
    const env = {
      API_KEY: 'a',
      ADCS_TOKEN: 't',
      SMTP: 's',
      VAULT_KEY: 'too-short',
      EG_KEY: 'short-event-grid-key',
    };
    const issues = secretIssues(config({ eventGrid: { key: { env: 'EG_KEY' } } }), env);
    expect(issues.map((i) => i.path)).toEqual(['vaults[0].encryptionKey', 'http.eventGrid.key']);
    expect(issues[1]!.message).toMatch(/at least 32 characters/);
    expect(JSON.stringify(issues)).not.toContain('short-event-grid-key');
    expect(JSON.stringify(issues)).not.toContain('too-short');
  });
});

describe('http.eventGrid', () => {
  const problems = (eventGrid: unknown, port?: number) => {
    try {
      config({ eventGrid, ...(port ? { port } : {}) });
      return [];
    } catch (err) {
      return (err as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
    }
  };

  it('has a listener of its own, away from /metrics', () => {
    expect(config({ eventGrid: { key: { env: 'K' } } }).http.eventGrid).toMatchObject({
      port: 9465,
      cooldownSeconds: 3600,
    });
    expect(problems({ key: { env: 'K' }, port: 9000 }, 9000)).toEqual([
      'http.eventGrid.port: expected a port other than http.port: Event Grid gets a listener of its own, apart from /metrics',
    ]);
  });

  it('needs a key or Entra tokens', () => {
    expect(problems({})).toEqual([
      'http.eventGrid: expected key or entra (or both): an open endpoint would let anyone ask for renewals',
    ]);
    expect(problems({ entra: { tenantId: 't', audience: 'api://certflow' } })).toEqual([]);
    expect(problems({ entra: { tenantId: 't' } })).toEqual([
      'http.eventGrid.entra.audience: missing: expected the application id URI or client id the tokens are for (a string or a list)',
    ]);
  });
});
