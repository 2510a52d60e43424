/**
 * Event Grid deliveries of the test Key Vault: `Microsoft.KeyVault.CertificateNewVersionCreated` in the Event
 * Grid schema (an array of one event; data keys Id, VaultName, ObjectType, ObjectName, Version, NBF, EXP, as in
 * test/fixtures/eventgrid/), POSTed to one configured webhook with Event Grid's delivery headers. A failed
 * delivery is retried a few times (Event Grid retries for a day; tests need seconds). Deliveries are recorded
 * for tests to read; nothing is sent when no webhook is configured.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';

export interface EventGridTarget {
  /** The subscription's endpoint, e.g. http://127.0.0.1:PORT/eventgrid (the key goes in `sasKey`). */
  url: string;
  /** Sent as `aeg-sas-key` (Event Grid's shared-key header). */
  sasKey?: string;
  /** More headers for every delivery (e.g. a delivery property such as x-certflow-key). */
  headers?: Record<string, string>;
  /** Trust for an https endpoint signed by a test CA (PEM). */
  ca?: string;
  /** Attempts per event; default 3, one second apart. */
  attempts?: number;
}

export interface Delivery {
  eventId: string;
  certificate: string;
  version: string;
  /** HTTP status of the last attempt, or 0 when it could not connect. */
  status: number;
  attempts: number;
}

export interface NewVersion {
  vaultUrl: string;
  vaultName: string;
  name: string;
  version: string;
  nbf: number;
  exp: number;
}

export function createEventPublisher(target: EventGridTarget | undefined) {
  const deliveries: Delivery[] = [];

  async function post(body: string, attempt: number): Promise<number> {
    const url = new URL(target?.url ?? '');
    const client = url.protocol === 'https:' ? https : http;
    return new Promise((resolve) => {
      const req = client.request(
        url,
        {
          method: 'POST',
          ...(target?.ca ? { ca: target.ca } : {}),
          headers: {
            'Content-Type': 'application/json; charset=utf-8',
            'aeg-event-type': 'Notification',
            'aeg-subscription-name': 'CERTFLOW-TEST',
            'aeg-data-version': '1',
            'aeg-metadata-version': '1',
            'aeg-delivery-count': String(attempt),
            ...(target?.sasKey ? { 'aeg-sas-key': target.sasKey } : {}),
            ...target?.headers,
          },
          timeout: 10_000,
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(0));
      req.end(body);
    });
  }

  return {
    deliveries,
    newVersion(e: NewVersion): void {
      if (!target) return;
      const id = crypto.randomUUID();
      const body = JSON.stringify([
        {
          id,
          topic: `/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/certflow-test/providers/Microsoft.KeyVault/vaults/${e.vaultName}`,
          subject: e.name,
          eventType: 'Microsoft.KeyVault.CertificateNewVersionCreated',
          eventTime: new Date().toISOString(),
          data: {
            Id: `${e.vaultUrl}/certificates/${e.name}/${e.version}`,
            VaultName: e.vaultName,
            ObjectType: 'Certificate',
            ObjectName: e.name,
            Version: e.version,
            NBF: e.nbf,
            EXP: e.exp,
          },
          dataVersion: '1',
          metadataVersion: '1',
        },
      ]);
      const record: Delivery = {
        eventId: id,
        certificate: e.name,
        version: e.version,
        status: 0,
        attempts: 0,
      };
      deliveries.push(record);
      void (async () => {
        const attempts = target.attempts ?? 3;
        for (let i = 0; i < attempts; i++) {
          if (i > 0) await new Promise((r) => setTimeout(r, 1000).unref());
          record.attempts = i + 1;
          record.status = await post(body, i);
          if (record.status >= 200 && record.status < 300) return;
        }
      })();
    },
  };
}
