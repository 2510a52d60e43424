/**
 * What certflow tells people, as data (NotificationEvent) and as words (subject, text, HTML).
 * Pure and free of node: imports, so a workflow may build events and tests may render them.
 * Every value that reaches HTML is escaped; every value that reaches the subject loses control characters.
 */
import type { BindingOutcome } from '../types';

interface EventBase {
  /** Stable per event (e.g. `<workflowId>/renewed/<newThumbprint>`): the Message-ID, so retries dedupe. */
  eventId: string;
  certificateId: string;
  /** Valid addresses, usually `parseRecipients(tags.Recipient).valid`. */
  recipients: string[];
  /** Entries of the Recipient tag that were not addresses: reported in the mail, never fatal. */
  invalidRecipients?: string[];
}

export interface RenewedEvent extends EventBase {
  kind: 'renewed';
  /** Trigger reason id (e.g. 'NearingExpiry', 'Manual'). */
  reason: string;
  oldThumbprint: string | null;
  newThumbprint: string;
  notAfter: string; // ISO 8601
  bindings: BindingOutcome[];
}

export interface RenewalFailedEvent extends EventBase {
  kind: 'renewal-failed';
  /** What went wrong, in words (already free of secrets). */
  reason: string;
  /** The certificate still in use. */
  oldThumbprint: string | null;
  notAfter: string | null;
  daysLeft: number | null;
  nextAttemptAt: string | null;
  attempt?: number;
  bindings?: BindingOutcome[];
}

export type NotificationEvent = RenewedEvent | RenewalFailedEvent;

export interface RenderedEmail {
  subject: string;
  text: string;
  html: string;
}

const MAX_ADDRESS = 254;
// Pragmatic: one '@', no spaces or specials in the local part, a dotted hostname (IDN as punycode or UTF-8).
const ADDRESS = /^[^\s@<>()[\]\\,;:"]+@(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?\.)+[\p{L}\p{N}]{2,}$/u;

/**
 * Parses a Recipient tag: addresses separated by commas or semicolons, `Name <a@b.c>` accepted.
 * Duplicates (case-insensitive) are dropped; anything else that is not an address lands in `invalid`.
 */
export function parseRecipients(tag: string | undefined): { valid: string[]; invalid: string[] } {
  const valid: string[] = [];
  const invalid: string[] = [];
  const seen = new Set<string>();
  for (const raw of (tag ?? '').split(/[;,]/)) {
    const entry = raw.trim();
    if (!entry) continue;
    const address = (/^[^<>]*<([^<>]+)>$/.exec(entry)?.[1] ?? entry).trim();
    if (address.length > MAX_ADDRESS || !ADDRESS.test(address)) {
      invalid.push(entry.length > 100 ? `${entry.slice(0, 100)}...` : entry);
      continue;
    }
    const key = address.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    valid.push(address);
  }
  return { valid, invalid };
}

export function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
}

/** No CR/LF or other control characters in a header, and a sane length. */
function headerSafe(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f]+/g, ' ').slice(0, 200);
}

function when(iso: string | null | undefined): string {
  if (!iso) return 'unknown';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

type Row = [label: string, value: string];

function bindingLine(b: BindingOutcome): string {
  return `${b.status}: ${b.target} ${b.binding}${b.detail ? ` (${b.detail})` : ''}`;
}

function attentionCount(bindings: BindingOutcome[] | undefined): number {
  return (bindings ?? []).filter((b) => b.status === 'failed' || b.status === 'rolled-back').length;
}

interface Shape {
  subject: string;
  lead: string;
  rows: Row[];
  bindings: BindingOutcome[];
  closing: string;
}

function shape(e: NotificationEvent): Shape {
  if (e.kind === 'renewed') {
    const attention = attentionCount(e.bindings);
    return {
      subject:
        `[certflow] Renewed ${e.certificateId}, valid until ${when(e.notAfter)}` +
        (attention
          ? ` - ${attention} binding${attention === 1 ? '' : 's'} need${attention === 1 ? 's' : ''} attention`
          : ''),
      lead: `The certificate ${e.certificateId} was renewed.`,
      rows: [
        ['Reason', e.reason ?? 'unspecified'],
        ['Old thumbprint', e.oldThumbprint ?? 'none'],
        ['New thumbprint', e.newThumbprint],
        ['Valid until', when(e.notAfter)],
      ],
      bindings: e.bindings ?? [],
      closing: attention
        ? 'Bindings marked failed or rolled-back still use the old certificate: please look at them before it expires.'
        : 'No action is needed.',
    };
  }
  // `== null` on purpose: events built by casting may lack optional facts; render them as unknown
  const days = e.daysLeft == null ? 'expiry unknown' : `${e.daysLeft} day${e.daysLeft === 1 ? '' : 's'} left`;
  return {
    subject: `[certflow] ACTION NEEDED: renewal of ${e.certificateId} failed (${days})`,
    lead: `Renewing the certificate ${e.certificateId} failed${e.attempt ? ` (attempt ${e.attempt})` : ''}.`,
    rows: [
      ['Reason', e.reason ?? 'unspecified'],
      ['Current thumbprint', e.oldThumbprint ?? 'none'],
      ['Expires', when(e.notAfter)],
      ['Days left', e.daysLeft == null ? 'unknown' : String(e.daysLeft)],
      ['Next attempt', e.nextAttemptAt ? when(e.nextAttemptAt) : 'none scheduled'],
    ],
    bindings: e.bindings ?? [],
    closing:
      'certflow keeps retrying; if the reason above needs a person (policy, CA approval, credentials), act before expiry.',
  };
}

export function renderEmail(e: NotificationEvent): RenderedEmail {
  const s = shape(e);
  const invalid = e.invalidRecipients ?? [];
  const invalidNote = invalid.length
    ? `These entries of the Recipient tag are not e-mail addresses and got no copy: ${invalid.map((i) => `"${i}"`).join(', ')}`
    : '';
  const width = Math.max(...s.rows.map(([l]) => l.length)) + 2;
  const text = [
    s.lead,
    '',
    ...s.rows.map(([l, v]) => `${`${l}:`.padEnd(width)}${v}`),
    ...(s.bindings.length ? ['', 'Bindings:', ...s.bindings.map((b) => `  - ${bindingLine(b)}`)] : []),
    '',
    s.closing,
    ...(invalidNote ? ['', invalidNote] : []),
    '',
    `-- certflow, event ${e.eventId}`,
    '',
  ].join('\n');
  const h = escapeHtml;
  const html = [
    '<!doctype html><html><body style="font-family:sans-serif">',
    `<p>${h(s.lead)}</p>`,
    '<table cellpadding="4">',
    ...s.rows.map(([l, v]) => `<tr><th align="left">${h(l)}</th><td><code>${h(v)}</code></td></tr>`),
    '</table>',
    ...(s.bindings.length
      ? ['<h3>Bindings</h3><ul>', ...s.bindings.map((b) => `<li>${h(bindingLine(b))}</li>`), '</ul>']
      : []),
    `<p>${h(s.closing)}</p>`,
    ...(invalidNote ? [`<p><em>${h(invalidNote)}</em></p>`] : []),
    `<p style="color:#888">certflow, event ${h(e.eventId)}</p>`,
    '</body></html>',
    '',
  ].join('\n');
  return { subject: headerSafe(s.subject), text, html };
}
