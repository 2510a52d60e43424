/** Registers Certflow's search attributes on a namespace, idempotently (existing ones are left alone). */
import type { ConnectionLike } from '@temporalio/client';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import { SA } from '../workflows/messages';
import { WAVE_SA } from '../workflows/wave-messages';

/** Any connection with the operator service: a client Connection or the worker's NativeConnection. */
export async function ensureSearchAttributes(
  connection: Pick<ConnectionLike, 'operatorService'>,
  namespace: string,
): Promise<string[]> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const have = new Set([
    ...Object.keys(existing.customAttributes ?? {}),
    ...Object.keys(existing.systemAttributes ?? {}),
  ]);
  const missing = [...Object.values(SA), ...Object.values(WAVE_SA)].filter((k) => !have.has(k.name));
  if (missing.length === 0) return [];
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(
      missing.map((k) => [k.name, encodeSearchAttributeIndexedValueType(k.type)!]),
    ),
  });
  return missing.map((k) => k.name);
}
