/**
 * Event Grid deliveries, parsed: the Event Grid schema (an array of events, or the subscription validation
 * event) and the CloudEvents 1.0 schema (one event, or a batch array). Pure; a malformed delivery is an error
 * naming the field. Key Vault's `data` keys are matched ignoring case and surrounding spaces (the published
 * samples carry `"ObjectName "` and `" <version>"`).
 */
import { parseCertificateId } from '../activities/ids';

export const VALIDATION_EVENT = 'Microsoft.EventGrid.SubscriptionValidationEvent';
export const KV = {
  nearExpiry: 'Microsoft.KeyVault.CertificateNearExpiry',
  newVersion: 'Microsoft.KeyVault.CertificateNewVersionCreated',
  expired: 'Microsoft.KeyVault.CertificateExpired',
} as const;

export interface DeliveredEvent {
  id: string;
  /** Event Grid `topic` or CloudEvents `source`. */
  source: string;
  type: string;
  subject: string | null;
  data: Record<string, unknown>;
}

export type Delivery =
  | { kind: 'validation'; code: string }
  | { kind: 'events'; schema: 'eventgrid' | 'cloudevents'; events: DeliveredEvent[] };

export class MalformedDelivery extends Error {}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export function parseDelivery(body: unknown): Delivery {
  const items = Array.isArray(body) ? body : [body];
  if (items.length === 0) throw new MalformedDelivery('body: expected at least one event');
  const cloud = isObject(items[0]) && 'specversion' in items[0];
  const events = items.map((e, i) => (cloud ? cloudEvent(e, i) : eventGridEvent(e, i)));
  const validation = events.find((e) => e.type === VALIDATION_EVENT);
  if (validation) {
    const code = validation.data.validationCode;
    if (typeof code !== 'string' || !code)
      throw new MalformedDelivery(`[${events.indexOf(validation)}].data.validationCode: expected a string`);
    return { kind: 'validation', code };
  }
  return { kind: 'events', schema: cloud ? 'cloudevents' : 'eventgrid', events };
}

function field(e: Record<string, unknown>, name: string, at: string, optional = false): string | null {
  const v = e[name];
  if (typeof v === 'string' && v) return v;
  if (optional && (v === undefined || v === null || v === '')) return null;
  throw new MalformedDelivery(`${at}.${name}: expected a non-empty string`);
}

function dataOf(e: Record<string, unknown>, at: string): Record<string, unknown> {
  if (e.data === undefined || e.data === null) return {};
  if (!isObject(e.data)) throw new MalformedDelivery(`${at}.data: expected an object`);
  return e.data;
}

function eventGridEvent(e: unknown, i: number): DeliveredEvent {
  const at = `[${i}]`;
  if (!isObject(e)) throw new MalformedDelivery(`${at}: expected an Event Grid event (an object)`);
  return {
    id: field(e, 'id', at)!,
    source: field(e, 'topic', at, true) ?? '',
    type: field(e, 'eventType', at)!,
    subject: field(e, 'subject', at, true) ?? null,
    data: dataOf(e, at),
  };
}

function cloudEvent(e: unknown, i: number): DeliveredEvent {
  const at = `[${i}]`;
  if (!isObject(e)) throw new MalformedDelivery(`${at}: expected a CloudEvent (an object)`);
  if (e.specversion !== '1.0')
    throw new MalformedDelivery(`${at}.specversion: expected "1.0", got ${JSON.stringify(e.specversion)}`);
  return {
    id: field(e, 'id', at)!,
    source: field(e, 'source', at)!,
    type: field(e, 'type', at)!,
    subject: field(e, 'subject', at, true) ?? null,
    data: dataOf(e, at),
  };
}

/** A `data` property by name, ignoring case and surrounding spaces in keys and string values. */
export function dataValue(data: Record<string, unknown>, name: string): string | null {
  const want = name.toLowerCase();
  for (const [k, v] of Object.entries(data)) {
    if (k.trim().toLowerCase() !== want) continue;
    if (typeof v === 'string') return v.trim() || null;
    if (typeof v === 'number') return String(v);
  }
  return null;
}

export interface CertificateRef {
  /** Our vault name (after vaultNameFromUrl), the certificate name, and `<vault>/<name>`. */
  vault: string;
  name: string;
  certificateId: string;
  vaultUrl: string;
  version: string | null;
}

/**
 * The certificate an event is about: `data.VaultName` + `data.ObjectName`; `vaultNameFromUrl` maps the vault's
 * URL to the configured vault name when they differ (undefined: not one of ours → null).
 */
export function certificateRefOf(
  e: DeliveredEvent,
  at: string,
  vaultNameFromUrl?: (vaultUrl: string) => string | undefined,
): CertificateRef | null {
  const azureName = dataValue(e.data, 'VaultName');
  const name = dataValue(e.data, 'ObjectName');
  if (!name) throw new MalformedDelivery(`${at}.data.ObjectName: expected the certificate name`);
  const idUrl = dataValue(e.data, 'Id');
  let vaultUrl = azureName ? `https://${azureName}.vault.azure.net` : '';
  try {
    if (idUrl) vaultUrl = new URL(idUrl).origin;
  } catch {
    // keep the URL made from VaultName
  }
  if (!vaultUrl) throw new MalformedDelivery(`${at}.data.VaultName: expected the key vault name`);
  const vault = vaultNameFromUrl ? vaultNameFromUrl(vaultUrl) : azureName;
  if (!vault) return null;
  const certificateId = `${vault}/${name}`;
  try {
    parseCertificateId(certificateId);
  } catch (err) {
    throw new MalformedDelivery(`${at}.data: ${(err as Error).message}`);
  }
  return { vault, name, certificateId, vaultUrl, version: dataValue(e.data, 'Version') };
}
