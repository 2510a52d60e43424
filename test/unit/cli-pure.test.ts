/** The CLI's and the Event Grid endpoint's pure parts: argument parsers, formatting, the audit rule, payloads. */
import { clientSettingsFromEnv, tlsOf } from '../../client/connect';
import { describe, expect, it } from 'vitest';
import { globToRegExp } from '../../activities/globs';
import { parseDuration, parseTag, parseWholeNumber } from '../../client/args';
import { auditCertificate, type AuditSubject } from '../../client/audit-rule';
import { certificateRefOf, MalformedDelivery, parseDelivery } from '../../client/event-grid-events';
import { createContext } from '../../client/context';
import { csv, humanDuration, printable, printableLines, table } from '../../client/format';
import { outcomeText, statusText } from '../../client/render';
import type { CertificateStatus, RenewalOutcome } from '../../workflows/messages';
import { fleetLink, uiLink } from '../../client/commands/ui';
import { runCli } from '../../client/cli';

const DAY = 86_400_000;

describe('argument parsers', () => {
  it('reads durations and names the flag when they are wrong', () => {
    expect(parseDuration('7d', '--x')).toBe(7 * DAY);
    expect(parseDuration('1d12h', '--x')).toBe(1.5 * DAY);
    expect(parseDuration('2W', '--x')).toBe(14 * DAY);
    expect(parseDuration('90m', '--x')).toBe(90 * 60_000);
    for (const bad of ['', '7', 'd', '7 days', '-1d', '1.5d'])
      expect(() => parseDuration(bad, '--within')).toThrow(/^--within: expected a duration/);
  });

  it('reads whole numbers within a range', () => {
    expect(parseWholeNumber('30', '--days', 1, 3650)).toBe(30);
    for (const bad of ['0', '3651', '1.5', 'ten', '', '1e3'])
      expect(() => parseWholeNumber(bad, '--days', 1, 3650)).toThrow(
        '--days: expected a whole number from 1 to 3650',
      );
  });

  it('reads tags and globs', () => {
    expect(parseTag('team=web', '--tag')).toEqual(['team', 'web']);
    expect(parseTag('empty=', '--tag')).toEqual(['empty', '']);
    expect(() => parseTag('=x', '--tag')).toThrow('--tag: expected key=value');
    const re = globToRegExp('api-*.v?');
    expect(['api-one.v1', 'API-x.v2'].every((s) => re.test(s))).toBe(true);
    expect(['api-one.v10', 'xapi-one.v1', 'api-onev1'].some((s) => re.test(s))).toBe(false);
  });

  it('builds the Web UI link with the workflow id encoded', () => {
    expect(uiLink('http://ui:8080/', 'default', 'kv/a-b')).toBe(
      'http://ui:8080/namespaces/default/workflows/certificate%3Akv%2Fa-b',
    );
    expect(uiLink('http://ui:8080', 'prod ns', 'kv/a')).toBe(
      'http://ui:8080/namespaces/prod%20ns/workflows/certificate%3Akv%2Fa',
    );
  });

  it('prints no colour codes, FORCE_COLOR or not (plain text; NO_COLOR holds trivially)', async () => {
    for (const env of [{ FORCE_COLOR: '3' }, { NO_COLOR: '1' }, {}]) {
      let out = '';
      let err = '';
      const io = {
        out: { write: (s: string) => (out += s) },
        err: { write: (s: string) => (err += s) },
        env,
      };
      expect(await runCli(['help'], io)).toBe(0);
      expect(await runCli(['ui', '--ui', 'http://ui:8080'], io)).toBe(0);
      expect(await runCli(['status'], io)).toBe(2);
      expect(out).toContain('usage: certflow');
      expect(err).toContain('status');
      expect(`${out}${err}`).not.toContain('\x1b');
    }
  });

  it('builds the fleet link: running lifecycles as a visibility query', () => {
    const link = new URL(fleetLink('https://temporal.example/ui/', 'prod'));
    expect(link.pathname).toBe('/ui/namespaces/prod/workflows');
    expect(link.searchParams.get('query')).toBe(
      "WorkflowType = 'certificateLifecycle' AND ExecutionStatus = 'Running'",
    );
    expect(() => fleetLink('ftp://x', 'prod')).toThrow('--ui: expected an http(s) URL');
  });
});

describe('formatting', () => {
  it('aligns tables, quotes CSV and shortens durations', () => {
    expect(
      table(
        ['A', 'LONG'],
        [
          ['xyz', '1'],
          ['q', '22'],
        ],
      ),
    ).toBe('A    LONG\nxyz  1\nq    22');
    expect(
      csv(
        ['a', 'b'],
        [
          ['x,y', 'say "hi"'],
          [null, 3],
        ],
      ),
    ).toBe('a,b\r\n"x,y","say ""hi"""\r\n,3\r\n');
    expect(humanDuration(3 * DAY + 4 * 3_600_000 + 5_000)).toBe('3d 4h');
    expect(humanDuration(-(2 * 3_600_000))).toBe('2h');
    expect(humanDuration(45_000)).toBe('45s');
    expect(humanDuration(10)).toBe('0s');
  });
});

describe('audit rule (Key Vault auto-renew compliance)', () => {
  const year = (policy: AuditSubject['policy'], lifecycle: AuditSubject['lifecycle'] = 'running') =>
    auditCertificate({
      certificateId: 'kv/a',
      lifecycle,
      notBefore: '2025-01-01T00:00:00Z',
      notAfter: new Date(Date.parse('2025-01-01T00:00:00Z') + 365 * DAY).toISOString(),
      policy,
    }).map((f) => f.rule);

  it('follows the rule: 3 days before expiry is too late, 7 days is right', () => {
    expect(year({ daysBeforeExpiry: 3 })).toEqual(['RenewsTooLate']);
    expect(year({ daysBeforeExpiry: 7 })).toEqual([]);
    expect(year({ lifetimePercentage: 99 })).toEqual(['RenewsTooLate']); // 3.65 days left
    expect(year({ lifetimePercentage: 80 })).toEqual([]);
    expect(year(null, 'none')).toEqual(['NoAutomaticRenewal']);
    expect(year({ lifetimePercentage: 80 }, 'paused')).toEqual(['RenewalPaused']);
  });

  it('scales the margin down for short-lived certificates (a tenth of the lifetime)', () => {
    const short = (pct: number) =>
      auditCertificate({
        certificateId: 'kv/s',
        lifecycle: 'running',
        notBefore: '2025-01-01T00:00:00Z',
        notAfter: '2025-01-11T00:00:00Z',
        policy: { lifetimePercentage: pct },
      });
    expect(short(66)).toEqual([]);
    // 1 day before expiry of a 10-day certificate: margin enough, but a one-day CA outage at renewal would let it
    // expire (the safety buffer, workflows/buffer.ts)
    expect(short(90).map((f) => `${f.rule}:${f.severity}`)).toEqual(['SmallSafetyBuffer:fail']);
    expect(short(95)[0]?.message).toMatch(
      /renews 12 hours before expiry; a certificate living 10 days needs at least 1 day /,
    );
  });
});

describe('Event Grid payloads', () => {
  const kvEvent = (data: Record<string, unknown>) => ({
    id: '1',
    topic: '/subscriptions/x/providers/Microsoft.KeyVault/vaults/kv1',
    eventType: 'Microsoft.KeyVault.CertificateNearExpiry',
    eventTime: '2025-01-01T00:00:00Z',
    data,
  });

  it('tolerates the published sample quirks in data keys and values', () => {
    const d = parseDelivery([kvEvent({ VaultName: 'kv1', 'ObjectName ': ' site ', Version: ' v1' })]);
    if (d.kind !== 'events') throw new Error('expected events');
    expect(certificateRefOf(d.events[0]!, '[0]')).toMatchObject({ certificateId: 'kv1/site', version: 'v1' });
  });

  it('maps the vault URL through vaultNameFromUrl, from data.Id when present', () => {
    const d = parseDelivery([
      kvEvent({
        Id: 'https://kv1.vault.azure.net/certificates/site/v1',
        VaultName: 'kv1',
        ObjectName: 'site',
      }),
    ]);
    if (d.kind !== 'events') throw new Error('expected events');
    const seen: string[] = [];
    const ref = certificateRefOf(d.events[0]!, '[0]', (u) => (seen.push(u), 'prod'));
    expect(seen).toEqual(['https://kv1.vault.azure.net']);
    expect(ref?.certificateId).toBe('prod/site');
    expect(certificateRefOf(d.events[0]!, '[0]', () => undefined)).toBeNull();
  });

  it('rejects names that are not Key Vault names', () => {
    const d = parseDelivery([kvEvent({ VaultName: 'kv1', ObjectName: '../etc' })]);
    if (d.kind !== 'events') throw new Error('expected events');
    expect(() => certificateRefOf(d.events[0]!, '[0]')).toThrow(MalformedDelivery);
  });
});

describe('client connection settings', () => {
  it('reads mTLS files and an API key from the environment, never echoing a key', () => {
    const s = clientSettingsFromEnv({
      CERTFLOW_TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233',
      CERTFLOW_TEMPORAL_NAMESPACE: 'ns.acct',
      CERTFLOW_TEMPORAL_API_KEY: 'secret-api-key-123',
    });
    expect(s).toMatchObject({ address: 'ns.acct.tmprl.cloud:7233', namespace: 'ns.acct' });
    expect(tlsOf(s)).toBe(true);
    const half = clientSettingsFromEnv({ CERTFLOW_TEMPORAL_TLS_CERT: '/x.pem' });
    expect(() => tlsOf(half)).toThrow(/expected both files or neither/);
    const missing = clientSettingsFromEnv({ CERTFLOW_TEMPORAL_TLS_CA: '/nonexistent/ca.pem' });
    expect(() => tlsOf(missing)).toThrow(
      /CERTFLOW_TEMPORAL_TLS_CA: cannot read \/nonexistent\/ca.pem \(ENOENT\)/,
    );
  });
});

describe('text from outside on the terminal', () => {
  const ESC = '\u001b';
  const hostile = `${ESC}]0;pwned${'\u0007'}${ESC}[2J\r\nfake line\u202e`;
  const failed: RenewalOutcome = {
    attempt: 2,
    status: 'failed',
    trigger: 'Manual',
    startedAt: '2026-03-01T10:00:00Z',
    finishedAt: '2026-03-01T10:01:00Z',
    oldThumbprint: 'AA',
    newThumbprint: null,
    newVersion: null,
    notAfter: null,
    bindings: [
      {
        target: 'nginx',
        binding: 'files',
        before: 'AA',
        after: null,
        status: 'failed',
        detail: `reload said ${hostile}`,
        probe: { ok: false, servedThumbprint: null, detail: hostile, latencyMs: 1 },
      },
    ],
    error: { type: `AcmeRejected${ESC}[31m`, message: `urn:ietf:params:acme:error:caa ${hostile}` },
    notified: false,
  };
  const status = {
    certificateId: 'kv/site',
    issuer: 'le',
    phase: 'Paused',
    paused: { reason: `change freeze ${hostile}`, since: '2026-03-01T10:00:00Z' },
    thumbprint: 'AA',
    previousThumbprint: null,
    version: 'v1',
    notBefore: null,
    notAfter: null,
    nextRenewalAt: null,
    nextRenewalReason: null,
    attempts: 2,
    lastAttempt: failed,
    lastError: failed.error!,
    cycle: 1,
    bindings: failed.bindings,
    policy: { source: 'default', lifetimePercentage: 80, jitterMinutes: 0 },
    escalationsSent: [],
    notifyError: { type: 'SmtpUnavailable', message: hostile },
  } as CertificateStatus;
  // eslint-disable-next-line no-control-regex -- looking for control characters is the point
  const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e]/;

  it('shows CA problem text, pause reasons and server errors with control characters escaped', () => {
    for (const text of [
      statusText(status, new Date('2026-03-01T11:00:00Z')),
      outcomeText('kv/site', failed),
    ]) {
      expect(text).not.toMatch(CONTROL);
      expect(text).toContain('\\x1b]0;pwned\\x07\\x1b[2J\\x0d\\x0afake line\\u202e');
      // the reason cannot start a line of its own
      expect(text.split('\n').some((l) => l.startsWith('fake line'))).toBe(false);
    }
    expect(table(['A'], [[hostile]])).not.toMatch(CONTROL);
    expect(printable('tab\there')).toBe('tab\\x09here');
    expect(printableLines('a\r\nb\rc\n')).toBe('a\r\nb\\x0dc\n');
  });

  it('escapes whatever a command prints, keeping its line breaks', () => {
    let out = '';
    let err = '';
    const ctx = createContext(
      'status',
      { flag: () => false, string: () => undefined, strings: () => [] } as never,
      { out: { write: (t: string) => (out += t) }, err: { write: (t: string) => (err += t) } },
      { address: '127.0.0.1:7233', namespace: 'default' },
      () => Promise.reject(new Error('no client')),
    );
    ctx.print(`paused kv/site: ${hostile}\nsecond line`);
    ctx.note(hostile);
    // \r\n stays a line break (CSV ends its lines so); nothing else gets through
    expect((out + err).replace(/\r\n/g, '\n')).not.toMatch(CONTROL);
    expect(out.split('\n')).toHaveLength(4); // two lines of ours, one from the reason's \r\n, and the end
  });
});
