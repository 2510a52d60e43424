/**
 * A FAKE of Azure Resource Manager's DNS API (Microsoft.Network/dnsZones, api-version 2018-05-01) for tests:
 * ours, in-process, because no Azure DNS emulator exists. It follows the documented wire format closely
 * enough for the real `@azure/arm-dns` client: record sets at
 * `/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/dnsZones/{zone}/{type}/{name}` with
 * `properties.TTL/metadata/TXTRecords/fqdn/provisioningState`, ETags with If-Match / If-None-Match (412
 * PreconditionFailed), PUT 201 on create and 200 on update, DELETE 200 or 204 when absent, ARM's CloudError
 * bodies, bearer tokens for https://management.azure.com checked against a JWKS, RBAC actions that a test
 * can deny (403 AuthorizationFailed), and injected throttling (429 with Retry-After).
 * Error bodies as Azure sends them (recorded: net/sdk/dns/Azure.ResourceManager.Dns/tests/SessionRecords/RecordTest/
 * TxtRecordOperationTest.json in Azure/azure-sdk-assets): the DNS provider's own errors (record set 404 `NotFound`,
 * 412 `PreconditionFailed`) come bare, `{ code, message }`; ARM's front door (401, 403, 429, api-version, a missing
 * zone) wraps them in `{ error: { code, message } }`. `errorBodies: 'wrapped'` wraps every error, so both shapes
 * reach the adapter. DELETE answers 200 with an empty body, like the recording.
 * Not modelled: other record types' validation, zone CRUD, list paging, private zones.
 */
import crypto from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import { freePort } from '../support/proc';
import { createTokenValidator } from './keyvault/auth';
import type { Jwks } from './keyvault/entra';

export const ARM_SCOPE = 'https://management.azure.com/.default';
const API_VERSION = '2018-05-01';

export interface ArmDnsZone {
  subscriptionId: string;
  resourceGroup: string;
  zone: string;
  nameServers?: string[];
}

export interface ArmDnsServerOptions {
  jwks: Jwks;
  tls: { certPem: string; keyPem: string };
  zones: ArmDnsZone[];
  /** 'as-azure' (default): the DNS provider's errors bare, ARM's wrapped; 'wrapped': every error wrapped. */
  errorBodies?: 'as-azure' | 'wrapped';
}

export interface StoredRecordSet {
  etag: string;
  ttl: number;
  metadata?: Record<string, string>;
  /** TXT values, each a list of strings (a TXT record's character strings). */
  txt: string[][];
}

export interface ArmRequest {
  method: string;
  path: string;
  status: number;
  ifMatch?: string;
  ifNoneMatch?: string;
}

export interface ArmDnsServer {
  url: string;
  requests: ArmRequest[];
  /** The record set as stored, or undefined. */
  recordSet(zone: string, type: string, name: string): StoredRecordSet | undefined;
  /** Puts a record set as someone else would (another tool, another order). */
  seed(zone: string, type: string, name: string, set: Omit<StoredRecordSet, 'etag'>): void;
  /** The next `count` requests matching `match` ("METHOD /path" substring) answer 429 with Retry-After. */
  throttle(opts: { count: number; retryAfterSeconds: number; match?: string }): void;
  /** Runs `fn` once, just before the next PUT or DELETE is handled: a concurrent change by someone else. */
  beforeNextWrite(fn: () => void): void;
  /** Switches the shape of the DNS provider's error bodies (see ArmDnsServerOptions.errorBodies). */
  setErrorBodies(shape: 'as-azure' | 'wrapped'): void;
  /** RBAC: refuse this action (e.g. 'Microsoft.Network/dnsZones/TXT/write') with 403. */
  deny(action: string): void;
  stop(): Promise<void>;
}

const ZONE_PATH =
  /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Network\/dnsZones\/([^/]+)(?:\/([A-Za-z]+)\/([^/]+))?$/i;

export async function startArmDnsServer(opts: ArmDnsServerOptions): Promise<ArmDnsServer> {
  const validate = createTokenValidator({ jwks: opts.jwks, audiences: ['https://management.azure.com'] });
  const sets = new Map<string, StoredRecordSet>();
  const requests: ArmRequest[] = [];
  const throttles: { count: number; retryAfterSeconds: number; match?: string }[] = [];
  const denied = new Set<string>();
  let beforeWrite: (() => void) | undefined;
  const key = (zone: string, type: string, name: string) => `${zone}/${type}/${name}`.toLowerCase();
  let errorBodies = opts.errorBodies ?? 'as-azure';
  /** An error of the DNS provider itself (not of ARM's front door): bare unless every error is wrapped. */
  const dnsError = (code: string, message: string) =>
    errorBodies === 'wrapped' ? cloudError(code, message) : { code, message };
  const newEtag = () => crypto.randomUUID();

  function handle(
    req: IncomingMessage,
    body: string,
  ): { status: number; json?: unknown; headers?: Record<string, string> } {
    const url = new URL(req.url ?? '/', 'https://x');
    const method = req.method ?? 'GET';
    const line = `${method} ${url.pathname}`;
    const t = throttles.find((x) => x.count > 0 && (!x.match || line.includes(x.match)));
    if (t) {
      t.count--;
      return {
        status: 429,
        headers: { 'retry-after': String(t.retryAfterSeconds) },
        json: cloudError(
          'TooManyRequests',
          'The request is being throttled; retry after the interval in Retry-After.',
        ),
      };
    }
    const auth = validate(req.headers.authorization);
    if (!auth.ok) {
      return {
        status: 401,
        headers: {
          'www-authenticate':
            'Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token", error_description="The access token is invalid."',
        },
        json: cloudError('InvalidAuthenticationToken', auth.message),
      };
    }
    if (url.searchParams.get('api-version') !== API_VERSION) {
      return {
        status: 400,
        json: cloudError(
          'InvalidApiVersionParameter',
          `The api-version '${url.searchParams.get('api-version')}' is invalid. This fake supports '${API_VERSION}'.`,
        ),
      };
    }
    const m = ZONE_PATH.exec(decodeURIComponent(url.pathname));
    if (!m) return { status: 404, json: cloudError('InvalidResourceType', `No route for ${line}.`) };
    const [, sub = '', rg = '', zoneName = '', type, name] = m;
    const zone = opts.zones.find(
      (z) =>
        z.subscriptionId.toLowerCase() === sub.toLowerCase() &&
        z.resourceGroup.toLowerCase() === rg.toLowerCase() &&
        z.zone.toLowerCase() === zoneName.toLowerCase(),
    );
    const scope = `/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.Network/dnszones/${zoneName}`;
    const action = `Microsoft.Network/dnsZones${type ? `/${type.toUpperCase()}` : ''}/${method === 'GET' ? 'read' : method === 'DELETE' ? 'delete' : 'write'}`;
    if (denied.has(action)) {
      return {
        status: 403,
        json: cloudError(
          'AuthorizationFailed',
          `The client '${auth.caller.appId ?? 'app'}' with object id '${auth.caller.objectId}' does not have authorization to perform action '${action}' over scope '${scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
        ),
      };
    }
    if (!type || !name) {
      if (method !== 'GET' || !zone) return notFoundZone(zoneName);
      return { status: 200, json: zoneJson(zone, scope) };
    }
    if (!zone) return notFoundZone(zoneName);
    const k = key(zoneName, type, name);
    if (method === 'PUT' || method === 'DELETE') {
      const fn = beforeWrite;
      beforeWrite = undefined;
      fn?.();
    }
    const current = sets.get(k);
    const ifMatch = req.headers['if-match'] as string | undefined;
    const ifNoneMatch = req.headers['if-none-match'] as string | undefined;
    const precondition = () =>
      (ifMatch !== undefined && ifMatch !== '*' && ifMatch !== current?.etag) ||
      (ifMatch === '*' && !current) ||
      (ifNoneMatch === '*' && !!current);
    const preconditionFailed = () => ({
      status: 412,
      json: dnsError(
        'PreconditionFailed',
        `The condition '${ifMatch ?? ifNoneMatch}' in the ${ifMatch !== undefined ? 'If-Match' : 'If-None-Match'} header was not satisfied. The current was '${current?.etag ?? 'n/a'}'.`,
      ),
    });
    if (method === 'GET') {
      if (!current) {
        return {
          status: 404,
          json: dnsError(
            'NotFound',
            `The resource record '${name}' does not exist in resource group '${rg}' of subscription '${sub}'.`,
          ),
        };
      }
      return { status: 200, json: recordSetJson(scope, zoneName, type, name, current) };
    }
    if (method === 'DELETE') {
      if (precondition() && current) return preconditionFailed();
      if (!current) return { status: 204 };
      sets.delete(k);
      return { status: 200 };
    }
    if (method === 'PUT') {
      if (precondition()) return preconditionFailed();
      let parsed: {
        properties?: { TTL?: unknown; metadata?: Record<string, string>; TXTRecords?: { value?: unknown }[] };
      };
      try {
        parsed = JSON.parse(body);
      } catch {
        return {
          status: 400,
          json: cloudError('InvalidRequestContent', 'The request content is not valid JSON.'),
        };
      }
      const p = parsed.properties ?? {};
      const txt = (p.TXTRecords ?? []).map((r) => r.value);
      if (
        type.toUpperCase() !== 'TXT' ||
        txt.some((v) => !Array.isArray(v) || v.some((s) => typeof s !== 'string'))
      ) {
        return {
          status: 400,
          json: cloudError(
            'BadRequest',
            'This fake stores TXT record sets only, with properties.TXTRecords[].value string arrays.',
          ),
        };
      }
      if (typeof p.TTL !== 'number') {
        return {
          status: 400,
          json: cloudError('BadRequest', 'The TTL property is required (properties.TTL).'),
        };
      }
      const next: StoredRecordSet = {
        etag: newEtag(),
        ttl: p.TTL,
        metadata: p.metadata,
        txt: txt as string[][],
      };
      sets.set(k, next);
      return { status: current ? 200 : 201, json: recordSetJson(scope, zoneName, type, name, next) };
    }
    return { status: 405, json: cloudError('MethodNotAllowed', `${method} is not supported here.`) };
  }

  const server = https.createServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const out = handle(req, body);
      requests.push({
        method: req.method ?? '',
        path: decodeURIComponent(new URL(req.url ?? '/', 'https://x').pathname),
        status: out.status,
        ...(req.headers['if-match'] ? { ifMatch: String(req.headers['if-match']) } : {}),
        ...(req.headers['if-none-match'] ? { ifNoneMatch: String(req.headers['if-none-match']) } : {}),
      });
      send(res, out);
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));

  return {
    url: `https://127.0.0.1:${port}`,
    requests,
    recordSet: (zone, type, name) => sets.get(key(zone, type, name)),
    seed: (zone, type, name, set) => sets.set(key(zone, type, name), { ...set, etag: newEtag() }),
    throttle: (t) => throttles.push({ ...t }),
    beforeNextWrite: (fn) => (beforeWrite = fn),
    deny: (action) => denied.add(action),
    setErrorBodies: (shape) => void (errorBodies = shape),
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function send(
  res: ServerResponse,
  out: { status: number; json?: unknown; headers?: Record<string, string> },
): void {
  const headers: Record<string, string> = {
    'x-ms-request-id': crypto.randomUUID(),
    ...out.headers,
  };
  if (out.json === undefined) {
    res.writeHead(out.status, headers).end();
    return;
  }
  const text = JSON.stringify(out.json);
  res.writeHead(out.status, { ...headers, 'content-type': 'application/json; charset=utf-8' }).end(text);
}

function cloudError(code: string, message: string) {
  return { error: { code, message } };
}

function notFoundZone(zone: string) {
  return {
    status: 404,
    json: cloudError(
      'ParentResourceNotFound',
      `Can not perform requested operation on nested resource. Parent resource '${zone}' not found.`,
    ),
  };
}

function zoneJson(z: ArmDnsZone, scope: string) {
  return {
    id: scope,
    name: z.zone,
    type: 'Microsoft.Network/dnszones',
    location: 'global',
    etag: '00000000-0000-0000-0000-000000000000',
    properties: {
      maxNumberOfRecordSets: 10000,
      maxNumberOfRecordsPerRecordSet: 20,
      numberOfRecordSets: 2,
      nameServers: z.nameServers ?? ['ns1-01.azure-dns.com.', 'ns2-01.azure-dns.net.'],
      zoneType: 'Public',
    },
  };
}

function recordSetJson(scope: string, zone: string, type: string, name: string, s: StoredRecordSet) {
  return {
    id: `${scope}/${type.toUpperCase()}/${name}`,
    name,
    type: `Microsoft.Network/dnszones/${type.toUpperCase()}`,
    etag: s.etag,
    properties: {
      metadata: s.metadata ?? {},
      TTL: s.ttl,
      fqdn: `${name === '@' ? '' : `${name}.`}${zone}.`,
      provisioningState: 'Succeeded',
      targetResource: {},
      TXTRecords: s.txt.map((value) => ({ value })),
    },
  };
}
