import { describe, expect, it } from 'vitest';
import {
  combinedProgress,
  fitEntries,
  formatDuration,
  MAX_PARTS,
  newPacer,
  nextStart,
  paced,
  partOfId,
  partsNeeded,
  progressBar,
  progressLine,
  progressOf,
  refunded,
  reissuedSince,
  revocationReasonOf,
  selectCandidates,
  selectionProblem,
  type CandidateRow,
  WAVE_ENTRIES_BUDGET_BYTES,
  WAVE_PAYLOAD_LIMIT_BYTES,
  waveOutcomeBytes,
  waveSizeProblem,
} from '../../workflows/wave-plan';
import type { WaveCarried, WaveEntry, WaveInput } from '../../workflows/wave-messages';
import type { ProgressCounts } from '../../workflows/wave-plan';
import {
  KEY_VAULT_HSM_KEY_CREATES,
  KEY_VAULT_KEY_CREATES,
  keyCreateQuotaOf,
  quotaRatePerSecond,
  tighterRate,
} from '../../worker/quotas';
import { priorityOf } from '../../workflows/priority';

const NOW = new Date('2026-12-02T12:00:00Z');
const day = 86_400_000;
const row = (id: string, issuer: string | null, daysLeft: number | null): CandidateRow => ({
  certificateId: id,
  vault: id.split('/')[0]!,
  issuer,
  expiresAt: daysLeft === null ? null : new Date(NOW.getTime() + daysLeft * day).toISOString(),
});
const ROWS = [
  row('kv-a/web', 'old-ca', 40),
  row('kv-a/api', 'old-ca', 5),
  row('kv-b/mail', 'lets-encrypt', 2),
  row('kv-b/vpn', 'old-ca', null),
  row('kv-c/intranet', 'old-ca', 80),
];

describe('selection', () => {
  it('needs --all or a filter, and not both', () => {
    expect(selectionProblem({})).toMatch(/--all or at least one/);
    expect(selectionProblem(undefined)).toMatch(/selection/);
    expect(selectionProblem({ all: true, vault: 'kv-a' })).toMatch(/--all selects every/);
    expect(selectionProblem({ all: true })).toBeUndefined();
    expect(selectionProblem({ issuer: 'old ca' })).toMatch(/^issuer:/);
    expect(selectionProblem({ expiringWithinSeconds: 0 })).toMatch(/^expiringWithin:/);
    expect(selectionProblem({ tag: { name: '', value: 'x' } })).toMatch(/^tag:/);
  });

  it('filters by issuer, vault, tag and expiry, soonest expiry first', () => {
    expect(selectCandidates(ROWS, { all: true }, NOW).map((e) => e.id)).toEqual([
      'kv-b/mail',
      'kv-a/api',
      'kv-a/web',
      'kv-c/intranet',
      'kv-b/vpn', // no expiry known: last
    ]);
    expect(selectCandidates(ROWS, { issuer: 'old-ca' }, NOW).map((e) => e.id)).toEqual([
      'kv-a/api',
      'kv-a/web',
      'kv-c/intranet',
      'kv-b/vpn',
    ]);
    expect(selectCandidates(ROWS, { issuer: 'old-ca', vault: 'kv-a' }, NOW).map((e) => e.id)).toEqual([
      'kv-a/api',
      'kv-a/web',
    ]);
    expect(selectCandidates(ROWS, { expiringWithinSeconds: 30 * 86_400 }, NOW).map((e) => e.id)).toEqual([
      'kv-b/mail',
      'kv-a/api',
    ]);
    const tagged = new Set(['kv-a/web', 'kv-b/vpn']);
    expect(
      selectCandidates(ROWS, { tag: { name: 'team', value: 'x' } }, NOW, tagged).map((e) => e.id),
    ).toEqual(['kv-a/web', 'kv-b/vpn']);
    // a tag filter without the tagged set selects nothing (never everything)
    expect(selectCandidates(ROWS, { tag: { name: 'team', value: 'x' } }, NOW)).toEqual([]);
  });

  it('takes each certificate once, pending', () => {
    const out = selectCandidates([...ROWS, ROWS[0]!], { all: true }, NOW);
    expect(out).toHaveLength(5);
    expect(out.every((e) => e.status === 'pending')).toBe(true);
  });
});

const pending = (id: string): WaveEntry => ({
  id,
  vault: id.split('/')[0]!,
  issuer: 'x',
  expiresAt: null,
  status: 'pending',
});

describe('pacing', () => {
  it('starts each vault at its rate, the others meanwhile, and never more than the concurrency', () => {
    const entries = ['kv-a/1', 'kv-a/2', 'kv-a/3', 'kv-b/1'].map(pending);
    const rates = { 'kv-a': 2, 'kv-b': 2 };
    let pacer = newPacer();
    const starts: Array<[number, string]> = [];
    let running = 0;
    for (let now = 0; now <= 2000 && starts.length < 4;) {
      const n = nextStart(entries, pacer, rates, { now, running, concurrency: 10 });
      if ('start' in n) {
        const e = entries[n.start]!;
        e.status = 'running';
        running++;
        pacer = paced(pacer, e.vault, rates, now);
        starts.push([now, e.id]);
      } else if ('waitMs' in n) now += n.waitMs;
      else break;
    }
    // kv-a at 2/s: 0, 500, 1000 ms; kv-b starts at once beside it
    expect(starts).toEqual([
      [0, 'kv-a/1'],
      [0, 'kv-b/1'],
      [500, 'kv-a/2'],
      [1000, 'kv-a/3'],
    ]);
    expect(nextStart(entries, pacer, rates, { now: 5000, running, concurrency: 10 })).toEqual({ idle: true });
  });

  it('waits for one under way when the concurrency is reached, and for the wave-wide rate', () => {
    const entries = ['kv-a/1', 'kv-a/2'].map(pending);
    expect(nextStart(entries, newPacer(), {}, { now: 0, running: 3, concurrency: 3 })).toEqual({
      idle: true,
    });
    const p = paced(newPacer(), 'kv-a', {}, 0, 4);
    expect(nextStart(entries, p, {}, { now: 100, running: 1, concurrency: 3, ratePerSecond: 4 })).toEqual({
      waitMs: 150,
    });
    expect(nextStart(entries, p, {}, { now: 250, running: 1, concurrency: 3, ratePerSecond: 4 })).toEqual({
      start: 0,
    });
  });

  it('a thousand certificates over five vaults at 1.6/s each (20 per 10 s) take about 1000/8 s', () => {
    const entries = Array.from({ length: 1000 }, (_, i) => pending(`kv-${i % 5}/c${i}`));
    const rates = Object.fromEntries(
      [0, 1, 2, 3, 4].map((v) => [`kv-${v}`, quotaRatePerSecond(KEY_VAULT_KEY_CREATES)]),
    );
    let pacer = newPacer();
    let now = 0;
    const perVaultWindow = new Map<string, number[]>();
    let started = 0;
    while (started < 1000) {
      const n = nextStart(entries, pacer, rates, { now, running: 0, concurrency: 50 });
      if ('start' in n) {
        const e = entries[n.start]!;
        e.status = 'reissued';
        pacer = paced(pacer, e.vault, rates, now);
        started++;
        const list = perVaultWindow.get(e.vault) ?? [];
        list.push(now);
        perVaultWindow.set(e.vault, list);
      } else if ('waitMs' in n) now += n.waitMs;
    }
    expect(now / 1000).toBeGreaterThan(124);
    expect(now / 1000).toBeLessThan(125);
    // no vault gets more than 17 starts in any 10 s (its quota is 20; the queue's buckets take the rest)
    for (const times of perVaultWindow.values())
      for (let i = 0; i < times.length; i++)
        expect(times.filter((t) => t >= times[i]! && t < times[i]! + 10_000).length).toBeLessThanOrEqual(19);
  });
});

describe('a skipped certificate gives its slot back', () => {
  it("moves its vault's next start one interval earlier, never before now", () => {
    const rates = { 'kv-a': 2 };
    const p = paced(paced(newPacer(), 'kv-a', rates, 0), 'kv-a', rates, 0); // next at 1000
    expect(refunded(p, 'kv-a', rates, 0).vaultNextAt['kv-a']).toBe(500);
    expect(refunded(p, 'kv-a', rates, 900).vaultNextAt['kv-a']).toBe(900);
    expect(refunded(p, 'kv-b', rates, 0)).toBe(p);
  });
});

describe('re-running is safe', () => {
  const since = '2026-12-02T10:00:00Z';
  const attempt = (startedAt: string, newThumbprint: string, status: 'renewed' | 'failed' = 'renewed') => ({
    status,
    startedAt,
    newThumbprint,
  });
  it('skips a certificate whose current version came from an attempt started since the wave began', () => {
    expect(reissuedSince([attempt('2026-12-02T10:05:00Z', 'ABC')], 'abc', since)).toBe(
      '2026-12-02T10:05:00Z',
    );
  });
  it('re-issues one renewed before the wave, one whose newer renewal failed, one replaced since', () => {
    expect(reissuedSince([attempt('2026-12-02T09:59:59Z', 'ABC')], 'ABC', since)).toBeNull();
    expect(reissuedSince([attempt('2026-12-02T10:05:00Z', 'DEF', 'failed')], 'ABC', since)).toBeNull();
    // renewed during the wave, but the vault's current version is another one (a person imported one since)
    expect(reissuedSince([attempt('2026-12-02T10:05:00Z', 'DEF')], 'ABC', since)).toBeNull();
    expect(reissuedSince([attempt('2026-12-02T10:05:00Z', 'DEF')], null, since)).toBeNull();
  });
});

describe('progress', () => {
  const entries = (statuses: WaveEntry['status'][]): WaveEntry[] =>
    statuses.map((status, i) => ({ ...pending(`kv-a/c${i}`), status }));
  it('counts, rate and ETA, pauses left out', () => {
    const c = {
      startedAt: '2026-12-02T12:00:00Z',
      entries: entries([
        'reissued',
        'reissued',
        'skipped',
        'failed',
        'running',
        'pending',
        'pending',
        'pending',
      ]),
      vaultRates: { 'kv-a': 1.8 },
      paused: null,
      pausedMs: 60_000,
    };
    // 4 finished in 2 active minutes (3 minutes less 1 paused): 2/min; 4 left → 120 s
    const p = progressOf('wave:x', 'key-compromise', 'Running', c, Date.parse('2026-12-02T12:03:00Z'));
    expect(p).toMatchObject({
      total: 8,
      reissued: 2,
      skipped: 1,
      failed: 1,
      running: 1,
      pending: 3,
      perMinute: 2,
      etaSeconds: 120,
    });
    expect(progressBar(p, 8)).toBe('[###!>...]');
    const paused = progressOf(
      'wave:x',
      'key-compromise',
      'Paused',
      { ...c, paused: { reason: 'r', since: '2026-12-02T12:02:00Z' } },
      Date.parse('2026-12-02T12:03:00Z'),
    );
    expect(paused.perMinute).toBe(4); // 4 in 1 active minute
  });

  it("combines a split wave's parts: counts added, rates of the parts still going, ETA of the slowest", () => {
    const part = (over: Partial<ProgressCounts>): ProgressCounts => ({
      state: 'Running',
      total: 10,
      reissued: 0,
      skipped: 0,
      failed: 0,
      running: 0,
      pending: 10,
      cancelled: 0,
      perMinute: null,
      etaSeconds: null,
      ...over,
    });
    const done = part({ state: 'Done', reissued: 9, failed: 1, pending: 0, perMinute: 30, etaSeconds: 0 });
    const a = part({ reissued: 4, running: 2, pending: 4, perMinute: 6, etaSeconds: 60 });
    const b = part({ reissued: 1, skipped: 1, running: 1, pending: 7, perMinute: 2.25, etaSeconds: 240 });
    const c = combinedProgress([done, a, b]);
    expect(c).toEqual({
      state: 'Running',
      total: 30,
      reissued: 14,
      skipped: 1,
      failed: 1,
      running: 3,
      pending: 11,
      cancelled: 0,
      perMinute: 8.3, // 6 + 2.25 (the ended part adds nothing now)
      etaSeconds: 240,
    });
    expect(progressLine(c)).toBe(
      'running: 14 re-issued, 1 skipped, 1 failed, 3 under way, 11 left of 30 · 8.3/min · ETA 4m 00s',
    );
    // a part without a rate yet: no ETA for the whole
    expect(combinedProgress([a, part({})]).etaSeconds).toBeNull();
    // the most active state any part is in; all ended: Done, unless one was cancelled
    expect(combinedProgress([done, part({ state: 'Paused' })]).state).toBe('Paused');
    expect(combinedProgress([part({ state: 'Paused' }), part({ state: 'Selecting' })]).state).toBe(
      'Selecting',
    );
    expect(combinedProgress([done, part({ state: 'Cancelled' })]).state).toBe('Cancelled');
    const ended = combinedProgress([done, { ...done, perMinute: 10 }]);
    expect([ended.state, ended.perMinute, ended.etaSeconds]).toEqual(['Done', 40, null]);
    expect(combinedProgress([]).total).toBe(0);
  });
  it('no rate yet: no ETA; nothing left: ETA 0', () => {
    const c = {
      startedAt: '2026-12-02T12:00:00Z',
      entries: entries(['pending']),
      vaultRates: {},
      paused: null,
      pausedMs: 0,
    };
    expect(
      progressOf('w', 'ca-distrust', 'Running', c, Date.parse('2026-12-02T12:01:00Z')).etaSeconds,
    ).toBeNull();
    const d = { ...c, entries: entries(['reissued']) };
    expect(progressOf('w', 'ca-distrust', 'Done', d, Date.parse('2026-12-02T12:01:00Z')).etaSeconds).toBe(0);
    expect(formatDuration(3725)).toBe('1h 02m');
    expect(formatDuration(185)).toBe('3m 05s');
    expect(formatDuration(null)).toBe('?');
  });
  it('revocation reasons', () => {
    expect(revocationReasonOf('key-compromise')).toEqual({ code: 1, name: 'keyCompromise' });
    expect(revocationReasonOf('ca-distrust')).toEqual({ code: 4, name: 'superseded' });
  });
});

describe('quotas as task-queue rates', () => {
  it('keeps a full burst plus a window of steady rate within the quota', () => {
    expect(quotaRatePerSecond(KEY_VAULT_KEY_CREATES)).toBe(1.6);
    expect(quotaRatePerSecond(KEY_VAULT_HSM_KEY_CREATES)).toBe(0.6);
    expect(quotaRatePerSecond({ limit: 300, windowSeconds: 10_800 })).toBeCloseTo(296 / 10_800, 5);
    // one partition: one bucket of ceil(r)
    expect(quotaRatePerSecond(KEY_VAULT_KEY_CREATES, 1)).toBe(1.8);
    expect(quotaRatePerSecond(KEY_VAULT_HSM_KEY_CREATES, 1)).toBe(0.9);
    expect(() => quotaRatePerSecond({ limit: 4, windowSeconds: 10 })).toThrow(/one partition/);
    for (const q of [
      KEY_VAULT_KEY_CREATES,
      KEY_VAULT_HSM_KEY_CREATES,
      { limit: 9, windowSeconds: 3 },
      { limit: 300, windowSeconds: 10_800 },
    ]) {
      for (const p of [1, 4]) {
        const r = quotaRatePerSecond(q, p);
        expect(p * Math.max(1, Math.ceil(r / p)) + r * q.windowSeconds).toBeLessThanOrEqual(q.limit);
      }
    }
    expect(() => quotaRatePerSecond({ limit: 1, windowSeconds: 10 })).toThrow(/limit/);
  });
  it('defaults per vault kind, and the tighter of a rate and a quota', () => {
    expect(keyCreateQuotaOf({ kind: 'azure' })).toEqual(KEY_VAULT_KEY_CREATES);
    expect(keyCreateQuotaOf({ kind: 'azure', hsm: true })).toEqual(KEY_VAULT_HSM_KEY_CREATES);
    expect(keyCreateQuotaOf({ kind: 'local' })).toBeUndefined();
    expect(keyCreateQuotaOf({ kind: 'azure', keyCreateQuota: { limit: 5, windowSeconds: 10 } })).toEqual({
      limit: 5,
      windowSeconds: 10,
    });
    expect(tighterRate(5, { limit: 300, windowSeconds: 10_800 })).toBeCloseTo(0.0274, 3);
    expect(tighterRate(0.01, { limit: 300, windowSeconds: 10_800 })).toBe(0.01);
    expect(tighterRate(undefined, undefined)).toBeUndefined();
  });
  it('manual and emergency attempts go first; routine ones keep the default', () => {
    expect(priorityOf('Manual')).toEqual({ priorityKey: 1 });
    expect(priorityOf('Expired')).toEqual({ priorityKey: 2 });
    expect(priorityOf('NearingRenewal')).toBeUndefined();
    expect(priorityOf('Retry')).toBeUndefined();
  });
});

describe("a wave's size: Temporal's 2 MiB payload limit", () => {
  const utf8 = (v: unknown) => Buffer.byteLength(JSON.stringify(v), 'utf8');
  // the longest names there are by default: a Key Vault certificate name of 127 characters in a vault name of 24,
  // an issuer name of 127; or ids of 50 characters with names of 10
  const selected = (n: number, nameLength = 127): WaveEntry[] =>
    Array.from({ length: n }, (_, i) => ({
      id: `${'v'.repeat(nameLength === 127 ? 24 : 10)}/${String(i).padStart(nameLength, 'c')}`,
      vault: 'v'.repeat(nameLength === 127 ? 24 : 10),
      issuer: 'i'.repeat(nameLength === 127 ? 127 : 10),
      expiresAt: '2026-12-02T12:00:00.000Z',
      status: 'pending' as const,
    }));
  /** The largest selection of these that one wave takes. */
  const largest = (nameLength: number) => {
    let [lo, hi] = [1, 20_000];
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (waveSizeProblem(selected(mid, nameLength))) hi = mid - 1;
      else lo = mid;
    }
    return lo;
  };
  // every entry finished as badly for the size as can be: long texts with escapes, control and non-ASCII characters
  const nasty = '"\\\u0001\n€😀'.repeat(2_000);
  const finished = (e: WaveEntry, i: number): WaveEntry => ({
    ...e,
    status: i % 2 ? 'failed' : 'skipped',
    oldThumbprint: 'A'.repeat(40),
    newThumbprint: 'B'.repeat(40),
    notAfter: '2027-03-02T12:00:00.000Z',
    newKey: false,
    revoked: 'unsupported',
    note: nasty,
    error: { type: `Type${nasty}`, message: nasty },
    finishedAt: '2026-12-02T13:00:00.000Z',
  });

  it('takes 3,000+ certificates at 50-character ids and 2,000+ at the longest names; one more is refused, naming what to do', () => {
    const at50 = largest(50 - 11);
    const atLongest = largest(127);
    expect(at50).toBeGreaterThan(3_000);
    expect(atLongest).toBeGreaterThan(2_000);
    expect(waveSizeProblem(selected(atLongest))).toBeUndefined();
    expect(waveSizeProblem(selected(atLongest + 1))).toBe(
      `selection: ${atLongest + 1} certificates are more than one wave carries (about ${atLongest} of these: a ` +
        'wave keeps every certificate and its result in one Temporal payload of at most 2 MiB); split it with ' +
        '--parts 2 (one wave per part, all running at once; each certificate in exactly one)',
    );
    expect(waveOutcomeBytes([])).toBeLessThan(10);
  });

  it('the largest selection taken, every entry finished at its worst, still fits: in each run input and the report', () => {
    const n = largest(127);
    const entries = selected(n).map(finished);
    expect(utf8(entries)).toBeGreaterThan(10 * WAVE_PAYLOAD_LIMIT_BYTES); // without fitting: far over
    const fitted = fitEntries(entries);
    expect(utf8(fitted)).toBeLessThanOrEqual(WAVE_ENTRIES_BUDGET_BYTES);
    const carried: WaveCarried = {
      startedAt: NOW.toISOString(),
      entries: fitted,
      vaultRates: { ['v'.repeat(24)]: 1.6 },
      paused: { reason: 'r'.repeat(500), by: 'someone', since: NOW.toISOString() },
      cancelled: false,
      pausedMs: 0,
    };
    const input: WaveInput = {
      reason: 'key-compromise',
      note: 'n'.repeat(300),
      selection: { all: true },
      requestedBy: 'someone (cli)',
      carried,
    };
    expect(utf8(input)).toBeLessThan(WAVE_PAYLOAD_LIMIT_BYTES);
    // the shortest form keeps the error type and points to the lifecycle
    expect(fitted[1]!.error).toEqual({
      type: 'Type',
      message: `see certflow status ${fitted[1]!.id}`,
    });
    expect(fitted[1]!.newThumbprint).toBe('B'.repeat(40));
  });

  it('leaves entries that fit as they are, and cuts long texts to 300 characters before anything else', () => {
    const few = selected(3, 10).map(finished);
    expect(fitEntries(few)).toBe(few);
    const cut = fitEntries(few, utf8(few) - 1);
    expect(cut[0]!.note).toHaveLength(300);
    expect(cut[0]!.note!.endsWith('…')).toBe(true);
    expect(cut[1]!.error!.message).toBe(`${nasty.slice(0, 299)}…`);
    expect(few[0]!.note).toBe(nasty); // the wave's own entries are not changed
  });
});

describe('a selection split into parts (--parts)', () => {
  const ids = (n: number, prefix = 'kv-prod/web-') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

  it('puts each certificate in one part, the same one every time, spread evenly', () => {
    // fixed values: the parts must not move between releases, or a re-run of a part would take other certificates
    // FNV-1a's published test vectors: "" → 0x811c9dc5, "a" → 0xe40c292c
    expect(partOfId('', 3)).toBe((0x811c9dc5 % 3) + 1);
    expect(partOfId('a', 1000)).toBe((0xe40c292c % 1000) + 1);
    expect([partOfId('kv-a/web', 4), partOfId('kv-a/api', 4), partOfId('kv-b/mail', 7)]).toEqual([4, 2, 2]);
    expect(partOfId('kv-prod/web-1', 1)).toBe(1);
    for (const of of [2, 3, 7, 16]) {
      const counts = new Array<number>(of).fill(0);
      for (const id of ids(20_000)) {
        const p = partOfId(id, of);
        expect(p >= 1 && p <= of).toBe(true);
        counts[p - 1]!++;
      }
      const even = 20_000 / of;
      for (const c of counts) expect(Math.abs(c - even) / even).toBeLessThan(0.1);
    }
  });

  it('the parts of a selection are disjoint and together are the whole, each in expiry order', () => {
    const rows = ids(500).map((id, i) => row(id, 'old-ca', (i * 7) % 90));
    const whole = selectCandidates(rows, { issuer: 'old-ca' }, NOW);
    const parts = [1, 2, 3].map((index) =>
      selectCandidates(rows, { issuer: 'old-ca', part: { index, of: 3 } }, NOW),
    );
    expect(
      parts
        .flat()
        .map((e) => e.id)
        .sort(),
    ).toEqual(whole.map((e) => e.id).sort());
    expect(new Set(parts.flat().map((e) => e.id)).size).toBe(500);
    for (const p of parts) {
      expect(p.length).toBeGreaterThan(100);
      expect(p.map((e) => e.id)).toEqual(whole.filter((e) => p.some((x) => x.id === e.id)).map((e) => e.id));
    }
    // the other filters still apply within a part
    const narrowed = selectCandidates(
      [...rows, row('kv-x/other', 'new-ca', 1)],
      { issuer: 'new-ca', part: { index: partOfId('kv-x/other', 3), of: 3 } },
      NOW,
    );
    expect(narrowed.map((e) => e.id)).toEqual(['kv-x/other']);
  });

  it('refuses a part that is not one of its count, naming the field', () => {
    const problem = (part: { index: number; of: number }) => selectionProblem({ all: true, part });
    expect(problem({ index: 1, of: 1 })).toBeUndefined();
    expect(problem({ index: 3, of: 3 })).toBeUndefined();
    expect(problem({ index: MAX_PARTS, of: MAX_PARTS })).toBeUndefined();
    for (const bad of [
      { index: 0, of: 3 },
      { index: 4, of: 3 },
      { index: 1, of: 0 },
      { index: 1, of: MAX_PARTS + 1 },
      { index: 1.5, of: 3 },
      { index: 1, of: Number.NaN },
    ])
      expect(problem(bad)).toMatch(/^part: expected a part index from 1 to its count/);
    expect(selectionProblem({ part: { index: 1, of: 2 } })).toMatch(/^selection: expected --all/);
  });

  it('names the fewest parts that each fit: 10,000 and 50,000 certificates at 50-character ids', () => {
    const entries = (n: number): WaveEntry[] =>
      ids(n, `kv-prod-westeurope/${'c'.repeat(20)}-`).map((id) => ({
        id: id.padEnd(50, 'x'),
        vault: 'kv-prod-westeurope',
        issuer: 'old-ca',
        expiresAt: '2026-12-20T00:00:00.000Z',
        status: 'pending' as const,
      }));
    expect(partsNeeded(entries(100))).toBe(1);
    for (const n of [10_000, 50_000]) {
      const all = entries(n);
      const parts = partsNeeded(all)!;
      expect(parts).toBeGreaterThanOrEqual(Math.ceil(n / 3_204));
      expect(parts).toBeLessThanOrEqual(Math.ceil(n / 3_204) + 2);
      for (let index = 1; index <= parts; index++)
        expect(waveSizeProblem(all.filter((e) => partOfId(e.id, parts) === index))).toBeUndefined();
      expect(waveSizeProblem(all)).toMatch(new RegExp(`split it with --parts ${parts} \\(`));
    }
    // a part that is still too large says to split the whole selection further
    const big = entries(8_000);
    expect(waveSizeProblem(big, { index: 1, of: 2 })).toMatch(
      /part 1 of 2 is too large: split the selection into more parts \(its --dry-run without --parts names how many\)$/,
    );
    // beyond MAX_PARTS waves: narrow the selection instead
    expect(partsNeeded(entries(400_000))).toBeUndefined();
  });
});
