import type { Vault } from '../activities/types';
import type { LifecycleSettings } from '../activities/lifecycles';
import type { CertificateOrders } from '../activities/bindings/app-service-certificate-orders';
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

/** App Service Certificate orders for `audit --config` (the configuration's `certificateOrders`), or null. */
async function loadCertificateOrders(file: string): Promise<CertificateOrders | null> {
  const [{ loadConfig }, { openCertificateOrders }] = await Promise.all([
    import('../worker/config'),
    import('../worker/deps'),
  ]);
  return openCertificateOrders(loadConfig({ file }));
}

/** What `enroll` starts lifecycles with from the configuration (the same function the worker enrols with). */
async function loadLifecycleSettings(file: string): Promise<(certificateId: string) => LifecycleSettings> {
  const [{ loadConfig }, { lifecycleSettingsFor }] = await Promise.all([
    import('../worker/config'),
    import('../worker/lifecycle-settings'),
  ]);
  const config = loadConfig({ file });
  return (certificateId) => lifecycleSettingsFor(config, certificateId);
}

process.exitCode = await main(process.argv.slice(2), {
  loadVaults,
  loadCertificateOrders,
  loadLifecycleSettings,
});
