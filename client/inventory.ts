/**
 * Every certificate `report` and `audit` look at: with vault access, each certificate of the vaults joined
 * with its lifecycle (if any); without it, the running lifecycles only.
 */
import type { Vault } from '../activities/types';
import { usageError } from './args';
import type { CommandContext } from './context';
import { type LifecycleRow, listLifecycles } from '../activities/lifecycles';

export interface InventoryItem {
  certificateId: string;
  vault: string;
  name: string;
  /** False for a certificate only the lifecycle knows (deleted in the vault, or no vault access). */
  inVault: boolean;
  enabled: boolean;
  notAfter: string | null;
  lifecycle: LifecycleRow | null;
}

export interface Inventory {
  scope: 'vaults' | 'lifecycles';
  items: InventoryItem[];
}

export async function inventory(ctx: CommandContext, vaultFilter: string | undefined): Promise<Inventory> {
  const client = await ctx.client();
  const lifecycles = await listLifecycles(client, vaultFilter ? { vault: vaultFilter } : {});
  const byId = new Map(lifecycles.map((l) => [l.certificateId, l]));
  if (!ctx.hasVaultAccess()) {
    return {
      scope: 'lifecycles',
      items: lifecycles.map((l) => ({
        certificateId: l.certificateId,
        vault: l.vault,
        name: l.certificateId.split('/')[1] ?? l.certificateId,
        inVault: false,
        enabled: true,
        notAfter: l.expiresAt,
        lifecycle: l,
      })),
    };
  }
  const vaults = await ctx.vaults(ctx.command);
  const chosen = selectVaults(vaults, vaultFilter);
  const items: InventoryItem[] = [];
  for (const vault of chosen) {
    for await (const c of vault.list()) {
      const id = `${vault.name}/${c.name}`;
      items.push({
        certificateId: id,
        vault: vault.name,
        name: c.name,
        inVault: true,
        enabled: c.enabled,
        notAfter: c.notAfter,
        lifecycle: byId.get(id) ?? null,
      });
      byId.delete(id);
    }
  }
  const listed = new Set(chosen.map((v) => v.name));
  for (const l of byId.values()) {
    if (!listed.has(l.vault)) continue;
    const name = l.certificateId.split('/')[1] ?? l.certificateId;
    items.push({
      certificateId: l.certificateId,
      vault: l.vault,
      name,
      inVault: false,
      enabled: true,
      notAfter: l.expiresAt,
      lifecycle: l,
    });
  }
  return { scope: 'vaults', items: items.sort((a, b) => a.certificateId.localeCompare(b.certificateId)) };
}

function selectVaults(vaults: ReadonlyMap<string, Vault>, name: string | undefined): Vault[] {
  return name ? [vaultNamed(vaults, name)] : [...vaults.values()];
}

/** The configured vault of that name, or a usage error listing the known ones. */
export function vaultNamed(vaults: ReadonlyMap<string, Vault>, name: string): Vault {
  const v = vaults.get(name);
  if (!v)
    throw usageError(
      `--vault: vault ${JSON.stringify(name)} is not configured (known: ${[...vaults.keys()].join(', ') || 'none'})`,
    );
  return v;
}
