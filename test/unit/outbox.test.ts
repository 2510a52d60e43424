import { describe, expect, it } from 'vitest';
import type { NotifyInput } from '../../activities/notify/events';
import {
  OUTBOX_GIVE_UP_MS,
  OUTBOX_MAX,
  afterRetry,
  dueMail,
  nextMailAt,
  queueMail,
} from '../../workflows/lifecycle/outbox';

const mail = (eventId: string): NotifyInput => ({ kind: 'renewed', eventId, certificateId: 'kv/site' });
const t0 = new Date('2026-12-01T10:00:00Z');
const at = (ms: number) => new Date(t0.getTime() + ms);
const MIN = 60_000;

describe('the outbox of mails that could not be sent', () => {
  it('queues a failed mail for a retry a minute later, once per event', () => {
    const { outbox } = queueMail([], mail('e1'), t0);
    expect(outbox).toEqual([
      { input: mail('e1'), since: t0.toISOString(), failures: 1, nextAt: at(MIN).toISOString() },
    ]);
    expect(queueMail(outbox, mail('e1'), at(5)).outbox).toHaveLength(1);
    expect(nextMailAt(outbox)).toEqual(at(MIN));
    expect(nextMailAt([])).toBeNull();
    expect(nextMailAt(undefined)).toBeNull();
  });

  it('is due at its time, oldest first', () => {
    let box = queueMail([], mail('a'), t0).outbox;
    box = queueMail(box, mail('b'), at(10)).outbox;
    expect(dueMail(box, at(MIN - 1))).toBeUndefined();
    expect(dueMail(box, at(MIN))?.input.eventId).toBe('a');
    expect(dueMail(undefined, at(MIN))).toBeUndefined();
  });

  it('a failed retry backs off (1, 2, 4 ... minutes, at most 30); a sent one leaves', () => {
    let box = queueMail([], mail('a'), t0).outbox;
    const gaps: number[] = [];
    let now = t0;
    for (let i = 0; i < 8; i++) {
      now = new Date(box[0]!.nextAt);
      box = afterRetry(box, 'a', false, now).outbox;
      gaps.push((Date.parse(box[0]!.nextAt) - now.getTime()) / MIN);
    }
    expect(gaps).toEqual([2, 4, 8, 16, 30, 30, 30, 30]);
    expect(box[0]!.failures).toBe(9);
    expect(afterRetry(box, 'a', true, now)).toEqual({ outbox: [], givenUp: null });
    expect(afterRetry(box, 'unknown', false, now).outbox).toEqual(box); // not ours: unchanged
  });

  it('gives a mail up after a week of failures', () => {
    const box = queueMail([], mail('a'), t0).outbox;
    const r = afterRetry(box, 'a', false, at(OUTBOX_GIVE_UP_MS + 1));
    expect(r.outbox).toEqual([]);
    expect(r.givenUp?.input.eventId).toBe('a');
  });

  it('keeps at most OUTBOX_MAX mails, dropping the oldest', () => {
    let box = [] as ReturnType<typeof queueMail>['outbox'];
    const dropped: string[] = [];
    for (let i = 0; i < OUTBOX_MAX + 2; i++) {
      const r = queueMail(box, mail(`e${i}`), at(i));
      box = r.outbox;
      dropped.push(...r.dropped.map((d) => d.input.eventId));
    }
    expect(box).toHaveLength(OUTBOX_MAX);
    expect(dropped).toEqual(['e0', 'e1']);
  });
});
