/**
 * Every secret the configuration refers to, checked at once: an unset variable or an unreadable file is one
 * issue each, under the field that refers to it, so `worker --check` and a real start name all of them in one
 * go instead of one per run. Also the secrets whose form is known here: the local vault and dev CA keys
 * (32 bytes) and the Event Grid key (at least 32 characters). Values are never part of a message.
 */
import { loadEncryptionKey } from '../activities/vault/local-crypto';
import { ConfigError, formatPath, resolveSecret, type CertflowConfig, type ConfigIssue } from './config';
import type { SecretRef } from './config-schema';

const isRef = (v: unknown): v is SecretRef =>
  typeof v === 'object' &&
  v !== null &&
  !Array.isArray(v) &&
  Object.keys(v).length === 1 &&
  (typeof (v as { env?: unknown }).env === 'string' || typeof (v as { file?: unknown }).file === 'string');

/** Each secret reference of the configuration with its path (`vaults[0].encryptionKey`). */
export function secretRefs(config: CertflowConfig): Array<{ path: string; ref: SecretRef }> {
  const out: Array<{ path: string; ref: SecretRef }> = [];
  const walk = (v: unknown, path: PropertyKey[]) => {
    // no field named `env` holds a reference: it is a command's environment, whose values may be references
    if (path[path.length - 1] !== 'env' && isRef(v)) out.push({ path: formatPath(path), ref: v });
    else if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else if (typeof v === 'object' && v !== null)
      for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  walk(config, []);
  return out;
}

/** Keys of 32 bytes (AES-256), base64 or hex: local vaults and the dev CA. */
const AES_KEY = /^((vaults|issuers)\[\d+\]\.encryptionKey|temporal\.payloadEncryption\.keys\[\d+\]\.key)$/;
const EVENT_GRID_KEY = 'http.eventGrid.key';
export const MIN_EVENT_GRID_KEY = 32;

export function secretIssues(config: CertflowConfig, env: NodeJS.ProcessEnv = process.env): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const { path, ref } of secretRefs(config)) {
    let value: string;
    try {
      value = resolveSecret(ref, env, path);
    } catch (err) {
      issues.push(...((err as ConfigError).issues ?? [{ path, message: (err as Error).message }]));
      continue;
    }
    const label = 'env' in ref ? `the environment variable ${ref.env}` : `the file ${ref.file}`;
    if (AES_KEY.test(path)) {
      try {
        loadEncryptionKey({ [label]: value }, label);
      } catch (err) {
        issues.push({ path, message: (err as Error).message });
      }
    } else if (path === EVENT_GRID_KEY && value.length < MIN_EVENT_GRID_KEY)
      issues.push({
        path,
        message: `expected ${label} to hold at least ${MIN_EVENT_GRID_KEY} characters (e.g. openssl rand -base64 32)`,
      });
  }
  return issues;
}

/** Throws one ConfigError with every secret problem, or returns. */
export function checkSecrets(config: CertflowConfig, env: NodeJS.ProcessEnv = process.env): void {
  const issues = secretIssues(config, env);
  if (issues.length) throw new ConfigError(issues, 'secrets missing or unusable');
}
