/**
 * Release 3's lifecycle on the time-skipping test server with in-memory activities: observe mode (the vault's new
 * version on time, late, never, and asked for by a person), the renewal-loop guard, a request repeated after
 * continue-as-new, an issuer nobody polls, and a lean history per cycle.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { historyQuery, renewNowUpdate, setPolicyUpdate, statusQuery } from '../../workflows/messages';
import { waitFor } from '../support/proc';
import {
  DAY,
  HOUR,
  fakeActivities,
  recordRuns,
  refusal,
  runsOf,
  startTestEnv,
  update,
  withLifecycle,
  type LifecycleHandle,
} from './harness';

let env: TestWorkflowEnvironment;
beforeEach(async () => {
  env = await startTestEnv();
});
afterEach(async () => {
  await env?.teardown();
});

const DIGICERT = { issuerName: 'DigiCert', lifetimePercentage: 80, lifetimeAction: 'AutoRenew' as const };
const firstObservation = (h: LifecycleHandle) =>
  waitFor('the first observation', async () => {
    const st = await h.query(statusQuery);
    return st.thumbprint && st.nextRenewalAt ? st : undefined;
  });

describe('observe mode: the vault renews the certificate itself', () => {
  it('on time: the new version is bound and announced within minutes; no CSR, no CA, the policy untouched', async () => {
    let renewAt = Infinity;
    const fake = fakeActivities(env, {
      policy: DIGICERT,
      hooks: {
        // Key Vault's own auto-renew: a new version 20 minutes after the policy's renewal time
        observe: async () => {
          if (fake.version() === 1 && (await fake.now()) >= renewAt) await fake.vaultRenews();
        },
      },
    });
    await withLifecycle(env, fake.acts, 'observe-on-time', async (h) => {
      const first = await firstObservation(h);
      expect(first.mode).toBe('observe');
      expect(first.nextRenewalReason).toMatch(/^VaultRenewal/);
      renewAt = Date.parse(first.nextRenewalAt!) + 20 * 60_000;
      await env.sleep(72 * DAY + 2 * HOUR);
      const st = await waitFor('the vault’s new version bound', async () => {
        const s = await h.query(statusQuery);
        return s.thumbprint === 'THUMB2' && s.phase === 'Waiting' ? s : undefined;
      });
      expect(st.previousThumbprint).toBe('THUMB1');
      expect(fake.calls).not.toContain('beginRenewal');
      expect(fake.calls).not.toContain('issue');
      expect(fake.calls).toContain('syncBindings');
      const renewed = fake.notifies.find((n) => n.kind === 'renewed');
      expect(renewed?.outcome?.trigger).toBe('VaultRenewed');
      expect(renewed?.mode).toBe('observe');
      expect(fake.notifies.filter((n) => n.kind === 'escalation')).toHaveLength(0);
      const [last] = await h.query(historyQuery);
      expect(last).toMatchObject({ status: 'renewed', trigger: 'VaultRenewed', newThumbprint: 'THUMB2' });
    });
  });

  it('late: VaultRenewalLate is told once after the grace, then the late version is bound', async () => {
    let renewAt = Infinity;
    const fake = fakeActivities(env, {
      policy: DIGICERT,
      hooks: {
        observe: async () => {
          if (fake.version() === 1 && (await fake.now()) >= renewAt) await fake.vaultRenews();
        },
      },
    });
    await withLifecycle(env, fake.acts, 'observe-late', async (h) => {
      const first = await firstObservation(h);
      renewAt = Date.parse(first.nextRenewalAt!) + 2 * DAY; // two days late
      await env.sleep(72 * DAY + DAY);
      const late = await waitFor('the late notice', async () => {
        const s = await h.query(statusQuery);
        return s.phase === 'Failing' ? s : undefined;
      });
      expect(late.nextRenewalReason).toMatch(/^VaultRenewalLate/);
      const notices = fake.notifies.filter((n) => n.kind === 'escalation');
      expect(notices).toHaveLength(1);
      expect(notices[0]!.failure?.type).toBe('VaultRenewalLate');
      await env.sleep(2 * DAY);
      await waitFor('bound after all', async () => (await h.query(statusQuery)).thumbprint === 'THUMB2');
      expect(fake.notifies.filter((n) => n.kind === 'escalation')).toHaveLength(1);
    });
  });

  it('never: the ladder runs to expiry with VaultRenewalLate; Certflow never goes to a CA', async () => {
    const fake = fakeActivities(env, { policy: DIGICERT, lifetimeMs: 30 * DAY });
    await withLifecycle(env, fake.acts, 'observe-never', async (h) => {
      await firstObservation(h);
      await env.sleep(31 * DAY);
      const steps = await waitFor('the ladder to expiry', async () => {
        const s = fake.notifies.filter((n) => n.kind === 'escalation');
        return s.some((n) => n.daysLeft === 0) ? s : undefined;
      });
      expect(steps.every((n) => n.failure?.type === 'VaultRenewalLate')).toBe(true);
      // the late notice (6 days left at 24 days + 12 h: folded into the 7-day step), then 3, 1, at expiry
      expect(steps.map((n) => n.daysLeft)).toEqual([7, 3, 1, 0]);
      expect(fake.calls.filter((c) => ['beginRenewal', 'issue', 'renewInVault'].includes(c))).toEqual([]);
    });
  });

  it('a person’s renew asks the vault; its new version is bound when it appears', async () => {
    const fake = fakeActivities(env, {
      policy: DIGICERT,
      hooks: {
        // the vault issues 3 minutes after it was asked
        renewInVault: async () => {
          asked = await fake.now();
        },
        observe: async () => {
          if (asked && fake.version() === 1 && (await fake.now()) >= asked + 3 * 60_000)
            await fake.vaultRenews();
        },
      },
    });
    let asked = 0;
    await withLifecycle(env, fake.acts, 'observe-manual', async (h) => {
      await firstObservation(h);
      const o = await update(h, renewNowUpdate, [{ reason: 'rotate now' }]);
      expect(o.status).toBe('requested');
      expect(fake.calls).toContain('renewInVault');
      expect((await h.query(statusQuery)).vaultRenewal).toMatchObject({ status: 'inProgress' });
      await env.sleep(10 * 60_000);
      await waitFor('bound', async () => (await h.query(statusQuery)).thumbprint === 'THUMB2');
      expect(fake.calls).not.toContain('issue');
      expect((await h.query(statusQuery)).vaultRenewal).toBeNull();
    });
  });

  it('setPolicy is refused: the vault decides when it renews', async () => {
    const fake = fakeActivities(env, { policy: DIGICERT });
    await withLifecycle(env, fake.acts, 'observe-policy', async (h) => {
      await firstObservation(h);
      expect(await refusal(h.executeUpdate(setPolicyUpdate, { args: [{ lifetimePercentage: 50 }] }))).toMatch(
        /renewed by its vault \(mode observe\)/,
      );
    });
  });
});

describe('guards', () => {
  it('a CA that issues shorter lifetimes than the policy expects does not loop', async () => {
    // the policy renews 30 days before expiry, the CA issues 6-day certificates
    const fake = fakeActivities(env, { lifetimeMs: 6 * DAY, policy: { daysBeforeExpiry: 30 } });
    await withLifecycle(env, fake.acts, 'short-ca', async (h) => {
      const first = await firstObservation(h);
      expect(first.notes?.join(' ')).toMatch(
        /would renew this certificate, which lives 6 days, right after issuance/,
      );
      await env.sleep(30 * DAY);
      const st = await h.query(statusQuery);
      // at 2/3 of each 6-day lifetime: about 7 renewals in 30 days, not one per wake
      expect(fake.issues()).toBeGreaterThanOrEqual(6);
      expect(fake.issues()).toBeLessThanOrEqual(8);
      expect(st.lastError).toBeNull();
    });
  });

  it('refuses a policy that would renew right after issuance, naming the field', async () => {
    const fake = fakeActivities(env, { lifetimeMs: 5 * 60_000 });
    await withLifecycle(env, fake.acts, 'refuse-policy', async (h) => {
      await firstObservation(h);
      expect(await refusal(h.executeUpdate(setPolicyUpdate, { args: [{ daysBeforeExpiry: 1 }] }))).toMatch(
        /daysBeforeExpiry: 1 days would renew this certificate \(it lives 5 minutes\) right after issuance/,
      );
      expect(fake.issues()).toBe(0);
    });
  });

  it('a renew request repeated after continue-as-new is answered, not renewed again', async () => {
    const fake = fakeActivities(env);
    await withLifecycle(env, fake.acts, 'repeat', async (h) => {
      await firstObservation(h);
      const req = { reason: 'rotate', requestId: 'cli-req-1' };
      const runBefore = (await h.describe()).runId;
      const first = await update(h, renewNowUpdate, [req]);
      expect(first.status).toBe('renewed');
      await waitFor('continued as new', async () =>
        (await h.describe()).runId !== runBefore ? true : undefined,
      );
      // the client lost the answer and sends the same request again: the new run answers from its records
      const again = await update(h, renewNowUpdate, [req]);
      expect(again).toEqual(first);
      expect(fake.issues()).toBe(1);
      expect(fake.version()).toBe(2);
    });
  });
});

describe('mail that could not be sent', () => {
  it('an attempt mail lost to an SMTP outage longer than the activity retries goes out once SMTP is back', async () => {
    let smtpDown = true;
    const fake = fakeActivities(env, {
      hooks: {
        notify: async () => {
          if (smtpDown)
            throw ApplicationFailure.create({ message: 'connect ECONNREFUSED', type: 'SmtpUnreachable' });
        },
      },
    });
    await withLifecycle(env, fake.acts, 'outbox', async (h) => {
      await firstObservation(h);
      const out = await update(h, renewNowUpdate, [{ reason: 'rotate', requestId: 'outbox-1' }]);
      expect(out.status).toBe('renewed');
      expect(out.notifyError?.type).toBe('SmtpUnreachable');
      // carried into the next run (the renewal ended the cycle), shown in status
      const waiting = await waitFor('the unsent mail in status', async () => {
        const st = await h.query(statusQuery);
        return st.unsentMails ? st : undefined;
      });
      expect(waiting.unsentMails).toMatchObject({ count: 1, kinds: ['renewed'] });
      expect(fake.notifies).toHaveLength(0);
      await env.sleep(10 * 60_000); // still down: it stays queued, tried again on a backoff
      expect((await h.query(statusQuery)).unsentMails?.count).toBe(1);
      smtpDown = false;
      await env.sleep(2 * HOUR);
      await waitFor('the mail sent', async () => (fake.notifies.length ? true : undefined));
      expect(fake.notifies.map((n) => [n.kind, n.outcome?.newThumbprint])).toEqual([['renewed', 'THUMB2']]);
      const st = await h.query(statusQuery);
      expect(st.unsentMails).toBeUndefined();
      expect(st.notifyError).toBeNull();
      await env.sleep(DAY);
      expect(fake.notifies).toHaveLength(1); // sent once
      await recordRuns(env, h, 'mail-outbox');
    });
  });
});

describe('a CA in trouble', () => {
  it('an order placed while the CA is down for minutes goes through in the same attempt (retries wait it out)', async () => {
    const fake = fakeActivities(env, {
      hooks: {
        // the first 9 calls meet a CA that refuses connections: about 7 minutes of retries (5 s, 10 s, ... 2 min)
        issue: async (n) => {
          if (n <= 9)
            throw ApplicationFailure.create({ message: 'connect ECONNREFUSED', type: 'AcmeUnreachable' });
        },
      },
    });
    await withLifecycle(env, fake.acts, 'ca-down', async (h) => {
      await firstObservation(h);
      const asked = update(h, renewNowUpdate, [{ reason: 'rotate', requestId: 'ca-down-1' }]);
      asked.catch(() => undefined); // answered or not, the outcome is read from status below
      // Skipped time is spent only while the workflow waits on a retry timer: under load, a retry's failure may
      // reach the server after a minute was skipped, and its backoff then starts from there. So skip a minute at a
      // time until the attempt has an outcome (the ~11 minutes of backoff need more steps on a busy machine).
      let st = await h.query(statusQuery);
      for (let i = 0; i < 120 && !st.lastAttempt; i++) {
        await env.sleep(60_000);
        st = await h.query(statusQuery);
      }
      expect(st.lastAttempt?.status).toBe('renewed');
      expect(st.attempts).toBe(1);
      expect(fake.issues()).toBe(10);
      expect(fake.version()).toBe(2);
    });
  });
});

describe('a lean history', () => {
  it('one automatic cycle (wait, renew, re-bind, notify, continue as new) takes at most 60 events', async () => {
    const fake = fakeActivities(env, {
      hooks: { issue: async () => ({ status: 'pending', ref: 'order-1', retryAfterSeconds: 0 }) },
    });
    await withLifecycle(env, fake.acts, 'lean', async (h) => {
      await firstObservation(h);
      await env.sleep(73 * DAY);
      await waitFor('two cycles', async () => (fake.version() >= 2 ? true : undefined));
      await env.sleep(72 * DAY);
      await waitFor('the second renewal', async () => (fake.version() >= 3 ? true : undefined));
      // the run that started after the first renewal and ended with the second: exactly one cycle
      const runs = await runsOf(env, h);
      const lengths = await Promise.all(
        runs.map(
          async (r) => (await env.client.workflow.getHandle(h.workflowId, r).fetchHistory()).events!.length,
        ),
      );
      // the second run began after the first renewal and ended with the second: exactly one cycle
      expect(runs.length).toBeGreaterThanOrEqual(3);
      expect(lengths[1]).toBeLessThanOrEqual(60);
    });
  });
});

describe('classification', () => {
  it('a CSR-level refusal drops the CSR; other failures keep it', async () => {
    let n = 0;
    const fake = fakeActivities(env, {
      hooks: {
        issue: async () => {
          n += 1;
          throw ApplicationFailure.create({
            message: n === 1 ? 'CA down' : 'names refused',
            type: n === 1 ? 'CaDown' : 'Refused',
            nonRetryable: true,
            ...(n === 2 ? { details: [{ discardCsr: true }] } : {}),
          });
        },
      },
    });
    await withLifecycle(env, fake.acts, 'classify', async (h) => {
      await firstObservation(h);
      expect((await update(h, renewNowUpdate, [{}])).error?.type).toBe('CaDown');
      expect(fake.calls).not.toContain('cancelRenewal');
      expect((await update(h, renewNowUpdate, [{}])).error?.type).toBe('Refused');
      expect(fake.calls).toContain('cancelRenewal');
    });
  });
});
