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
  /** issue: Certflow renews it with its CA; observe: the vault renews it itself. */
  mode?: 'issue' | 'observe';
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

/** Bindings failed or rolled back after a renewal or a sync: they still serve an older certificate. */
export interface PartiallySyncedEvent extends EventBase {
  kind: 'partially-synced';
  /** What ran the sync, e.g. 'Renewal', 'SyncNow', 'Drift'. */
  trigger: string;
  /** The certificate every binding should serve now. */
  thumbprint: string;
  previousThumbprint: string | null;
  notAfter: string | null;
  /** Every binding's outcome, the good ones included. */
  bindings: BindingOutcome[];
  /** When the failed bindings are tried again; null when nothing is scheduled. */
  nextAttemptAt: string | null;
}

/** A rung of the escalation ladder (e.g. 14, 7, 3, 1 days left) reached while renewal keeps failing. */
export interface EscalationEvent extends EventBase {
  kind: 'escalation';
  /** The rung reached, in days left (0 = at expiry); part of a good eventId. */
  step: number;
  daysLeft: number;
  /** The certificate still in use and its expiry. */
  thumbprint: string | null;
  notAfter: string | null;
  /** The last failure, stable type and words (free of secrets). */
  failure: { type: string; message: string };
  failingSince: string | null;
  attempts: number;
  nextAttemptAt: string | null;
  /** What a person should do; when absent, advice is derived from failure.type. */
  action?: string;
  bindings?: BindingOutcome[];
}

/** A certificate left paused for longer than the configured limit while its expiry approaches. */
export interface PausedTooLongEvent extends EventBase {
  kind: 'paused-too-long';
  pausedSince: string;
  pauseReason: string;
  /** Whole days paused when the event was raised (templates have no clock). */
  pausedDays: number;
  thumbprint: string | null;
  notAfter: string | null;
  daysLeft: number | null;
  /** When the renewal would be due if the certificate were not paused. */
  renewalDueAt?: string | null;
}

/**
 * Change control (windows, approval, staged rollout): a re-binding waits for its window, went ahead at the deadline,
 * needs (or still needs) approval, was denied, or a rollout stage failed and was rolled back.
 */
export interface ChangeControlEvent extends EventBase {
  kind: 'change-control';
  topic:
    | 'waiting-for-window'
    | 'deadline-override'
    | 'approval-requested'
    | 'approval-reminder'
    | 'approval-timeout'
    | 'approval-denied'
    | 'rollout-failed';
  /** One line about what happened, e.g. "waiting for window at 2026-12-03T22:00:00.000Z (change window "nights")". */
  text: string;
  thumbprint: string | null;
  previousThumbprint: string | null;
  /** Expiry of the certificate the consumers still serve. */
  notAfter: string | null;
  bindings?: BindingOutcome[];
}

export type NotificationEvent =
  | RenewedEvent
  | PartiallySyncedEvent
  | RenewalFailedEvent
  | EscalationEvent
  | PausedTooLongEvent
  | ChangeControlEvent;

export type NotificationKind = NotificationEvent['kind'];

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

export type Row = [label: string, value: string];

/** An event in words, before a medium (e-mail, Slack, Teams) gives it a form. */
export interface EventSummary {
  /** One line: the e-mail subject, the chat title. */
  title: string;
  severity: 'info' | 'warning' | 'error';
  lead: string;
  rows: Row[];
  bindings: BindingOutcome[];
  closing: string;
}

export function bindingLine(b: BindingOutcome): string {
  return `${b.status}: ${b.target} ${b.binding}${b.detail ? ` (${b.detail})` : ''}`;
}

const needsAttention = (b: BindingOutcome) => b.status === 'failed' || b.status === 'rolled-back';
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
const orNone = (v: string | null | undefined, none = 'none') => v ?? none;

function daysText(days: number | null | undefined): string {
  if (days == null) return 'expiry unknown';
  return days < 0 ? `expired ${plural(-days, 'day')} ago` : `${plural(days, 'day')} left`;
}

/** What a person can do about a failure, by its stable type; the workflow may send better words. */
export function adviceFor(type: string): string {
  const rules: [RegExp, string][] = [
    [
      /^VaultRenewalLate$/,
      "The vault renews this certificate itself (its policy names an integrated CA or Self): check the certificate's pending operation and the CA's order in the Azure portal (domain validation, the issuer account, payment), or run `certflow renew <id>` to ask the vault again. Certflow binds the new version as soon as it appears.",
    ],
    [
      /^Acme(Unauthorized|Dns|Caa|RejectedIdentifier|NoDnsChallenge)|^Dns/,
      'Check that certflow can prove control of every DNS name: the DNS provider credentials and zone, and CAA records that allow this CA.',
    ],
    [
      /RateLimited|Throttled/,
      'The CA or the vault is throttling requests; certflow backs off and retries. If expiry is close, renew with another CA account.',
    ],
    [
      /^Vault/,
      "Check that the vault is reachable and that certflow's identity may manage its certificates (Key Vault Certificates Officer).",
    ],
    [
      /Binding/,
      'Check the bindings listed below: they still serve the old certificate. Fix the target; the next sync (or syncNow) re-binds them.',
    ],
    [
      /Csr|Mismatch|Policy|Malformed|Rejected|Account/,
      'The CA refused the request itself: check the certificate policy (subject, names, key type) and the CA account against what the CA allows.',
    ],
  ];
  return (
    rules.find(([re]) => re.test(type))?.[1] ??
    "Open the certificate's workflow in the Temporal UI for the full error history, fix the cause, then run `certflow renew <id>`."
  );
}

type Describers = {
  [K in NotificationEvent['kind']]: (e: Extract<NotificationEvent, { kind: K }>) => EventSummary;
};

// `?? ` and `== null` on purpose: events built by casting may lack optional facts; render them as unknown
const describers: Describers = {
  renewed(e) {
    const attention = (e.bindings ?? []).filter(needsAttention).length;
    return {
      title:
        `[certflow] Renewed ${e.certificateId}, valid until ${when(e.notAfter)}` +
        (attention ? ` - ${plural(attention, 'binding')} need${attention === 1 ? 's' : ''} attention` : ''),
      severity: attention ? 'warning' : 'info',
      lead: `The certificate ${e.certificateId} was renewed.`,
      rows: [
        ['Reason', e.reason ?? 'unspecified'],
        ['Old thumbprint', orNone(e.oldThumbprint)],
        ['New thumbprint', e.newThumbprint],
        ['Valid until', when(e.notAfter)],
      ],
      bindings: e.bindings ?? [],
      closing: attention
        ? 'Bindings marked failed or rolled-back still use the old certificate: please look at them before it expires.'
        : 'No action is needed.',
    };
  },

  'partially-synced'(e) {
    const all = e.bindings ?? [];
    const failed = all.filter(needsAttention).length;
    return {
      title: `[certflow] ${failed} of ${plural(all.length, 'binding')} of ${e.certificateId} not on the current certificate`,
      severity: 'warning',
      lead: `Syncing ${e.certificateId} to its current certificate left ${plural(failed, 'binding')} behind.`,
      rows: [
        ['Trigger', e.trigger ?? 'unspecified'],
        ['Current thumbprint', e.thumbprint],
        ['Previous thumbprint', orNone(e.previousThumbprint)],
        ['Valid until', when(e.notAfter)],
        ['Failed bindings', `${failed} of ${all.length}`],
        ['Next attempt', e.nextAttemptAt ? when(e.nextAttemptAt) : 'none scheduled'],
      ],
      bindings: all,
      closing:
        'Bindings marked failed or rolled-back still serve an older certificate. certflow retries them; if they keep failing, the detail next to each says why.',
    };
  },

  'renewal-failed'(e) {
    return {
      title: `[certflow] ACTION NEEDED: renewal of ${e.certificateId} failed (${daysText(e.daysLeft)})`,
      severity: 'error',
      lead: `Renewing the certificate ${e.certificateId} failed${e.attempt ? ` (attempt ${e.attempt})` : ''}.`,
      rows: [
        ['Reason', e.reason ?? 'unspecified'],
        ['Current thumbprint', orNone(e.oldThumbprint)],
        ['Expires', when(e.notAfter)],
        ['Days left', e.daysLeft == null ? 'unknown' : String(e.daysLeft)],
        ['Next attempt', e.nextAttemptAt ? when(e.nextAttemptAt) : 'none scheduled'],
      ],
      bindings: e.bindings ?? [],
      closing:
        'certflow keeps retrying; if the reason above needs a person (policy, CA approval, credentials), act before expiry.',
    };
  },

  escalation(e) {
    const failure = e.failure ?? { type: 'Unknown', message: 'no detail' };
    return {
      title:
        failure.type === 'VaultRenewalLate'
          ? `[certflow] URGENT: ${e.certificateId}, ${daysText(e.daysLeft)}, the vault has not renewed it`
          : `[certflow] URGENT: ${e.certificateId}, ${daysText(e.daysLeft)}, renewal keeps failing (${failure.type})`,
      severity: 'error',
      lead: `${e.certificateId} could not be renewed and will expire ${when(e.notAfter)} (${daysText(e.daysLeft)}).`,
      rows: [
        ['Days left', String(e.daysLeft ?? 'unknown')],
        ['Expires', when(e.notAfter)],
        ['Current thumbprint', orNone(e.thumbprint)],
        ['What failed', `${failure.type}: ${failure.message}`],
        ['Failing since', e.failingSince ? when(e.failingSince) : 'unknown'],
        ['Attempts', String(e.attempts ?? 'unknown')],
        ['Next attempt', e.nextAttemptAt ? when(e.nextAttemptAt) : 'none scheduled'],
      ],
      bindings: e.bindings ?? [],
      closing: `What to do: ${e.action ?? adviceFor(failure.type)}`,
    };
  },

  'change-control'(e) {
    return changeControlDescriber(e);
  },

  'paused-too-long'(e) {
    return {
      title: `[certflow] ${e.certificateId} has been paused${e.pausedDays == null ? '' : ` for ${plural(e.pausedDays, 'day')}`} (${daysText(e.daysLeft)})`,
      severity: e.daysLeft != null && e.daysLeft <= 7 ? 'error' : 'warning',
      lead: `Renewal of ${e.certificateId} is paused, so it will not renew before it expires unless someone resumes it.`,
      rows: [
        ['Paused since', when(e.pausedSince)],
        ['Pause reason', e.pauseReason ?? 'unspecified'],
        ['Expires', when(e.notAfter)],
        ['Days left', e.daysLeft == null ? 'unknown' : String(e.daysLeft)],
        ['Renewal due', e.renewalDueAt ? when(e.renewalDueAt) : 'unknown'],
        ['Current thumbprint', orNone(e.thumbprint)],
      ],
      bindings: [],
      closing: `If the reason for the pause is gone, run \`certflow resume ${e.certificateId}\`; otherwise renew it another way before it expires.`,
    };
  },
};

const CHANGE_TITLES: Record<ChangeControlEvent['topic'], [string, EventSummary['severity']]> = {
  'waiting-for-window': ['renewed; re-binding waits for its change window', 'info'],
  'deadline-override': [
    're-binding now, outside change windows: the deadline before expiry passed',
    'warning',
  ],
  'approval-requested': ['approval needed', 'info'],
  'approval-reminder': ['reminder: approval needed', 'warning'],
  'approval-timeout': ['ESCALATION: approval not given in time', 'error'],
  'approval-denied': ['change denied; the new version stays unbound', 'warning'],
  'rollout-failed': ['ACTION NEEDED: rollout stage failed and was rolled back', 'error'],
};
const CHANGE_CLOSING: Record<ChangeControlEvent['topic'], (id: string) => string> = {
  'waiting-for-window': () => 'No action is needed: consumers are re-bound when the window opens.',
  'deadline-override': () =>
    'The hard deadline before expiry overrides change windows and freezes, so that nothing serves an expired certificate.',
  'approval-requested': (id) =>
    `Approve with \`certflow approve ${id}\` or refuse with \`certflow deny ${id} --reason "..."\`.`,
  'approval-reminder': (id) =>
    `Approve with \`certflow approve ${id}\` or refuse with \`certflow deny ${id} --reason "..."\`.`,
  'approval-timeout': (id) =>
    `Nobody decided in time. Approve with \`certflow approve ${id}\` or refuse with \`certflow deny ${id} --reason "..."\` before the certificate in use expires.`,
  'approval-denied': (id) =>
    `The new version stays in the vault but is not bound. \`certflow sync ${id}\` binds it later; renew again for another one.`,
  'rollout-failed': (id) =>
    `The failed stage was rolled back to the previous certificate and later stages were not touched. Fix the target, then \`certflow sync ${id}\` binds every consumer.`,
};

const changeControlDescriber = (e: ChangeControlEvent): EventSummary => {
  const [what, severity] = CHANGE_TITLES[e.topic] ?? ['change control', 'info'];
  return {
    title: `[certflow] ${e.certificateId}: ${what}`,
    severity,
    lead: `${e.certificateId}: ${e.text}`,
    rows: [
      ['New thumbprint', orNone(e.thumbprint)],
      ['Consumers are on', orNone(e.previousThumbprint)],
      ['That certificate expires', when(e.notAfter)],
    ],
    bindings: e.bindings ?? [],
    closing: (CHANGE_CLOSING[e.topic] ?? (() => ''))(e.certificateId),
  };
};

export function describeEvent(e: NotificationEvent): EventSummary {
  const s = (describers[e.kind] as (x: NotificationEvent) => EventSummary)(e);
  const mode: Array<[string, string]> = e.mode
    ? [
        [
          'Renewed by',
          e.mode === 'observe'
            ? 'the vault itself (observe mode); Certflow binds, verifies and tells you'
            : 'Certflow with its CA (issue mode)',
        ],
      ]
    : [];
  return { ...s, rows: [...s.rows, ...mode].map(([label, value]) => [label, value ?? 'unknown']) };
}

export function renderEmail(e: NotificationEvent): RenderedEmail {
  const s = describeEvent(e);
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
  return { subject: headerSafe(s.title), text, html };
}
