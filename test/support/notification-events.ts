/**
 * One event of each notification kind, with the facts a reader must find in whatever medium renders it
 * (e-mail subject and bodies, Slack blocks, Teams card). Shared by the e-mail and chat tests.
 */
import type { BindingOutcome } from '../../activities/types';
import type { NotificationEvent } from '../../activities/notify/templates';

export const OLD = '3F2A9C0D4B1E8A7765C4D3E2F1A0B9C8D7E6F504';
export const NEW = 'A1B2C3D4E5F60718293A4B5C6D7E8F9001122334';
export const CERT = 'kv-test/api-cert';

const bound: BindingOutcome = {
  target: 'nginx-edge',
  binding: '/etc/nginx/tls/api.pem',
  before: OLD,
  after: NEW,
  status: 'bound',
  detail: '127.0.0.1:8443 (SNI <api>&"x") serves the new one',
};
const failed: BindingOutcome = {
  target: 'app-service',
  binding: 'rg-web/site-a/api.example.com',
  before: OLD,
  after: null,
  status: 'failed',
  detail: 'HTTP 409 Conflict',
};

export interface SampleEvent {
  event: NotificationEvent;
  subject: string;
  /** Every one of these appears in the plain text and (escaped) in the HTML. */
  facts: string[];
}

export function sampleEvents(recipients: string[], idPrefix: string): SampleEvent[] {
  const base = { certificateId: CERT, recipients };
  return [
    {
      event: {
        ...base,
        kind: 'renewed',
        eventId: `${idPrefix}-renewed`,
        reason: 'NearingExpiry',
        oldThumbprint: OLD,
        newThumbprint: NEW,
        notAfter: '2027-02-01T12:00:00Z',
        bindings: [bound],
      },
      subject: `[certflow] Renewed ${CERT}, valid until 2027-02-01 12:00 UTC`,
      facts: [OLD, NEW, 'NearingExpiry', 'bound: nginx-edge /etc/nginx/tls/api.pem', 'No action is needed.'],
    },
    {
      event: {
        ...base,
        kind: 'partially-synced',
        eventId: `${idPrefix}-partial`,
        trigger: 'Renewal',
        thumbprint: NEW,
        previousThumbprint: OLD,
        notAfter: '2027-02-01T12:00:00Z',
        bindings: [bound, failed],
        nextAttemptAt: '2027-01-02T03:04:00Z',
      },
      subject: `[certflow] 1 of 2 bindings of ${CERT} not on the current certificate`,
      facts: [
        NEW,
        OLD,
        '1 of 2',
        'failed: app-service rg-web/site-a/api.example.com (HTTP 409 Conflict)',
        '2027-01-02 03:04 UTC',
      ],
    },
    {
      event: {
        ...base,
        kind: 'renewal-failed',
        eventId: `${idPrefix}-failed`,
        reason: 'AcmeRateLimited: too many certificates already issued',
        oldThumbprint: OLD,
        notAfter: '2027-02-01T12:00:00Z',
        daysLeft: 12,
        nextAttemptAt: '2027-01-20T06:00:00Z',
        attempt: 4,
      },
      subject: `[certflow] ACTION NEEDED: renewal of ${CERT} failed (12 days left)`,
      facts: ['too many certificates already issued', 'attempt 4', '2027-01-20 06:00 UTC', OLD],
    },
    {
      event: {
        ...base,
        kind: 'escalation',
        eventId: `${idPrefix}-escalation-3`,
        step: 3,
        daysLeft: 3,
        thumbprint: OLD,
        notAfter: '2027-02-01T12:00:00Z',
        failure: { type: 'AcmeCaa', message: 'CAA record forbids the CA from issuing' },
        failingSince: '2027-01-10T00:00:00Z',
        attempts: 9,
        nextAttemptAt: '2027-01-29T12:00:00Z',
      },
      subject: `[certflow] URGENT: ${CERT}, 3 days left, renewal keeps failing (AcmeCaa)`,
      facts: [
        'AcmeCaa: CAA record forbids the CA from issuing',
        '2027-01-10 00:00 UTC',
        'What to do:',
        'CAA records',
      ],
    },
    {
      event: {
        ...base,
        kind: 'paused-too-long',
        eventId: `${idPrefix}-paused`,
        pausedSince: '2027-01-01T09:00:00Z',
        pauseReason: 'migration to the new CA <ticket 42>',
        pausedDays: 21,
        thumbprint: OLD,
        notAfter: '2027-02-01T12:00:00Z',
        daysLeft: 10,
        renewalDueAt: '2027-01-15T00:00:00Z',
      },
      subject: `[certflow] ${CERT} has been paused for 21 days (10 days left)`,
      facts: ['migration to the new CA <ticket 42>', '2027-01-01 09:00 UTC', `certflow resume ${CERT}`],
    },
  ];
}
