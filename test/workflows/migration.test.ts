/**
 * Release 2 → release 3: a release-2 lifecycle continues as new (at its next cycle, or at once on `certflow
 * upgrade`) with release 2's carried state, and the next run runs release 3's code. Here the exact input a
 * recorded release-2 run continued with (test/fixtures/histories/v2-lifecycle-automatic-renew.json) starts a run
 * on the time-skipping server: the state is migrated (cycle, thumbprints, the last attempt, the version bound),
 * and the lifecycle carries on deciding from it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LifecycleInput } from '../../workflows/lifecycle';
import { historyQuery, statusQuery } from '../../workflows/messages';
import { waitFor } from '../support/proc';
import { repoRoot } from '../support/tools';
import { fakeActivities, startTestEnv, withLifecycle } from './harness';

let env: TestWorkflowEnvironment;
beforeEach(async () => {
  env = await startTestEnv();
});
afterEach(async () => {
  await env?.teardown();
});

/** The input a recorded release-2 run continued as new with. */
function v2ContinuedInput(): LifecycleInput {
  const history = JSON.parse(
    readFileSync(path.join(repoRoot, 'test/fixtures/histories/v2-lifecycle-automatic-renew.json'), 'utf8'),
  ) as {
    events: Array<{
      workflowExecutionContinuedAsNewEventAttributes?: { input: { payloads: Array<{ data: string }> } };
    }>;
  };
  const can = history.events.at(-1)?.workflowExecutionContinuedAsNewEventAttributes;
  if (!can) throw new Error('the fixture does not end with continue-as-new');
  return JSON.parse(Buffer.from(can.input.payloads[0]!.data, 'base64').toString('utf8')) as LifecycleInput;
}

describe('a release-2 lifecycle continued into release 3', () => {
  it('keeps its cycle, thumbprints, last attempt and bound version, and decides from them', async () => {
    const input = v2ContinuedInput();
    const carried = input.carried as { cycle: number; previousThumbprint: string; v?: number };
    expect(carried.v).toBeUndefined(); // release 2's shape
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    // the first look at the vault waits, so the state the run starts from can be read as migrated
    const fake = fakeActivities(env, { hooks: { observe: () => gate } });
    await withLifecycle(
      env,
      fake.acts,
      'migrated',
      async (h) => {
        await waitFor('the first look at the vault', async () =>
          fake.calls.includes('observe') ? true : undefined,
        );
        const st = await h.query(statusQuery);
        expect(st.cycle).toBe(carried.cycle);
        expect(st.previousThumbprint).toBe(carried.previousThumbprint);
        expect(st.thumbprint).toBe('E2051891F8C8A5583D743E70C980BCF2F1BD1DE3');
        expect(st.mode).toBe('issue');
        const [last] = await h.query(historyQuery);
        expect(last).toMatchObject({ status: 'renewed', trigger: 'NearingRenewal' });
        release();
        // the fake vault holds another version than the carried one: a version Certflow did not make, bound
        await waitFor('the new version bound', async () =>
          fake.calls.includes('syncBindings') ? true : undefined,
        );
        expect(fake.calls).not.toContain('issue');
      },
      { ...input, certificateId: 'kv/site', issuer: 'test' },
    );
  });
});
