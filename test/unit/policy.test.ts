import { describe, expect, it } from 'vitest';
import { dueTrigger, renewalTime } from '../../workflows/policy';

const base = { version: 'v1', notBefore: '2026-01-01T00:00:00Z', notAfter: '2026-01-11T00:00:00Z' };

describe('renewalTime', () => {
  it('defaults to 80 % of lifetime, like Key Vault', () => {
    expect(renewalTime(base)?.toISOString()).toBe('2026-01-09T00:00:00.000Z');
  });
  it('honours days before expiry', () => {
    expect(renewalTime({ ...base, daysBeforeExpiry: 3 })?.toISOString()).toBe('2026-01-08T00:00:00.000Z');
  });
  it('never goes before notBefore when days-before exceeds the lifetime', () => {
    expect(renewalTime({ ...base, daysBeforeExpiry: 30 })?.toISOString()).toBe('2026-01-01T00:00:00.000Z');
  });
  it('is null for a certificate never issued', () => {
    expect(renewalTime({ version: null, notBefore: null, notAfter: null })).toBeNull();
  });
});

describe('dueTrigger', () => {
  it('says Missing first', () => {
    expect(dueTrigger({ version: null, notBefore: null, notAfter: null }, new Date())?.reason).toBe(
      'Missing',
    );
  });
  it('says Expired after notAfter', () => {
    expect(dueTrigger(base, new Date('2026-02-01T00:00:00Z'))?.reason).toBe('Expired');
  });
  it('says NearingRenewal between renewal time and expiry', () => {
    expect(dueTrigger(base, new Date('2026-01-10T00:00:00Z'))?.reason).toBe('NearingRenewal');
  });
  it('is quiet before renewal time', () => {
    expect(dueTrigger(base, new Date('2026-01-05T00:00:00Z'))).toBeUndefined();
  });
});
