/** Human-readable text for Certflow's own shapes: status, renewal outcomes, binding outcomes. */
import type { BindingOutcome } from '../activities/types';
import type { CertificateStatus, RenewalOutcome } from '../workflows/messages';
import { policyText } from '../workflows/lifecycle/view';
import { dash, printable, when } from './format';

/** A failure as text; its type and message come from outside (a CA's problem text, a server's error). */
const errorText = (e: { type?: string; message?: string } | null | undefined) =>
  `${printable(e?.type ?? 'unknown')}: ${printable(e?.message ?? '')}`;

export function bindingLine(b: BindingOutcome): string {
  // the binding's detail usually is the probe's (targets report what was served): say it once
  const probe = b.probe
    ? b.detail.includes(b.probe.detail)
      ? `; probe ${b.probe.ok ? 'ok' : 'FAILED'}`
      : `; probe ${b.probe.ok ? 'ok' : 'FAILED'} (${printable(b.probe.detail)})`
    : '';
  return `${printable(b.target)} ${printable(b.binding)}: ${b.status} (${dash(b.before)} -> ${dash(b.after)}) ${printable(b.detail)}${probe}`.trimEnd();
}

export function outcomeText(id: string, r: RenewalOutcome): string {
  const head =
    r.status === 'renewed'
      ? `renewed ${id}: ${dash(r.oldThumbprint)} -> ${r.newThumbprint} (version ${r.newVersion}, expires ${r.notAfter})`
      : r.status === 'requested'
        ? `asked the vault to renew ${id} (it renews this certificate itself); its new version is bound when it appears: certflow status ${id}`
        : `renewal of ${id} FAILED: ${errorText(r.error)}`;
  return [
    head,
    `  attempt ${r.attempt}, trigger ${r.trigger}, ${r.startedAt} .. ${r.finishedAt}`,
    ...r.bindings.map((b) => `  binding ${bindingLine(b)}`),
    `  notified: ${r.notified ? 'yes' : 'no'}`,
  ].join('\n');
}

export function lastResultText(r: RenewalOutcome | null, now: Date): string {
  if (!r) return '-';
  const at = when(r.finishedAt, now).replace(/^.*\((.*)\)$/, '$1');
  if (r.status === 'requested') return `asked the vault ${at}`;
  return r.status === 'renewed' ? `renewed ${at}` : `failed ${at}: ${printable(r.error?.type ?? 'unknown')}`;
}

export function statusText(s: CertificateStatus, now: Date): string {
  const last = s.lastAttempt;
  return [
    `${s.certificateId}: ${s.phase}${s.paused ? ` (paused since ${s.paused.since}: ${printable(s.paused.reason)})` : ''}`,
    s.mode === 'observe'
      ? `  mode:        observe (the vault renews it; Certflow binds, verifies, tells people)`
      : `  mode:        issue (renewed with ${s.issuer})`,
    `  thumbprint:  ${dash(s.thumbprint)} (previous ${dash(s.previousThumbprint)})`,
    `  version:     ${dash(s.version)}`,
    `  valid:       ${dash(s.notBefore)} .. ${dash(s.notAfter)}`,
    `  expires:     ${when(s.notAfter, now)}`,
    `  next:        ${when(s.nextRenewalAt, now)}: ${dash(s.nextRenewalReason)}`,
    `  policy:      ${s.policy ? policyText(s.policy) : '-'}`,
    ...(s.safetyBuffer ? [`  buffer:      ${printable(s.safetyBuffer.text)}`] : []),
    ...(s.drift
      ? [
          `  probed:      ${s.drift.checkedAt ? when(s.drift.checkedAt, now) : 'not yet'}; next ${s.drift.nextAt ? when(s.drift.nextAt, now) : 'never (drift watch off)'}` +
            (s.drift.bindings.length
              ? ` (${s.drift.bindings.map((b) => `${printable(b.target)}: ${b.state}`).join(', ')})`
              : ''),
        ]
      : []),
    `  attempts:    ${s.attempts} (cycle ${s.cycle}); last: ${last ? lastResultText(last, now) : '-'}`,
    ...(s.lastError ? [`  last error:  ${errorText(s.lastError)}`] : []),
    ...(s.notifyError ? [`  mail error:  ${errorText(s.notifyError)}`] : []),
    ...(s.unsentMails
      ? [
          `  mail unsent: ${s.unsentMails.count} waiting (${s.unsentMails.kinds.join(', ')}); next try ${s.unsentMails.nextAt ?? '-'}`,
        ]
      : []),
    ...(s.vaultRenewal
      ? [
          `  vault asked: at ${s.vaultRenewal.requestedAt} to renew (${printable(s.vaultRenewal.status)}); its new version is awaited`,
        ]
      : []),
    ...(s.changeControl ? [`  change:      ${printable(s.changeControl.text)}`] : []),
    ...(s.notes ?? []).map((n) => `  note:        ${printable(n)}`),
    ...(s.escalationsSent?.length
      ? [`  escalations: sent at ${s.escalationsSent.join(', ')} days left`]
      : []),
    ...(s.bindings?.length ? ['  bindings:', ...s.bindings.map((b) => `    ${bindingLine(b)}`)] : []),
  ].join('\n');
}
