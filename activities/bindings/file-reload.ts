/**
 * File + reload binding target (nginx, HAProxy, Apache, Envoy, ...): write the new certificate and key
 * next to the old ones atomically, validate the server's config, reload, and watch the live endpoint
 * until it serves the new thumbprint. Any failed step puts the previous files back and reloads again,
 * so a bad certificate never stays on disk for the next restart to pick up.
 *
 * Generations: `<file>.previous`, `.previous.2`, ... (up to `keepPrevious`) hold earlier pairs.
 * - After a successful bind, `.previous` is the pair that was live before it.
 * - After a rollback (or a failed write that was undone), the files and every generation are exactly as
 *   they were before the attempt; only a torn pair (below) is replaced by the last consistent one.
 *
 * Crashes: an attempt rotates the generations, then renames the key into place, then the certificate.
 * - Between the two renames the key on disk no longer matches the certificate (a torn pair). The next
 *   attempt compares their public keys, and takes `.previous` (written before either rename) as the pair
 *   that was live; with no matching `.previous` it refuses and writes nothing.
 * - After both renames but before the reload, the new pair is on disk but not served. The next attempt
 *   validates and reloads it, and when that fails rolls back to `.previous` like any other attempt.
 * - A file whose `.previous` already holds what would be saved is not rotated again, so a retry never
 *   pushes a real generation out for a duplicate.
 *
 * The private key only ever goes from memory to a 0600 file: never into a log, an error, or the outcome.
 */
import { type X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { heartbeatNow } from '../heartbeat';
import type { BindingContext, BindingOutcome, BindingTarget, Probe } from '../types';
import { normalizeThumbprint, probeTls, probeUntil, thumbprintOf } from '../verify/probe';
import { parseX509 } from '../verify/parsed';
import { mapLimit } from './concurrency';
import { localFileHost, type CommandSpec, type FileHost, type FileOwner } from './file-host';
import { newPkcs12Password, toPkcs12 } from './pkcs12';

export type { CommandSpec } from './file-host';
export { cleanStderr } from '../run-program';

/** The name other modules use for it. */
export type FileBindingTarget = FileReloadTarget;

export interface FileReloadTarget {
  name: string;
  /** Leaf then intermediates (PEM). Use with `keyPath`, or use `combinedPath` alone. */
  certPath?: string;
  keyPath?: string;
  /** One file holding the chain followed by the key (HAProxy style). */
  combinedPath?: string;
  /** Also the intermediates alone (Apache's SSLCertificateChainFile and the like); 0o644. */
  chainPath?: string;
  /**
   * Also a PKCS#12 of key and chain (Java, Tomcat, .NET), with a new random password per generation written to
   * `pkcs12PasswordPath` (default `<pkcs12Path>.password`); both get the key's mode.
   */
  pkcs12Path?: string;
  pkcs12PasswordPath?: string;
  /**
   * Mode of the key (or combined, PKCS#12) file; default 0o600, at most 0o640 (readable by the owner and,
   * at most, its group). The certificate file gets 0o644.
   */
  fileMode?: number;
  owner?: FileOwner;
  /** Where the files are and the commands run: the worker's own disk by default, or an SSH host. */
  host?: FileHost;
  /** Checks the new files before the server is asked to load them, e.g. `nginx -t`. */
  validate: CommandSpec;
  reload: CommandSpec;
  /** The live endpoint that must serve the new certificate after the reload. */
  probe?: {
    host: string;
    port: number;
    servername: string;
    caPem?: string;
    /** How long a reload may take to show (default 5000 ms). */
    settleMs?: number;
    /**
     * How long a reload may take to take effect at all (default RELOAD_EFFECT_MS): while the site still serves the
     * certificate it had before, the server has not switched to the new configuration yet (nginx re-reading
     * thousands of sites), and the probe keeps asking up to this long; any other answer decides within settleMs.
     */
    reloadMs?: number;
  };
  /** How many earlier generations to keep as `<file>.previous`, `<file>.previous.2`, ... (default 1). */
  keepPrevious?: number;
}

export interface KeyMaterial {
  keyPem: string;
  /** Leaf first. */
  chainPem: string[];
}

import { pemLeafThumbprint } from '../verify/thumbprint';
export { pemLeafThumbprint };
/** A PEM certificate block. */
const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;

/** The leaf thumbprint of a PEM file; null when the file is missing or holds no certificate. Refuses a symlink. */
export async function fileLeafThumbprint(
  file: string,
  host: FileHost = localFileHost,
): Promise<string | null> {
  const state = await host.read(file);
  return state ? pemLeafThumbprint(state.content.toString('utf8')) : null;
}

const hostOf = (t: FileReloadTarget): FileHost => t.host ?? localFileHost;

/** The loosest mode a key file may have: read and write by its owner, read by its group. */
export const MAX_KEY_MODE = 0o640;

interface PlannedFile {
  path: string;
  content: string | Buffer;
  mode: number;
}

export async function bindFiles(
  target: FileReloadTarget,
  material: KeyMaterial,
  expectedThumbprint: string,
): Promise<BindingOutcome> {
  const expected = normalizeThumbprint(expectedThumbprint);
  const materialProblem = checkMaterial(material, expected);
  let seen: Inspection;
  try {
    seen = await inspect(target, material, expected);
  } catch (err) {
    if (err instanceof ApplicationFailure) throw err; // a target that cannot work as configured
    // a symlink, a directory others may write, an unreachable host: nothing was touched
    return failedOutcome(target, `nothing written: ${materialProblem ?? (err as Error).message}`);
  }
  const { paths, outcome, before, planned, torn } = seen;
  if (materialProblem) {
    return outcome({
      before,
      after: before,
      status: 'failed',
      detail: `nothing written: ${materialProblem}`,
    });
  }
  if (seen.unchanged) return seen.unchanged;
  if (seen.onDisk === expected && !torn) {
    return reloadWritten(target, { planned, certFile: paths.certFile }, expected, before, outcome);
  }

  const keep = target.keepPrevious ?? 1;
  let snapshot = seen.snapshot;
  let repaired = '';
  if (torn) {
    const { keyPath, certPath } = target;
    const earlier = keep >= 1 ? await snapshotFiles(target, planned, generationName(1)) : null;
    if (!earlier || !usableGeneration(target, paths.certFile, earlier)) {
      return outcome({
        before,
        after: before,
        status: 'failed',
        detail:
          `nothing written: the key in ${keyPath} does not match the certificate in ${certPath} ` +
          `(an interrupted write?) and there is no matching earlier pair in ${keyPath}.previous + ` +
          `${certPath}.previous to fall back to; put a matching key and certificate in place`,
      });
    }
    snapshot = earlier;
    repaired =
      `; the key in ${keyPath} did not match the certificate in ${certPath} (an interrupted write), ` +
      'so the pair in the .previous files was kept as the one to fall back to';
  }

  const saved: Snapshot[] = [];
  try {
    await keepGenerations(snapshot, keep, target, saved);
    heartbeatNow(`${bindingLabel(target)}: previous generation kept`);
    for (const f of planned) await hostOf(target).write(f.path, f.content, f.mode, target.owner);
    heartbeatNow(`${bindingLabel(target)}: new files written`);
  } catch (err) {
    // e.g. EACCES or ENOSPC after the key was written but not the certificate: never leave a mixed pair
    const cause = (err as Error).message;
    const restored = await restoreFiles(snapshot, target)
      .then(() => restoreFiles(saved, target))
      .then(
        () => 'restored the previous files',
        (e: Error) => `restoring the previous files failed too: ${e.message}`,
      );
    return outcome({
      before,
      after: before,
      status: 'failed',
      detail: `writing the new files failed: ${cause}; ${restored}${repaired}`,
    });
  }

  const applied = await applyAndWatch(target, expected, before);
  if (!applied.step) {
    return outcome({
      before,
      after: expected,
      status: 'bound',
      detail: applied.detail + repaired,
      probe: applied.probe,
    });
  }
  const what = `${applied.step} failed: ${applied.detail}`;
  const restored = snapshotLeaf(paths.certFile, snapshot);
  const back = await rollBack(
    target,
    snapshot,
    saved,
    { before, restored, serving: applied.probe?.servedThumbprint ?? null },
    what,
    withReason(outcome, reasonOf(applied.step)),
  );
  return { ...back, detail: back.detail + repaired };
}

/**
 * The new pair is already on disk but not served (a crash or a failed reload after writing): validate and
 * reload it; when that fails, go back to the newest `.previous` pair as the main path would, so files the
 * server refused do not stay for its next restart. The generations stay as the earlier attempt left them.
 */
async function reloadWritten(
  target: FileReloadTarget,
  { planned, certFile }: { planned: PlannedFile[]; certFile: string },
  expected: string,
  before: string | null,
  outcome: (o: Omit<BindingOutcome, 'target' | 'binding'>) => BindingOutcome,
): Promise<BindingOutcome> {
  const applied = await applyAndWatch(target, expected, before);
  if (!applied.step) {
    return outcome({
      before,
      after: expected,
      status: 'bound',
      detail: applied.detail,
      probe: applied.probe,
    });
  }
  const what = `${applied.step} failed: ${applied.detail}`;
  const failedStep = withReason(outcome, reasonOf(applied.step));
  const earlier =
    (target.keepPrevious ?? 1) >= 1 ? await snapshotFiles(target, planned, generationName(1)) : null;
  const restored =
    earlier && usableGeneration(target, certFile, earlier) ? snapshotLeaf(certFile, earlier) : null;
  if (!earlier || restored === null || restored === expected) {
    return failedStep({
      before,
      after: before,
      status: 'failed',
      detail: `${what}; the new files stay: there is no earlier matching pair in ${certFile}.previous to roll back to`,
      probe: applied.probe,
    });
  }
  const serving = applied.probe?.servedThumbprint ?? null;
  return rollBack(target, earlier, [], { before, restored, serving }, what, failedStep);
}

interface StepResult {
  step?: 'validation' | 'reload' | 'probe';
  detail: string;
  probe?: Probe;
}

async function applyAndWatch(
  target: FileReloadTarget,
  expected: string,
  before: string | null,
): Promise<StepResult> {
  const host = hostOf(target);
  const validated = await host.run(target.validate);
  heartbeatNow(`${bindingLabel(target)}: validated`);
  if (!validated.ok) return { step: 'validation', detail: validated.detail };
  const reloaded = await host.run(target.reload);
  heartbeatNow(`${bindingLabel(target)}: reloaded`);
  if (!reloaded.ok) return { step: 'reload', detail: reloaded.detail };
  if (!target.probe) return { detail: `wrote ${expected}, validated and reloaded (no probe configured)` };
  const probe = await probeAfterReload(target, expected, before);
  if (!probe.ok) return { step: 'probe', detail: probe.detail, probe };
  return { detail: `${probe.detail} after reload`, probe };
}

/**
 * The probe after a reload of one site (bound alone, or rolled back): its settle window as always, and while it
 * still serves `stale` (what it served before this reload), up to the probe's reload window: the reload has not
 * taken effect yet, and the certificate served meanwhile is the one the site had, so waiting costs nothing. A
 * batch learns the same from its other sites (reloadTookEffect).
 */
async function probeAfterReload(
  target: FileReloadTarget,
  want: string,
  stale: string | null,
): Promise<Probe> {
  const p = target.probe!;
  const deadline = Date.now() + (p.reloadMs ?? RELOAD_EFFECT_MS);
  let probe = await probeUntil(p, want);
  const late = (x: Probe) => !x.ok && stale !== null && stale !== want && x.servedThumbprint === stale;
  while (late(probe) && Date.now() < deadline) {
    heartbeatNow(`${bindingLabel(target)}: still serves ${stale}, waiting for the reload to take effect`);
    probe = await probeUntil({ ...p, settleMs: Math.min(5_000, deadline - Date.now()) }, want);
  }
  return probe;
}

/** Puts the snapshot back as the live files and the generations as they were, then reloads and probes. */
async function rollBack(
  target: FileReloadTarget,
  snapshot: Snapshot[],
  generations: Snapshot[],
  /** `serving`: what the site served when the failure was seen (until the rollback's reload takes effect). */
  thumbprints: { before: string | null; restored: string | null; serving?: string | null },
  what: string,
  outcome: (o: Omit<BindingOutcome, 'target' | 'binding'>) => BindingOutcome,
): Promise<BindingOutcome> {
  const { before, restored, serving = null } = thumbprints;
  await restoreFiles(snapshot, target);
  await restoreFiles(generations, target);
  if (snapshot.every((s) => s.content === null)) {
    return outcome({
      before,
      after: null,
      status: 'failed',
      detail: `${what}; removed the new files (there were none before)`,
    });
  }
  const validated = await hostOf(target).run(target.validate);
  const reloaded = validated.ok ? await hostOf(target).run(target.reload) : validated;
  heartbeatNow(`${bindingLabel(target)}: rolled back`);
  if (!reloaded.ok) {
    return outcome({
      before,
      after: null,
      status: 'failed',
      detail: `${what}; restored the previous files but reloading them failed too: ${reloaded.detail}`,
    });
  }
  if (!target.probe || restored === null) {
    return outcome({
      before,
      after: restored,
      status: 'rolled-back',
      detail: `${what}; restored the previous files and reloaded`,
    });
  }
  // after a reload the server serves what is on disk again, which is what we confirm
  const probe = await probeAfterReload(target, restored, serving);
  return outcome({
    before,
    after: probe.servedThumbprint,
    status: probe.ok ? 'rolled-back' : 'failed',
    detail: probe.ok
      ? `${what}; restored the previous files, reloaded, ${probe.detail}`
      : `${what}; restored the previous files and reloaded, but the old certificate is not served: ${probe.detail}`,
    probe,
  });
}

/** What a target's outcomes name as `binding`: the certificate (or combined) file, after its host's name. */
export function bindingLabel(t: FileReloadTarget): string {
  return `${hostOf(t).label}${t.combinedPath ?? t.certPath ?? t.name}`;
}

function checkTarget(t: FileReloadTarget): { certFile: string; files: string[]; extra: string[] } {
  const bad = (message: string) =>
    ApplicationFailure.create({
      message: `binding target '${t.name}': ${message}`,
      type: 'BindingConfigInvalid',
      nonRetryable: true,
    });
  const combined = t.combinedPath !== undefined;
  if (combined && (t.certPath !== undefined || t.keyPath !== undefined)) {
    throw bad('set either combinedPath or certPath + keyPath, not both');
  }
  const files = combined ? [t.combinedPath as string] : [t.certPath, t.keyPath];
  if (files.some((f) => !f || !path.posix.isAbsolute(f))) {
    throw bad('certPath and keyPath (or combinedPath) must be absolute file paths');
  }
  const extra = [t.chainPath, t.pkcs12Path, t.pkcs12Path && pkcs12PasswordPath(t)].filter(
    (f): f is string => !!f,
  );
  if (extra.some((f) => !path.posix.isAbsolute(f)))
    throw bad('chainPath, pkcs12Path and pkcs12PasswordPath must be absolute file paths');
  const all = [...files, ...extra];
  if (new Set(all).size !== all.length) throw bad('every file path must be different');
  if (!t.validate?.command || !t.reload?.command)
    throw bad('validate.command and reload.command are required');
  const mode = t.fileMode ?? 0o600;
  if (mode & ~MAX_KEY_MODE)
    throw bad(
      `fileMode ${mode.toString(8).padStart(4, '0')} is too loose for a private key: expected at most 0640 ` +
        '(no write by the group, nothing for others), like 0600 or 0640',
    );
  return { certFile: files[0] as string, files: files as string[], extra };
}

const pkcs12PasswordPath = (t: FileReloadTarget) => t.pkcs12PasswordPath ?? `${t.pkcs12Path}.password`;

/** Refuses material that would only fail later at the server: wrong leaf or a key that does not match it. */
function checkMaterial(m: KeyMaterial, expected: string): string | null {
  const leafPem = m.chainPem[0];
  if (!leafPem) return 'the chain is empty (expected the leaf certificate first)';
  let leaf: X509Certificate;
  try {
    leaf = parseX509(leafPem);
  } catch {
    return 'the first chain entry is not a PEM certificate';
  }
  if (thumbprintOf(leaf) !== expected) return `the leaf is ${thumbprintOf(leaf)}, expected ${expected}`;
  try {
    if (!leaf.checkPrivateKey(createPrivateKey(m.keyPem)))
      return `the private key does not match certificate ${expected}`;
  } catch {
    return 'the private key could not be read (expected an unencrypted PEM key)';
  }
  return null;
}

async function planFiles(
  t: FileReloadTarget,
  paths: { files: string[] },
  m: KeyMaterial,
): Promise<PlannedFile[]> {
  const chain = m.chainPem.map(endLine).join('');
  const keyMode = t.fileMode ?? 0o600;
  // the certificate (or combined) file goes last: it is what marks the new generation as written
  const extra: PlannedFile[] = [];
  if (t.chainPath)
    extra.push({ path: t.chainPath, content: m.chainPem.slice(1).map(endLine).join(''), mode: 0o644 });
  if (t.pkcs12Path) {
    const password = newPkcs12Password();
    extra.push(
      { path: pkcs12PasswordPath(t), content: `${password}\n`, mode: keyMode },
      { path: t.pkcs12Path, content: await toPkcs12(m.keyPem, m.chainPem, password), mode: keyMode },
    );
  }
  if (t.combinedPath)
    return [...extra, { path: t.combinedPath, content: chain + endLine(m.keyPem), mode: keyMode }];
  const [certPath, keyPath] = paths.files as [string, string];
  return [
    { path: keyPath, content: endLine(m.keyPem), mode: keyMode },
    ...extra,
    { path: certPath, content: chain, mode: 0o644 },
  ];
}

const endLine = (s: string) => (s.endsWith('\n') ? s : `${s}\n`);

interface Snapshot {
  path: string;
  content: Buffer | null;
  mode: number;
}

/** The planned files as they are now, or (with `from`) as they are in another file, e.g. a generation. */
async function snapshotFiles(
  t: FileReloadTarget,
  planned: PlannedFile[],
  from: (file: string) => string = (f) => f,
): Promise<Snapshot[]> {
  return Promise.all(
    planned.map(async (f) => ({ path: f.path, ...(await readState(t, from(f.path), f.mode)) })),
  );
}

/** A file's content and mode; refuses a symlink (its target would be copied into a generation). */
async function readState(
  t: FileReloadTarget,
  file: string,
  modeIfMissing: number,
): Promise<Omit<Snapshot, 'path'>> {
  return (await hostOf(t).read(file)) ?? { content: null, mode: modeIfMissing };
}

/** Whether the key file and the certificate file hold one pair; 'unknown' for a combined file or what does not parse. */
function pairState(t: FileReloadTarget, files: Snapshot[]): 'match' | 'mismatch' | 'unknown' {
  const key = files.find((f) => f.path === t.keyPath)?.content;
  const cert = files.find((f) => f.path === t.certPath)?.content;
  if (!key || !cert) return 'unknown';
  try {
    const leaf = PEM_CERT.exec(cert.toString('utf8'))?.[0];
    if (!leaf) return 'unknown';
    const certSpki = parseX509(leaf).publicKey.export({ type: 'spki', format: 'der' });
    const keySpki = createPublicKey(createPrivateKey(key)).export({ type: 'spki', format: 'der' });
    return certSpki.equals(keySpki) ? 'match' : 'mismatch';
  } catch {
    return 'unknown';
  }
}

/** An earlier generation good enough to go back to: every file there, a certificate, and a key that matches it. */
function usableGeneration(t: FileReloadTarget, certFile: string, files: Snapshot[]): boolean {
  if (files.some((f) => f.content === null)) return false;
  return t.combinedPath ? snapshotLeaf(certFile, files) !== null : pairState(t, files) === 'match';
}

function snapshotLeaf(certFile: string, files: Snapshot[]): string | null {
  const cert = files.find((f) => f.path === certFile)?.content;
  return cert ? pemLeafThumbprint(cert.toString('utf8')) : null;
}

/** Writes each file as snapshotted, or removes it where the snapshot says it did not exist; in order. */
async function restoreFiles(snapshot: Snapshot[], t: FileReloadTarget): Promise<void> {
  const host = hostOf(t);
  for (const s of snapshot) {
    if (s.content === null) await host.remove(s.path).catch(() => undefined);
    else await host.write(s.path, s.content, s.mode, t.owner);
  }
}

const generationName = (i: number) => (file: string) =>
  i === 1 ? `${file}.previous` : `${file}.previous.${i}`;

/**
 * Makes the snapshot the newest earlier generation (`<file>.previous`); older ones shift to `.previous.2`, ...
 * Before changing a file's generations it appends them, as they were and newest first, to `saved`: restoring
 * `saved` in that order undoes the rotation, even one that threw halfway, and at every step each earlier
 * generation still exists on disk. A file whose `.previous` already holds the snapshot is left alone.
 */
async function keepGenerations(
  snapshot: Snapshot[],
  keep: number,
  t: FileReloadTarget,
  saved: Snapshot[],
): Promise<void> {
  if (keep < 1) return;
  const host = hostOf(t);
  for (const s of snapshot) {
    if (s.content === null) continue;
    const names = Array.from({ length: keep }, (_, i) => generationName(i + 1)(s.path));
    const gens = await Promise.all(names.map(async (g) => ({ path: g, ...(await readState(t, g, s.mode)) })));
    if (gens[0]?.content?.equals(s.content)) continue;
    saved.push(...gens);
    for (let i = keep - 1; i >= 1; i--) await host.rename(names[i - 1] as string, names[i] as string);
    await host.write(names[0] as string, s.content, s.mode, t.owner);
  }
}

async function probeOnce(p: NonNullable<FileReloadTarget['probe']>, expected: string): Promise<Probe> {
  return probeTls({ ...p, expectedThumbprint: expected, timeoutMs: 2_000 });
}

/**
 * Several sites of one server, bound with one validation and one reload instead of one each (200 sites on one
 * nginx: a few seconds instead of minutes). Each site is prepared as `bindFiles` would; sites already on the
 * new certificate are left alone, and the rare crash-recovery cases (a torn pair, new files written but never
 * reloaded) go through `bindFiles` one at a time. The rest are written together, validated once and reloaded
 * once, then each is probed. When the shared validation or reload fails, every site of the batch is put back
 * exactly as it was and bound one at a time, so the site at fault is rolled back alone and the others still
 * bind; a site whose probe fails is rolled back on its own (restore, validate, reload, probe the old one).
 */
export async function bindFilesBatch(
  targets: FileReloadTarget[],
  material: KeyMaterial,
  expectedThumbprint: string,
): Promise<BindingOutcome[]> {
  return bindSitesBatch(targets.map((target) => ({ target, material, expectedThumbprint })));
}

/** One site of a batch with the certificate it is to serve (a batch may hold sites of several certificates). */
export interface BatchItem {
  target: FileReloadTarget;
  material: KeyMaterial;
  expectedThumbprint: string;
}

/**
 * `bindFilesBatch` for sites of one server that may each get a different certificate (the renewals of several
 * certificates served by one nginx, gathered by `syncFileTargets`): the same steps, one validation and one reload.
 */
export async function bindSitesBatch(items: BatchItem[]): Promise<BindingOutcome[]> {
  const norm = items.map((it) => ({ ...it, expected: normalizeThumbprint(it.expectedThumbprint) }));
  const one = (i: number) => bindFiles(norm[i]!.target, norm[i]!.material, norm[i]!.expected);
  const all = norm.map((_, i) => i);
  if (norm.length < 2) return inSeries(all, one);

  const results = new Array<BindingOutcome | undefined>(norm.length);
  const serial: number[] = [];
  const batch: Prepared[] = [];
  await mapLimit(all, PROBE_CONCURRENCY, async (i) => {
    const { target: t, material, expected } = norm[i]!;
    // material that does not match its thumbprint: bindFiles refuses it and writes nothing
    if (checkMaterial(material, expected)) return void serial.push(i);
    const p = await prepare(t, material, expected).catch((err: Error) => err);
    if (p instanceof Error) results[i] = failedOutcome(t, p.message, failureType(p));
    else if (p === 'serial') serial.push(i);
    else if ('status' in p) results[i] = p;
    else batch.push({ ...p, index: i, expected });
  });
  batch.sort((a, b) => a.index - b.index);
  heartbeatNow(`${norm.length} sites inspected`);

  const written: Prepared[] = [];
  // sites are independent files: written several at a time (round trips overlap on an SSH host), unless two
  // sites name the same file, which must then be written in order
  const paths = batch.flatMap((p) => p.planned.map((f) => f.path));
  const writers = new Set(paths).size === paths.length ? PROBE_CONCURRENCY : 1;
  await mapLimit(batch, writers, async (p) => {
    try {
      await keepGenerations(p.snapshot, p.target.keepPrevious ?? 1, p.target, p.saved);
      for (const f of p.planned) await hostOf(p.target).write(f.path, f.content, f.mode, p.target.owner);
      written.push(p);
      heartbeatNow(`${written.length} of ${batch.length} sites written`);
    } catch (err) {
      const restored = await undo(p).then(
        () => 'restored the previous files',
        (e: Error) => `restoring the previous files failed too: ${e.message}`,
      );
      results[p.index] = p.outcome({
        before: p.before,
        after: p.before,
        status: 'failed',
        detail: `writing the new files failed: ${(err as Error).message}; ${restored}`,
      });
    }
  });
  written.sort((a, b) => a.index - b.index);

  if (written.length) {
    const first = written[0]!.target;
    const host = hostOf(first);
    const validated = await host.run(first.validate);
    heartbeatNow(`batch of ${written.length} sites validated`);
    const reloaded = validated.ok ? await host.run(first.reload) : undefined;
    heartbeatNow(`batch of ${written.length} sites reloaded`);
    if (!validated.ok || !reloaded?.ok) {
      // nothing of the batch may stay: put every site back, then find the one at fault site by site
      for (const p of written) await undo(p);
      if (reloaded) {
        // the reload failed after a good validation: make sure the server runs the restored files
        await host.run(first.reload);
      }
      serial.push(...written.map((p) => p.index));
    } else {
      const together = written.length > 1 ? `; one reload for ${written.length} sites` : '';
      await reloadTookEffect(written);
      const probed = await mapLimit(written, PROBE_CONCURRENCY, async (p) => {
        const probe = p.target.probe ? await probeUntil(p.target.probe, p.expected) : undefined;
        heartbeatNow(`${bindingLabel(p.target)}: probed`);
        return probe;
      });
      await secondLook(written, probed);
      const failed: { p: Prepared; probe: Probe }[] = [];
      written.forEach((p, k) => {
        const probe = probed[k];
        if (!probe)
          results[p.index] = p.outcome({
            before: p.before,
            after: p.expected,
            status: 'bound',
            detail: `wrote ${p.expected}, validated and reloaded (no probe configured)${together}`,
          });
        else if (probe.ok)
          results[p.index] = p.outcome({
            before: p.before,
            after: p.expected,
            status: 'bound',
            detail: `${probe.detail} after reload${together}`,
            probe,
          });
        else failed.push({ p, probe });
      });
      for (const { p, probe } of failed) {
        const restored = snapshotLeaf(p.certFile, p.snapshot);
        const what = `probe failed: ${probe.detail}`;
        results[p.index] = await rollBack(
          p.target,
          p.snapshot,
          p.saved,
          { before: p.before, restored, serving: probe.servedThumbprint },
          what,
          withReason(p.outcome, 'ProbeMismatch'),
        );
      }
    }
  }

  serial.sort((a, b) => a - b);
  const serialOutcomes = await inSeries(serial, one);
  serial.forEach((i, k) => (results[i] = serialOutcomes[k]));
  return results.map((r, i) => r ?? failedOutcome(norm[i]!.target, 'no outcome (internal error)'));
}

const PROBE_CONCURRENCY = 16;

/**
 * How long a batch waits for its reload to take effect before each site is probed within its own settle window.
 * `nginx -s reload` returns at once; the new configuration serves only once the master has re-read every site and
 * started new workers (seconds with thousands of sites, more on a busy machine), and until then the old workers
 * answer with the old certificates. Probing each site right away failed sites that were fine, rolled them back and
 * left them on the old certificate (bench/wave.ts, 1,000 sites of 2,000 on one nginx: 7 of them).
 */
export const RELOAD_EFFECT_MS = 60_000;

/**
 * Sites whose probe failed while others of the batch serve their new certificates get a second look (their settle
 * window once more, after the others) before they are rolled back: on a large server under load, retiring workers
 * keep answering some connections with the old configuration for seconds after the new workers started
 * (bench/wave.ts, 1,000 sites in batches on an nginx of 2,000: 1 site in 1,000 was rolled back without it). A site
 * that still does not serve its certificate is rolled back as before; when no site of the batch passed, there is
 * nothing to wait for (reloadTookEffect has waited already).
 */
async function secondLook(written: Prepared[], probed: Array<Probe | undefined>): Promise<void> {
  if (!probed.some((x) => x?.ok)) return;
  const again = written.flatMap((p, k) => (probed[k] && !probed[k]!.ok ? [{ p, k }] : []));
  const second = await mapLimit(again, PROBE_CONCURRENCY, ({ p }) => probeUntil(p.target.probe!, p.expected));
  again.forEach(({ k }, j) => (probed[k] = second[j]));
}

/**
 * Waits until one of the batch's first sites serves its new certificate (the new configuration is live), or their
 * reload window (RELOAD_EFFECT_MS unless configured) has passed: then each site's probe decides as before.
 */
async function reloadTookEffect(written: Prepared[]): Promise<void> {
  const probed = written.filter((p) => p.target.probe).slice(0, PROBE_CONCURRENCY);
  if (!probed.length) return;
  const window = Math.max(...probed.map((p) => p.target.probe!.reloadMs ?? RELOAD_EFFECT_MS));
  const deadline = Date.now() + window;
  for (;;) {
    const seen = await Promise.all(probed.map((p) => probeOnce(p.target.probe!, p.expected)));
    if (seen.some((x) => x.ok) || Date.now() >= deadline) return;
    heartbeatNow(`waiting for the reload of ${written.length} sites to take effect`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

interface Prepared {
  target: FileReloadTarget;
  index: number;
  /** The thumbprint this site is to serve. */
  expected: string;
  certFile: string;
  planned: PlannedFile[];
  snapshot: Snapshot[];
  saved: Snapshot[];
  before: string | null;
  outcome: (o: Omit<BindingOutcome, 'target' | 'binding'>) => BindingOutcome;
}

interface Inspection {
  paths: { certFile: string; files: string[]; extra: string[] };
  outcome: (o: Omit<BindingOutcome, 'target' | 'binding'>) => BindingOutcome;
  onDisk: string | null;
  before: string | null;
  planned: PlannedFile[];
  snapshot: Snapshot[];
  /** The key on disk does not match the certificate on disk (a crash between the two renames). */
  torn: boolean;
  /** Set when the target already serves `expected` from a consistent pair: nothing to do. */
  unchanged?: BindingOutcome;
}

/** What a target looks like before anything is written: files on disk, what is served, the plan. */
async function inspect(
  target: FileReloadTarget,
  material: KeyMaterial,
  expected: string,
): Promise<Inspection> {
  const paths = checkTarget(target);
  const host = hostOf(target);
  const outcome = (o: Omit<BindingOutcome, 'target' | 'binding'>): BindingOutcome => ({
    target: target.name,
    binding: bindingLabel(target),
    ...o,
  });
  const all = [...paths.files, ...paths.extra];
  for (const dir of new Set(all.map((f) => path.posix.dirname(f)))) await host.checkDir(dir);
  // an attempt killed mid-write (a worker crash) leaves a temp file next to the real one: never a live file
  const byDir = new Map<string, string[]>();
  for (const f of all) byDir.set(path.posix.dirname(f), [...(byDir.get(path.posix.dirname(f)) ?? []), f]);
  for (const [dir, files] of byDir) await host.removeStaleTemps(dir, files);
  const onDisk = await fileLeafThumbprint(paths.certFile, host);
  const live = target.probe ? await probeOnce(target.probe, expected) : undefined;
  const before = live?.servedThumbprint ?? onDisk;
  const planned = await planFiles(target, paths, material);
  const snapshot = await snapshotFiles(target, planned);
  const torn = pairState(target, snapshot) === 'mismatch';
  const unchanged =
    onDisk === expected && !torn && (!live || live.servedThumbprint === expected)
      ? outcome({
          before,
          after: expected,
          status: 'unchanged',
          detail: `already on ${expected}`,
          probe: live,
        })
      : undefined;
  return { paths, outcome, onDisk, before, planned, snapshot, torn, ...(unchanged ? { unchanged } : {}) };
}

/** For the batch: an outcome already (unchanged), 'serial' for the crash-recovery cases, or the plan. */
async function prepare(
  target: FileReloadTarget,
  material: KeyMaterial,
  expected: string,
): Promise<BindingOutcome | 'serial' | Omit<Prepared, 'index' | 'expected'>> {
  const { paths, outcome, onDisk, before, planned, snapshot, torn, unchanged } = await inspect(
    target,
    material,
    expected,
  );
  if (unchanged) return unchanged;
  if (torn || onDisk === expected) return 'serial';
  return { target, certFile: paths.certFile, planned, snapshot, saved: [], before, outcome };
}

/** Puts a prepared site's files and generations back as they were before the batch wrote them. */
async function undo(p: Prepared): Promise<void> {
  await restoreFiles(p.snapshot, p.target);
  await restoreFiles(p.saved, p.target);
}

function failedOutcome(t: FileReloadTarget, detail: string, reason?: string): BindingOutcome {
  return {
    target: t.name,
    binding: bindingLabel(t),
    before: null,
    after: null,
    status: 'failed',
    detail,
    ...(reason ? { reason } : {}),
  };
}

type OutcomeOf = (o: Omit<BindingOutcome, 'target' | 'binding'>) => BindingOutcome;

/** Why a step failed, as outcomes classify it. */
const reasonOf = (step: StepResult['step']) => (step === 'probe' ? 'ProbeMismatch' : 'CommandFailed');
const withReason =
  (outcome: OutcomeOf, reason: string): OutcomeOf =>
  (o) =>
    outcome({ ...o, reason });
/** The stable type of a classified failure (an SSH host unreachable, its key refused ...), when it has one. */
const failureType = (err: unknown) => (err instanceof ApplicationFailure ? err.type : undefined) ?? undefined;

async function inSeries<T, R>(items: T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (const item of items) out.push(await fn(item));
  return out;
}

const FILE_TARGET = Symbol('certflow.fileReloadTarget');
type FileBacked = BindingTarget & { [FILE_TARGET]?: FileReloadTarget };

/**
 * A file target as a BindingTarget: fetches key and chain from the vault inside the activity (ctx.material) and
 * binds them; a failure is one outcome with status `failed`, never a throw that would hide other targets.
 */
export function createFileReloadTarget(target: FileReloadTarget): BindingTarget {
  const bt: FileBacked = {
    kind: 'files',
    name: target.name,
    sync: (ctx) => syncFileTargets([target], ctx),
  };
  bt[FILE_TARGET] = target;
  return bt;
}

/**
 * The file target's settings behind a BindingTarget made by createFileReloadTarget (`files` and `ssh-files` from
 * the configuration), else undefined: the drift watch reads its file and probes its endpoint (watch.ts).
 */
export function fileTargetOf(t: BindingTarget): FileReloadTarget | undefined {
  return (t as FileBacked)[FILE_TARGET];
}

/**
 * Merges the file targets of one server (same validate and reload commands) into one BindingTarget that binds
 * them as a batch; every other target is returned as it was, in order.
 */
export function batchFileTargets(targets: BindingTarget[]): BindingTarget[] {
  const groups = new Map<string, FileReloadTarget[]>();
  const out: (BindingTarget | string)[] = [];
  for (const t of targets) {
    const file = (t as FileBacked)[FILE_TARGET];
    if (!file) {
      out.push(t);
      continue;
    }
    const key = serverKey(file);
    const group = groups.get(key);
    if (group) group.push(file);
    else {
      groups.set(key, [file]);
      out.push(key);
    }
  }
  return out.map((entry) => {
    if (typeof entry !== 'string') return entry;
    const files = groups.get(entry)!;
    if (files.length === 1) return createFileReloadTarget(files[0]!);
    return {
      kind: 'files',
      name: `${files[0]!.name} and ${files.length - 1} more`,
      sync: (ctx: BindingContext) => syncFileTargets(files, ctx),
    };
  });
}

async function syncFileTargets(files: FileReloadTarget[], ctx: BindingContext): Promise<BindingOutcome[]> {
  try {
    const material = await ctx.material();
    return await togetherPerServer(files[0]!, files, material, ctx.thumbprint);
  } catch (err) {
    return files.map((t) => failedOutcome(t, (err as Error).message, failureType(err)));
  }
}

/**
 * Targets served by the same server (same validate and reload commands) are bound one batch at a time: the
 * server's validation reads every site's files, so a concurrent swap of another site (key written, certificate not
 * yet) would fail it and roll back a good binding. Different servers still bind in parallel.
 *
 * Group commit: the syncs of one server that arrive while a batch of it runs (the renewals of other certificates
 * in a wave, each its own activity) wait, then go together as the next batch: one validation and one reload for
 * all of them, each site with its own certificate, instead of one each (a wave of 1,000 certificates on one nginx
 * would otherwise be 1,000 reloads one after the other, each re-reading every site). A sync that arrives when the
 * server is idle first waits until no other sync of that server has arrived for GATHER_QUIET_MS (at most
 * GATHER_MAX_MS), so that the syncs of a wave, which arrive over a second or two, go as one batch instead of the
 * first ones alone and the rest after them (validations and reloads in a row, each waiting for the one before).
 * The batch runs inside the activity of one of the syncs it serves; the others
 * wait for their outcomes (their activities heartbeat meanwhile). What a batch does when something fails is
 * `bindSitesBatch`'s: the sites go one at a time and only the site at fault is rolled back.
 */
interface PendingSync {
  items: BatchItem[];
  taken: boolean;
  done: Promise<BindingOutcome[]>;
  settle(outcomes: BindingOutcome[] | Error): void;
}

/**
 * A sync that finds its server idle waits for others to join its batch: until none has arrived for
 * GATHER_QUIET_MS, and never longer than GATHER_MAX_MS. A lone sync waits GATHER_QUIET_MS; a wave's syncs, which
 * arrive over a second or two, go together. Both are short next to a validation and reload (a second or more with a
 * few hundred sites), which syncs that went ahead alone would make the others wait for.
 */
export const GATHER_QUIET_MS = 200;
export const GATHER_MAX_MS = 2_000;

const serverQueues = new Map<string, Promise<unknown>>();
/** When the latest sync of each server arrived (Date.now()). */
const lastArrival = new Map<string, number>();

/** Resolves once no sync of this server has arrived for GATHER_QUIET_MS, or GATHER_MAX_MS after it was called. */
async function gathered(key: string): Promise<void> {
  const until = Date.now() + GATHER_MAX_MS;
  for (;;) {
    const now = Date.now();
    const wait = Math.min(GATHER_QUIET_MS - (now - (lastArrival.get(key) ?? 0)), until - now);
    if (wait <= 0) return;
    await new Promise((r) => setTimeout(r, wait));
  }
}
const waitingSyncs = new Map<string, PendingSync[]>();

const serverKey = (t: FileReloadTarget) =>
  JSON.stringify([hostOf(t).id, t.validate?.command, t.validate?.args, t.reload?.command, t.reload?.args]);

async function togetherPerServer(
  first: FileReloadTarget,
  files: FileReloadTarget[],
  material: KeyMaterial,
  expectedThumbprint: string,
): Promise<BindingOutcome[]> {
  const key = serverKey(first);
  let settle!: PendingSync['settle'];
  const done = new Promise<BindingOutcome[]>((resolve, reject) => {
    settle = (o) => (o instanceof Error ? reject(o) : resolve(o));
  });
  const mine: PendingSync = {
    items: files.map((target) => ({ target, material, expectedThumbprint })),
    taken: false,
    done,
    settle,
  };
  waitingSyncs.set(key, [...(waitingSyncs.get(key) ?? []), mine]);
  lastArrival.set(key, Date.now());
  const turn = async () => {
    if (mine.taken) return; // an earlier turn took this sync into its batch
    const group = waitingSyncs.get(key) ?? [];
    waitingSyncs.delete(key);
    for (const g of group) g.taken = true;
    const items = group.flatMap((g) => g.items);
    try {
      const outcomes =
        items.length === 1
          ? [await bindFiles(items[0]!.target, items[0]!.material, items[0]!.expectedThumbprint)]
          : await bindSitesBatch(items);
      let at = 0;
      for (const g of group) {
        g.settle(outcomes.slice(at, at + g.items.length));
        at += g.items.length;
      }
    } catch (err) {
      for (const g of group) g.settle(err as Error);
    }
  };
  // a busy server: the next batch starts when the running one ends, with every sync that arrived meanwhile
  const before = serverQueues.get(key) ?? gathered(key);
  const tail = before.catch(() => undefined).then(turn);
  serverQueues.set(key, tail);
  try {
    await tail;
    return await done;
  } finally {
    if (serverQueues.get(key) === tail) serverQueues.delete(key);
  }
}
