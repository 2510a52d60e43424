import { describe, expect, it } from 'vitest';
import { messageIdFor } from '../../activities/notify/email';
import {
  adviceFor,
  describeEvent,
  escapeHtml,
  parseRecipients,
  renderEmail,
  type EscalationEvent,
  type NotificationEvent,
  type PausedTooLongEvent,
  type RenewalFailedEvent,
} from '../../activities/notify/templates';

describe('parseRecipients', () => {
  it.each([
    ['a@x.com; b@y.org,bad address', ['a@x.com', 'b@y.org'], ['bad address']],
    [undefined, [], []],
    ['', [], []],
    [' ; , ;', [], []],
    ['Ops Team <ops@example.com>, ops@EXAMPLE.com', ['ops@example.com'], []],
    ['a@b', [], ['a@b']],
    ['a@@b.com;a b@c.com;<x@y.com', [], ['a@@b.com', 'a b@c.com', '<x@y.com']],
    ['first.last+tag@sub.example.co.uk', ['first.last+tag@sub.example.co.uk'], []],
    ['jörg@bücher.de', ['jörg@bücher.de'], []],
  ])('%j -> valid %j, invalid %j', (tag, valid, invalid) => {
    expect(parseRecipients(tag)).toEqual({ valid, invalid });
  });

  it('never throws and bounds what it reports', () => {
    const long = `${'x'.repeat(300)}@example.com`;
    const r = parseRecipients(`${long};ok@example.com`);
    expect(r.valid).toEqual(['ok@example.com']);
    expect(r.invalid[0]).toHaveLength(103);
  });
});

describe('renderEmail', () => {
  const failed: RenewalFailedEvent = {
    kind: 'renewal-failed',
    eventId: 'e1',
    certificateId: 'kv/a\r\nBcc: evil@x.com',
    recipients: ['a@x.com'],
    reason: '<img src=x onerror=alert(1)>',
    oldThumbprint: null,
    notAfter: 'not a date',
    daysLeft: 1,
    nextAttemptAt: null,
  };

  it('keeps header injection out of the subject and escapes the HTML', () => {
    const m = renderEmail(failed);
    expect(m.subject).not.toMatch(/[\r\n]/);
    expect(m.subject).toContain('(1 day left)');
    expect(m.html).not.toContain('<img');
    expect(m.html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(m.text).toContain('not a date'); // unparseable dates shown as given
    expect(m.text).toContain('none scheduled');
  });

  it('escapes the five HTML specials', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });

  it('flags bindings that need attention in the subject of a renewal', () => {
    const m = renderEmail({
      kind: 'renewed',
      eventId: 'e2',
      certificateId: 'kv/a',
      recipients: [],
      reason: 'Manual',
      oldThumbprint: 'AA',
      newThumbprint: 'BB',
      notAfter: '2027-01-01T00:00:00Z',
      bindings: [
        {
          target: 't',
          binding: 'b1',
          before: 'AA',
          after: 'AA',
          status: 'rolled-back',
          detail: 'validation failed',
        },
        { target: 't', binding: 'b2', before: 'AA', after: 'BB', status: 'bound', detail: '' },
      ],
    });
    expect(m.subject).toBe(
      '[certflow] Renewed kv/a, valid until 2027-01-01 00:00 UTC - 1 binding needs attention',
    );
    expect(m.text).toContain('  - rolled-back: t b1 (validation failed)');
  });
});

describe('messageIdFor', () => {
  it('is <eventId@certflow>, with characters a Message-ID cannot hold replaced deterministically', () => {
    expect(messageIdFor('evt-1')).toBe('<evt-1@certflow>');
    expect(messageIdFor('certificate:kv/a@b <x>')).toBe('<certificate-kv/a-b--x-@certflow>');
    expect(messageIdFor('certificate:kv/a@b <x>')).toBe(messageIdFor('certificate:kv/a@b <x>'));
  });
});

describe('renderEmail with missing facts', () => {
  it('says unknown instead of undefined', () => {
    const partial = {
      kind: 'renewal-failed',
      eventId: 'e3',
      certificateId: 'kv/a',
      recipients: [],
    } as unknown as RenewalFailedEvent;
    const m = renderEmail(partial);
    expect(m.subject).toBe('[certflow] ACTION NEEDED: renewal of kv/a failed (expiry unknown)');
    expect(`${m.text}${m.html}`).not.toContain('undefined');
  });
});

describe('the new event kinds', () => {
  const base = { eventId: 'e9', certificateId: 'kv/a', recipients: [] };

  it('escalation: days left past expiry, advice from the failure type, and an action that overrides it', () => {
    const escalation: EscalationEvent = {
      ...base,
      kind: 'escalation',
      step: 0,
      daysLeft: -2,
      thumbprint: 'AA',
      notAfter: '2027-01-01T00:00:00Z',
      failure: { type: 'VaultUnavailable', message: '503 from kv' },
      failingSince: null,
      attempts: 12,
      nextAttemptAt: null,
    };
    const m = renderEmail(escalation);
    expect(m.subject).toBe(
      '[certflow] URGENT: kv/a, expired 2 days ago, renewal keeps failing (VaultUnavailable)',
    );
    expect(m.text).toContain(`What to do: ${adviceFor('VaultUnavailable')}`);
    expect(adviceFor('VaultUnavailable')).toContain('Key Vault Certificates Officer');
    expect(renderEmail({ ...escalation, action: 'Call the PKI team.' }).text).toContain(
      'What to do: Call the PKI team.',
    );
    expect(describeEvent(escalation).severity).toBe('error');
  });

  it.each([
    ['AcmeUnauthorized', 'DNS'],
    ['AcmeRateLimited', 'throttling'],
    ['MergeMismatch', 'certificate policy'],
    ['SomethingNew', 'Temporal UI'],
  ])('adviceFor(%s) speaks of %s', (type, words) => {
    expect(adviceFor(type)).toContain(words);
  });

  it('paused-too-long is a warning until a week before expiry', () => {
    const paused: PausedTooLongEvent = {
      ...base,
      kind: 'paused-too-long',
      pausedSince: '2027-01-01T00:00:00Z',
      pauseReason: 'freeze',
      pausedDays: 1,
      thumbprint: null,
      notAfter: null,
      daysLeft: 30,
    };
    expect(renderEmail(paused).subject).toBe('[certflow] kv/a has been paused for 1 day (30 days left)');
    expect(describeEvent(paused).severity).toBe('warning');
    expect(describeEvent({ ...paused, daysLeft: 7 }).severity).toBe('error');
  });

  it.each(['partially-synced', 'escalation', 'paused-too-long'])(
    '%s with missing facts says unknown or none, never undefined',
    (kind) => {
      const m = renderEmail({ ...base, kind } as unknown as NotificationEvent);
      expect(`${m.subject}${m.text}${m.html}`).not.toMatch(/undefined|NaN/);
    },
  );
});
