/**
 * Key Vault's JSON wire format (certificates, api-version 7.x / 2025-07-01) and its error shape.
 * Field names are the service's own (snake_case in policies), so requests and responses pass through as-is.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

export interface WirePolicy {
  id?: string;
  key_props?: { exportable?: boolean; kty?: string; key_size?: number; reuse_key?: boolean; crv?: string };
  secret_props?: { contentType?: string };
  x509_props?: {
    subject?: string;
    sans?: {
      dns_names?: string[];
      emails?: string[];
      upns?: string[];
      uris?: string[];
      ipAddresses?: string[];
    };
    ekus?: string[];
    key_usage?: string[];
    validity_months?: number;
    basic_constraints?: { ca?: boolean };
  };
  lifetime_actions?: {
    trigger?: { lifetime_percentage?: number; days_before_expiry?: number };
    action?: { action_type?: string };
  }[];
  issuer?: { name?: string; cty?: string; cert_transparency?: boolean };
  attributes?: { enabled?: boolean; created?: number; updated?: number };
}

export interface WireAttributes {
  enabled?: boolean;
  nbf?: number;
  exp?: number;
}

/** An error the service answers with: `{"error":{"code","message"}}` and an HTTP status. */
export class KvError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly innerCode?: string,
    /** Response headers that go with it (Retry-After of a 429). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  body(): unknown {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.innerCode ? { innererror: { code: this.innerCode } } : {}),
      },
    };
  }
}

export const badParameter = (message: string): KvError => new KvError(400, 'BadParameter', message);

export const certificateNotFound = (name: string): KvError =>
  new KvError(
    404,
    'CertificateNotFound',
    `A certificate with (name/id) ${name} was not found in this key vault. If you recently deleted this certificate you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
  );

export const pendingNotFound = (name: string): KvError =>
  new KvError(404, 'PendingCertificateNotFound', `Pending Certificate not found: ${name}`);

/** Who signs a policy's certificates: the Unknown issuer (a CA outside the vault: CSR + merge), Self, or an
 * integrated CA (Key Vault's partners; here a test CA the server owns). */
export type Provider = 'Unknown' | 'Self' | 'DigiCert' | 'GlobalSign';

/** The issuers a vault knows, by lowercased name: the spelling policies use and the provider behind it. */
export type IssuerTable = Map<string, { name: string; provider: Provider }>;

/**
 * `Self` and `Unknown` are built in; an integrated CA is an issuer object configured in the vault under a name
 * of the operator's choosing (here `DigiCert` and `GlobalSign` by default, more through `extra`).
 */
export function issuerTable(extra: Record<string, 'DigiCert' | 'GlobalSign'> = {}): IssuerTable {
  const entries: [string, Provider][] = [
    ['Self', 'Self'],
    ['Unknown', 'Unknown'],
    ['DigiCert', 'DigiCert'],
    ['GlobalSign', 'GlobalSign'],
    ...Object.entries(extra),
  ];
  return new Map(entries.map(([name, provider]) => [name.toLowerCase(), { name, provider }]));
}

/**
 * An X.500 name the way Key Vault reads a policy's subject: attribute types in any case ("cn=MyCert" is what the
 * SDK's own tests send). @peculiar/x509 only knows upper-case short names, so they are upper-cased for parsing;
 * the policy keeps the subject as it was given.
 */
export function parseSubject(subject: string): x509.Name {
  return new x509.Name(
    subject.replace(
      /(^|[,+]\s*)([A-Za-z][A-Za-z0-9-]*)\s*=/g,
      (_m, sep: string, type: string) => `${sep}${type.toUpperCase()}=`,
    ),
  );
}
const KEY_TYPES = new Set(['RSA', 'RSA-HSM', 'EC', 'EC-HSM']);
const RSA_SIZES = new Set([2048, 3072, 4096]);
const CURVES = new Set(['P-256', 'P-384', 'P-521']);
const CONTENT_TYPES = new Set(['application/x-pkcs12', 'application/x-pem-file']);

/** Fills Key Vault's defaults and refuses what the service refuses, naming the field. */
export function normalizePolicy(
  input: WirePolicy | undefined,
  now: number,
  issuers: IssuerTable = issuerTable(),
): WirePolicy {
  if (!input) throw badParameter('Property policy is required for a new certificate.');
  const known = issuers.get((input.issuer?.name ?? '').toLowerCase());
  if (!known)
    throw badParameter(
      `Issuer '${input.issuer?.name ?? ''}' is not configured in this vault; this test server knows ${[...issuers.values()].map((i) => `'${i.name}'`).join(', ')} (policy.issuer.name).`,
    );
  const issuer = known.name;
  const unknownIssuer = known.provider === 'Unknown';

  const kty = input.key_props?.kty ?? 'RSA';
  if (!KEY_TYPES.has(kty))
    throw badParameter(
      `Key type '${kty}' is not supported for certificates (policy.key_props.kty: RSA, RSA-HSM, EC, EC-HSM).`,
    );
  const isEc = kty.startsWith('EC');
  const hsm = kty.endsWith('-HSM');
  const keySize = isEc ? undefined : (input.key_props?.key_size ?? 2048);
  if (keySize !== undefined && !RSA_SIZES.has(keySize))
    throw badParameter(
      `RSA key size ${keySize} is not supported (policy.key_props.key_size: 2048, 3072 or 4096).`,
    );
  const crv = isEc ? (input.key_props?.crv ?? 'P-256') : undefined;
  if (crv !== undefined && !CURVES.has(crv))
    throw badParameter(
      `Curve '${crv}' is not supported by this test server (policy.key_props.crv: P-256, P-384, P-521).`,
    );
  const exportable = input.key_props?.exportable ?? !hsm;
  if (hsm && exportable)
    throw badParameter(`Keys of type ${kty} cannot be exportable (policy.key_props.exportable).`);

  const contentType = input.secret_props?.contentType ?? 'application/x-pkcs12';
  if (!CONTENT_TYPES.has(contentType))
    throw badParameter(
      `Content type '${contentType}' is not supported (policy.secret_props.contentType: application/x-pkcs12 or application/x-pem-file).`,
    );

  const props = input.x509_props ?? {};
  const subject = props.subject?.trim();
  if (!subject)
    throw badParameter('Property policy.x509_props.subject is required (e.g. "CN=app.example.com").');
  try {
    parseSubject(subject);
  } catch {
    throw badParameter(`Subject '${subject}' is not a valid X.500 name (policy.x509_props.subject).`);
  }
  const validity = props.validity_months ?? 12;
  if (!Number.isInteger(validity) || validity < 1 || validity > 120)
    throw badParameter(
      `validity_months must be between 1 and 120, got ${validity} (policy.x509_props.validity_months).`,
    );

  const defaultAction = unknownIssuer ? 'EmailContacts' : 'AutoRenew';
  const actions = input.lifetime_actions?.length
    ? input.lifetime_actions
    : [{ trigger: { lifetime_percentage: 80 }, action: { action_type: defaultAction } }];
  for (const a of actions) {
    const { lifetime_percentage: pct, days_before_expiry: days } = a.trigger ?? {};
    if ((pct === undefined) === (days === undefined))
      throw badParameter(
        'A lifetime action needs exactly one of trigger.lifetime_percentage or trigger.days_before_expiry.',
      );
    if (pct !== undefined && (pct < 1 || pct > 99))
      throw badParameter(`lifetime_percentage must be 1-99, got ${pct}.`);
    if (days !== undefined && (days < 1 || days >= validity * 31))
      throw badParameter(`days_before_expiry must be at least 1 and less than the validity, got ${days}.`);
    const type = a.action?.action_type ?? '';
    if (!['EmailContacts', 'AutoRenew'].includes(type))
      throw badParameter(`Lifetime action type '${type}' is not supported (EmailContacts or AutoRenew).`);
    if (type === 'AutoRenew' && unknownIssuer)
      throw badParameter(
        "Lifetime action 'AutoRenew' is not allowed for a certificate from the 'Unknown' issuer; use 'EmailContacts'.",
      );
  }

  const clean = (xs?: string[]) => (xs?.length ? [...xs] : undefined);
  return {
    key_props: {
      exportable,
      kty,
      ...(keySize ? { key_size: keySize } : {}),
      ...(crv ? { crv } : {}),
      reuse_key: input.key_props?.reuse_key ?? false,
    },
    secret_props: { contentType },
    x509_props: {
      subject,
      sans: {
        ...(clean(props.sans?.dns_names) ? { dns_names: clean(props.sans?.dns_names) } : {}),
        ...(clean(props.sans?.emails) ? { emails: clean(props.sans?.emails) } : {}),
        ...(clean(props.sans?.upns) ? { upns: clean(props.sans?.upns) } : {}),
        ...(clean(props.sans?.uris) ? { uris: clean(props.sans?.uris) } : {}),
        ...(clean(props.sans?.ipAddresses) ? { ipAddresses: clean(props.sans?.ipAddresses) } : {}),
      },
      ekus: props.ekus ?? ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'],
      key_usage: props.key_usage ?? (isEc ? ['digitalSignature'] : ['digitalSignature', 'keyEncipherment']),
      validity_months: validity,
      // Key Vault echoes it on every policy (recordings: certificates_client__*)
      basic_constraints: { ca: false },
    },
    lifetime_actions: actions.map((a) => ({
      trigger: { ...a.trigger },
      action: { action_type: a.action?.action_type },
    })),
    issuer: {
      name: issuer,
      ...(input.issuer?.cty ? { cty: input.issuer.cty } : {}),
      ...(typeof input.issuer?.cert_transparency === 'boolean'
        ? { cert_transparency: input.issuer.cert_transparency }
        : {}),
    },
    attributes: { enabled: input.attributes?.enabled ?? true, created: now, updated: now },
  };
}

/** Names allowed for certificates and secrets. */
export function checkName(name: string): void {
  if (!/^[0-9a-zA-Z-]{1,127}$/.test(name))
    throw badParameter(`The name '${name}' is invalid: use 1-127 letters, digits and dashes.`);
}
