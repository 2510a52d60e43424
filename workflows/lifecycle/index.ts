/**
 * One certificate, forever (workflow id `certificate:<vault>/<name>`):
 *
 *   observe (the vault) → decide (decide.ts: pure, named rules) → wait or act → … → continue-as-new per cycle
 *
 * Acts: renew (attempt.ts: CSR in the vault → CA → verify + merge → re-bind → notify), ask the vault to renew
 * (observe mode), re-bind (sync.ts), tell people (notices.ts), ask the CA for its renewal window (ari.ts).
 * Nothing that fails outside the workflow ends it: failures become a Failing phase with backoff, shown in status
 * and the UI, and escalate on a ladder before expiry. Messages: handlers.ts; what people see: display.ts.
 * Histories that began on release 2's code (no `lifecycle-v3` marker) replay on it (workflows/legacy/).
 */
import {
  allHandlersFinished,
  condition,
  makeContinueAsNewFunc,
  log,
  patched,
  workflowInfo,
} from '@temporalio/workflow';
import type { SearchAttributePair } from '@temporalio/common';
import { describeFailure } from '../failures';
import { lifecycleV2, type LifecycleInput as LifecycleInputV2 } from '../legacy/lifecycle-v2';
import { validatePolicyOverride } from '../policy';
import { observe, renewalWindow, notify, probeBindings } from './activities';
import { windowAnswered } from './ari';
import { askVault, runAttempt, type AttemptResult } from './attempt';
import { type Ctx, type LifecycleInput, newInbox } from './context';
import { decide, type Facts, noticeFacts } from './decide';
import { driftConfig, initialDrift, probed, resynced } from './drift';
import { createDisplay, type Display, modeOf } from './display';
import { installHandlers } from './handlers';
import { resend } from './mail';
import { markSent, type Notice, noticeInput } from './notices';
import { knownOf, loadState, STATE_VERSION } from './state';
import { advance, hold, issueApprovalStep } from './rebind';
import { applyLiveSettings, liveSettingsOf, settingsFingerprint } from './settings';
import { reconcile } from './sync';

export type { LifecycleInput } from './context';
/** The patch marking histories that run this code (release 3); older histories replay on release 2's code. */
export const LIFECYCLE_V3 = 'lifecycle-v3';
/** The patch marking runs that watch their bindings for drift (drift.ts); older histories replay without it. */
export const DRIFT_WATCH = 'drift-watch';
const NOTICE_RETRY_MS = 10 * 60_000;
/** An observation carried into a new run younger than this is used as it is. */
const FRESH_MS = 5 * 60_000;

export async function certificateLifecycle(input: LifecycleInput): Promise<{ retired: string }> {
  // a run continued from this code carries v3 state and needs no marker (each marker costs two history events);
  // a first run, or one continued from release 2, is marked, so release 2's histories replay on its own code
  const fromV3 = (input.carried as { v?: number } | undefined)?.v === STATE_VERSION;
  if (!fromV3 && !patched(LIFECYCLE_V3)) return lifecycleV2(input as LifecycleInputV2);
  const s = loadState(input.carried);
  if (!input.carried && input.policy && !validatePolicyOverride(input.policy)) s.override = input.policy;
  // a run continued from a watching run carries its watch (no marker needed); any other run is marked, so runs
  // whose history began before the watch existed replay without it
  const watching = (input.carried as { drift?: unknown } | undefined)?.drift !== undefined;
  if (driftConfig(input.driftWatch).everyMinutes > 0 && (watching || patched(DRIFT_WATCH)))
    s.drift ??= initialDrift(new Date());
  const base = { id: input.certificateId, input, s, inbox: newInbox() };
  const display = createDisplay({ ...base, mode: modeOf(base) });
  const ctx: Ctx = { ...base, mode: modeOf(base), show: display.show };
  const { inbox } = ctx;
  // a run continued right after a cycle starts from the observation it carries; an older one looks first
  inbox.stale = !s.observedAt || Date.now() - Date.parse(s.observedAt) > FRESH_MS;
  installHandlers(ctx, display);

  if (s.inFlight) {
    const r = await runAttempt(ctx, { reason: s.inFlight.trigger as never, message: 'resumed' }, s.inFlight);
    if (await cycleEnded(r)) return continueFresh(ctx, display);
  }
  for (;;) {
    await look(ctx);
    const action = decide(withPatches(ctx, display.facts()));
    switch (action.kind) {
      case 'retire':
        ctx.show(ctx.s.paused ? 'Paused' : 'Waiting', `retired: ${action.reason}`);
        log.info('certificate lifecycle retired', { certificateId: ctx.id, reason: action.reason });
        await condition(allHandlersFinished);
        return { retired: action.reason };
      case 'wait':
        ctx.show(action.phase, action.detail);
        if ((workflowInfo().continueAsNewSuggested || inbox.upgrade) && !s.manual && !inbox.syncRequested)
          return continueFresh(ctx, display);
        await rest(ctx, action.until);
        break;
      case 'renew':
        inbox.ignoreWindows = s.manual?.ignoreWindows === true;
        s.manual = null; // every waiting request joins this attempt
        if (await cycleEnded(await runAttempt(ctx, action.trigger))) return continueFresh(ctx, display);
        break;
      case 'askVault':
        s.manual = null;
        await askVault(ctx, action.trigger);
        break;
      case 'sync': {
        const cycled = await reconcile(ctx, action.why, action);
        if (action.why === 'BindingDrift' && s.drift) {
          s.drift = resynced(s.drift, inbox.lastSync, new Date());
          log.warn('binding drift re-synced', {
            certificateId: ctx.id,
            bindings: s.drift.lastDrift?.bindings,
            resynced: s.drift.lastDrift?.resynced,
          });
        }
        if (cycled && (await quietAfterCycle(ctx))) return continueFresh(ctx, display);
        break;
      }
      case 'probe':
        await watchBindings(ctx, display, action.thumbprint, action.why);
        break;
      case 'notify':
        await tell(ctx, display, action.notice);
        break;
      case 'resend':
        await resend(ctx, action.mail);
        break;
      case 'askWindow':
        await askWindow(ctx, action.thumbprint);
        break;
      case 'hold':
        hold(ctx, action, 'NewVersion', s.known);
        break;
      case 'rebind': {
        const finished = action.step.kind === 'done';
        await advance(ctx, action.step);
        if (finished && s.rebind === null && (await quietAfterCycle(ctx))) return continueFresh(ctx, display);
        break;
      }
      case 'issueApproval':
        await issueApprovalStep(ctx, action.step);
        break;
    }
  }

  /** A renewed attempt (or a pending wait handed to the next run) ends the run once nobody waits for more. */
  async function cycleEnded(r: AttemptResult): Promise<boolean> {
    if ('continueAsNew' in r) return true;
    return r.outcome.status === 'renewed' && quietAfterCycle(ctx);
  }
}

/** After a completed cycle: true when no renew or sync request came in meanwhile (they are served in this run). */
async function quietAfterCycle({ s, inbox }: Ctx): Promise<boolean> {
  await condition(() => allHandlersFinished() || s.manual !== null || inbox.syncRequested);
  return s.manual === null && !inbox.syncRequested;
}

/** The patch marking runs whose held re-binding goes on by its own steps once its rules changed (decide.ts). */
export const HELD_REBIND_OWN_STEPS = 'held-rebind-own-steps';

/**
 * Facts with the decisions that depend on a patch: asked only where they would decide differently (a re-binding
 * held for the vault's new version while no rule gates it), so other runs carry no marker.
 */
function withPatches(ctx: Ctx, f: Facts): Facts {
  const { s } = ctx;
  const held = s.rebind && s.observed?.version === s.rebind.version && s.known?.version !== s.rebind.version;
  return held ? { ...f, heldRebindGoesOn: patched(HELD_REBIND_OWN_STEPS) } : f;
}

/** Reads the vault when time passed or it may have changed; a vault that cannot be read is a Failing phase. */
async function look(ctx: Ctx): Promise<void> {
  const { s, inbox, id } = ctx;
  if (!inbox.stale && s.observedAt) return;
  try {
    const { settings, ...observed } = await observe.executeWithOptions(
      { summary: `read ${id} from its vault` },
      [id, { settingsFingerprint: settingsFingerprint(liveSettingsOf(ctx.input)) }],
    );
    // the workers' configuration changed since this lifecycle was enrolled: run under it from now on (settings.ts)
    if (settings) {
      applyLiveSettings(ctx.input, settings);
      // the drift watch turned on or off: from now, not from the next run
      const every = driftConfig(ctx.input.driftWatch).everyMinutes;
      if (every > 0) s.drift ??= initialDrift(new Date());
      else delete s.drift;
      log.info('settings taken from the workers configuration', { certificateId: id });
    }
    s.observed = observed;
    s.observedAt = new Date().toISOString();
    // the first look: the version consumers are on (none yet: its first version will be bound when it comes)
    s.known ??= knownOf(s.observed) ?? { version: '', thumbprint: null, notAfter: null };
    inbox.observeError = null;
    inbox.stale = false;
  } catch (err) {
    const failures = (inbox.observeError?.failures ?? 0) + 1;
    inbox.observeError = { failure: describeFailure(err), failures, at: new Date().toISOString() };
  }
}

/** Waits until `until` (none: until a message), or until a person or the vault says something changed. */
async function rest({ s, inbox }: Ctx, until: Date | null): Promise<void> {
  const wakes = inbox.wakes;
  const wake = () =>
    inbox.wakes !== wakes ||
    (s.manual !== null && !s.paused) ||
    inbox.syncRequested ||
    inbox.retired !== null;
  // never a zero wait: a timer in the past would spin the workflow
  if (!until) await condition(wake);
  else await condition(wake, Math.max(1_000, until.getTime() - Date.now()));
  inbox.stale = true;
  inbox.woke = true;
}

/**
 * Drift watch: asks every binding what it serves (changing nothing). Drift found is re-bound by the next decision
 * (BindingDrift); a probe that cannot run is recorded as such, so status never shows the bindings as healthy.
 */
async function watchBindings(ctx: Ctx, display: Display, thumbprint: string, why: string): Promise<void> {
  const { s, inbox, id } = ctx;
  if (!s.drift) return;
  inbox.woke = false;
  const buffer = display.status().safetyBuffer;
  try {
    const answers = await probeBindings.executeWithOptions(
      { summary: `probe the bindings of ${id} for drift from ${thumbprint} (${why})` },
      [
        {
          certificateId: id,
          thumbprint,
          safetyBufferSeconds: buffer ? Math.round(buffer.bufferMs / 1000) : null,
        },
      ],
    );
    s.drift = probed(s.drift, thumbprint, answers, new Date());
  } catch (err) {
    const e = describeFailure(err);
    log.warn('binding probe failed', { certificateId: id, error: e.message });
    s.drift = probed(
      s.drift,
      thumbprint,
      [
        {
          target: 'all',
          binding: 'all',
          state: 'unreachable',
          served: null,
          detail: `the probe could not run: ${e.type}: ${e.message}`,
        },
      ],
      new Date(),
    );
  }
}

/** Sends one notice; a failure holds notices back for a while (mail down) and shows in status. */
async function tell(ctx: Ctx, display: Display, notice: Notice): Promise<void> {
  const { s, inbox, id } = ctx;
  try {
    await notify.executeWithOptions({ summary: `tell the people of ${id}: ${notice.kind}` }, [
      noticeInput(noticeFacts(display.facts()), notice),
    ]);
    markSent(s, notice);
    s.notifyError = null;
    inbox.noticesAfter = null;
  } catch (err) {
    s.notifyError = describeFailure(err);
    inbox.noticesAfter = new Date(Date.now() + NOTICE_RETRY_MS);
    log.warn('notification not sent', { certificateId: id, kind: notice.kind, error: s.notifyError.message });
  }
}

/** Asks the CA for its renewal window (ARI) for the current certificate; never holds the lifecycle up. */
async function askWindow(ctx: Ctx, thumbprint: string): Promise<void> {
  const { s, id, input } = ctx;
  try {
    const window = await renewalWindow.executeWithOptions(
      { summary: `ask ${input.issuer} for its renewal window for ${id} (ARI)` },
      [{ certificateId: id, issuer: input.issuer }],
    );
    s.ari = windowAnswered(s, thumbprint, { window }, new Date());
  } catch (err) {
    log.warn('renewal window (ARI) not read', { certificateId: id, error: describeFailure(err).message });
    s.ari = windowAnswered(s, thumbprint, { failed: true }, new Date());
  }
}

/** Starts the next run with the state, and the UI's columns as they stand at rest. */
async function continueFresh(ctx: Ctx, display: Display): Promise<never> {
  await condition(allHandlersFinished);
  const resting = decide(display.facts());
  if (resting.kind === 'wait') ctx.show(resting.phase, resting.detail, false);
  const keep = workflowInfo()
    .typedSearchAttributes.getAll()
    .filter((p) => !display.searchAttributes().some((q) => q.key.name === p.key.name));
  const { recent, ...rest } = ctx.s;
  const carried = { ...rest, recent: recent.map((o, i) => (i === 0 ? o : { ...o, bindings: [] })) };
  return makeContinueAsNewFunc<typeof certificateLifecycle>(
    ctx.input.searchAttributes === false
      ? {}
      : { typedSearchAttributes: [...keep, ...display.searchAttributes()] as SearchAttributePair[] },
  )({ ...ctx.input, carried });
}
