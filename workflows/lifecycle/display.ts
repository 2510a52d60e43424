/**
 * Keeps what people see current: the `status` answer, the Web UI's details (`setCurrentDetails`, no history event)
 * and its search-attribute columns, upserted only when a value changes (each upsert is a history event).
 */
import { setCurrentDetails, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { SearchAttributePair } from '@temporalio/common';
import type { CertificateStatus, Phase } from '../messages';
import { effectivePolicy } from '../policy';
import type { Ctx } from './context';
import { changeControlStatus } from './change-control-view';
import { bufferText, safetyBuffer } from '../buffer';
import { type Facts, heldBy, planOf, upcoming } from './decide';
import { driftConfig, driftNotes, driftView } from './drift';
import { certificateMode } from './mode';
import { detailsMarkdown, searchAttributesOf, statusOf } from './view';

export interface Display {
  show: Ctx['show'];
  status(): CertificateStatus;
  facts(now?: Date): Facts;
  /** Every search attribute as it should be now (for continue-as-new, which carries them to the next run). */
  searchAttributes(): SearchAttributePair[];
}

const valueKey = (v: unknown): string => (v instanceof Date ? v.toISOString() : JSON.stringify(v));

export function createDisplay(ctx: Omit<Ctx, 'show'>): Display {
  const { id, input, s, inbox } = ctx;
  let phase: Phase = s.paused ? 'Paused' : 'Waiting';
  let detail = 'starting';
  const indexed = new Map<string, string>();
  for (const p of workflowInfo().typedSearchAttributes.getAll()) indexed.set(p.key.name, valueKey(p.value));

  const policy = () =>
    ctx.mode() === 'observe'
      ? effectivePolicy(s.observed?.policy, null)
      : effectivePolicy(s.observed?.policy, s.override, { jitterMinutes: input.jitterMinutes });

  const facts = (now = new Date()): Facts => ({
    workflowId: workflowInfo().workflowId,
    certificateId: id,
    now,
    mode: ctx.mode(),
    s,
    observeError: inbox.observeError,
    policy: policy(),
    syncRequested: inbox.syncRequested,
    retired: inbox.retired,
    noticesAfter: inbox.noticesAfter,
    ...(input.changeControl ? { changeControl: input.changeControl } : {}),
    drift: s.drift ? { config: driftConfig(input.driftWatch), woke: inbox.woke } : null,
  });

  /** Issue mode: the safety buffer of the current certificate under the policy in force (buffer.ts). */
  const buffer = (f: Facts): CertificateStatus['safetyBuffer'] => {
    const plan = f.mode === 'issue' ? planOf(f) : null;
    const notAfter = s.observed?.notAfter;
    if (!plan || !notAfter) return null;
    const b = safetyBuffer(Math.max(0, Date.parse(notAfter) - plan.at.getTime()));
    return { ...b, text: bufferText(b) };
  };

  const notes = (): string[] => {
    const f = facts();
    const out: string[] = [];
    const next = upcoming(f);
    if (next?.reason.includes('would renew this certificate'))
      out.push(next.reason.replace(/^NearingRenewal \(|\)$/g, ''));
    // what the vault says needs a person (an App Service Certificate order: domain verification, auto-renew off)
    for (const c of s.observed?.conditions ?? []) out.push(`${c.type}: ${c.message}`);
    const b = buffer(f);
    if (b && b.state !== 'ok') out.push(`safety buffer ${b.state === 'none' ? 'none' : 'small'}: ${b.text}`);
    out.push(...driftNotes(s.drift));
    if (f.mode === 'observe' && s.override)
      out.push(
        'a Certflow policy override is set but ignored: the vault renews this certificate on its own policy',
      );
    return out;
  };

  const status = (): CertificateStatus => {
    const f = facts();
    return statusOf(id, input.issuer, s, {
      phase,
      next: upcoming(facts()),
      detail,
      observeError: inbox.observeError?.failure ?? null,
      policy: policy(),
      mode: ctx.mode(),
      notes: notes(),
      changeControl: changeControlStatus(s, input.changeControl, id, heldBy(facts())),
      ...(s.drift ? { drift: driftView(s.drift, driftConfig(input.driftWatch), id) } : {}),
      safetyBuffer: buffer(f),
    });
  };

  const all = (): SearchAttributePair[] => searchAttributesOf(status());

  const show = (p: Phase, d: string, index = true): void => {
    phase = p;
    detail = d;
    const st = status();
    setCurrentDetails(detailsMarkdown(st, d, s));
    if (!index || input.searchAttributes === false) return;
    const changed = searchAttributesOf(st).filter(
      (pair) => indexed.get(pair.key.name) !== valueKey(pair.value),
    );
    if (!changed.length) return;
    upsertSearchAttributes(changed);
    for (const pair of changed) indexed.set(pair.key.name, valueKey(pair.value));
  };

  return { show, status, facts, searchAttributes: all };
}

/** The mode in force: the configured one, else what the vault's policy implies. */
export const modeOf = (ctx: Pick<Ctx, 'input' | 's'>) => () =>
  certificateMode(ctx.s.observed?.policy, ctx.input.mode);
