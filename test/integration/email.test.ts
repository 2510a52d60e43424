/**
 * The e-mail notifier against real SMTP servers (smtp-server, in-process on loopback): content and
 * recipients of every event kind, STARTTLS trusted through a test CA with AUTH, the classified failures
 * (auth, untrusted TLS, server down) without leaking credentials, an outage that ends with exactly one
 * mail, and duplicate suppression when an activity is retried after its completion was lost.
 */
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmailNotifier, type EmailNotifierOptions } from '../../activities/notify/email';
import { escapeHtml, parseRecipients, type RenewedEvent } from '../../activities/notify/templates';
import { sampleEvents, type SampleEvent } from '../support/notification-events';
import { failureOf } from '../support/acme';
import { freePort, waitFor } from '../support/proc';
import { startSmtpSink, type SmtpSink } from '../support/smtp';
import { parseConfig } from '../../worker/config';
import { createCollector } from '../../worker/deps-collector';
import { buildEmail } from '../../worker/deps-notify';
import { createTestCa } from '../support/test-ca';
import { scratchDir } from '../support/tools';

const tag = parseRecipients('a@x.com; b@y.org,bad address');
const samples = sampleEvents(tag.valid, 'evt');
const renewedSample = samples[0]!.event as RenewedEvent;
const renewed = (eventId: string, extra: Partial<RenewedEvent> = {}): RenewedEvent => ({
  ...renewedSample,
  invalidRecipients: tag.invalid,
  eventId,
  ...extra,
});

const ca = createTestCa();
const serverCert = ca.issueServerCert(['localhost', '127.0.0.1']);
const smtpUser = { user: 'certflow', pass: 'correct horse battery' };
const scratch = scratchDir('email-test');

let plain: SmtpSink;
let secure: SmtpSink;
const sinks: SmtpSink[] = [];
const notifiers: { close(): void }[] = [];

type Over = Partial<Omit<EmailNotifierOptions, 'transport'>> & {
  transport?: Partial<EmailNotifierOptions['transport']>;
};
function notifier(sink: { port: number }, over: Over = {}) {
  const n = createEmailNotifier({
    from: 'certflow <certflow@example.test>',
    ...over,
    transport: { host: '127.0.0.1', port: sink.port, secure: false, requireTLS: false, ...over.transport },
  });
  notifiers.push(n);
  return n;
}
const overTls = (pass: string, caPem = ca.caCertPem): Over => ({
  transport: {
    requireTLS: true,
    auth: { user: smtpUser.user, pass },
    tls: { ca: caPem, servername: 'localhost' },
  },
});

beforeAll(async () => {
  [plain, secure] = await Promise.all([
    startSmtpSink({ rejectRecipients: ['refused@y.org'] }),
    startSmtpSink({ starttls: serverCert, auth: smtpUser }),
  ]);
  sinks.push(plain, secure);
});

afterAll(async () => {
  for (const n of notifiers) n.close();
  await Promise.all(sinks.map((s) => s.stop()));
  await rm(scratch, { recursive: true, force: true });
});

const mailWith = (sink: SmtpSink, messageId: string) =>
  sink.messages.filter((m) => m.messageId === messageId);

describe('e-mail notifier over real SMTP', () => {
  it.each(samples.map((s): [string, SampleEvent] => [s.event.kind, s]))(
    '%s: subject, recipients (tag + defaults), facts in text and HTML, stable Message-ID',
    async (_kind, { event, subject, facts }) => {
      const n = notifier(plain, { defaultRecipients: ['oncall@z.net', 'A@x.com'] });
      const result = await n.send({ ...event, invalidRecipients: tag.invalid });

      expect(result.accepted).toEqual(['a@x.com', 'b@y.org', 'oncall@z.net']);
      expect(result.invalid).toEqual(['bad address']);
      expect(result.messageId).toBe(`<${event.eventId}@certflow>`);

      const [mail] = await waitForMail(plain, result.messageId);
      expect(mail!.envelope.to).toEqual(['a@x.com', 'b@y.org', 'oncall@z.net']);
      expect(mail!.subject).toBe(subject);
      expect(mail!.headers.get('x-certflow-event')).toBe(event.kind);
      expect(mail!.headers.get('auto-submitted')).toBe('auto-generated');
      for (const fact of [...facts, 'bad address']) {
        expect(mail!.text).toContain(fact);
        expect(String(mail!.html)).toContain(escapeHtml(fact));
      }
      expect(String(mail!.html)).not.toMatch(/<(api|ticket)/);
    },
  );

  it('reports a recipient the server refuses and still delivers to the others', async () => {
    const result = await notifier(plain).send(
      renewed('evt-refused', { recipients: ['a@x.com', 'refused@y.org'], invalidRecipients: [] }),
    );
    expect(result.accepted).toEqual(['a@x.com']);
    expect(result.rejected).toEqual(['refused@y.org']);
  });

  it('reports, without throwing or sending, an event whose recipients are all invalid', async () => {
    const bad = parseRecipients('not-an-address; also bad');
    const before = plain.messages.length;
    const result = await notifier(plain).send(
      renewed('evt-none', { recipients: bad.valid, invalidRecipients: bad.invalid }),
    );
    expect(result).toMatchObject({
      noRecipients: true,
      accepted: [],
      invalid: ['not-an-address', 'also bad'],
    });
    expect(plain.messages.length).toBe(before);
  });

  it('sends over STARTTLS with AUTH, trusting the server through the test CA', async () => {
    const result = await notifier(secure, overTls(smtpUser.pass)).send(renewed('evt-tls'));
    expect(result.accepted).toEqual(['a@x.com', 'b@y.org']);
    const [mail] = await waitForMail(secure, '<evt-tls@certflow>');
    expect(mail!.envelope).toMatchObject({ secure: true, user: smtpUser.user });
  });

  it('refuses a server certificate from an untrusted CA: SmtpUnavailable, retryable, nothing delivered', async () => {
    const before = secure.messages.length;
    const stranger = createTestCa({ commonName: 'Not our CA' });
    const f = await failureOf(
      notifier(secure, overTls(smtpUser.pass, stranger.caCertPem)).send(renewed('evt-untrusted')),
    );
    expect(f).toMatchObject({ type: 'SmtpUnavailable', nonRetryable: false });
    expect(f.message).toMatch(/ESOCKET|ETLS/);
    expect(f.message).not.toContain(smtpUser.pass);
    expect(secure.messages.length).toBe(before);
  });

  it('classifies a wrong password as SmtpAuthFailed (not retryable), naming the user but never the password', async () => {
    const f = await failureOf(notifier(secure, overTls('wrong-password-123')).send(renewed('evt-auth')));
    expect(f).toMatchObject({ type: 'SmtpAuthFailed', nonRetryable: true });
    expect(f.message).toContain('user "certflow"');
    expect(f.message).toContain('535');
    const everything = JSON.stringify({ m: f.message, s: f.stack, c: String(f.cause ?? '') });
    for (const leak of [
      'wrong-password-123',
      Buffer.from('\0certflow\0wrong-password-123').toString('base64'),
    ]) {
      expect(everything).not.toContain(leak);
    }
  });

  it('requires STARTTLS by default with a password and a non-loopback host: a stripped STARTTLS gets no password', async () => {
    // a server that offers AUTH but no STARTTLS: what a man in the middle who strips STARTTLS looks like
    const stripped = await startSmtpSink({ auth: smtpUser });
    sinks.push(stripped);
    const build = async (email: Record<string, unknown>) => {
      const c = createCollector({ SMTP_PASSWORD: smtpUser.pass });
      const config = parseConfig({
        notify: {
          email: {
            port: stripped.port,
            from: 'certflow <certflow@example.test>',
            user: smtpUser.user,
            password: { env: 'SMTP_PASSWORD' },
            ...email,
          },
        },
      });
      const n = (await buildEmail(config, c))!;
      c.throwIfAny('test');
      notifiers.push(n);
      return n;
    };
    // the host as configured is not loopback (the address only says where to connect)
    const f = await failureOf(
      (await build({ host: 'smtp.certflow.test', address: '127.0.0.1' })).send(renewed('evt-stripped')),
    );
    expect(f.type).toBe('SmtpRejected');
    expect(f.message).toMatch(/ETLS .*STARTTLS/);
    expect(f.message).not.toContain(smtpUser.pass);
    expect(stripped.authAttempts).toEqual([]);
    expect(stripped.messages).toHaveLength(0);

    // the same server on loopback, or with requireTls: false said out loud, gets the password in clear
    await (await build({ host: '127.0.0.1' })).send(renewed('evt-stripped-loopback'));
    await (
      await build({ host: 'smtp.certflow.test', address: '127.0.0.1', requireTls: false })
    ).send(renewed('evt-stripped-optout'));
    expect(stripped.authAttempts).toEqual([
      { user: smtpUser.user, secure: false },
      { user: smtpUser.user, secure: false },
    ]);
  });

  it('SMTP down then up: a retryable SmtpUnavailable with the real cause, then exactly one mail', async () => {
    const port = await freePort();
    const n = notifier({ port }, { transport: { connectionTimeoutMs: 3_000 } });
    const event = renewed('evt-outage');

    const f = await failureOf(n.send(event));
    expect(f).toMatchObject({ type: 'SmtpUnavailable', nonRetryable: false });
    expect(f.message).toContain('ECONNREFUSED');
    expect(f.cause?.message).toContain('ECONNREFUSED');

    const back = await startSmtpSink({ port });
    sinks.push(back);
    const sent = await n.send(event); // the activity's retry
    expect(sent).toMatchObject({ accepted: ['a@x.com', 'b@y.org'] });
    expect(sent.duplicate).toBeUndefined();
    const again = await n.send(event); // one more retry, e.g. the completion was lost
    expect(again).toMatchObject({ duplicate: true, messageId: sent.messageId });
    expect(back.messages.map((m) => m.messageId)).toEqual(['<evt-outage@certflow>']);
  });

  it('suppresses duplicates under activity retry: concurrent, same process, and a new worker sharing the sent-log', async () => {
    const sentLogPath = path.join(scratch, 'sent.log');
    const event = renewed('evt-dedupe');
    const first = notifier(plain, { sentLogPath });
    const [a, b] = await Promise.all([first.send(event), first.send(event)]);
    expect([a.duplicate, b.duplicate].filter(Boolean)).toHaveLength(1);
    expect((await first.send(event)).duplicate).toBe(true);

    // the worker crashed after sending (its completion never reached Temporal): a new one retries
    first.close();
    const retried = await notifier(plain, { sentLogPath }).send(event);
    expect(retried).toMatchObject({ duplicate: true, messageId: '<evt-dedupe@certflow>', accepted: [] });

    expect(mailWith(plain, '<evt-dedupe@certflow>')).toHaveLength(1);
    const log = readFileSync(sentLogPath, 'utf8');
    expect(log).toMatch(/^[0-9a-f]{64}\n$/);
    expect(log).not.toContain('evt-dedupe');
  });
});

function waitForMail(sink: SmtpSink, messageId: string) {
  return waitFor(`${messageId} at the SMTP sink on port ${sink.port}`, async () => {
    const found = mailWith(sink, messageId);
    return found.length > 0 && found;
  });
}
