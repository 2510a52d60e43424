/**
 * The chat notifier against a real HTTP server on loopback standing in for Slack and Teams incoming
 * webhooks: the payload each flavor documents (Slack `{ text, blocks }`, Teams Adaptive Card attachment)
 * with every fact of every event kind, escaping, how answers are classified for the activity's retries,
 * and one post per event id.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createChatNotifier } from '../../activities/notify/chat';
import { slackEscape, type ChatFlavor } from '../../activities/notify/chat-payloads';
import type { RenewedEvent } from '../../activities/notify/templates';
import type { BindingOutcome } from '../../activities/types';
import { startHttpSink, type HttpSink } from '../support/http-sink';
import { sampleEvents, type SampleEvent } from '../support/notification-events';
import { failureOf } from '../support/acme';
import { freePort } from '../support/proc';

const TOKEN = 'T000/B000/XXXXsecretXXXX';
let sink: HttpSink;
beforeAll(async () => {
  sink = await startHttpSink(`/services/${TOKEN}`);
});
afterAll(async () => {
  await sink?.stop();
});
beforeEach(() => {
  sink.requests.length = 0;
  sink.reply = () => ({ status: 200, body: 'ok' });
});

/** Every string inside a payload, in order: what a reader of the card could see. */
function texts(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.flatMap(texts);
  if (v && typeof v === 'object') return Object.values(v).flatMap(texts);
  return [];
}

const cases = (['slack', 'teams'] as const).flatMap((flavor) =>
  sampleEvents(['a@x.com'], `chat-${flavor}`).map((s): [ChatFlavor, string, SampleEvent] => [
    flavor,
    s.event.kind,
    s,
  ]),
);

describe('chat notifier', () => {
  it.each(cases)(
    '%s %s: documented payload carrying every fact',
    async (flavor, _kind, { event, subject, facts }) => {
      const result = await createChatNotifier({ url: sink.url, flavor }).send(event);
      expect(result).toEqual({ status: 200 });
      expect(sink.requests).toHaveLength(1);
      const req = sink.requests[0]!;
      expect(req.path).toBe(`/services/${TOKEN}`);
      expect(req.headers['content-type']).toBe('application/json');
      const payload = JSON.parse(req.body) as Record<string, unknown>;
      const title = subject.replace('[certflow] ', '');

      if (flavor === 'slack') {
        expect(payload.text).toBe(slackEscape(title));
        const blocks = payload.blocks as { type: string; text?: { text: string } }[];
        expect(blocks[0]).toEqual({ type: 'header', text: { type: 'plain_text', text: title, emoji: true } });
        const seen = texts(blocks).join('\n');
        for (const fact of facts) expect(seen).toContain(slackEscape(fact));
        expect(seen).not.toMatch(/<(api|ticket)/);
      } else {
        expect(payload.type).toBe('message');
        const [attachment] = payload.attachments as {
          contentType: string;
          content: Record<string, unknown>;
        }[];
        expect(attachment!.contentType).toBe('application/vnd.microsoft.card.adaptive');
        expect(attachment!.content).toMatchObject({ type: 'AdaptiveCard', version: '1.2' });
        const body = attachment!.content.body as { type: string; text?: string }[];
        expect(body[0]!.text).toBe(title);
        expect(body.some((b) => b.type === 'FactSet')).toBe(true);
        const seen = texts(body).join('\n');
        for (const fact of facts) expect(seen).toContain(fact);
      }
    },
  );

  it('keeps Slack mentions and links in values inert, and bounds long binding lists', async () => {
    const many: BindingOutcome[] = Array.from({ length: 50 }, (_, i) => ({
      target: 'nginx',
      binding: `/srv/site-${i}.pem`,
      before: 'AA',
      after: null,
      status: 'failed',
      detail: 'x'.repeat(80),
    }));
    const [renewed] = sampleEvents(['a@x.com'], 'chat-escape');
    const event = {
      ...renewed!.event,
      reason: '<!channel> <https://evil.example|click>',
      bindings: many,
    } as RenewedEvent;
    await createChatNotifier({ url: sink.url, flavor: 'slack' }).send(event);
    const blocks = (JSON.parse(sink.requests[0]!.body) as { blocks: unknown[] }).blocks;
    const seen = texts(blocks);
    expect(seen.join('\n')).toContain('&lt;!channel&gt; &lt;https://evil.example|click&gt;');
    expect(seen.join('\n')).not.toContain('<!channel>');
    expect(seen.join('\n')).toContain('... and 30 more');
    for (const t of seen) expect(t.length).toBeLessThanOrEqual(3000);
  });

  it('classifies answers for the activity: 429 with Retry-After and 5xx retryable, other 4xx final', async () => {
    const n = createChatNotifier({ url: sink.url, flavor: 'slack' });
    const [{ event }] = sampleEvents(['a@x.com'], 'chat-status') as [SampleEvent];

    sink.reply = () => ({ status: 429, headers: { 'retry-after': '7' }, body: 'rate_limited' });
    const throttled = await failureOf(n.send(event));
    expect(throttled).toMatchObject({ type: 'ChatUnavailable', nonRetryable: false, nextRetryDelay: 7000 });

    sink.reply = () => ({ status: 503 });
    expect(await failureOf(n.send(event))).toMatchObject({ type: 'ChatUnavailable', nonRetryable: false });

    sink.reply = () => ({ status: 404, body: 'no_service' });
    const gone = await failureOf(n.send(event));
    expect(gone).toMatchObject({ type: 'ChatRejected', nonRetryable: true });
    expect(gone.message).toContain('HTTP 404 "no_service"');

    for (const f of [throttled, gone]) expect(f.message).not.toContain(TOKEN);
    expect(sink.requests).toHaveLength(3);
  });

  it('reports a webhook that does not answer as retryable, naming only its host', async () => {
    const port = await freePort();
    const f = await failureOf(
      createChatNotifier({ url: `http://127.0.0.1:${port}/services/${TOKEN}`, flavor: 'teams' }).send(
        sampleEvents(['a@x.com'], 'chat-down')[0]!.event,
      ),
    );
    expect(f).toMatchObject({ type: 'ChatUnavailable', nonRetryable: false });
    expect(f.message).toContain(`teams webhook http://127.0.0.1:${port} did not answer (`);
    expect(f.message).toContain('ECONNREFUSED');
    expect(f.message).not.toContain(TOKEN);
  });

  it('posts an event id once, even when the activity is retried after a lost completion', async () => {
    const n = createChatNotifier({ url: sink.url, flavor: 'teams' });
    const { event } = sampleEvents(['a@x.com'], 'chat-dedupe')[1]!;
    expect(await n.send(event)).toEqual({ status: 200 });
    expect(await n.send(event)).toEqual({ duplicate: true });
    expect(sink.requests).toHaveLength(1);
  });

  it('refuses a bad flavor or URL at configuration time', () => {
    expect(() => createChatNotifier({ url: sink.url, flavor: 'discord' as 'slack' })).toThrow(
      'chat notifier: flavor must be "slack" or "teams", got "discord"',
    );
    expect(() => createChatNotifier({ url: 'hooks.slack.com/x', flavor: 'slack' })).toThrow(
      'chat notifier (slack): url: expected an absolute http(s) URL',
    );
  });
});
