/**
 * Settings a running lifecycle takes from its workers' current configuration (workflows/lifecycle/settings.ts):
 * the fingerprint the lifecycle sends with each look, the worker's answer (its settings only when they differ), and
 * the `observe` activity over a real local vault answering so.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities/index';
import type { LifecycleSettings } from '../../activities/lifecycles';
import { createLocalVault } from '../../activities/vault/local';
import type { ChangeControl } from '../../workflows/lifecycle/change-control';
import {
  applyLiveSettings,
  liveSettingsOf,
  settingsAnswer,
  settingsFingerprint,
} from '../../workflows/lifecycle/settings';

const freeze: ChangeControl = {
  freezes: [{ name: 'holidays', start: '2026-12-20T00:00:00Z', end: '2027-01-04T00:00:00Z' }],
};

describe('live settings', () => {
  it('fingerprints equal settings alike and different ones apart (16 hex digits)', () => {
    const none = settingsFingerprint(liveSettingsOf({}));
    expect(none).toMatch(/^[0-9a-f]{16}$/);
    expect(settingsFingerprint({ changeControl: null, driftWatch: null })).toBe(none);
    const frozen = settingsFingerprint(liveSettingsOf({ changeControl: freeze }));
    expect(frozen).not.toBe(none);
    expect(settingsFingerprint(liveSettingsOf({ changeControl: structuredClone(freeze) }))).toBe(frozen);
    expect(settingsFingerprint(liveSettingsOf({ driftWatch: { everyMinutes: 60 } }))).not.toBe(none);
  });

  it("answers with the worker's settings only when they differ from what the lifecycle runs under", () => {
    const mine = liveSettingsOf({ changeControl: freeze });
    expect(settingsAnswer(settingsFingerprint(mine), mine)).toBeUndefined();
    expect(settingsAnswer(settingsFingerprint(liveSettingsOf({})), mine)).toEqual(mine);
    // a lifecycle that sent nothing (an earlier release), or a worker that has no settings: nothing changes
    expect(settingsAnswer(undefined, mine)).toBeUndefined();
    expect(settingsAnswer(settingsFingerprint(mine), undefined)).toBeUndefined();
  });

  it('takes settings into the input, removing what is null, keeping everything else', () => {
    const input = {
      certificateId: 'kv/a',
      issuer: 'ca',
      changeControl: freeze,
      driftWatch: { everyMinutes: 60 },
    };
    applyLiveSettings(input, { changeControl: null, driftWatch: { everyMinutes: 5 } });
    expect(input).toEqual({ certificateId: 'kv/a', issuer: 'ca', driftWatch: { everyMinutes: 5 } });
    applyLiveSettings(input, liveSettingsOf({ changeControl: freeze }));
    expect(input).toEqual({ certificateId: 'kv/a', issuer: 'ca', changeControl: freeze });
  });
});

describe('the observe activity answering with settings', () => {
  const tmp = mkdtempSync(path.join(tmpdir(), 'live-settings-'));
  const vault = createLocalVault({
    name: 'lv',
    dir: path.join(tmp, 'vault'),
    encryptionKey: Buffer.alloc(32, 5),
  });
  let configured: LifecycleSettings = {};
  const acts = createActivities({
    vaults: new Map([['lv', vault]]),
    issuers: new Map(),
    notifier: null,
    lifecycleSettings: () => configured,
  });
  beforeAll(async () => {
    await vault.create('a', {
      subject: 'CN=a.example.test',
      dnsNames: ['a.example.test'],
      issuerName: 'Unknown',
      key: { keyType: 'EC', curve: 'P-256', reuseKey: false, exportable: true },
    });
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('adds the settings when they differ, nothing when they match or no fingerprint came', async () => {
    const ranUnder = settingsFingerprint(liveSettingsOf({}));
    expect(await acts.observe('lv/a', { settingsFingerprint: ranUnder })).not.toHaveProperty('settings');
    configured = { changeControl: freeze, jitterMinutes: 30 };
    const answer = await acts.observe('lv/a', { settingsFingerprint: ranUnder });
    expect(answer.settings).toEqual({ changeControl: freeze, driftWatch: null });
    expect(answer.name).toBe('a');
    const now = settingsFingerprint(answer.settings!);
    expect(await acts.observe('lv/a', { settingsFingerprint: now })).not.toHaveProperty('settings');
    expect(await acts.observe('lv/a')).not.toHaveProperty('settings');
  });
});
