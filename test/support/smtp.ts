/**
 * A real SMTP server in-process (smtp-server) that parses what it receives (mailparser), on a free
 * loopback port. Optional STARTTLS with a test certificate, optional AUTH, optional refused recipients.
 * smtp-server 3.21 waits a fixed 100 ms per connection before its greeting (early-talker detection,
 * not configurable in this version); reverse DNS is the other per-connection delay, and is switched off.
 */
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { freePort, waitFor } from './proc';

export interface SmtpSinkOptions {
  secure?: false;
  starttls?: { certPem: string; keyPem: string };
  auth?: { user: string; pass: string };
  /** RCPT TO for these addresses is answered 550. */
  rejectRecipients?: string[];
  /** Listen on this port (a server coming back where clients expect it); default a free one. */
  port?: number;
}

export interface ReceivedMail extends ParsedMail {
  envelope: { from: string; to: string[]; secure: boolean; user?: string };
}

export interface SmtpSink {
  port: number;
  messages: ReceivedMail[];
  /** Every AUTH the server was sent (the user, and whether the connection was TLS by then). */
  authAttempts: Array<{ user: string; secure: boolean }>;
  waitForMessages(n: number, timeoutMs?: number): Promise<ReceivedMail[]>;
  stop(): Promise<void>;
}

export async function startSmtpSink(opts: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const messages: ReceivedMail[] = [];
  const authAttempts: SmtpSink['authAttempts'] = [];
  const refused = new Set((opts.rejectRecipients ?? []).map((a) => a.toLowerCase()));
  const disabled = [...(opts.starttls ? [] : ['STARTTLS']), ...(opts.auth ? [] : ['AUTH'])];
  const options: SMTPServerOptions = {
    secure: false,
    name: 'smtp-sink.test',
    disabledCommands: disabled,
    authOptional: !opts.auth,
    // AUTH only after STARTTLS when TLS is offered, as a real submission server would
    allowInsecureAuth: !opts.starttls,
    disableReverseLookup: true,
    logger: false,
    closeTimeout: 500,
    ...(opts.starttls ? { key: opts.starttls.keyPem, cert: opts.starttls.certPem } : {}),
    onAuth(auth, session, cb) {
      authAttempts.push({ user: auth.username ?? '', secure: session.secure });
      if (opts.auth && auth.username === opts.auth.user && auth.password === opts.auth.pass) {
        return cb(null, { user: auth.username });
      }
      return cb(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
    },
    onRcptTo(address, _session, cb) {
      if (refused.has(address.address.toLowerCase())) {
        return cb(Object.assign(new Error(`mailbox ${address.address} unavailable`), { responseCode: 550 }));
      }
      return cb();
    },
    onData(stream, session, cb) {
      simpleParser(stream)
        .then((parsed) => {
          const from = session.envelope.mailFrom;
          messages.push(
            Object.assign(parsed, {
              envelope: {
                from: from ? from.address : '',
                to: session.envelope.rcptTo.map((r) => r.address),
                secure: session.secure,
                user: typeof session.user === 'string' ? session.user : undefined,
              },
            }),
          );
          cb();
        })
        .catch((err: Error) => cb(err));
    },
  };
  const server = new SMTPServer(options);
  server.on('error', () => undefined); // client errors (e.g. a refused TLS handshake) are what some tests cause
  const port = opts.port ?? (await freePort());
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    port,
    messages,
    authAttempts,
    waitForMessages: (n, timeoutMs = 5_000) =>
      waitFor(
        `${n} message(s) at the SMTP sink on port ${port}`,
        async () => messages.length >= n && messages,
        {
          timeoutMs,
          intervalMs: 20,
        },
      ),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
