/**
 * The settings a running lifecycle takes from its workers' current configuration: change control (windows,
 * freezes, approval, staged rollout) and the drift watch. A lifecycle starts with them in its input, as they were
 * when it was enrolled; a freeze added to the configuration later must still hold it. So with each look at its vault
 * (the `observe` activity) the lifecycle sends the fingerprint of the settings it runs under; a worker whose
 * configuration (worker/lifecycle-settings.ts, the one reading of it) says otherwise answers with its own, and the
 * lifecycle takes them before it decides anything (index.ts `look`). They then travel on in its input across
 * continue-as-new. A worker that does not answer with settings (an earlier release, a test) changes nothing.
 */
import type { ChangeControl } from './change-control';
import type { DriftWatchConfig } from './drift';
import { unitHash } from '../policy';

/** What a worker's configuration sets for a running lifecycle; null: none (the defaults: no change control). */
export interface LiveSettings {
  changeControl: ChangeControl | null;
  driftWatch: DriftWatchConfig | null;
}

/** The live settings of an input or of a worker's settings for a certificate. */
export function liveSettingsOf(x: {
  changeControl?: ChangeControl;
  driftWatch?: DriftWatchConfig;
}): LiveSettings {
  return { changeControl: x.changeControl ?? null, driftWatch: x.driftWatch ?? null };
}

/**
 * A fingerprint of live settings (64 bits from two salted hashes of their JSON): equal settings give equal
 * fingerprints on both sides; settings that differ only in key order differ here, and are then taken once more,
 * which changes nothing. Deterministic and without node:crypto, for workflow code.
 */
export function settingsFingerprint(x: LiveSettings): string {
  const json = JSON.stringify(x);
  const part = (salt: string) =>
    Math.floor(unitHash(`${salt}#${json}`) * 2 ** 32)
      .toString(16)
      .padStart(8, '0');
  return `${part('a')}${part('b')}`;
}

/**
 * The settings a worker answers a look with: its own when they differ from the fingerprint the lifecycle sent,
 * else undefined (nothing to change, nothing more in the history).
 */
export function settingsAnswer(
  sentFingerprint: string | undefined,
  current: LiveSettings | undefined,
): LiveSettings | undefined {
  if (sentFingerprint === undefined || current === undefined) return undefined;
  return settingsFingerprint(current) === sentFingerprint ? undefined : current;
}

/** Takes live settings into an input (it is the next run's input too): what is null is removed. */
export function applyLiveSettings(
  input: { changeControl?: ChangeControl; driftWatch?: DriftWatchConfig },
  next: LiveSettings,
): void {
  if (next.changeControl) input.changeControl = next.changeControl;
  else delete input.changeControl;
  if (next.driftWatch) input.driftWatch = next.driftWatch;
  else delete input.driftWatch;
}
