/**
 * Discovery is opt-in: without a configured tag only certificates tagged Certflow=enroll are discovered, both in
 * the schedule's input (discoveryPlan) and in the listing activity itself (a stale schedule input cannot widen it).
 * The activity runs over a real local vault in Temporal's MockActivityEnvironment.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFleetActivities, type VaultListing } from '../../activities/fleet';
import { createLocalVault, type LocalVault } from '../../activities/vault/local';
import { ConfigError, parseConfig } from '../../worker/config';
import { DEFAULT_DISCOVERY_TAG, discoveryPlan, discoveryTag } from '../../worker/discovery-config';

const tmp = mkdtempSync(path.join(tmpdir(), 'certflow-discovery-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const config = (discovery: Record<string, unknown>) =>
  parseConfig(
    {
      vaults: [{ kind: 'local', name: 'lv', dir: tmp, encryptionKey: { env: 'K' } }],
      issuers: [{ kind: 'dev-ca', name: 'dev', dir: tmp, validity: { days: 1 } }],
      defaults: { issuer: 'dev' },
      discovery,
    },
    {},
  );
const plan = (discovery: Record<string, unknown>) => {
  const c = config(discovery);
  return discoveryPlan(c.discovery!, { vaults: new Set(['lv']), defaultIssuer: 'dev' }).input;
};

describe('discovery configuration', () => {
  it('requires the opt-in tag Certflow=enroll by default', () => {
    expect(plan({}).tag).toEqual({ name: 'Certflow', value: 'enroll' });
    expect(discoveryTag(config({}).discovery!)).toEqual(DEFAULT_DISCOVERY_TAG);
  });

  it('takes a configured tag instead, and discovers every certificate only when told so', () => {
    expect(plan({ tag: { name: 'team', value: 'web' } }).tag).toEqual({ name: 'team', value: 'web' });
    expect(plan({ requireTag: false }).tag).toBeUndefined();
    expect(discoveryTag(config({ requireTag: false }).discovery!)).toBeUndefined();
  });

  it('refuses requireTag: false together with a tag, naming the field', () => {
    try {
      config({ requireTag: false, tag: { name: 'team', value: 'web' } });
      throw new Error('expected a ConfigError');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).issues.map((i) => i.path)).toEqual(['discovery.requireTag']);
    }
  });
});

describe('listVaultCertificates with the opt-in tag', () => {
  let vault: LocalVault;
  beforeAll(async () => {
    vault = createLocalVault({
      name: 'lv',
      dir: path.join(tmp, 'vault'),
      encryptionKey: Buffer.alloc(32, 3),
    });
    const policy = (n: string) => ({
      subject: `CN=${n}.example.test`,
      dnsNames: [`${n}.example.test`],
      issuerName: 'Unknown',
      key: { keyType: 'EC', curve: 'P-256', reuseKey: false, exportable: true },
    });
    await vault.create('tagged', policy('tagged'), { Certflow: 'enroll' });
    await vault.create('untagged', policy('untagged'));
    await vault.create('wrong-value', policy('wrong'), { Certflow: 'yes' });
  });

  const list = (requiredTag?: { name: string; value: string }) => {
    const acts = createFleetActivities({
      vaults: new Map([['lv', vault]]),
      client: {} as Client,
      taskQueue: 'tq',
      ...(requiredTag ? { requiredTag } : {}),
    });
    // the run's input names no tag (a schedule written before the opt-in existed)
    return new MockActivityEnvironment().run(acts.listVaultCertificates, {
      vault: 'lv',
    }) as Promise<VaultListing>;
  };

  it('lists only certificates carrying the tag, whatever the input says', async () => {
    const r = await list(DEFAULT_DISCOVERY_TAG);
    expect(r.present.sort()).toEqual(['lv/tagged', 'lv/untagged', 'lv/wrong-value']);
    expect(r.matching).toEqual(['lv/tagged']);
  });

  it('lists every certificate when discovery does not require a tag', async () => {
    expect((await list()).matching.sort()).toEqual(['lv/tagged', 'lv/untagged', 'lv/wrong-value']);
  });
});
