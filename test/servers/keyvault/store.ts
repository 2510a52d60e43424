/**
 * The test vault's state: certificates with their versions and pending operation, and the private keys
 * (kept apart, so state can be written as JSON while keys go to their own 0600 files).
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import type { WirePolicy } from './wire';

export interface VersionRecord {
  version: string;
  created: number;
  updated: number;
  enabled: boolean;
  nbf: number;
  exp: number;
  x5t: string;
  /** Leaf first, base64 DER. */
  chain: string[];
  tags: Record<string, string>;
  keyRef: string;
  exportable: boolean;
  contentType: string;
}

export interface PendingOperation {
  requestId: string;
  /** The version the merge will create. */
  version: string;
  issuer: string;
  status: 'inProgress' | 'completed' | 'cancelled';
  cancellationRequested: boolean;
  statusDetails?: string;
  csr: string; // base64 DER
  keyRef: string;
  tags: Record<string, string>;
  enabled: boolean;
  created: number;
}

export interface CertificateRecord {
  name: string;
  policy: WirePolicy;
  /** Oldest first. */
  versions: VersionRecord[];
  pending?: PendingOperation;
}

export interface Store {
  certificates: Map<string, CertificateRecord>;
  getKey(ref: string): Buffer;
  putKey(ref: string, pkcs8: Buffer): void;
  /** Persist after a change (no-op in memory). */
  save(): void;
}

export function createStore(dataDir?: string): Store {
  const certificates = new Map<string, CertificateRecord>();
  const keys = new Map<string, Buffer>();
  const keyDir = dataDir ? path.join(dataDir, 'keys') : undefined;
  const stateFile = dataDir ? path.join(dataDir, 'state.json') : undefined;

  if (dataDir && keyDir && stateFile) {
    mkdirSync(keyDir, { recursive: true, mode: 0o700 });
    if (existsSync(stateFile)) {
      const saved = JSON.parse(readFileSync(stateFile, 'utf8')) as { certificates: CertificateRecord[] };
      for (const c of saved.certificates) certificates.set(c.name.toLowerCase(), c);
    }
    for (const f of readdirSync(keyDir)) {
      if (f.endsWith('.der')) keys.set(f.slice(0, -4), readFileSync(path.join(keyDir, f)));
    }
  }

  return {
    certificates,
    getKey(ref) {
      const k = keys.get(ref);
      if (!k) throw new Error(`test vault: key ${ref} is missing from the key store`);
      return k;
    },
    putKey(ref, pkcs8) {
      keys.set(ref, pkcs8);
      if (keyDir) {
        const file = path.join(keyDir, `${ref}.der`);
        writeFileSync(file, pkcs8, { mode: 0o600 });
        chmodSync(file, 0o600);
      }
    },
    save() {
      if (!stateFile) return;
      const tmp = `${stateFile}.tmp`;
      writeFileSync(tmp, JSON.stringify({ certificates: [...certificates.values()] }, null, 2));
      renameSync(tmp, stateFile);
    },
  };
}
