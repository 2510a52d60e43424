/**
 * What a certificate's lifecycle carries from the configuration when it is started: its renewal policy and
 * jitter, a forced mode, the drift watch schedule, and the `changeControl` block (windows, freezes, approval,
 * staged rollout). The one place this is read from the configuration: the worker's own enrolment
 * (enroll-configured.ts), the answer a worker gives `certflow enroll` (the enrolment check) and `certflow enroll
 * --config` all use it, so a certificate enrolled by the CLI runs under the same rules as a configured one; and
 * the `observe` activity answers a running lifecycle with its change control and drift watch when they differ
 * from what it runs under (workflows/lifecycle/settings.ts), so later changes reach it too.
 *
 * The whole `changeControl` block travels: the lifecycle itself picks the rules that select it (by certificate id,
 * id pattern or tag, and for windows and freezes by binding target) in workflows/lifecycle/change-control.ts, so
 * a tag set in the vault later, or a binding target added, is judged there the same way for every certificate.
 */
import type { LifecycleSettings } from '../activities/lifecycles';
import { configuredPolicy } from '../workflows/policy';
import type { CertflowConfig } from './config';

type CertificateEntry = CertflowConfig['certificates'][number];

/** The settings of one certificate: its own entry in `certificates` where it has one, else the defaults. */
export function lifecycleSettingsFor(config: CertflowConfig, certificateId: string): LifecycleSettings {
  return settingsOf(
    config,
    config.certificates.find((c) => c.id === certificateId),
  );
}

function settingsOf(config: CertflowConfig, c: CertificateEntry | undefined): LifecycleSettings {
  const { policy, jitterMinutes } = configuredPolicy(config.defaults.policy, c?.policy);
  const driftWatch =
    c?.driftWatch || config.defaults.driftWatch
      ? { ...config.defaults.driftWatch, ...c?.driftWatch }
      : undefined;
  return {
    ...(policy ? { policy } : {}),
    ...(jitterMinutes !== undefined ? { jitterMinutes } : {}),
    ...(c?.mode ? { mode: c.mode } : {}),
    ...(config.changeControl ? { changeControl: config.changeControl } : {}),
    ...(driftWatch ? { driftWatch } : {}),
  };
}
