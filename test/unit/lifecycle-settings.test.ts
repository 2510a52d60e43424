/**
 * What a lifecycle carries from the configuration (worker/lifecycle-settings.ts): one function for the worker's
 * own enrolment (enroll-configured.ts), the enrolment check's answer and `certflow enroll --config`.
 */
import type { Client } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../worker/config';
import { enrollConfigured } from '../../worker/enroll-configured';
import { lifecycleSettingsFor } from '../../worker/lifecycle-settings';
import type { CertflowLogger } from '../../worker/logger';

const changeControl = {
  deadlineHours: 48,
  windows: [
    {
      name: 'weeknights',
      cron: '0 22 * * 1-4',
      timeZone: 'Europe/Berlin',
      durationMinutes: 120,
      certificates: { tag: { name: 'tier', value: 'prod' } },
      targets: ['nginx-*'],
    },
  ],
  approval: [{ name: 'payments', certificates: { pattern: 'kv/pay-*' }, approvers: ['alice'] }],
  rollout: [{ name: 'canary', stages: [['canary-nginx'], ['nginx-*']] }],
};

const config = parseConfig(
  {
    vaults: [{ kind: 'local', name: 'kv', dir: '/tmp/certflow-unused', encryptionKey: { env: 'VAULT_KEY' } }],
    issuers: [{ kind: 'command', name: 'ca', command: '/bin/true' }],
    certificates: [
      {
        id: 'kv/pay-api',
        issuer: 'ca',
        mode: 'issue',
        policy: { daysBeforeExpiry: 20 },
        driftWatch: { everyMinutes: 60 },
      },
    ],
    defaults: {
      issuer: 'ca',
      policy: { jitterMinutes: 30 },
      driftWatch: { everyMinutes: 720, jitterMinutes: 60 },
    },
    changeControl,
  },
  { VAULT_KEY: 'unused-here' },
);

describe('lifecycleSettingsFor', () => {
  it('a configured certificate: its own policy, mode and drift watch over the defaults, and the change control', () => {
    expect(lifecycleSettingsFor(config, 'kv/pay-api')).toEqual({
      policy: { daysBeforeExpiry: 20 },
      jitterMinutes: 30,
      mode: 'issue',
      changeControl,
      driftWatch: { everyMinutes: 60, jitterMinutes: 60 },
    });
  });

  it('any other certificate (enrolled by the CLI): the defaults and the same change control, whole', () => {
    // the lifecycle picks the rules that select it (id, pattern, tag, target): the block travels as configured
    expect(lifecycleSettingsFor(config, 'kv/other')).toEqual({
      jitterMinutes: 30,
      changeControl,
      driftWatch: { everyMinutes: 720, jitterMinutes: 60 },
    });
  });

  it('nothing configured: nothing carried', () => {
    expect(lifecycleSettingsFor(parseConfig({}, {}), 'kv/x')).toEqual({});
  });

  it("the worker's own enrolment starts each lifecycle with exactly these settings", async () => {
    const started: Array<Record<string, unknown>> = [];
    const client = {
      workflow: {
        start: async (_type: string, opts: { args: Array<Record<string, unknown>> }) => {
          started.push(opts.args[0]!);
        },
      },
    } as unknown as Client;
    const logger = { info: () => {}, error: () => {} } as unknown as CertflowLogger;
    const results = await enrollConfigured(config, { client, vaults: new Map(), logger });
    expect(results).toEqual([{ certificateId: 'kv/pay-api', status: 'started', created: false }]);
    expect(started[0]).toMatchObject(lifecycleSettingsFor(config, 'kv/pay-api'));
    expect(started[0]!.changeControl).toEqual(changeControl);
  });
});
