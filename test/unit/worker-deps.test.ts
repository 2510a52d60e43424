/**
 * From configuration to activity dependencies: every kind of vault, issuer, binding and notifier builds (construct
 * only: nothing here talks to Azure, a CA or an SMTP server), and every problem is listed at once.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createAppServiceTarget } from '../../activities/bindings/app-service';
import { createAcmeIssuer } from '../../activities/issuers/acme';
import { ConfigError, parseConfig, type BindingConfig, type IssuerConfig } from '../../worker/config';
import { buildDeps, openVaults } from '../../worker/deps';
import { appServiceProbe, fileTarget } from '../../worker/deps-bindings';
import { createCollector } from '../../worker/deps-collector';
import { acmeChallengeOptions } from '../../worker/deps-issuers';
import { freePort, tcpOpen } from '../support/proc';

// Pass-through spies: the real adapters are built, the spies only record the options they were given.
vi.mock('../../activities/issuers/acme', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../activities/issuers/acme')>();
  return { ...real, createAcmeIssuer: vi.fn(real.createAcmeIssuer) };
});
vi.mock('../../activities/bindings/app-service', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../activities/bindings/app-service')>();
  return { ...real, createAppServiceTarget: vi.fn(real.createAppServiceTarget) };
});

const tmp = mkdtempSync(path.join(tmpdir(), 'certflow-deps-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const anchor = path.join(tmp, 'root.pem');
writeFileSync(anchor, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');

const SMTP_PASSWORD = 'smtp-password-value-91c2';
const CLIENT_SECRET = 'client-secret-value-5d1e';
const env = {
  SMTP_PASSWORD,
  CLIENT_SECRET,
  VAULT_KEY: Buffer.alloc(32, 7).toString('base64'),
  HOOK_SECRET: 'webhook-hmac-key-0123456789',
  CHAT_URL: 'https://hooks.slack.com/services/T000/B000/XXXX',
  EAB_KEY: Buffer.from('an EAB MAC key of 32 bytes......').toString('base64url'),
};
const SUB = '00000000-0000-0000-0000-000000000001';
const KV_ID = `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv`;
const acme = (name: string, extra: Record<string, unknown>) => ({
  kind: 'acme',
  name,
  directoryUrl: 'https://127.0.0.1:14000/dir',
  contactEmail: 'pki@example.com',
  accountKeySecretName: `acme-${name}`,
  ...extra,
});

const full = (http01Port: number) =>
  parseConfig(
    {
      vaults: [
        {
          kind: 'azure',
          name: 'kv',
          url: 'https://kv.vault.azure.net',
          resourceId: KV_ID,
          credential: {
            kind: 'client-secret',
            tenantId: 'contoso.onmicrosoft.com',
            clientId: 'app',
            clientSecret: { env: 'CLIENT_SECRET' },
          },
        },
        { kind: 'azure', name: 'kv-cn', url: 'https://cn.vault.azure.cn', cloud: 'china' },
        {
          kind: 'azure',
          name: 'kv-wi',
          url: 'https://wi.vault.azure.net',
          credential: {
            kind: 'workload-identity',
            tenantId: 't',
            clientId: 'c',
            tokenFile: '/var/run/token',
          },
        },
        { kind: 'local', name: 'lv', dir: path.join(tmp, 'vault'), encryptionKey: { env: 'VAULT_KEY' } },
      ],
      issuers: [
        acme('pebble', {
          accountKeyVault: 'lv',
          dns: { kind: 'challtestsrv', managementUrl: 'http://127.0.0.1:8055' },
          trustAnchorFiles: [anchor],
        }),
        acme('le', {
          accountKeyVault: 'kv',
          eab: { kid: 'kid-1', hmacKey: { env: 'EAB_KEY' } },
          dns: {
            kind: 'azure',
            subscriptionId: SUB,
            resourceGroup: 'rg-dns',
            zone: 'example.com',
            credential: { kind: 'managed-identity', clientId: 'mi' },
          },
          http01: { kind: 'webroot', webroot: { 'www.example.com': path.join(tmp, 'www') } },
          preferredChallenge: 'http-01',
        }),
        acme('http', { http01: { kind: 'server', host: '127.0.0.1', port: http01Port } }),
        {
          kind: 'dev-ca',
          name: 'dev',
          dir: path.join(tmp, 'ca'),
          validity: { minutes: 5 },
          encryptionKey: { env: 'VAULT_KEY' },
        },
        {
          kind: 'command',
          name: 'adcs',
          command: '/usr/local/bin/certreq-wrapper',
          args: ['--template', 'WebServer'],
          env: { CA_TOKEN: { env: 'CLIENT_SECRET' }, CA_HOST: 'ca.corp' },
          trustAnchorFiles: [anchor],
        },
      ],
      bindings: [
        {
          kind: 'files',
          name: 'nginx',
          certificates: { pattern: 'lv/www-*' },
          certPath: '/etc/nginx/site.pem',
          keyPath: '/etc/nginx/site.key',
          mode: '0640',
          validate: { command: 'nginx', args: ['-t'] },
          reload: { command: 'nginx', args: ['-s', 'reload'] },
        },
        {
          kind: 'app-service',
          name: 'web-apps',
          certificates: { pattern: 'kv/*' },
          subscriptions: [{ subscriptionId: SUB, resourceGroups: ['rg-web'] }],
        },
        {
          kind: 'webhook',
          name: 'hook',
          certificates: { pattern: 'lv/*', tag: { name: 'consumer', value: 'hook' } },
          url: 'https://hooks.example.com/certflow',
          secret: { env: 'HOOK_SECRET' },
        },
      ],
      notify: {
        email: {
          host: '127.0.0.1',
          port: 2525,
          user: 'certflow',
          password: { env: 'SMTP_PASSWORD' },
          from: 'certflow@example.com',
          defaultRecipients: ['pki@example.com'],
        },
        chat: { flavor: 'slack', url: { env: 'CHAT_URL' } },
      },
      dataDir: path.join(tmp, 'state'),
    },
    {},
  );

describe('buildDeps', () => {
  it('builds every kind: Azure and local vaults, ACME (DNS-01 and HTTP-01), dev CA, command, all bindings, mail and chat', async () => {
    const port = await freePort();
    const deps = await buildDeps(full(port), { env });
    try {
      expect([...deps.vaults.keys()]).toEqual(['kv', 'kv-cn', 'kv-wi', 'lv']);
      expect(deps.vaults.get('lv')?.name).toBe('lv');
      expect([...deps.issuers.keys()]).toEqual(['pebble', 'le', 'http', 'dev', 'adcs']);
      expect(await tcpOpen(port)).toBe(true); // the HTTP-01 server listens

      const kinds = (id: string, tags: Record<string, string> = {}) =>
        deps.bindings?.(id, tags).map((t) => `${t.kind}:${t.name}`);
      expect(kinds('lv/www-example')).toEqual(['files:nginx']);
      expect(kinds('kv/api')).toEqual([expect.stringMatching(/:web-apps$/)]);
      expect(kinds('lv/api', { consumer: 'hook' })).toEqual([expect.stringMatching(/:hook$/)]);
      expect(kinds('lv/api')).toEqual([]);

      expect(deps.trustAnchorsPem?.('pebble')?.[0]).toContain('BEGIN CERTIFICATE');
      expect(deps.trustAnchorsPem?.('adcs')).toHaveLength(1);
      // the dev CA's own root: what it issues verifies against it
      expect(deps.trustAnchorsPem?.('dev')?.[0]).toMatch(/^-----BEGIN CERTIFICATE-----/);
      expect(deps.trustAnchorsPem?.('le')).toBeUndefined();
      expect(deps.notifier).not.toBeNull();
      expect(deps.chat).not.toBeNull();
      expect(deps.defaultRecipients).toEqual(['pki@example.com']);
    } finally {
      await deps.close();
    }
    expect(await tcpOpen(port)).toBe(false); // close() released it
  });

  it('passes the metrics sink to the activities', async () => {
    const sink = { observed() {}, renewed() {}, failed() {}, bindings() {} };
    const deps = await buildDeps(parseConfig({}, {}), { env: {}, metrics: sink });
    expect(deps.metrics).toBe(sink);
    expect(deps.notifier).toBeNull();
    await deps.close();
  });

  it('lists every problem at once, each under its field, without any secret value', async () => {
    const c = parseConfig(
      {
        vaults: [
          { kind: 'azure', name: 'kv', url: 'https://kv.vault.azure.net' },
          { kind: 'local', name: 'lv', dir: tmp, encryptionKey: { env: 'SHORT_KEY' } },
        ],
        issuers: [
          acme('ca', {
            dns: { kind: 'challtestsrv', managementUrl: 'http://127.0.0.1:8055' },
            caBundleFile: path.join(tmp, 'missing.pem'),
          }),
          { kind: 'dev-ca', name: 'dev', dir: tmp, validity: { minutes: 5 }, encryptionKey: { env: 'NOPE' } },
        ],
        bindings: [
          {
            kind: 'app-service',
            name: 'apps',
            certificates: { ids: ['kv/www'] },
            subscriptions: [{ subscriptionId: SUB }],
          },
          {
            kind: 'webhook',
            name: 'hook',
            certificates: { pattern: '**' },
            url: 'http://hooks.example.com/x',
            secret: { env: 'HOOK_SECRET' },
          },
        ],
        notify: {
          email: {
            host: 'smtp.example.com',
            port: 587,
            user: 'u',
            password: { env: 'SMTP_PASSWORD' },
            from: 'a@b.c',
          },
        },
      },
      {},
    );
    const err = await buildDeps(c, {
      env: { SHORT_KEY: SMTP_PASSWORD, HOOK_SECRET: env.HOOK_SECRET },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    const lines = (err as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
    expect(lines).toEqual([
      expect.stringMatching(
        /^vaults\[1\]\.encryptionKey: SHORT_KEY is not a valid local vault key: expected 32/,
      ),
      expect.stringMatching(
        /^issuers\[0\]\.caBundleFile: expected a readable file .*missing\.pem \(ENOENT\)$/,
      ),
      'issuers[1].encryptionKey: expected the environment variable NOPE to be set',
      expect.stringMatching(
        /^vaults\[0\]\.resourceId: missing: expected the vault's ARM id .*bindings\[0\] \(app-service\)/,
      ),
      expect.stringMatching(/^bindings\[1\]: .*expected an https URL/),
      'notify.email.password: expected the environment variable SMTP_PASSWORD to be set',
    ]);
    expect((err as Error).message).not.toContain(SMTP_PASSWORD);
  });
});

const AZURE_DNS = { kind: 'azure', subscriptionId: SUB, resourceGroup: 'rg-dns', zone: 'example.com' };
const CHALLTESTSRV = { kind: 'challtestsrv', managementUrl: 'http://127.0.0.1:8055' };
const APP_SERVICE = {
  kind: 'app-service',
  name: 'apps',
  certificates: { pattern: 'kv/*' },
  subscriptions: [{ subscriptionId: SUB }],
};
const KV = { kind: 'azure', name: 'kv', url: 'https://kv.vault.azure.net', resourceId: KV_ID };
const issuerOf = (extra: Record<string, unknown>) =>
  parseConfig({ vaults: [KV], issuers: [acme('ca', extra)] }, {}).issuers[0] as Extract<
    IssuerConfig,
    { kind: 'acme' }
  >;
const bindingOf = (probe?: Record<string, unknown>) =>
  parseConfig({ vaults: [KV], bindings: [{ ...APP_SERVICE, ...(probe ? { probe } : {}) }] }, {})
    .bindings[0] as Extract<BindingConfig, { kind: 'app-service' }>;

describe('DNS-01 propagation and the App Service probe', () => {
  it('reach the adapters that buildDeps builds', async () => {
    vi.mocked(createAcmeIssuer).mockClear();
    vi.mocked(createAppServiceTarget).mockClear();
    const deps = await buildDeps(
      parseConfig(
        {
          vaults: [KV],
          issuers: [
            acme('azure-dns', { dns: AZURE_DNS, propagation: { timeoutSeconds: 90, delaySeconds: 5 } }),
            acme('pebble', { dns: CHALLTESTSRV }),
          ],
          bindings: [{ ...APP_SERVICE, probe: { address: '10.0.0.4', caFile: anchor, settleSeconds: 3 } }],
        },
        {},
      ),
      { env },
    );
    await deps.close();
    const acmeOpts = (name: string) =>
      vi.mocked(createAcmeIssuer).mock.calls.find(([o]) => o.name === name)?.[0];
    expect(acmeOpts('azure-dns')).toMatchObject({
      propagation: { timeoutMs: 90_000 },
      propagationDelayMs: 5_000,
    });
    expect(acmeOpts('pebble')).toBeDefined();
    expect(acmeOpts('pebble')).not.toHaveProperty('propagation');

    const appOpts = vi.mocked(createAppServiceTarget).mock.calls.find(([o]) => o.name === 'apps')?.[0];
    expect(appOpts?.probeSettleMs).toBe(3_000);
    expect(appOpts?.probe?.('www.example.com')).toEqual({
      host: '10.0.0.4',
      port: 443,
      servername: 'www.example.com',
      caPem: expect.stringContaining('BEGIN CERTIFICATE'),
    });
  });

  it('propagation: on by default with Azure DNS, off with challtestsrv unless resolvers are named; seconds to ms', () => {
    expect(acmeChallengeOptions(issuerOf({ dns: AZURE_DNS }))).toEqual({ propagation: {} });
    expect(acmeChallengeOptions(issuerOf({ dns: CHALLTESTSRV }))).toEqual({});
    expect(
      acmeChallengeOptions(
        issuerOf({
          dns: CHALLTESTSRV,
          propagation: { resolvers: ['127.0.0.1:8053'], timeoutSeconds: 20, intervalSeconds: 1 },
        }),
      ),
    ).toEqual({ propagation: { resolvers: ['127.0.0.1:8053'], timeoutMs: 20_000, intervalMs: 1_000 } });
    expect(
      acmeChallengeOptions(issuerOf({ dns: AZURE_DNS, propagation: { check: false, delaySeconds: 30 } })),
    ).toEqual({ propagationDelayMs: 30_000 });
    expect(acmeChallengeOptions(issuerOf({ http01: { kind: 'server' } }))).toEqual({});
  });

  it('probe: none without the block; the address, port and listed host names only; never a wildcard', () => {
    const c = createCollector({});
    expect(appServiceProbe(bindingOf(), 'bindings[0]', c)).toEqual({});
    const plain = appServiceProbe(bindingOf({}), 'bindings[0]', c);
    expect(plain.probeSettleMs).toBe(30_000);
    expect(plain.probe?.('api.example.com')).toEqual({
      host: 'api.example.com',
      port: 443,
      servername: 'api.example.com',
    });
    expect(plain.probe?.('*.example.com')).toBeUndefined();

    const some = appServiceProbe(
      bindingOf({ port: 8443, hostNames: ['API.example.com.'], settleSeconds: 0 }),
      'bindings[0]',
      c,
    );
    expect(some.probe?.('api.example.com')).toMatchObject({ host: 'api.example.com', port: 8443 });
    expect(some.probe?.('www.example.com')).toBeUndefined();
    expect(some.probeSettleMs).toBe(0);
    expect(c.issues).toEqual([]);

    appServiceProbe(bindingOf({ caFile: path.join(tmp, 'nope.pem') }), 'bindings[2]', c);
    expect(c.issues).toEqual([
      {
        path: 'bindings[2].probe.caFile',
        message: expect.stringMatching(/readable file .*nope\.pem \(ENOENT\)/),
      },
    ]);
  });
});

describe('fileTarget', () => {
  it("gives the adapter the probe's settle and reload windows in ms (defaults 5 s and 60 s)", () => {
    const parsed = parseConfig(
      {
        vaults: [
          { kind: 'local', name: 'lv', dir: path.join(tmp, 'vault'), encryptionKey: { env: 'VAULT_KEY' } },
        ],
        issuers: [{ kind: 'dev-ca', name: 'self', dir: path.join(tmp, 'ca'), validity: { days: 1 } }],
        bindings: [
          {
            kind: 'files',
            name: 'nginx',
            certificates: { pattern: 'lv/*' },
            certPath: '/etc/nginx/site.pem',
            keyPath: '/etc/nginx/site.key',
            validate: { command: 'nginx', args: ['-t'] },
            reload: { command: 'nginx', args: ['-s', 'reload'] },
            probe: { host: '127.0.0.1', port: 443, servername: 'www.example.com' },
          },
        ],
        certificates: [{ id: 'lv/www', issuer: 'self' }],
      },
      env,
    );
    const b = parsed.bindings[0] as Extract<BindingConfig, { kind: 'files' }>;
    const c = createCollector({});
    expect(fileTarget(b, 'bindings[0]', c).probe).toEqual({
      host: '127.0.0.1',
      port: 443,
      servername: 'www.example.com',
      settleMs: 5_000,
      reloadMs: 60_000,
    });
    expect(
      fileTarget({ ...b, probe: { ...b.probe!, reloadSeconds: 0 } }, 'bindings[0]', c).probe,
    ).toMatchObject({
      reloadMs: 0,
    });
    expect(c.issues).toEqual([]);
  });
});

describe('openVaults', () => {
  it('opens the vaults only: issuer, binding and mail secrets are not needed', async () => {
    const c = parseConfig(
      {
        vaults: [
          { kind: 'local', name: 'lv', dir: path.join(tmp, 'vault'), encryptionKey: { env: 'VAULT_KEY' } },
        ],
        notify: {
          email: { host: 'h.example', port: 25, user: 'u', password: { env: 'UNSET' }, from: 'a@b.c' },
        },
      },
      {},
    );
    const vaults = await openVaults(c, { VAULT_KEY: env.VAULT_KEY });
    expect([...vaults.keys()]).toEqual(['lv']);
    await expect(openVaults(c, {})).rejects.toThrow(
      /vaults\[0\]\.encryptionKey: expected the environment variable VAULT_KEY to be set/,
    );
  });
});

describe('SSH hosts', () => {
  const sshConfig = () =>
    parseConfig(
      {
        hosts: ['web-1', 'web-2', 'iis-1'].map((name) => ({
          name,
          address: '127.0.0.1',
          port: 1,
          user: 'certflow',
          privateKey: { env: 'SSH_KEY' },
          hostKeys: ['SHA256:' + 'A'.repeat(43)],
          tags: [name.startsWith('iis') ? 'iis' : 'web'],
        })),
        bindings: [
          {
            kind: 'ssh-files',
            name: 'web-nginx',
            certificates: { pattern: 'kv/*' },
            hosts: { tag: 'web' },
            certPath: '/etc/nginx/site.pem',
            keyPath: '/etc/nginx/site.key',
            validate: { command: 'nginx', args: ['-t'] },
            reload: { command: 'nginx', args: ['-s', 'reload'] },
          },
          {
            kind: 'remote-command',
            name: 'iis',
            certificates: { pattern: 'kv/*' },
            hosts: { names: ['iis-1'] },
            command: 'powershell.exe -File C:\\ProgramData\\Certflow\\iis-rebind.ps1',
          },
        ],
      },
      {},
    );

  it('builds one file target per selected host and one remote-command target, with the key by reference', async () => {
    const deps = await buildDeps(sshConfig(), {
      env: {
        SSH_KEY: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
          type: 'sec1',
          format: 'pem',
        }) as string,
      },
    });
    try {
      const picked = deps.bindings?.('kv/www', {}) ?? [];
      expect(picked.map((t) => `${t.kind}:${t.name}`)).toEqual([
        'files:web-nginx',
        'files:web-nginx',
        'remote-command:iis',
      ]);
    } finally {
      await deps.close();
    }
  });

  it('refuses a key ssh2 cannot use, naming the host field and not echoing the key', async () => {
    const pkcs8 = generateKeyPairSync('ed25519').privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    }) as string;
    const err = await buildDeps(sshConfig(), { env: { SSH_KEY: pkcs8 } }).catch((e: unknown) => e);
    const lines = (err as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
    expect(lines[0]).toMatch(
      /^hosts\[0\]\.privateKey: the private key cannot be used \(Unsupported key format\): expected an OpenSSH key/,
    );
    expect((err as Error).message).not.toContain(pkcs8.split('\n')[1]);
  });

  it('reports an unset key variable under the host, without building its bindings', async () => {
    const err = await buildDeps(sshConfig(), { env: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues.map((i) => `${i.path}: ${i.message}`)).toEqual(
      [0, 1, 2].map((i) => `hosts[${i}].privateKey: expected the environment variable SSH_KEY to be set`),
    );
  });
});

describe('Azure consumers in the worker configuration', () => {
  const consumer = (kind: string, name: string, extra: Record<string, unknown> = {}) => ({
    kind,
    name,
    certificates: { pattern: 'kv/*' },
    subscriptions: [{ subscriptionId: SUB, resourceGroups: ['rg-edge'] }],
    ...extra,
  });
  const config = (extra: Record<string, unknown>, vault: Record<string, unknown> = { resourceId: KV_ID }) =>
    parseConfig(
      {
        vaults: [{ kind: 'azure', name: 'kv', url: 'https://kv.vault.azure.net', ...vault }],
        ...extra,
      },
      {},
    );

  it('builds Application Gateway, Front Door, API Management and App Service Certificate targets, and the orders', async () => {
    const deps = await buildDeps(
      config({
        bindings: [
          consumer('app-gateway', 'gateways', {
            probe: { port: 8443, settleSeconds: 5 },
            pollIntervalSeconds: 5,
          }),
          consumer('front-door', 'edge', { cloud: 'usgov' }),
          consumer('api-management', 'apis'),
          consumer('app-service-certificate-order', 'bought', { certificates: { pattern: '**' } }),
        ],
        certificateOrders: { subscriptions: [{ subscriptionId: SUB }] },
      }),
      { env },
    );
    try {
      expect(deps.bindings?.('kv/www', {}).map((t) => `${t.kind}:${t.name}`)).toEqual([
        'app-gateway:gateways',
        'front-door:edge',
        'api-management:apis',
        'app-service-certificate-order:bought',
      ]);
      expect(typeof deps.certificateOrders?.renew).toBe('function');
    } finally {
      await deps.close();
    }
  });

  it('refuses a Front Door binding whose vault has no resourceId, and an order binding without certificateOrders', async () => {
    const err = await buildDeps(
      config(
        { bindings: [consumer('front-door', 'edge'), consumer('app-service-certificate-order', 'bought')] },
        {},
      ),
      { env },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues.map((i) => `${i.path}: ${i.message}`)).toEqual([
      expect.stringMatching(
        /^vaults\[0\]\.resourceId: missing: .*bindings\[0\] \(front-door\) imports certificates from it$/,
      ),
      expect.stringMatching(
        /^certificateOrders: missing: expected \{ subscriptions, credential\? \} .*bindings\[1\] \(app-service-certificate-order\)/,
      ),
    ]);
  });

  it('names the field of a bad value', () => {
    const bad = (b: Record<string, unknown>) => {
      try {
        config({ bindings: [b] });
        return '';
      } catch (e) {
        return (e as ConfigError).issues.map((i) => `${i.path}: ${i.message}`).join('\n');
      }
    };
    expect(bad(consumer('app-gateway', 'gw', { subscriptions: [] }))).toMatch(
      /bindings\[0\]\.subscriptions: expected at least one subscription/,
    );
    expect(bad(consumer('api-management', 'apis', { pollIntervalSeconds: 0 }))).toMatch(
      /pollIntervalSeconds: expected pollIntervalSeconds of at least 1/,
    );
    expect(bad(consumer('front-door', 'edge', { probe: { hostNames: ['*.contoso.com'] } }))).toMatch(
      /probe\.hostNames\[0\]: expected a host name/,
    );
  });
});
