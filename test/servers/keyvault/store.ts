/**
 * The test vault's state: certificates with their versions and pending operation, plain secrets, and the
 * private keys (kept apart, so state can be written as JSON while keys and secret values go to 0600 files).
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
import type { Provider, WirePolicy } from './wire';

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
  /** Who completes it: a merge (Unknown) or the vault itself (Self, an integrated CA), at `completeAt`. */
  provider: Provider;
  /** Epoch ms (server clock) when a vault-issued operation completes; absent for Unknown. */
  completeAt?: number;
  status: 'inProgress' | 'completed' | 'cancelled';
  cancellationRequested: boolean;
  statusDetails?: string;
  csr: string; // base64 DER
  keyRef: string;
  tags: Record<string, string>;
  enabled: boolean;
  created: number;
  /** Last PATCH of the pending version (tags, enabled), epoch seconds. */
  updated?: number;
}

export interface CertificateRecord {
  name: string;
  policy: WirePolicy;
  /** Oldest first. */
  versions: VersionRecord[];
  pending?: PendingOperation;
  /** The version the server's auto-renew last renewed from, so a failed or slow renewal is not started twice. */
  autoRenewedFrom?: string;
}

export interface SecretVersion {
  version: string;
  value: string;
  contentType?: string;
  tags: Record<string, string>;
  enabled: boolean;
  created: number;
  updated: number;
}

export interface SecretRecord {
  name: string;
  /** Oldest first. */
  versions: SecretVersion[];
}

export interface Store {
  certificates: Map<string, CertificateRecord>;
  /** Plain secrets (set with PUT /secrets/{name}); a certificate's own secret is derived from the certificate. */
  secrets: Map<string, SecretRecord>;
  getKey(ref: string): Buffer;
  putKey(ref: string, pkcs8: Buffer): void;
  /** Persist after a change (no-op in memory). */
  save(): void;
}

export function createStore(dataDir?: string): Store {
  const certificates = new Map<string, CertificateRecord>();
  const secrets = new Map<string, SecretRecord>();
  const keys = new Map<string, Buffer>();
  const keyDir = dataDir ? path.join(dataDir, 'keys') : undefined;
  const stateFile = dataDir ? path.join(dataDir, 'state.json') : undefined;
  const secretsFile = dataDir ? path.join(dataDir, 'secrets.json') : undefined;

  if (dataDir && keyDir && stateFile) {
    mkdirSync(keyDir, { recursive: true, mode: 0o700 });
    if (existsSync(stateFile)) {
      const saved = JSON.parse(readFileSync(stateFile, 'utf8')) as { certificates: CertificateRecord[] };
      for (const c of saved.certificates) {
        // state written before operations named their provider
        if (c.pending && !c.pending.provider)
          c.pending.provider = c.pending.issuer === 'Self' ? 'Self' : 'Unknown';
        certificates.set(c.name.toLowerCase(), c);
      }
    }
    if (secretsFile && existsSync(secretsFile)) {
      const saved = JSON.parse(readFileSync(secretsFile, 'utf8')) as { secrets: SecretRecord[] };
      for (const r of saved.secrets) secrets.set(r.name.toLowerCase(), r);
    }
    for (const f of readdirSync(keyDir)) {
      if (f.endsWith('.der')) keys.set(f.slice(0, -4), readFileSync(path.join(keyDir, f)));
    }
  }

  return {
    certificates,
    secrets,
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
      if (!stateFile || !secretsFile) return;
      writeAtomically(
        stateFile,
        JSON.stringify({ certificates: [...certificates.values()] }, null, 2),
        0o644,
      );
      writeAtomically(secretsFile, JSON.stringify({ secrets: [...secrets.values()] }), 0o600);
    },
  };
}

function writeAtomically(file: string, text: string, mode: number): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, file);
}
