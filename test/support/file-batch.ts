/**
 * Binds file targets of one server as the worker's sync does: gathered into one batch (`batchFileTargets`), then
 * synced once with a binding context from one certificate to the next.
 */
import {
  batchFileTargets,
  createFileReloadTarget,
  type FileReloadTarget,
} from '../../activities/bindings/file-reload';
import type { BindingOutcome } from '../../activities/types';

export interface CertPair {
  certPem: string;
  keyPem: string;
  thumbprint: string;
}

export async function syncAsOneBatch(
  targets: FileReloadTarget[],
  change: { from: Pick<CertPair, 'thumbprint'>; to: CertPair; name: string },
): Promise<BindingOutcome[]> {
  const batched = batchFileTargets(targets.map(createFileReloadTarget));
  if (batched.length !== 1)
    throw new Error(`expected the ${targets.length} targets in one batch, got ${batched.length}`);
  const { from, to, name } = change;
  return batched[0]!.sync({
    certificateId: `kv/${name}`,
    version: to.thumbprint,
    thumbprint: to.thumbprint,
    previousThumbprint: from.thumbprint,
    secretId: `https://kv.example/secrets/${name}/1`,
    notAfter: null,
    material: () => Promise.resolve({ keyPem: to.keyPem, chainPem: [to.certPem] }),
  });
}
