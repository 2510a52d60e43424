/**
 * The lifecycle's decision (workflows/lifecycle/decide.ts) and its named rules, notices, ARI and state: pure, so
 * every case is a plain function call at a chosen instant.
 */
import { describe, expect, it } from 'vitest';
import type { CertificateState } from '../../activities/types';
import { effectivePolicy, renewalGuardUntil, renewalPlan, DAY_MS } from '../../workflows/policy';
import { checkAfter, decide, type Facts, vaultLateAt } from '../../workflows/lifecycle/decide';
import { certificateMode, vaultRenewsItself } from '../../workflows/lifecycle/mode';
import {
  dueNotice,
  markSent,
  nextNoticeAt,
  noticeInput,
  type NoticeFacts,
} from '../../workflows/lifecycle/notices';
import { NO_ARI_RECHECK_MS, windowAnswered, windowDue } from '../../workflows/lifecycle/ari';
import {
  fromV2,
  initialState,
  loadState,
  type LifecycleState,
  rememberRequest,
  REQUESTS_MAX,
} from '../../workflows/lifecycle/state';
import { firstTrigger, observedOf, TRIGGER_RULES } from '../../workflows/lifecycle/triggers';
import type { RenewalOutcome } from '../../workflows/messages';

const HOUR = 3_600_000;
const T0 = Date.parse('2026-01-01T00:00:00Z');
const at = (ms: number) => new Date(T0 + ms);

function cert(over: Partial<CertificateState> = {}, lifetimeMs = 90 * DAY_MS): CertificateState {
  return {
    id: 'kv/site',
    vault: 'kv',
    name: 'site',
    version: 'v1',
    thumbprint: 'AAA',
    notBefore: new Date(T0).toISOString(),
    notAfter: new Date(T0 + lifetimeMs).toISOString(),
    subject: 'CN=site.test',
    dnsNames: ['site.test'],
    tags: { Recipient: 'ops@example.test' },
    policy: {
      subject: 'CN=site.test',
      dnsNames: ['site.test'],
      issuerName: 'Unknown',
      key: { keyType: 'RSA', keySize: 2048, reuseKey: false, exportable: true },
    },
    key: { type: 'RSA', size: 2048 },
    pendingOperation: false,
    ...over,
  };
}

function state(over: Partial<LifecycleState> = {}, c: CertificateState | null = cert()): LifecycleState {
  return {
    ...initialState(),
    observed: c,
    observedAt: c ? new Date(T0).toISOString() : null,
    known: c?.version ? { version: c.version, thumbprint: c.thumbprint, notAfter: c.notAfter } : null,
    // the CA was asked for its window already and has none (so decide does not ask first)
    ari: {
      thumbprint: c?.thumbprint ?? '',
      offered: false,
      window: null,
      checkAt: at(400 * DAY_MS).toISOString(),
    },
    ...over,
  };
}

function facts(s: LifecycleState, nowMs: number, over: Partial<Facts> = {}): Facts {
  const mode = over.mode ?? certificateMode(s.observed?.policy);
  return {
    workflowId: 'certificate:kv/site',
    certificateId: 'kv/site',
    now: at(nowMs),
    mode,
    s,
    observeError: null,
    policy:
      mode === 'observe'
        ? effectivePolicy(s.observed?.policy, null)
        : effectivePolicy(s.observed?.policy, s.override),
    syncRequested: false,
    retired: null,
    ...over,
  };
}

const failed = (finishedMs: number, type = 'AcmeConnection'): RenewalOutcome => ({
  attempt: 1,
  status: 'failed',
  trigger: 'NearingRenewal',
  startedAt: at(finishedMs - 1000).toISOString(),
  finishedAt: at(finishedMs).toISOString(),
  oldThumbprint: 'AAA',
  newThumbprint: null,
  newVersion: null,
  notAfter: null,
  bindings: [],
  error: { type, message: 'the CA is down' },
  notified: true,
});

const observeCert = (over: Partial<CertificateState> = {}) =>
  cert({
    policy: {
      subject: 'CN=site.test',
      dnsNames: ['site.test'],
      issuerName: 'DigiCert',
      key: { keyType: 'RSA', keySize: 2048, reuseKey: false, exportable: true },
      lifetimePercentage: 80,
      lifetimeAction: 'AutoRenew',
    },
    ...over,
  });

describe('trigger rules, first hit wins', () => {
  const base = { now: at(0), plan: null, manual: null, failures: 0, retryAt: null };
  it('names the reasons in order: Missing, Expired, PolicyChanged, Manual, Retry, NearingRenewal', () => {
    expect(TRIGGER_RULES.map((r) => r.name)).toEqual([
      'Missing',
      'Expired',
      'PolicyChanged',
      'Manual',
      'Retry',
      'NearingRenewal',
    ]);
  });
  it('Missing: no issued version', () => {
    expect(firstTrigger({ ...base, cert: observedOf(cert({ version: null })) })?.reason).toBe('Missing');
  });
  it('Expired beats a manual request and the renewal time', () => {
    const c = observedOf(cert({}, DAY_MS));
    const plan = renewalPlan(c);
    const t = firstTrigger({ ...base, cert: c, now: at(2 * DAY_MS), plan, manual: { reason: 'x' } });
    expect(t?.reason).toBe('Expired');
  });
  it('PolicyChanged: names or key differ from what the policy asks', () => {
    const names = observedOf(cert({ dnsNames: ['old.test'] }));
    expect(firstTrigger({ ...base, cert: names })?.message).toMatch(/asks for names \[site.test\]/);
    const ec = observedOf(cert({ key: { type: 'EC', curve: 'P-256' } }));
    expect(firstTrigger({ ...base, cert: ec })?.message).toMatch(
      /asks for a RSA key, the certificate has EC/,
    );
    const size = observedOf(cert({ key: { type: 'RSA', size: 4096 } }));
    expect(firstTrigger({ ...base, cert: size })?.message).toMatch(/RSA 2048, the certificate has RSA 4096/);
  });
  it('Manual carries the person’s reason', () => {
    const t = firstTrigger({ ...base, cert: observedOf(cert()), manual: { reason: 'key leak' } });
    expect(t).toEqual({ reason: 'Manual', message: 'key leak' });
  });
  it('automatic rules are silent while attempts fail; Retry fires at its time', () => {
    const c = observedOf(cert({ dnsNames: ['old.test'] }));
    const failing = { ...base, cert: c, failures: 2, retryAt: at(HOUR), lastTrigger: 'PolicyChanged' };
    expect(firstTrigger(failing)).toBeUndefined();
    expect(firstTrigger({ ...failing, now: at(HOUR) })).toEqual({
      reason: 'Retry',
      message: 'retry #2 of PolicyChanged after a failure',
    });
    expect(firstTrigger({ ...failing, manual: {} })?.reason).toBe('Manual');
  });
  it('NearingRenewal says when, and why when the policy did not fit', () => {
    const c = observedOf(cert());
    const plan = renewalPlan(c)!;
    expect(firstTrigger({ ...base, cert: c, plan, now: plan.at })?.message).toMatch(
      /renewal time .* has come/,
    );
    const short = observedOf(cert({}, 6 * DAY_MS));
    const p2 = renewalPlan(short, { policy: effectivePolicy({ daysBeforeExpiry: 30 }) })!;
    expect(p2.basis).toBe('fallback');
    expect(firstTrigger({ ...base, cert: short, plan: p2, now: p2.at })?.message).toMatch(
      /would renew this certificate, which lives 6 days, right after issuance/,
    );
  });
});

describe('renewal plan and the loop guard', () => {
  it('a policy that does not fit the lifetime renews at 2/3 instead of right away (no loop)', () => {
    const c = observedOf(cert({}, 5 * 60_000));
    const plan = renewalPlan(c, { policy: effectivePolicy(null, { daysBeforeExpiry: 1 }) })!;
    expect(plan.basis).toBe('fallback');
    expect(plan.at.getTime() - T0).toBe(200_000);
  });
  it('a fitting policy keeps its time', () => {
    const plan = renewalPlan(observedOf(cert()), {
      policy: effectivePolicy(null, { daysBeforeExpiry: 30 }),
    })!;
    expect(plan).toMatchObject({ basis: 'policy' });
    expect(plan.at.getTime()).toBe(T0 + 60 * DAY_MS);
  });
  it('holds renewals for 10 % of the lifetime after the last renewal, and not before any', () => {
    const c = observedOf(cert());
    expect(renewalGuardUntil(c, null)).toBeNull();
    expect(renewalGuardUntil(c, at(DAY_MS).toISOString())?.getTime()).toBe(T0 + DAY_MS + 9 * DAY_MS);
  });
});

describe('decide: issue mode', () => {
  it('waits until 80 % of the lifetime, then renews (NearingRenewal)', () => {
    const s = state();
    const w = decide(facts(s, DAY_MS));
    expect(w).toMatchObject({ kind: 'wait', phase: 'Waiting', next: { reason: 'NearingRenewal' } });
    if (w.kind === 'wait') expect(w.until?.getTime()).toBe(T0 + 72 * DAY_MS);
    expect(decide(facts(s, 72 * DAY_MS))).toMatchObject({
      kind: 'renew',
      trigger: { reason: 'NearingRenewal' },
    });
  });
  it('retires first, whatever else is due', () => {
    expect(decide(facts(state(), 80 * DAY_MS, { retired: 'gone' }))).toEqual({
      kind: 'retire',
      reason: 'gone',
    });
  });
  it('a vault it cannot read: Failing, read again with backoff', () => {
    const f = facts(state(), DAY_MS, {
      observeError: {
        failure: { type: 'VaultForbidden', message: 'no' },
        failures: 2,
        at: at(DAY_MS).toISOString(),
      },
    });
    const w = decide(f);
    expect(w).toMatchObject({
      kind: 'wait',
      phase: 'Failing',
      next: { reason: 'read the vault again (failure #2)' },
    });
    if (w.kind === 'wait') expect(w.next!.at.getTime()).toBe(T0 + DAY_MS + 10 * 60_000);
  });
  it('after a failure: Failing, the retry time from the backoff, no automatic trigger before it', () => {
    const s = state({ consecutiveFailures: 1, lastAttempt: failed(72 * DAY_MS) });
    const w = decide(facts(s, 72 * DAY_MS + 60_000));
    expect(w).toMatchObject({ kind: 'wait', phase: 'Failing', next: { reason: 'retry after failure #1' } });
    expect(decide(facts(s, 72 * DAY_MS + 5 * 60_000))).toMatchObject({
      kind: 'renew',
      trigger: { reason: 'Retry' },
    });
  });
  it('the retry never waits past a quarter of the time left (near expiry it tries more often)', () => {
    const s = state({
      consecutiveFailures: 8,
      lastAttempt: failed(90 * DAY_MS - 4 * HOUR),
      escalation: { thumbprint: 'AAA', sent: [14, 7, 3, 1] },
    });
    const w = decide(facts(s, 90 * DAY_MS - 4 * HOUR));
    if (w.kind !== 'wait') throw new Error(w.kind);
    expect(w.next!.at.getTime()).toBe(T0 + 90 * DAY_MS - 3 * HOUR);
  });
  it('the loop guard holds an automatic renewal right after a renewal, and says until when', () => {
    const c = cert({}, 10 * DAY_MS);
    // renewed just now, but the policy says renew at once (e.g. the CA issued an already "due" certificate)
    const s = state({ lastRenewedAt: at(0).toISOString(), override: { daysBeforeExpiry: 9 } }, c);
    const w = decide(facts(s, 60_000));
    expect(w.kind).toBe('wait');
    if (w.kind === 'wait') expect(w.next?.at.getTime()).toBeGreaterThanOrEqual(T0 + DAY_MS);
  });
  it('the guard holds a manual request right after a renewal unless forced; Missing always passes', () => {
    const s = state({ lastRenewedAt: at(0).toISOString(), manual: { reason: 'again' } });
    expect(decide(facts(s, 60_000)).kind).toBe('wait');
    s.manual = { reason: 'key leak', force: true };
    expect(decide(facts(s, 60_000))).toMatchObject({ kind: 'renew', trigger: { reason: 'Manual' } });
    const missing = state({ lastRenewedAt: at(0).toISOString() }, cert({ version: null, thumbprint: null }));
    expect(decide(facts(missing, 60_000))).toMatchObject({ kind: 'renew', trigger: { reason: 'Missing' } });
  });
  it('paused: no renewal, no re-binding, the pause shown; the ladder and the long-pause notice still run', () => {
    const s = state({ paused: { reason: 'freeze', since: at(0).toISOString() }, manual: null });
    const w = decide(facts(s, 80 * DAY_MS));
    expect(w).toMatchObject({ kind: 'notify', notice: { kind: 'escalation', step: 14 } });
    markSent(s, (w as unknown as { notice: never }).notice);
    expect(decide(facts(s, 80 * DAY_MS))).toMatchObject({
      kind: 'notify',
      notice: { kind: 'paused-too-long' },
    });
  });
  it('re-binds when a person asks, when bindings failed before, and when a version Certflow did not make appears', () => {
    const s = state();
    expect(decide(facts(s, DAY_MS, { syncRequested: true }))).toMatchObject({ kind: 'sync', why: 'SyncNow' });
    s.pendingSync = { version: 'v1', thumbprint: 'AAA', failures: 1, nextAt: at(2 * DAY_MS).toISOString() };
    expect(decide(facts(s, DAY_MS))).toMatchObject({
      kind: 'wait',
      next: { reason: 'retry the bindings that failed' },
    });
    expect(decide(facts(s, 2 * DAY_MS))).toMatchObject({ kind: 'sync', why: 'PendingSync' });
    const byHand = state({ known: { version: 'v0', thumbprint: 'OLD', notAfter: null } });
    expect(decide(facts(byHand, DAY_MS))).toMatchObject({ kind: 'sync', why: 'NewVersion', version: 'v1' });
  });
  it('a first version after a missing one is bound and announced too', () => {
    const s = state({ known: { version: '', thumbprint: null, notAfter: null } });
    expect(decide(facts(s, DAY_MS))).toMatchObject({ kind: 'sync', why: 'NewVersion' });
  });
  it('asks the CA for its window once per certificate, then not for a CA without ARI', () => {
    const s = state({ ari: null });
    expect(decide(facts(s, DAY_MS))).toEqual({ kind: 'askWindow', thumbprint: 'AAA' });
    expect(windowDue(s, at(0))).toBe(true);
    s.ari = windowAnswered(s, 'AAA', { window: null }, at(0));
    expect(windowDue(s, at(DAY_MS))).toBe(false);
    s.observed = cert({ thumbprint: 'BBB', version: 'v2' });
    expect(windowDue(s, at(DAY_MS))).toBe(false); // a new certificate, same CA: asked again only later
    expect(windowDue(s, at(NO_ARI_RECHECK_MS))).toBe(true);
    s.ari = windowAnswered(
      s,
      'BBB',
      {
        window: {
          start: at(DAY_MS).toISOString(),
          end: at(2 * DAY_MS).toISOString(),
          retryAfterSeconds: 3600,
        },
      },
      at(0),
    );
    expect(s.ari.checkAt).toBe(at(12 * HOUR).toISOString()); // Retry-After clamped to at least 12 h
    expect(windowAnswered(s, 'BBB', { failed: true }, at(0))).toMatchObject({
      offered: true,
      window: { start: at(DAY_MS).toISOString() },
    });
  });
  it('a window the CA moved earlier renews inside it', () => {
    const s = state({
      ari: {
        thumbprint: 'AAA',
        offered: true,
        window: { start: at(10 * DAY_MS).toISOString(), end: at(11 * DAY_MS).toISOString() },
        checkAt: at(90 * DAY_MS).toISOString(),
      },
    });
    expect(decide(facts(s, 11 * DAY_MS))).toMatchObject({
      kind: 'renew',
      trigger: { reason: 'NearingRenewal' },
    });
  });
});

describe('decide: observe mode (the vault renews it)', () => {
  const o = () => state({}, observeCert());
  it('the mode follows the policy’s issuer; a configured mode wins', () => {
    expect(vaultRenewsItself({ issuerName: 'DigiCert' })).toBe(true);
    expect(vaultRenewsItself({ issuerName: 'Self' })).toBe(true);
    expect(vaultRenewsItself({ issuerName: 'unknown' })).toBe(false);
    expect(vaultRenewsItself(null)).toBe(false);
    expect(certificateMode({ issuerName: 'GlobalSign' })).toBe('observe');
    expect(certificateMode({ issuerName: 'GlobalSign' }, 'issue')).toBe('issue');
  });
  it('never renews by itself: at renewal time it looks for the vault’s new version, often at first', () => {
    const s = o();
    const due = 72 * DAY_MS;
    const w = decide(facts(s, due));
    expect(w).toMatchObject({
      kind: 'wait',
      phase: 'Waiting',
      next: { reason: expect.stringMatching(/^VaultRenewal: the vault's new version is due/) },
    });
    if (w.kind === 'wait') expect(w.next!.at.getTime()).toBe(T0 + due + 60_000);
    const later = decide(facts(s, due + 2 * 60_000));
    if (later.kind === 'wait') expect(later.next!.at.getTime()).toBe(T0 + due + 5 * 60_000);
  });
  it('a new version from the vault is bound and announced', () => {
    const s = o();
    s.observed = observeCert({ version: 'v2', thumbprint: 'BBB' });
    expect(decide(facts(s, 72 * DAY_MS + HOUR))).toMatchObject({
      kind: 'sync',
      why: 'NewVersion',
      thumbprint: 'BBB',
    });
  });
  it('late (12 h after the renewal time, no new version): VaultRenewalLate, Failing, one notice', () => {
    const s = o();
    const late = vaultLateAt(facts(s, 0))!;
    expect(late.getTime()).toBe(T0 + 72 * DAY_MS + 12 * HOUR);
    const n = decide(facts(s, late.getTime() - T0));
    expect(n).toMatchObject({
      kind: 'notify',
      notice: { kind: 'escalation', vaultLate: true, failure: { type: 'VaultRenewalLate' } },
    });
    markSent(s, (n as unknown as { notice: never }).notice);
    const w = decide(facts(s, late.getTime() - T0 + 60_000));
    expect(w).toMatchObject({
      kind: 'wait',
      phase: 'Failing',
      next: { reason: expect.stringMatching(/^VaultRenewalLate/) },
    });
    // then the ladder to expiry: the 14-day step at 76 days
    expect(decide(facts(s, 76 * DAY_MS))).toMatchObject({ kind: 'notify', notice: { step: 14 } });
  });
  it('a person’s renew asks the vault (with its own policy), never a CA', () => {
    const s = o();
    s.manual = { reason: 'now please' };
    expect(decide(facts(s, DAY_MS))).toMatchObject({ kind: 'askVault', trigger: { reason: 'Manual' } });
  });
  it('after asking the vault, it looks for the new version soon', () => {
    const s = o();
    s.vaultRenewal = { requestedAt: at(DAY_MS).toISOString(), status: 'inProgress' };
    const w = decide(facts(s, DAY_MS + 1000));
    if (w.kind !== 'wait') throw new Error(w.kind);
    expect(w.next!.at.getTime()).toBe(T0 + DAY_MS + 60_000);
  });
  it('an override is ignored (the vault decides when it renews)', () => {
    const s = o();
    s.override = { lifetimePercentage: 20 };
    expect(decide(facts(s, 30 * DAY_MS)).kind).toBe('wait');
  });
  it('checks scale down for short lifetimes', () => {
    expect(checkAfter(T0, at(0), 5 * 60_000).getTime()).toBe(T0 + 1500);
    expect(checkAfter(T0, at(10 * HOUR), 365 * DAY_MS).getTime()).toBe(T0 + 3 * HOUR + 12 * HOUR);
  });
});

describe('notices', () => {
  const nf = (s: LifecycleState, nowMs: number, over: Partial<NoticeFacts> = {}): NoticeFacts => ({
    workflowId: 'certificate:kv/site',
    certificateId: 'kv/site',
    now: at(nowMs),
    mode: 'issue',
    s,
    plan: renewalPlan(observedOf(s.observed)),
    vaultLateAt: null,
    ...over,
  });
  it('the ladder folds steps crossed at once, each sent once, with stable event ids', () => {
    const s = state({ consecutiveFailures: 3, lastAttempt: failed(80 * DAY_MS) });
    const n = dueNotice(nf(s, 88 * DAY_MS))!;
    expect(n).toMatchObject({
      kind: 'escalation',
      step: 3,
      fold: [14, 7, 3],
      eventId: 'certificate:kv/site:AAA:escalation:3',
    });
    expect(noticeInput(nf(s, 88 * DAY_MS), n)).toMatchObject({
      daysLeft: 3,
      failure: { type: 'AcmeConnection' },
      attempts: 3,
    });
    markSent(s, n);
    expect(dueNotice(nf(s, 88 * DAY_MS))).toBeUndefined();
    expect(nextNoticeAt(nf(s, 88 * DAY_MS))?.getTime()).toBe(T0 + 89 * DAY_MS);
  });
  it('nothing before the renewal time; the ladder starts when the certificate is overdue', () => {
    const s = state({}, cert({}, 20 * DAY_MS)); // 14 days left at day 6, renewal at day 16
    expect(dueNotice(nf(s, 10 * DAY_MS))).toBeUndefined();
    expect(nextNoticeAt(nf(s, 10 * DAY_MS))?.getTime()).toBe(T0 + 16 * DAY_MS);
  });
  it('bindings stuck on an old certificate escalate to its expiry', () => {
    const s = state({
      pendingSync: {
        version: 'v2',
        thumbprint: 'BBB',
        failures: 3,
        nextAt: at(DAY_MS).toISOString(),
        oldNotAfter: at(10 * DAY_MS).toISOString(),
        escalated: [14],
      },
    });
    const n = dueNotice(nf(s, 4 * DAY_MS))!;
    expect(n).toMatchObject({ about: 'bindings', kind: 'partially-synced', step: 7 });
    markSent(s, n);
    expect(s.pendingSync?.escalated).toEqual([14, 7]);
  });
  it('the first notice of an observed certificate says the vault is late', () => {
    const s = state({}, observeCert());
    const f = nf(s, 73 * DAY_MS, { mode: 'observe', vaultLateAt: at(72 * DAY_MS + HOUR) });
    expect(dueNotice(f)).toMatchObject({
      eventId: 'certificate:kv/site:AAA:escalation:late',
      vaultLate: true,
    });
    expect(noticeInput(f, dueNotice(f)!)).toMatchObject({
      mode: 'observe',
      failure: { type: 'VaultRenewalLate' },
    });
  });
});

describe('state', () => {
  it('migrates release 2’s carried state', () => {
    const last = { ...failed(0), status: 'renewed' as const };
    const s = fromV2({
      cycle: 4,
      attempts: 6,
      consecutiveFailures: 0,
      previousThumbprint: 'OLD',
      lastAttempt: last,
      paused: null,
      pendingManual: { reason: 'x' },
      observed: cert(),
      pendingSync: null,
    });
    expect(s).toMatchObject({
      v: 3,
      cycle: 4,
      attempts: 6,
      manual: { reason: 'x' },
      recent: [last],
      known: { version: 'v1' },
      lastRenewedAt: last.finishedAt,
      requests: [],
    });
    expect(loadState(s)).toEqual(s);
    expect(loadState(undefined)).toEqual(initialState());
  });
  it('keeps the newest request ids, bounded', () => {
    const s = initialState();
    for (let i = 0; i < REQUESTS_MAX + 5; i++) rememberRequest(s, { id: `r${i}`, kind: 'renew', at: '' });
    expect(s.requests).toHaveLength(REQUESTS_MAX);
    expect(s.requests[0]!.id).toBe(`r${REQUESTS_MAX + 4}`);
    rememberRequest(s, { id: 'r10', kind: 'renew', at: '', outcome: failed(0) });
    expect(s.requests.filter((r) => r.id === 'r10')).toHaveLength(1);
  });
});
