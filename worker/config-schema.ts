/**
 * The shape of Certflow's configuration (zod 4). Every leaf carries a message that says what is expected, so
 * that `config.ts` can print `vaults[1].url: expected an https URL like https://<name>.vault.azure.net`.
 * Secrets appear only as references ({ env } or { file }); an inline value is refused without being echoed.
 */
import { isIP, isIPv6 } from 'node:net';
import { z } from 'zod';
import { dnsGlobProblem } from '../activities/globs';
import { azureCredentialConfigSchema } from '../activities/vault/azure-cloud';
import { MAX_DRIFT_EVERY_MINUTES } from '../workflows/lifecycle/drift';
import { CERTIFICATE_MODES } from '../workflows/lifecycle/mode';
import { MAX_JITTER_MINUTES, MIN_LIFETIME_PERCENTAGE } from '../workflows/policy';
import { hostOfAddress, isLoopbackHost } from '../activities/loopback';
import { DEFAULT_MAX_CONCURRENT_ACTIVITIES } from './activity-slots';
import { changeControlSchema } from './change-control-config';
import { discoverySchema } from './discovery-config';

/** Lifecycles cached by default: an idle fleet of 10,000 stays small (bench/fleet.ts measures it). */
export const DEFAULT_MAX_CACHED_WORKFLOWS = 200;

/** A message for a missing or mistyped value: "missing: expected X" or "expected X". */
const expect = (what: string) => (iss: { input?: unknown }) =>
  iss.input === undefined ? `missing: expected ${what}` : `expected ${what}`;

const text = (what: string) => z.string({ error: expect(what) }).min(1, { error: `expected ${what}` });
const int = (what: string, min: number, max: number) =>
  z
    .number({ error: expect(`${what} (a whole number ${min}-${max})`) })
    .int({ error: `expected ${what} (a whole number ${min}-${max})` })
    .min(min, { error: `expected ${what} of at least ${min}` })
    .max(max, { error: `expected ${what} of at most ${max}` });
const positive = (what: string) =>
  z.number({ error: expect(`${what} (a number > 0)`) }).positive({ error: `expected ${what} > 0` });
const bool = (what: string) => z.boolean({ error: expect(`true or false (${what})`) });
const oneOf = <T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: expect(`one of ${values.map((v) => `"${v}"`).join(' | ')}`) });

function isUrl(v: string, protocols: string[]): boolean {
  try {
    const u = new URL(v);
    return protocols.includes(u.protocol) && u.hostname.length > 0;
  } catch {
    return false;
  }
}
const url = (example: string, protocols = ['https:']) => {
  const what = `an ${protocols.map((p) => p.replace(':', '')).join(' or ')} URL like ${example}`;
  return z.string({ error: expect(what) }).refine((v) => isUrl(v, protocols), { error: `expected ${what}` });
};

const HOST_NAME =
  /^(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
/** An IP address or a DNS host name (all-digit labels only as a valid IPv4 address). */
const isHost = (v: string) => isIP(v) !== 0 || (HOST_NAME.test(v) && !/^[\d.]+$/.test(v));
const isPort = (p: string | undefined) => p === undefined || (/^\d{1,5}$/.test(p) && +p >= 1 && +p <= 65535);
/** `host`, `host:port`, a bare IPv6 address or `[v6]:port`. */
function isHostPort(v: string): boolean {
  if (isIPv6(v)) return true;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(v);
  if (v6) return isIPv6(v6[1]!) && isPort(v6[2]);
  const m = /^([^:[\]]+)(?::([^:]*))?$/.exec(v);
  return !!m && isHost(m[1]!) && isPort(m[2]);
}
const address = z
  .string({ error: expect('a host name or IP address') })
  .refine(isHost, { error: 'expected a host name or IP address, like frontdoor.example.net or 10.0.0.4' });
const hostName = z
  .string({ error: expect('a host name') })
  .regex(HOST_NAME, { error: 'expected a host name like www.example.com (a wildcard has no name to probe)' });
const nameServer = z.string({ error: expect('a name server (host[:port])') }).refine(isHostPort, {
  error:
    'expected a name server: an IP address or host name, optionally with :port ([v6]:port for IPv6), like 1.1.1.1 or ns1-01.azure-dns.com:53',
});

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const guid = (what: string) =>
  z
    .string({ error: expect(`${what} (a GUID)`) })
    .regex(GUID, { error: `expected ${what} (a GUID like 00000000-0000-0000-0000-000000000000)` });

const EMAIL = /^[^\s@<>,;]+@[^\s@<>,;]+\.[^\s@<>,;]+$/;
const email = z
  .string({ error: expect('an e-mail address') })
  .regex(EMAIL, { error: 'expected an e-mail address' });
const NAME = /^[A-Za-z0-9][A-Za-z0-9-]{0,62}$/;
const name = (what: string) =>
  z.string({ error: expect(`${what} (letters, digits and dashes)`) }).regex(NAME, {
    error: `expected ${what}: 1-63 letters, digits and dashes, starting with a letter or digit`,
  });

const SECRET_REF =
  'a secret reference { "env": "VARIABLE" } or { "file": "/path/to/file" } (inline secrets are refused)';
/** Where a secret comes from; the value itself never appears in the configuration. */
export const secretRefSchema = z.union(
  [
    z.strictObject({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/) }),
    z.strictObject({ file: z.string().min(1) }),
  ],
  // never echo the input: it may be the secret itself
  {
    error: (iss) => (iss.input === undefined ? `missing: expected ${SECRET_REF}` : `expected ${SECRET_REF}`),
  },
);
export type SecretRef = z.infer<typeof secretRefSchema>;

// ---- hosts (SSH) -----------------------------------------------------------------------------------------

const HOST_KEY =
  /^(SHA256:[A-Za-z0-9+/]{43}|(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) +[A-Za-z0-9+/]+={0,3}( .*)?)$/;
const HOST_KEY_TEXT =
  'a pinned host key: its fingerprint "SHA256:..." as `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` prints it, ' +
  'or that .pub line itself ("ssh-ed25519 AAAA...")';

/** A server reached over SSH (docs/hosts.md). Its host key is pinned: an unknown or changed one is refused. */
export const sshHostSchema = z.strictObject({
  name: name('a host name for Certflow'),
  address,
  port: int('port', 1, 65535).default(22),
  user: text('the SSH user name'),
  /** OpenSSH or PEM private key (ed25519, ECDSA or RSA), by reference only. */
  privateKey: secretRefSchema,
  passphrase: secretRefSchema.optional(),
  hostKeys: z
    .array(
      z.string({ error: expect(HOST_KEY_TEXT) }).regex(HOST_KEY, { error: `expected ${HOST_KEY_TEXT}` }),
      {
        error: expect(`a list of pinned host keys (${HOST_KEY_TEXT})`),
      },
    )
    .min(1, {
      error: `missing: expected at least one pinned host key (an unknown host key is always refused): ${HOST_KEY_TEXT}`,
    }),
  tags: z.array(name('a tag'), { error: expect('a list of tags') }).optional(),
  connectTimeoutSeconds: int('connectTimeoutSeconds', 1, 300).default(10),
});

/** Which configured hosts a binding runs on: these names, every host with this tag, or both. */
export const hostSelectorSchema = z
  .strictObject({
    names: z
      .array(name('a configured host name'), { error: expect('a list of host names') })
      .min(1, { error: 'expected at least one host name' })
      .optional(),
    tag: name('a host tag').optional(),
  })
  .refine((s) => s.names !== undefined || s.tag !== undefined, {
    error: 'expected names (a list of configured hosts) or tag (every host with that tag), or both',
  });

const command = z.strictObject({
  command: text('a program to run (path or name on PATH)'),
  args: z.array(z.string({ error: expect('a string argument') })).default([]),
  timeoutMs: int('timeoutMs', 1, 3_600_000).optional(),
});

// ---- temporal ---------------------------------------------------------------------------------------------

const temporal = z
  .strictObject({
    address: text('host:port of the Temporal frontend, like 127.0.0.1:7233').default('127.0.0.1:7233'),
    namespace: text('a namespace name').default('default'),
    tls: z
      .strictObject({
        certFile: text('a path to the client certificate (PEM)').optional(),
        keyFile: text('a path to the client key (PEM)').optional(),
        caFile: text('a path to the server CA (PEM)').optional(),
        serverName: text('the TLS server name').optional(),
      })
      .refine((t) => !t.certFile === !t.keyFile, { error: 'expected certFile and keyFile together (mTLS)' })
      .optional(),
    apiKey: secretRefSchema.optional(),
    /** How long to keep trying to reach the server at start-up. */
    connectTimeoutSeconds: int('connectTimeoutSeconds', 1, 3600).default(60),
    /** Plaintext gRPC to an address that is not loopback, without TLS or an API key (a private network). */
    allowInsecure: bool('allow plaintext to a non-loopback address').optional(),
    /** Encrypt every payload Certflow stores in Temporal (AES-256-GCM); the first key seals, all open. */
    payloadEncryption: z
      .strictObject({
        keys: z
          .array(
            z.strictObject({
              id: z
                .string({ error: expect('a key id like "2025-06"') })
                .regex(/^[A-Za-z0-9._-]{1,64}$/, { error: 'expected a key id: 1-64 letters, digits, . _ -' }),
              key: secretRefSchema,
            }),
            { error: expect('a list of { id, key } (the first one encrypts)') },
          )
          .min(1, { error: 'expected at least one key (the first one encrypts)' }),
      })
      .optional(),
  })
  .refine((t) => !!t.tls || !!t.apiKey || !!t.allowInsecure || isLoopbackHost(hostOfAddress(t.address)), {
    path: ['address'],
    error:
      'expected a loopback address, or TLS (temporal.tls) or an API key: plaintext gRPC beyond this machine exposes every history and signal; set temporal.allowInsecure: true (CERTFLOW_TEMPORAL_ALLOW_INSECURE=true) to allow it on a network you trust',
  })
  .prefault({});

// ---- vaults -----------------------------------------------------------------------------------------------

/**
 * An Azure identity in the configuration: the adapter's own schema (activities/vault/azure-credential.ts, the one
 * source of the kinds and their fields), with the client secret as a secret reference and the cloud given beside
 * it (`cloud`), not inside.
 */
const [defaultKind, managedIdentity, clientSecret, clientCertificate, workloadIdentity] =
  azureCredentialConfigSchema.options;
const azureCredential = z.discriminatedUnion(
  'kind',
  [
    defaultKind.omit({ cloud: true }),
    managedIdentity.omit({ cloud: true }),
    clientSecret.omit({ cloud: true }).extend({ clientSecret: secretRefSchema }),
    clientCertificate.omit({ cloud: true }),
    workloadIdentity.omit({ cloud: true }),
  ],
  {
    error: expect(
      'a credential kind: "default" | "managed-identity" | "client-secret" | "client-certificate" | "workload-identity"',
    ),
  },
);
const cloud = oneOf(['public', 'china', 'usgov'] as const).default('public');
/** Azure Resource Manager access (DNS zones, App Service): an identity and its cloud. */
const armAccess = {
  credential: azureCredential.prefault({ kind: 'default' }),
  cloud,
};

const ARM_VAULT_ID =
  /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.KeyVault\/vaults\/[^/]+$/i;

/** At most `limit` operations in any `windowSeconds` (worker/quotas.ts turns it into a task-queue rate). */
const quota = (what: string) =>
  z.strictObject(
    { limit: int(`${what}.limit`, 2, 1_000_000), windowSeconds: positive(`${what}.windowSeconds`) },
    { error: expect(`${what} like { "limit": 20, "windowSeconds": 10 }`) },
  );

const vault = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('azure'),
    /**
     * Key creates (each renewal's new key and CSR) allowed per window; default Key Vault's 20 per 10 s, or 10 per
     * 10 s with `hsm`. Enforced across all workers on the vault's own task queue.
     */
    keyCreateQuota: quota('keyCreateQuota').optional(),
    /** The vault's certificates use HSM keys (RSA-HSM, EC-HSM): Key Vault's lower key-create quota. */
    hsm: bool('hsm').optional(),
    name: name('a vault name'),
    url: url('https://<name>.vault.azure.net'),
    ...armAccess,
    /** The vault's ARM id, which App Service needs to import its certificates. */
    resourceId: z
      .string({ error: expect("the vault's ARM id") })
      .regex(ARM_VAULT_ID, {
        error:
          "expected the vault's ARM id like /subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.KeyVault/vaults/<name>",
      })
      .optional(),
  }),
  z.strictObject({
    kind: z.literal('local'),
    name: name('a vault name'),
    /** Key creates allowed per window; none by default (the local vault has no quota). */
    keyCreateQuota: quota('keyCreateQuota').optional(),
    dir: text('a directory for the local vault'),
    encryptionKey: secretRefSchema,
  }),
]);

// ---- issuers ----------------------------------------------------------------------------------------------

const trustAnchorFiles = z.array(text('a path to a root certificate (PEM)')).optional();
const rateLimit = z.strictObject({ perSecond: positive('perSecond') }).optional();
/** DNS-name globs this issuer may be asked for (activities/globs.ts); any name when absent. */
const allowedNames = z
  .array(
    z.string({ error: expect('a DNS name glob like "*.example.com"') }).superRefine((v, ctx) => {
      const problem = dnsGlobProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', message: `${problem}, like "*.example.com"` });
    }),
    { error: expect('a list of DNS name globs like ["*.example.com"]') },
  )
  .min(1, { error: 'expected at least one DNS name glob (leave allowedNames out to allow any name)' })
  .optional();

const acmeDns = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('azure'),
    subscriptionId: guid('subscriptionId'),
    resourceGroup: text('a resource group name'),
    zone: text('a DNS zone name like example.com'),
    ...armAccess,
  }),
  z.strictObject({
    kind: z.literal('challtestsrv'),
    managementUrl: url('http://127.0.0.1:8055', ['http:', 'https:']),
  }),
]);

const propagation = z
  .strictObject({
    /** Wait until the TXT value is visible at the name servers; default: on with Azure DNS, else with resolvers. */
    check: bool('check that the TXT value is visible before validation').optional(),
    /** Default: the DNS provider's authoritative servers for the zone (Azure DNS knows them). */
    resolvers: z
      .array(nameServer, { error: expect('a list of name servers') })
      .min(1, { error: 'expected at least one name server' })
      .optional(),
    timeoutSeconds: int('timeoutSeconds', 1, 3600).optional(),
    intervalSeconds: int('intervalSeconds', 1, 300).optional(),
    /** A fixed wait after publishing (and after the check), for resolvers we cannot ask. */
    delaySeconds: int('delaySeconds', 0, 3600).optional(),
  })
  .refine(
    (p) =>
      p.check !== false ||
      (p.resolvers === undefined && p.timeoutSeconds === undefined && p.intervalSeconds === undefined),
    {
      error:
        'expected no resolvers, timeoutSeconds or intervalSeconds with check: false (they tune the check)',
    },
  );
type PropagationConfig = z.infer<typeof propagation>;

/** Whether the DNS-01 propagation check runs: Azure DNS knows its zone's name servers; other providers need resolvers. */
export function propagationCheckOn(dnsKind: 'azure' | 'challtestsrv', p: PropagationConfig = {}): boolean {
  return p.check ?? (dnsKind === 'azure' || p.resolvers !== undefined);
}

const issuer = z.discriminatedUnion('kind', [
  z
    .strictObject({
      kind: z.literal('acme'),
      name: name('an issuer name'),
      rateLimit,
      /**
       * The CA's new-order limit per account (Let's Encrypt: 300 per 3 h, `{ "limit": 300, "windowSeconds": 10800 }`):
       * the issuer's queue (issue and poll) is held within it; none by default.
       */
      orderLimit: quota('orderLimit').optional(),
      allowedNames,
      directoryUrl: url('https://acme-v02.api.letsencrypt.org/directory'),
      contactEmail: email,
      accountKeySecretName: name('a vault secret name for the ACME account key'),
      /** The configured vault that keeps the account key secret; default: the first vault. */
      accountKeyVault: name('a configured vault name').optional(),
      eab: z.strictObject({ kid: text('the EAB key id'), hmacKey: secretRefSchema }).optional(),
      dns: acmeDns.optional(),
      /** DNS-01 only: wait until the answers are visible before the CA validates. */
      propagation: propagation.optional(),
      http01: z
        .discriminatedUnion('kind', [
          z.strictObject({
            kind: z.literal('webroot'),
            /** One document root for every name, or one per host name. */
            webroot: z.union([text('a document root'), z.record(z.string(), text('a document root'))], {
              error: expect('a document root, or an object of host name to document root'),
            }),
          }),
          z.strictObject({
            kind: z.literal('server'),
            host: text('an address to listen on, like 0.0.0.0').default('0.0.0.0'),
            port: int('port', 1, 65535).default(80),
          }),
        ])
        .optional(),
      preferredChallenge: oneOf(['dns-01', 'http-01'] as const).optional(),
      /** ACME profile (draft-ietf-acme-profiles): Let's Encrypt `classic`, `tlsserver` (45 days), `shortlived` (160 h). */
      profile: z
        .string({ error: expect('a profile name the CA advertises, like classic, tlsserver or shortlived') })
        .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, {
          error: expect('a profile name the CA advertises, like classic, tlsserver or shortlived'),
        })
        .optional(),
      caBundleFile: text('a path to extra CA certificates (PEM) for the directory').optional(),
      trustAnchorFiles,
    })
    .refine((i) => i.dns !== undefined || i.http01 !== undefined, {
      error: 'expected dns (DNS-01) or http01 (HTTP-01), or both',
    })
    .refine((i) => i.dns !== undefined || i.propagation === undefined, {
      path: ['propagation'],
      error: 'expected dns (DNS-01) with propagation: it applies to DNS-01 answers only',
    })
    .refine(
      (i) => i.dns?.kind !== 'challtestsrv' || !i.propagation?.check || i.propagation.resolvers !== undefined,
      {
        path: ['propagation', 'resolvers'],
        error:
          'missing: expected the name servers to ask (challtestsrv does not know them), like 127.0.0.1:8053',
      },
    ),
  z.strictObject({
    kind: z.literal('dev-ca'),
    name: name('an issuer name'),
    rateLimit,
    allowedNames,
    dir: text('a directory for the dev CA'),
    validity: z
      .strictObject({ minutes: positive('minutes').optional(), days: positive('days').optional() })
      .refine((v) => v.minutes !== undefined || v.days !== undefined, { error: 'expected minutes or days' }),
    /** Seals the CA keys at rest (32 bytes, base64 or hex), like a local vault's key. */
    encryptionKey: secretRefSchema.optional(),
  }),
  z.strictObject({
    kind: z.literal('command'),
    name: name('an issuer name'),
    rateLimit,
    allowedNames,
    ...command.shape,
    env: z
      .record(
        z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'expected an environment variable name' }),
        z.union([z.string(), secretRefSchema], { error: expect(`a string or ${SECRET_REF}`) }),
      )
      .optional(),
    trustAnchorFiles,
  }),
]);

// ---- bindings ---------------------------------------------------------------------------------------------

export const selectorSchema = z
  .strictObject({
    ids: z.array(text('a certificate id "<vault>/<name>"')).optional(),
    pattern: text('a glob on certificate ids, like "kv-prod/*"').optional(),
    tag: z
      .strictObject({ name: text('a tag name'), value: z.string({ error: expect('a tag value') }) })
      .optional(),
  })
  .refine((s) => s.ids !== undefined || s.pattern !== undefined || s.tag !== undefined, {
    error: 'expected at least one of ids, pattern or tag',
  })
  // a tag alone would let anyone who may tag a certificate route it into this binding
  .refine((s) => s.tag === undefined || s.ids !== undefined || s.pattern !== undefined, {
    path: ['tag'],
    error:
      'expected ids or pattern together with tag: a tag only narrows the certificates that ids or pattern pick',
  });

const bindingBase = { name: name('a binding name'), certificates: selectorSchema };

/** Mode of a key file: octal, at most 0640 (the owner, and at most its group, may read it). */
const keyMode = z
  .string({ error: expect('an octal file mode like "0600"') })
  .regex(/^0?[0-7]{3}$/, { error: 'expected an octal file mode like "0600"' })
  .refine((m) => (parseInt(m, 8) & ~0o640) === 0, {
    error:
      'expected a mode of at most 0640 for a private key (no write by the group, nothing for others), like "0600" or "0640"',
  });

/** Where the file targets (`files`, `ssh-files`) write, and what they run; the same on the worker and on a host. */
const fileFields = {
  certPath: text('a path for the certificate chain (PEM)').optional(),
  keyPath: text('a path for the private key (PEM)').optional(),
  combinedPath: text('a path for chain and key in one file').optional(),
  /** The intermediates alone (Apache's SSLCertificateChainFile and the like). */
  chainPath: text('a path for the intermediate certificates (PEM)').optional(),
  /** A PKCS#12 of key and chain besides the PEM files, with a new password per generation in pkcs12PasswordPath. */
  pkcs12Path: text('a path for a PKCS#12 (.p12/.pfx) file').optional(),
  pkcs12PasswordPath: text(
    "a path for the PKCS#12 file's password (default <pkcs12Path>.password)",
  ).optional(),
  mode: keyMode.optional(),
  owner: z.strictObject({ uid: int('uid', 0, 2 ** 31), gid: int('gid', 0, 2 ** 31) }).optional(),
  validate: command,
  reload: command,
  keepPrevious: int('keepPrevious', 0, 10).optional(),
};
const filePaths = (b: { certPath?: string; keyPath?: string; combinedPath?: string }) =>
  b.combinedPath ? !b.certPath && !b.keyPath : !!b.certPath && !!b.keyPath;
const pkcs12Password = (b: { pkcs12Path?: string; pkcs12PasswordPath?: string }) =>
  b.pkcs12PasswordPath === undefined || b.pkcs12Path !== undefined;

/** Where an Azure consumer is looked for: subscriptions, optionally narrowed to resource groups. */
const armSubscriptions = z
  .array(
    z.strictObject({
      subscriptionId: guid('subscriptionId'),
      resourceGroups: z.array(text('a resource group name')).optional(),
    }),
  )
  .min(1, { error: 'expected at least one subscription' });

/** A live TLS check of each re-bound host name (SNI = the host name); none when absent. */
const armProbe = z.strictObject({
  port: int('port', 1, 65535).default(443),
  /** Connect here instead of resolving the host name (the app's inbound IP, a front door). */
  address: address.optional(),
  caFile: text('a path to the CA that signs the served chain (PEM)').optional(),
  settleSeconds: int('settleSeconds', 0, 600).default(30),
  /** Only these host names; default: every re-bound one. */
  hostNames: z
    .array(hostName, { error: expect('a list of host names') })
    .min(1, { error: 'expected at least one host name' })
    .optional(),
});

/** Application Gateway, Front Door, API Management: where to look, how to probe, how often to poll an update. */
const armConsumer = {
  ...bindingBase,
  ...armAccess,
  subscriptions: armSubscriptions,
  probe: armProbe.optional(),
  /** How often a long-running update is polled when Azure sends no Retry-After. */
  pollIntervalSeconds: int('pollIntervalSeconds', 1, 300).optional(),
};

/**
 * How long a file target's probe asks: `settleSeconds` for the new certificate to show after a reload, and while
 * the site still serves its old certificate (the reload has not taken effect: nginx re-reading thousands of
 * sites), up to `reloadSeconds`.
 */
const fileProbeTiming = {
  settleSeconds: int('settleSeconds', 0, 600).default(5),
  reloadSeconds: int('reloadSeconds', 0, 3600).default(60),
};

const binding = z.discriminatedUnion('kind', [
  z
    .strictObject({
      kind: z.literal('files'),
      ...bindingBase,
      ...fileFields,
      probe: z
        .strictObject({
          host: text('a host to connect to'),
          port: int('port', 1, 65535),
          servername: text('the TLS server name (SNI)'),
          caFile: text('a path to the CA that signs the served chain (PEM)').optional(),
          ...fileProbeTiming,
        })
        .optional(),
    })
    .refine(filePaths, { error: 'expected certPath and keyPath, or combinedPath alone' })
    .refine(pkcs12Password, { path: ['pkcs12PasswordPath'], error: 'expected pkcs12Path with it' }),
  /** The file target on servers reached over SSH: the same files and commands, on every selected host. */
  z
    .strictObject({
      kind: z.literal('ssh-files'),
      ...bindingBase,
      hosts: hostSelectorSchema,
      ...fileFields,
      /** The live check on each host; the connection goes to `address` (default: the host's own address). */
      probe: z
        .strictObject({
          port: int('port', 1, 65535).default(443),
          address: address.optional(),
          servername: text('the TLS server name (SNI)'),
          caFile: text('a path to the CA that signs the served chain (PEM)').optional(),
          ...fileProbeTiming,
        })
        .optional(),
    })
    .refine(filePaths, { error: 'expected certPath and keyPath, or combinedPath alone' })
    .refine(pkcs12Password, { path: ['pkcs12PasswordPath'], error: 'expected pkcs12Path with it' }),
  /**
   * A script on each selected host re-binds its consumers (Windows/IIS: examples/bindings/iis/): PKCS#12 and
   * thumbprints as JSON on stdin, the bindings before and after as JSON on stdout (docs/hosts.md).
   */
  z.strictObject({
    kind: z.literal('remote-command'),
    ...bindingBase,
    hosts: hostSelectorSchema,
    command: text(
      'the command line the remote shell runs, like "powershell.exe -NoProfile -NonInteractive -File C:\\ProgramData\\Certflow\\iis-rebind.ps1"',
    ),
    timeoutSeconds: int('timeoutSeconds', 1, 3600).default(300),
    /** Bindings of these host names are moved whatever certificate they are on. */
    hostNames: z.array(hostName, { error: expect('a list of host names') }).optional(),
    removePreviousAfterDays: int('removePreviousAfterDays', 0, 365).optional(),
    probe: z
      .strictObject({
        port: int('port', 1, 65535).default(443),
        address: address.optional(),
        caFile: text('a path to the CA that signs the served chain (PEM)').optional(),
        settleSeconds: int('settleSeconds', 0, 600).default(10),
      })
      .optional(),
    maxHosts: int('maxHosts', 1, 64).default(4),
  }),
  z.strictObject({
    kind: z.literal('app-service'),
    ...bindingBase,
    ...armAccess,
    subscriptions: armSubscriptions,
    /** A live TLS check of each re-bound host name (SNI = the host name); none when absent. */
    probe: armProbe.optional(),
  }),
  /** Application Gateway listeners' SSL certificates (Key Vault references), re-pointed or refreshed now. */
  z.strictObject({ kind: z.literal('app-gateway'), ...armConsumer }),
  /** Front Door Standard/Premium customer-certificate secrets and their custom domains. */
  z.strictObject({ kind: z.literal('front-door'), ...armConsumer }),
  /** API Management custom domains and certificates backed by Key Vault. */
  z.strictObject({ kind: z.literal('api-management'), ...armConsumer }),
  /**
   * The apps of App Service Certificates: for a certificate that is an order's Key Vault secret (orders from the
   * top-level `certificateOrders`), re-import into every webspace that uses it and re-bind every host name and slot.
   */
  z.strictObject({
    kind: z.literal('app-service-certificate-order'),
    ...bindingBase,
    ...armAccess,
    subscriptions: armSubscriptions,
    probe: armProbe.optional(),
  }),
  z.strictObject({
    kind: z.literal('webhook'),
    ...bindingBase,
    url: url('https://hooks.example.com/certflow', ['https:', 'http:']),
    secret: secretRefSchema,
    /** Plain http to a host that is not loopback (the event is signed but not secret). */
    allowHttp: bool('allow plain http').optional(),
  }),
]);

// ---- certificates, notify, http, log ----------------------------------------------------------------------

const policy = z
  .strictObject({
    // the bounds are the lifecycle's own (workflows/policy.ts): below MIN_LIFETIME_PERCENTAGE a certificate
    // would be renewed right after issuance
    lifetimePercentage: int('lifetimePercentage', MIN_LIFETIME_PERCENTAGE, 99).optional(),
    daysBeforeExpiry: int('daysBeforeExpiry', 1, 3650).optional(),
    jitterMinutes: int('jitterMinutes', 0, MAX_JITTER_MINUTES).optional(),
  })
  .refine((p) => p.lifetimePercentage === undefined || p.daysBeforeExpiry === undefined, {
    error: 'expected lifetimePercentage or daysBeforeExpiry, not both',
  });

/** Drift watch (workflows/lifecycle/drift.ts): how often each lifecycle probes its bindings; default daily. */
const driftWatch = z.strictObject({
  /** 0 turns the watch off. */
  everyMinutes: int('everyMinutes', 0, MAX_DRIFT_EVERY_MINUTES).optional(),
  jitterMinutes: int('jitterMinutes', 0, MAX_DRIFT_EVERY_MINUTES / 2).optional(),
  onWakeMinutes: int('onWakeMinutes', 1, MAX_DRIFT_EVERY_MINUTES).optional(),
});

/** Creates the certificate in its vault (issuer Unknown: the vault makes the key and CSR) when it is not there. */
const create = z.strictObject({
  subject: text('a subject such as "CN=www.contoso.com"').optional(),
  dnsNames: z.array(text('a DNS name'), { error: expect('a list of DNS names') }).min(1, {
    error: 'expected at least one DNS name',
  }),
  keyType: z
    .enum(['RSA', 'RSA-HSM', 'EC', 'EC-HSM'], { error: expect('RSA, RSA-HSM, EC or EC-HSM') })
    .default('RSA'),
  keySize: z
    .union([z.literal(2048), z.literal(3072), z.literal(4096)], { error: expect('2048, 3072 or 4096') })
    .optional(),
  curve: z.enum(['P-256', 'P-384', 'P-521'], { error: expect('P-256, P-384 or P-521') }).optional(),
  exportable: z.boolean({ error: expect('true or false') }).default(true),
  validityInMonths: int('validityInMonths', 1, 120).optional(),
  /** Tags of the new certificate, e.g. { "Recipient": "ops@contoso.com" }. */
  tags: z.record(z.string(), z.string(), { error: expect('an object of tag names to values') }).optional(),
});

const certificate = z.strictObject({
  id: text('a certificate id "<vault>/<name>"'),
  issuer: name('a configured issuer name').optional(),
  /**
   * issue: Certflow gets each version from `issuer` (a vault-renewed certificate's policy is taken over: pointed
   * at issuer Unknown); observe: the vault renews it itself. Default: what the vault's policy says.
   */
  mode: oneOf(CERTIFICATE_MODES).optional(),
  policy: policy.optional(),
  /** Overrides defaults.driftWatch for this certificate. */
  driftWatch: driftWatch.optional(),
  create: create.optional(),
});

const notify = z
  .strictObject({
    email: z
      .strictObject({
        host: text('an SMTP host'),
        port: int('port', 1, 65535),
        secure: bool('TLS from the first byte, port 465').optional(),
        /** Default: on when a password is set and the host is not loopback. */
        requireTls: bool('refuse to send without STARTTLS').optional(),
        /** Connect here instead of resolving host (TLS is still checked for host). */
        address: address.optional(),
        user: text('an SMTP user name').optional(),
        password: secretRefSchema.optional(),
        from: text('a sender like "Certflow <certflow@example.com>"'),
        defaultRecipients: z.array(email).optional(),
        caFile: text('a path to the CA of the SMTP server (PEM)').optional(),
      })
      .refine((e) => !e.password || !!e.user, { error: 'expected user together with password' })
      .optional(),
    chat: z.strictObject({ flavor: oneOf(['slack', 'teams'] as const), url: secretRefSchema }).optional(),
  })
  .prefault({});

const eventGrid = z
  .strictObject({
    /** The shared key (at least 32 characters, checked at start), sent in the aeg-sas-key header. */
    key: secretRefSchema.optional(),
    /** Accept the key as ?code= in the URL too (it ends up in proxy and server logs). */
    allowKeyInUrl: bool('accept the key in the URL').optional(),
    /** Entra ID bearer tokens (Event Grid's Microsoft Entra authentication of webhooks). */
    entra: z
      .strictObject({
        tenantId: text('the directory (tenant) id'),
        /** The Entra application the subscription gets tokens for (application id URI or client id). */
        audience: z.union([text('an audience'), z.array(text('an audience')).min(1)], {
          error: expect('the application id URI or client id the tokens are for (a string or a list)'),
        }),
        /** Default: the tenant's v2.0 and v1 issuers. */
        issuer: z.union([text('an issuer'), z.array(text('an issuer')).min(1)]).optional(),
        /** Default: https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys. */
        jwksUri: url('https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys', [
          'https:',
          'http:',
        ]).optional(),
      })
      .optional(),
    /** Its own listener, apart from /metrics: default http.host and port 9465. */
    host: text('an address to listen on, like 0.0.0.0').optional(),
    port: int('port', 1, 65535).default(9465),
    /** After acting on a certificate, events for it are not acted on for this long. */
    cooldownSeconds: int('cooldownSeconds', 0, 86_400).default(3600),
  })
  .refine((e) => e.key !== undefined || e.entra !== undefined, {
    error: 'expected key or entra (or both): an open endpoint would let anyone ask for renewals',
  });

const http = z
  .strictObject({
    port: int('port', 1, 65535).default(9464),
    host: text('an address to listen on, like 127.0.0.1').default('127.0.0.1'),
    /** Key Vault's Event Grid deliveries on /eventgrid, on a listener of their own (see eventGrid below). */
    eventGrid: eventGrid.optional(),
    /** Loopback port of the Temporal SDK's own Prometheus exporter; default: any free port. */
    sdkMetricsPort: int('sdkMetricsPort', 1, 65535).optional(),
  })
  .refine((h) => !h.eventGrid || h.eventGrid.port !== h.port, {
    path: ['eventGrid', 'port'],
    error: 'expected a port other than http.port: Event Grid gets a listener of its own, apart from /metrics',
  })
  .prefault({});

const log = z
  .strictObject({
    level: oneOf(['trace', 'debug', 'info', 'warn', 'error'] as const).default('info'),
    format: oneOf(['json', 'pretty', 'auto'] as const).default('auto'),
  })
  .prefault({});

/** OpenTelemetry traces over OTLP/HTTP (worker/tracing.ts); off when absent. */
const tracing = z.strictObject({
  /** The collector's OTLP/HTTP traces URL, like http://otel-collector:4318/v1/traces. */
  endpoint: url('http://otel-collector:4318/v1/traces', ['http:', 'https:']),
  serviceName: text('a service name').default('certflow-worker'),
  /** Headers sent with every export (an API key of a hosted backend): secret references, never the value. */
  headers: z
    .record(z.string().regex(/^[A-Za-z0-9-]+$/, { error: 'expected an HTTP header name' }), secretRefSchema)
    .optional(),
  /** Spans of the Azure SDK's calls (Key Vault, ARM) inside the activities' spans (default true). */
  azureSdk: bool('trace the Azure SDK').default(true),
});

export const configSchema = z.strictObject({
  /** The JSON Schema editors check the file against (schema/config.schema.json); ignored by the worker. */
  $schema: z.string({ error: expect('a JSON Schema URL or path') }).optional(),
  temporal,
  taskQueue: text('a task queue name').default('certflow'),
  vaults: z.array(vault, { error: expect('a list of vaults') }).default([]),
  issuers: z.array(issuer, { error: expect('a list of issuers') }).default([]),
  bindings: z.array(binding, { error: expect('a list of bindings') }).default([]),
  /** Servers reached over SSH, for `ssh-files` and `remote-command` bindings (docs/hosts.md). */
  hosts: z.array(sshHostSchema, { error: expect('a list of SSH hosts') }).default([]),
  certificates: z.array(certificate, { error: expect('a list of certificates') }).default([]),
  defaults: z
    .strictObject({
      issuer: name('a configured issuer name').optional(),
      policy: policy.optional(),
      driftWatch: driftWatch.optional(),
    })
    .prefault({}),
  notify,
  http,
  /** Fleet discovery on a Temporal Schedule (worker/discovery-config.ts); off when absent. */
  discovery: discoverySchema,
  shutdownGraceSeconds: int('shutdownGraceSeconds', 0, 3600).default(30),
  /**
   * Lifecycles kept in the worker's memory between wake-ups. A sleeping lifecycle need not stay: an evicted one is
   * replayed from its (short) history when it wakes. Bounds the worker's memory for large fleets.
   */
  maxCachedWorkflows: int('maxCachedWorkflows', 0, 100_000).default(DEFAULT_MAX_CACHED_WORKFLOWS),
  /** Activities each of the worker's Workers runs at once (worker/activity-slots.ts says why so many). */
  maxConcurrentActivities: int('maxConcurrentActivities', 1, 100_000).default(
    DEFAULT_MAX_CONCURRENT_ACTIVITIES,
  ),
  log,
  tracing: tracing.optional(),
  /** App Service Certificate orders (Microsoft.CertificateRegistration) to discover, show and renew; none when absent. */
  certificateOrders: z
    .strictObject({
      /**
       * The orders also form a vault of this name (certificate ids `<name>/<order name>`), whose certificates get
       * lifecycles in observe mode: Azure renews them, Certflow binds, verifies and tells people.
       */
      name: name('a vault name for the orders').default('appservice'),
      subscriptions: armSubscriptions,
      ...armAccess,
    })
    .optional(),
  /** Change windows, freezes, approval and staged rollout (worker/change-control-config.ts); none when absent. */
  changeControl: changeControlSchema,
  /** Where the worker keeps small state that must outlive it (the notifiers' sent-logs); in memory when absent. */
  dataDir: text("a directory for the worker's state").optional(),
});

export type CertflowConfig = z.infer<typeof configSchema>;
export type VaultConfig = CertflowConfig['vaults'][number];
export type IssuerConfig = CertflowConfig['issuers'][number];
export type BindingConfig = CertflowConfig['bindings'][number];
export type SelectorConfig = z.infer<typeof selectorSchema>;
export type SshHostConfig = z.infer<typeof sshHostSchema>;
export type HostSelector = z.infer<typeof hostSelectorSchema>;
