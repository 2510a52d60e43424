/**
 * DNS-01 answers in an Azure DNS zone (`@azure/arm-dns`). Several orders may answer for the same name at
 * once (a name and its wildcard, two certificates), so values are merged into the `_acme-challenge` TXT
 * record set, never overwritten: every change is a read-modify-write guarded by the record set's ETag,
 * started over when someone else changed it in between (412). The identity needs "DNS Zone Contributor"
 * on the zone (or the TXT read/write/delete actions).
 */
import { DnsManagementClient, type DnsManagementClientOptionalParams, type RecordSet } from '@azure/arm-dns';
import type { TokenCredential } from '@azure/identity';
import { ApplicationFailure } from '@temporalio/common';
import { serviceError } from '../vault/azure-key-vault-errors';
import type { DnsProvider } from './dns';

export interface AzureDnsOptions {
  subscriptionId: string;
  resourceGroup: string;
  /** The zone's name as in Azure, e.g. `example.com`. */
  zone: string;
  credential: TokenCredential;
  /** Passed to DnsManagementClient: `$host` + `credentialScopes` for sovereign clouds, `retryOptions`, `tlsOptions`. */
  clientOptions?: DnsManagementClientOptionalParams;
  /** TTL of a record set we create. Default 60 s. */
  ttlSeconds?: number;
}

const MAX_CONFLICTS = 5;

export function createAzureDns(opts: AzureDnsOptions): DnsProvider {
  const client = new DnsManagementClient(opts.credential, opts.subscriptionId, opts.clientOptions);
  const { resourceGroup } = opts;
  const zone = opts.zone.toLowerCase().replace(/\.$/, '');
  const ttl = opts.ttlSeconds ?? 60;

  function relativeName(fqdn: string): string {
    const name = fqdn.toLowerCase().replace(/\.$/, '');
    if (name === zone) return '@';
    if (name.endsWith(`.${zone}`)) return name.slice(0, -(zone.length + 1));
    throw ApplicationFailure.create({
      message: `Azure DNS zone '${zone}' cannot hold ${fqdn}: configure the zone that contains this name`,
      type: 'DnsZoneMismatch',
      nonRetryable: true,
    });
  }

  async function read(name: string): Promise<RecordSet | undefined> {
    try {
      return await client.recordSets.get(resourceGroup, zone, name, 'TXT');
    } catch (err) {
      if (serviceError(err).status === 404 && serviceError(err).code === 'NotFound') return undefined;
      throw err;
    }
  }

  /** `change` returns the new TXT values, or null when nothing needs to change. */
  async function update(
    action: string,
    fqdn: string,
    change: (values: string[][]) => string[][] | null,
  ): Promise<void> {
    const name = relativeName(fqdn);
    for (let attempt = 1; ; attempt++) {
      try {
        const current = await read(name);
        const next = change((current?.txtRecords ?? []).map((r) => r.value ?? []));
        if (next === null) return;
        if (next.length === 0) {
          await client.recordSets.delete(resourceGroup, zone, name, 'TXT', { ifMatch: current?.etag });
        } else {
          await client.recordSets.createOrUpdate(
            resourceGroup,
            zone,
            name,
            'TXT',
            {
              ttl: current?.ttl ?? ttl,
              metadata: current?.metadata,
              txtRecords: next.map((value) => ({ value })),
            },
            current?.etag ? { ifMatch: current.etag } : { ifNoneMatch: '*' },
          );
        }
        return;
      } catch (err) {
        if (serviceError(err).status === 412 && attempt < MAX_CONFLICTS) continue; // changed meanwhile
        throw azureDnsFailure(err, `Azure DNS zone '${zone}': ${action} TXT ${name}`);
      }
    }
  }

  const same = (v: string[], value: string) => v.join('') === value;
  return {
    present: (fqdn, value) =>
      update('add a value to', fqdn, (values) =>
        values.some((v) => same(v, value)) ? null : [...values, [value]],
      ),
    cleanup: (fqdn, value) =>
      update('remove a value from', fqdn, (values) => {
        const kept = values.filter((v) => !same(v, value));
        return kept.length === values.length ? null : kept;
      }),
    async authoritativeNameservers() {
      try {
        return (await client.zones.get(resourceGroup, zone)).nameServers ?? [];
      } catch (err) {
        throw azureDnsFailure(err, `Azure DNS zone '${zone}': read its name servers`);
      }
    },
  };
}

function azureDnsFailure(err: unknown, where: string): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const se = serviceError(err);
  const details = [{ status: se.status ?? null, code: se.code }];
  const fail = (type: string, message: string, nonRetryable: boolean) =>
    ApplicationFailure.create({
      type,
      message,
      nonRetryable,
      details,
      ...(!nonRetryable && se.retryAfterMs !== undefined ? { nextRetryDelay: se.retryAfterMs } : {}),
    });
  switch (se.status) {
    case 401:
      return fail(
        'AzureDnsUnauthorized',
        `${where} was rejected as unauthenticated (401 ${se.code}): ${se.message}`,
        true,
      );
    case 403:
      return fail(
        'AzureDnsForbidden',
        `${where} was refused (403 ${se.code}): the identity needs "DNS Zone Contributor" on the zone. Service said: ${se.message}`,
        true,
      );
    case 404:
      return fail(
        'AzureDnsZoneNotFound',
        `${where}: not found (404 ${se.code}); check subscription, resource group and zone name. Service said: ${se.message}`,
        true,
      );
    case 429:
      return fail('AzureDnsThrottled', `${where} was throttled (429): ${se.message}`, false);
  }
  if (
    se.status !== undefined &&
    se.status >= 400 &&
    se.status < 500 &&
    se.status !== 408 &&
    se.status !== 412
  ) {
    return fail('AzureDnsBadRequest', `${where} was refused (${se.status} ${se.code}): ${se.message}`, true);
  }
  return fail(
    'AzureDnsUnavailable',
    `${where} failed (${se.status ?? 'no answer'} ${se.code}): ${se.message}`,
    false,
  );
}
