/**
 * The e-mail notifier against a real SMTP server (smtp-server, in-process on loopback): recipients from a
 * Recipient tag, subject and bodies, the stable Message-ID, STARTTLS trusted through a test CA, and the
 * way failures are classified (retryable or not) without leaking credentials.
 */
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmailNotifier, type EmailNotifier } from '../../activities/notify/email';
import {
  parseRecipients,
  type RenewalFailedEvent,
  type RenewedEvent,
} from '../../activities/notify/templates';
import { startSmtpSink, type SmtpSink } from '../support/smtp';
import { createTestCa } from '../support/test-ca';

const OLD = '3F2A9C0D4B1E8A7765C4D3E2F1A0B9C8D7E6F504';
const NEW = 'A1B2C3D4E5F60718293A4B5C6D7E8F9001122334';
const tag = parseRecipients('a@x.com; b@y.org,bad address');

function renewed(eventId: string, extra: Partial<RenewedEvent> = {}): RenewedEvent {
  return {
    kind: 'renewed',
    eventId,
    certificateId: 'kv-test/api-cert',
    recipients: tag.valid,
    invalidRecipients: tag.invalid,
    reason: 'NearingExpiry',
    oldThumbprint: OLD,
    newThumbprint: NEW,
    notAfter: '2027-02-01T12:00:00Z',
    bindings: [
      {
        target: 'nginx-edge',
        binding: '/etc/nginx/tls/api.pem',
        before: OLD,
        after: NEW,
        status: 'bound',
        detail: '127.0.0.1:8443 (SNI <api>&"x") serves the new one',
      },
    ],
    ...extra,
  };
}

const ca = createTestCa();
const serverCert = ca.issueServerCert(['localhost', '127.0.0.1']);
const smtpUser = { user: 'certflow', pass: 'correct horse battery' };

let plain: SmtpSink;
let secure: SmtpSink;
const notifiers: EmailNotifier[] = [];

function notifier(
  sink: SmtpSink,
  over: Partial<Parameters<typeof createEmailNotifier>[0]['transport']> = {},
) {
  const n = createEmailNotifier({
    transport: { host: '127.0.0.1', port: sink.port, secure: false, requireTLS: false, ...over },
    from: 'certflow <certflow@example.test>',
    pool: true,
  });
  notifiers.push(n);
  return n;
}

beforeAll(async () => {
  [plain, secure] = await Promise.all([
    startSmtpSink({ rejectRecipients: ['refused@y.org'] }),
    startSmtpSink({ starttls: serverCert, auth: smtpUser }),
  ]);
});

afterAll(async () => {
  for (const n of notifiers) n.close();
  await Promise.all([plain?.stop(), secure?.stop()]);
});

async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

describe('e-mail notifier over real SMTP', () => {
  it('delivers a renewed event to the Recipient tag, with both thumbprints and a stable Message-ID', async () => {
    const n = notifier(plain);
    const t0 = performance.now();
    const result = await n.send(renewed('evt-renewed-1'));
    const sendMs = performance.now() - t0;

    expect(result.accepted).toEqual(['a@x.com', 'b@y.org']);
    expect(result.rejected).toEqual([]);
    expect(result.invalid).toEqual(['bad address']);
    expect(result.messageId).toBe('<evt-renewed-1@certflow>');

    const [mail] = await plain.waitForMessages(1);
    expect(mail!.envelope.to).toEqual(['a@x.com', 'b@y.org']);
    expect(mail!.messageId).toBe('<evt-renewed-1@certflow>');
    expect(mail!.subject).toBe('[certflow] Renewed kv-test/api-cert, valid until 2027-02-01 12:00 UTC');
    expect(mail!.headers.get('x-certflow-event')).toBe('renewed');
    for (const body of [mail!.text ?? '', String(mail!.html)]) {
      expect(body).toContain(OLD);
      expect(body).toContain(NEW);
      expect(body).toContain('bad address'); // the invalid tag entry is reported to the people who do get it
    }
    expect(mail!.html).toContain('&lt;api&gt;&amp;&quot;x&quot;');
    expect(mail!.html).not.toContain('<api>');
    console.log(`email: first send (new pooled connection) ${sendMs.toFixed(0)} ms`);
  });

  it('sends an event id once per process, and the Message-ID stays the same for a new notifier', async () => {
    const n = notifier(plain);
    const before = plain.messages.length;
    const first = await n.send(renewed('evt-dedupe'));
    const again = await n.send(renewed('evt-dedupe'));
    expect(again).toMatchObject({ duplicate: true, messageId: first.messageId });

    // a retried activity on another worker sends again, with the same Message-ID for receivers to dedupe
    const other = await notifier(plain).send(renewed('evt-dedupe'));
    expect(other.messageId).toBe('<evt-dedupe@certflow>');
    const got = await plain.waitForMessages(before + 2);
    expect(got.slice(before).map((m) => m.messageId)).toEqual([
      '<evt-dedupe@certflow>',
      '<evt-dedupe@certflow>',
    ]);
  });

  it('reports a recipient the server refuses and still delivers to the others', async () => {
    const n = notifier(plain);
    const result = await n.send(
      renewed('evt-partial', { recipients: ['a@x.com', 'refused@y.org'], invalidRecipients: [] }),
    );
    expect(result.accepted).toEqual(['a@x.com']);
    expect(result.rejected).toEqual(['refused@y.org']);
  });

  it('fails without retry when no recipient is valid and no default is configured', async () => {
    const bad = parseRecipients('not-an-address; also bad');
    const f = await failureOf(
      notifier(plain).send(renewed('evt-none', { recipients: bad.valid, invalidRecipients: bad.invalid })),
    );
    expect(f.type).toBe('NoRecipients');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain('kv-test/api-cert');
    expect(f.message).toContain('not-an-address, also bad');
  });

  it('sends over STARTTLS with AUTH, trusting the server through the test CA', async () => {
    const n = notifier(secure, {
      requireTLS: true,
      auth: smtpUser,
      tls: { ca: ca.caCertPem, servername: 'localhost' },
    });
    const event: RenewalFailedEvent = {
      kind: 'renewal-failed',
      eventId: 'evt-failed-7',
      certificateId: 'kv-test/api-cert',
      recipients: ['ops@x.com'],
      reason: 'CA refused the order: rate limited <retry later>',
      oldThumbprint: OLD,
      notAfter: '2027-02-01T12:00:00Z',
      daysLeft: 7,
      nextAttemptAt: '2027-01-25T13:00:00Z',
      attempt: 3,
    };
    const result = await n.send(event);
    expect(result.accepted).toEqual(['ops@x.com']);

    const [mail] = await secure.waitForMessages(1);
    expect(mail!.envelope).toMatchObject({ secure: true, user: smtpUser.user, to: ['ops@x.com'] });
    expect(mail!.subject).toBe('[certflow] ACTION NEEDED: renewal of kv-test/api-cert failed (7 days left)');
    expect(mail!.messageId).toBe('<evt-failed-7@certflow>');
    expect(mail!.text).toContain('rate limited <retry later>');
    expect(mail!.html).toContain('rate limited &lt;retry later&gt;');
    expect(mail!.text).toContain('2027-01-25 13:00 UTC');
  });

  it('refuses a server certificate from an untrusted CA (retryable, nothing delivered)', async () => {
    const before = secure.messages.length;
    const stranger = createTestCa({ commonName: 'Not our CA' });
    const n = notifier(secure, {
      requireTLS: true,
      auth: smtpUser,
      tls: { ca: stranger.caCertPem, servername: 'localhost' },
    });
    const f = await failureOf(n.send(renewed('evt-untrusted')));
    expect(f.nonRetryable).toBe(false);
    expect(f.type).toBe('EmailUnavailable');
    expect(f.message).toMatch(/ESOCKET|ETLS/);
    expect(f.message).not.toContain(smtpUser.pass);
    expect(secure.messages.length).toBe(before);
  });

  it('classifies wrong credentials as permanent without echoing the password', async () => {
    const n = notifier(secure, {
      requireTLS: true,
      auth: { user: smtpUser.user, pass: 'wrong-password-123' },
      tls: { ca: ca.caCertPem, servername: 'localhost' },
    });
    const f = await failureOf(n.send(renewed('evt-auth')));
    expect(f.type).toBe('EmailAuth');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain('EAUTH');
    expect(f.message).not.toContain('wrong-password-123');
  });
});
