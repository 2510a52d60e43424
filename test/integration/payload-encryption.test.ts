/**
 * Payload encryption on the real Temporal dev server: a lifecycle run by a worker whose data converter seals
 * payloads (client/payload-codec.ts) is stored encrypted (its history, read raw, holds no certificate id and
 * names the key), and reads back through a client, and through the CLI, given the same key ring. A client
 * without the keys cannot read it. Activities and vault are in memory (test/support/fake-lifecycle.ts).
 */
import crypto from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runCli } from '../../client/cli';
import {
  AesGcmPayloadCodec,
  dataConverterOf,
  ENCRYPTED_ENCODING,
  KEY_ID_METADATA,
} from '../../client/payload-codec';
import type { certificateLifecycle } from '../../workflows/lifecycle';
import { SA, statusQuery, workflowIdFor } from '../../workflows/messages';
import {
  createMemoryVault,
  fakeActivities,
  startFakeWorker,
  terminateVaultLifecycles,
} from '../support/fake-lifecycle';
import { waitFor } from '../support/proc';

const address = inject('temporalAddress');
const namespace = inject('temporalNamespace');
const V = `enc${Date.now().toString(36)}`;
const taskQueue = `payload-encryption-${V}`;
const id = `${V}/secretive-site`;
const keys = [{ id: 'k2026', key: crypto.randomBytes(32) }];
const ring = keys.map((k) => `${k.id}=${k.key.toString('base64')}`).join(',');

const vault = createMemoryVault(V);
vault.add('secretive-site');
const fake = fakeActivities(new Map([[V, vault]]));

let worker: { stop(): Promise<void> };
let encrypting: Client;
let plain: Client;

beforeAll(async () => {
  worker = await startFakeWorker({
    address,
    namespace,
    taskQueue,
    activities: fake.activities,
    dataConverter: dataConverterOf(keys),
  });
  const connection = await Connection.connect({ address });
  encrypting = new Client({ connection, namespace, dataConverter: dataConverterOf(keys) });
  plain = new Client({ connection, namespace });
  const handle = await encrypting.workflow.start<typeof certificateLifecycle>('certificateLifecycle', {
    taskQueue,
    workflowId: workflowIdFor(id),
    args: [{ certificateId: id, issuer: 'test-ca' }],
    typedSearchAttributes: [{ key: SA.vault, value: V }],
  });
  await waitFor('the lifecycle to observe the vault', async () => {
    const st = await handle.query(statusQuery);
    return st.phase === 'Waiting' && st.version ? true : undefined;
  });
});

afterAll(async () => {
  if (encrypting) {
    await terminateVaultLifecycles(encrypting, V);
    await encrypting.connection.close();
  }
  await worker?.stop();
});

/**
 * Every payload of the history as the server stores it (the SDK does not decode fetched histories), with where
 * it is. Two kinds are never for a codec: search attributes (Temporal indexes them; Certflow's hold the id,
 * vault, issuer, phase, expiry and thumbprint, which the workflow id and the UI show anyway) and the SDK's own
 * patch markers (a patch name).
 */
async function storedPayloads(): Promise<{ sealed: Payload[]; clear: string[] }> {
  const history = await plain.workflow.getHandle(workflowIdFor(id)).fetchHistory();
  const sealed: Payload[] = [];
  const clear: string[] = [];
  const walk = (v: unknown, path: string) => {
    if (!v || typeof v !== 'object') return;
    if ('metadata' in v && 'data' in v && (v as Payload).metadata?.encoding) {
      const encoding = Buffer.from((v as Payload).metadata!.encoding!).toString();
      if (encoding === ENCRYPTED_ENCODING) sealed.push(v as Payload);
      else clear.push(path);
    } else for (const [k, x] of Object.entries(v)) walk(x, `${path}.${k}`);
  };
  walk(history.events, 'events');
  return { sealed, clear };
}

describe('payload encryption', () => {
  it('stores the history encrypted: every payload sealed (but search attributes), naming its key', async () => {
    const { sealed: payloads, clear } = await storedPayloads();
    expect(payloads.length).toBeGreaterThan(3); // workflow input, activity inputs and results
    for (const p of payloads) {
      expect(Buffer.from(p.metadata![KEY_ID_METADATA]!).toString()).toBe('k2026');
      expect(Buffer.from(p.data!).includes(Buffer.from('secretive-site'))).toBe(false);
    }
    expect(clear.length).toBeGreaterThan(0);
    for (const path of clear)
      expect(path).toMatch(
        /\.searchAttributes\.indexedFields\.\w+$|\.markerRecordedEventAttributes\.details\.patch-data\./,
      );
    // and read back with the key: the decoded payloads hold what the lifecycle was given
    const decoded = await new AesGcmPayloadCodec(keys).decode(payloads);
    const text = decoded.map((p) => Buffer.from(p.data ?? []).toString()).join('\n');
    expect(text).toContain(`"certificateId":"${id}"`);
  });

  it('reads back through a client with the key ring, and not without it', async () => {
    const st = await encrypting.workflow.getHandle(workflowIdFor(id)).query(statusQuery);
    expect(st.certificateId).toBe(id);
    await expect(plain.workflow.getHandle(workflowIdFor(id)).query(statusQuery)).rejects.toThrow(
      /encoding|binary\/encrypted/i,
    );
  });

  it('reads back through the CLI given CERTFLOW_TEMPORAL_PAYLOAD_KEYS', async () => {
    let out = '';
    let err = '';
    const code = await runCli(['status', id, '--json', '--address', address, '--namespace', namespace], {
      out: { write: (s: string) => (out += s) },
      err: { write: (s: string) => (err += s) },
      env: { CERTFLOW_TEMPORAL_PAYLOAD_KEYS: ring },
    });
    expect(code, err).toBe(0);
    expect((JSON.parse(out) as { certificateId: string }).certificateId).toBe(id);
    expect(err + out).not.toContain(keys[0]!.key.toString('base64'));
  });
});
