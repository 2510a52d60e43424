/**
 * The same events as the e-mails (templates.ts, describeEvent), shaped for chat incoming webhooks.
 * - Slack: `{ text, blocks }` (https://api.slack.com/messaging/webhooks); `text` is the fallback shown in
 *   notifications. mrkdwn needs &, < and > escaped (https://api.slack.com/reference/surfaces/formatting#escaping),
 *   which also keeps `<!channel>`-style mentions out of values. Limits: header 150 chars, section text 3000,
 *   at most 10 fields of 2000 chars each.
 * - Teams: an Adaptive Card in a message attachment, as documented in "Send Adaptive Cards using an Incoming
 *   Webhook" (https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using#send-adaptive-cards-using-an-incoming-webhook).
 *   The same payload is accepted by the Workflows "when a Teams webhook request is received" trigger that
 *   replaces Office 365 connectors; the older MessageCard format is not used because connectors are retired.
 * Pure: no I/O, so tests can look at the payloads directly.
 */
import { bindingLine, describeEvent, type EventSummary, type NotificationEvent } from './templates';

export type ChatFlavor = 'slack' | 'teams';

const MAX_BINDINGS = 20;

const chatTitle = (s: EventSummary) => s.title.replace(/^\[certflow\] /, '');

function bindingLines(s: EventSummary): string[] {
  const lines = s.bindings.slice(0, MAX_BINDINGS).map((b) => `- ${bindingLine(b)}`);
  const more = s.bindings.length - MAX_BINDINGS;
  return more > 0 ? [...lines, `... and ${more} more`] : lines;
}

const cut = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 3)}...` : text);

export const slackEscape = (s: string): string =>
  s.replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c] ?? c);

const ICON = { info: ':white_check_mark:', warning: ':warning:', error: ':rotating_light:' } as const;

export function slackPayload(e: NotificationEvent): { text: string; blocks: object[] } {
  const s = describeEvent(e);
  const title = chatTitle(s);
  const md = (text: string, max = 3000) => ({ type: 'mrkdwn', text: cut(slackEscape(text), max) });
  const lines = bindingLines(s);
  return {
    text: cut(slackEscape(title), 3000),
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: cut(title, 150), emoji: true } },
      { type: 'section', text: md(`${ICON[s.severity]} ${s.lead}`) },
      {
        type: 'section',
        fields: s.rows.slice(0, 10).map(([label, value]) => md(`*${label}*\n${value}`, 2000)),
      },
      ...(lines.length ? [{ type: 'section', text: md(`*Bindings*\n${lines.join('\n')}`) }] : []),
      { type: 'section', text: md(s.closing) },
      { type: 'context', elements: [md(`certflow event ${e.eventId}`)] },
    ],
  };
}

const COLOR = { info: 'Good', warning: 'Warning', error: 'Attention' } as const;

export function teamsPayload(e: NotificationEvent): object {
  const s = describeEvent(e);
  const text = (value: string, extra: object = {}) => ({
    type: 'TextBlock',
    text: value,
    wrap: true,
    ...extra,
  });
  const lines = bindingLines(s);
  return {
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: '1.2',
          msteams: { width: 'Full' },
          body: [
            text(chatTitle(s), { weight: 'Bolder', size: 'Medium', color: COLOR[s.severity] }),
            text(s.lead),
            { type: 'FactSet', facts: s.rows.map(([title, value]) => ({ title, value })) },
            ...(lines.length ? [text('Bindings', { weight: 'Bolder' }), text(lines.join('\n'))] : []),
            text(s.closing),
            text(`certflow event ${e.eventId}`, { isSubtle: true, size: 'Small' }),
          ],
        },
      },
    ],
  };
}

export function chatPayload(flavor: ChatFlavor, e: NotificationEvent): object {
  return flavor === 'slack' ? slackPayload(e) : teamsPayload(e);
}
