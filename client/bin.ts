import type { Vault } from '../activities/types';
import { main } from './cli';

/**
 * Vault access for `--config`: the worker's configuration file, validated by worker/config.ts, turned into
 * Vault adapters by worker/deps.ts `openVaults` (vaults only: no issuer or mail secrets needed). Loaded only
 * when a command needs it, so the other commands start fast.
 */
async function loadVaults(file: string): Promise<ReadonlyMap<string, Vault>> {
  const [{ loadConfig }, deps] = await Promise.all([import('../worker/config'), import('../worker/deps')]);
  const openVaults = (
    deps as { openVaults?: (c: unknown) => ReadonlyMap<string, Vault> | Promise<ReadonlyMap<string, Vault>> }
  ).openVaults;
  if (!openVaults) throw new Error('vault access is not wired yet (worker/deps.ts has no openVaults)');
  return openVaults(loadConfig({ file }));
}

process.exitCode = await main(process.argv.slice(2), { loadVaults });
