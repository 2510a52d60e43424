/**
 * Gathers the problems met while turning the configuration into clients, so that the operator sees all of them
 * at once (one ConfigError), each under the field it comes from. Never records a secret value.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, resolveSecret, type ConfigIssue, type SecretRef } from './config';

export interface Collector {
  readonly issues: ConfigIssue[];
  env: NodeJS.ProcessEnv;
  /** The secret's value, or '' after recording why it is not available. */
  secret(ref: SecretRef, path: string): string;
  /** The file's text, or '' after recording why it cannot be read. */
  file(file: string, path: string): string;
  /** Runs a factory; an Error it throws (a bad URL, a bad key...) becomes an issue at `path`. */
  build<T>(path: string, make: () => T): T | undefined;
  /** Same for an asynchronous factory. */
  buildAsync<T>(path: string, make: () => Promise<T>): Promise<T | undefined>;
  /** Throws every recorded issue as one ConfigError. */
  throwIfAny(heading: string): void;
}

export function createCollector(env: NodeJS.ProcessEnv): Collector {
  const issues: ConfigIssue[] = [];
  const record = (path: string, err: unknown) =>
    issues.push(...((err as ConfigError).issues ?? [{ path, message: (err as Error).message }]));
  return {
    issues,
    env,
    secret(ref, path) {
      try {
        return resolveSecret(ref, env, path);
      } catch (err) {
        record(path, err);
        return '';
      }
    },
    file(file, path) {
      try {
        return readFileSync(file, 'utf8');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
        issues.push({ path, message: `expected a readable file ${file} (${code})` });
        return '';
      }
    },
    build(path, make) {
      try {
        return make();
      } catch (err) {
        record(path, err);
        return undefined;
      }
    },
    async buildAsync(path, make) {
      try {
        return await make();
      } catch (err) {
        record(path, err);
        return undefined;
      }
    },
    throwIfAny(heading) {
      if (issues.length > 0) throw new ConfigError(issues, heading);
    },
  };
}
