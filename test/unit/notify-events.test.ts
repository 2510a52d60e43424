import { describe, expect, it } from 'vitest';
import { toNotificationEvent, type NotifyInput } from '../../activities/notify/events';
import { renderEmail } from '../../activities/notify/templates';
import type { RenewalOutcome } from '../../workflows/messages';

const now = new Date('2026-03-01T00:00:00Z');
const current = { thumbprint: 'OLD', notAfter: '2026-03-04T00:00:00Z' };
const failed: RenewalOutcome = {
  attempt: 3,
  status: 'failed',
  trigger: 'Retry',
  startedAt: '2026-02-28T00:00:00Z',
  finishedAt: '2026-02-28T00:01:00Z',
  oldThumbprint: 'OLD',
  newThumbprint: null,
  newVersion: null,
  notAfter: null,
  bindings: [],
  error: { type: 'AcmeUnauthorized', message: 'account deactivated' },
  notified: true,
};
const renewed: RenewalOutcome = {
  ...failed,
  status: 'renewed',
  trigger: 'NearingRenewal',
  newThumbprint: 'NEW',
  newVersion: 'v2',
  notAfter: '2026-06-01T00:00:00Z',
  error: undefined,
  bindings: [
    { target: 'nginx', binding: '/etc/site.pem', before: 'OLD', after: 'NEW', status: 'bound', detail: 'ok' },
    { target: 'app', binding: 'www.site.test', before: 'OLD', after: 'OLD', status: 'failed', detail: '429' },
  ],
};
const event = (input: Omit<NotifyInput, 'eventId' | 'certificateId'>) =>
  toNotificationEvent(
    { eventId: 'ev-1', certificateId: 'kv/site', ...input },
    ['ops@example.test'],
    [],
    current,
    now,
  );

describe('what workflows tell people, per kind', () => {
  it('renewed: old and new thumbprint, new expiry, every binding', () => {
    const e = event({ kind: 'renewed', outcome: renewed });
    expect(e).toMatchObject({
      kind: 'renewed',
      oldThumbprint: 'OLD',
      newThumbprint: 'NEW',
      notAfter: '2026-06-01T00:00:00Z',
    });
    expect(renderEmail(e).text).toContain('www.site.test');
  });
  it('partially synced: the new certificate and the bindings still behind', () => {
    const e = event({ kind: 'partially-synced', outcome: renewed, nextAttemptAt: '2026-03-01T00:05:00Z' });
    expect(e).toMatchObject({
      kind: 'partially-synced',
      trigger: 'Renewal',
      thumbprint: 'NEW',
      previousThumbprint: 'OLD',
    });
    expect(renderEmail(e).text).toMatch(/429/);
  });
  it('renewal failed: reason, next attempt, days left', () => {
    const e = event({ kind: 'renewal-failed', outcome: failed, nextAttemptAt: '2026-03-01T06:00:00Z' });
    expect(e).toMatchObject({
      kind: 'renewal-failed',
      reason: 'AcmeUnauthorized: account deactivated',
      daysLeft: 3,
      nextAttemptAt: '2026-03-01T06:00:00Z',
    });
  });
  it('escalation: the step, the failure, since when and how many attempts', () => {
    const e = event({
      kind: 'escalation',
      outcome: failed,
      daysLeft: 3,
      failingSince: '2026-02-20T00:00:00Z',
      attempts: 9,
    });
    expect(e).toMatchObject({
      kind: 'escalation',
      step: 3,
      daysLeft: 3,
      failure: failed.error,
      failingSince: '2026-02-20T00:00:00Z',
      attempts: 9,
    });
    const mail = renderEmail(e);
    expect(mail.subject).toMatch(/3 day/);
    expect(mail.text).toContain('AcmeUnauthorized');
  });
  it('paused too long: since when, why, how long', () => {
    const e = event({
      kind: 'paused-too-long',
      paused: { reason: 'change freeze', since: '2026-02-20T00:00:00Z' },
    });
    expect(e).toMatchObject({
      kind: 'paused-too-long',
      pauseReason: 'change freeze',
      pausedDays: 9,
      daysLeft: 3,
    });
    expect(renderEmail(e).text).toContain('change freeze');
  });
});
