import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  loadConfig,
  parseConfig,
  redactedConfig,
  resolveSecret,
  selectBindings,
  type CertflowConfig,
} from '../../worker/config';
import { repoRoot } from '../support/tools';

const tmp = mkdtempSync(path.join(tmpdir(), 'certflow-config-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const SECRET = 'hunter2-do-not-print';

/** A valid configuration to break one field at a time. */
const base = () => ({
  // a private network: plaintext allowed by saying so
  temporal: { address: 'temporal.internal:7233', namespace: 'certflow', allowInsecure: true },
  vaults: [
    {
      kind: 'azure',
      name: 'kv-prod',
      url: 'https://kv-prod.vault.azure.net',
      credential: { kind: 'default' },
    },
  ] as Record<string, unknown>[],
  issuers: [
    {
      kind: 'acme',
      name: 'le',
      directoryUrl: 'https://acme-v02.api.letsencrypt.org/directory',
      contactEmail: 'pki@example.com',
      accountKeySecretName: 'acme-le',
      dns: { kind: 'challtestsrv', managementUrl: 'http://127.0.0.1:8055' },
    },
  ] as Record<string, unknown>[],
  bindings: [] as Record<string, unknown>[],
  certificates: [{ id: 'kv-prod/api', issuer: 'le' }] as Record<string, unknown>[],
});

/** The issues of an invalid configuration, as `path: message` lines. */
function problems(obj: unknown, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(obj, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
  }
  throw new Error('expected the configuration to be refused');
}

describe('parseConfig', () => {
  it('accepts the example configuration at the repository root', () => {
    const example = JSON.parse(readFileSync(path.join(repoRoot, 'config.example.json'), 'utf8'));
    const c = parseConfig(example, {});
    expect(c.vaults[0]).toMatchObject({ kind: 'azure', name: 'kv-prod', cloud: 'public' });
    expect(c.issuers[0]).toMatchObject({ kind: 'acme', rateLimit: { perSecond: 5 } });
    expect(c.bindings[0]?.kind).toBe('app-service');
    expect(c.notify.email?.password).toEqual({ env: 'CERTFLOW_SMTP_PASSWORD' });
  });

  it('fills defaults for an empty configuration', () => {
    const c = parseConfig({}, {});
    expect(c.temporal).toEqual({
      address: '127.0.0.1:7233',
      namespace: 'default',
      connectTimeoutSeconds: 60,
    });
    expect(c.taskQueue).toBe('certflow');
    expect(c.http).toEqual({ port: 9464, host: '127.0.0.1' });
    expect(c.log).toEqual({ level: 'info', format: 'auto' });
    expect(c.shutdownGraceSeconds).toBe(30);
    expect(c.maxConcurrentActivities).toBe(1000);
    expect(c.vaults).toEqual([]);
  });

  it('names a missing field and what it expects', () => {
    const c = base();
    delete (c.issuers[0] as Record<string, unknown>).contactEmail;
    expect(problems(c)).toEqual(['issuers[0].contactEmail: missing: expected an e-mail address']);
  });

  it('names a field of the wrong type', () => {
    expect(problems({ ...base(), shutdownGraceSeconds: 'soon' })).toEqual([
      'shutdownGraceSeconds: expected shutdownGraceSeconds (a whole number 0-3600)',
    ]);
    expect(problems({ ...base(), maxConcurrentActivities: 0 })).toEqual([
      'maxConcurrentActivities: expected maxConcurrentActivities of at least 1',
    ]);
    expect(problems({ ...base(), temporal: 'localhost' })).toEqual([
      'temporal: expected an object, got a string',
    ]);
  });

  it('refuses a vault URL that is not https', () => {
    const c = base();
    c.vaults.push({
      kind: 'azure',
      name: 'kv-2',
      url: 'http://kv-2.vault.azure.net',
      credential: { kind: 'default' },
    });
    expect(problems(c)).toEqual(['vaults[1].url: expected an https URL like https://<name>.vault.azure.net']);
  });

  it('refuses an inline secret without echoing it', () => {
    const c = {
      ...base(),
      notify: {
        email: { host: 'smtp.example.com', port: 587, user: 'u', password: SECRET, from: 'a@example.com' },
      },
    };
    let message = '';
    try {
      parseConfig(c, {});
    } catch (err) {
      message = (err as Error).message + JSON.stringify((err as ConfigError).issues);
    }
    expect(message).toContain('notify.email.password: expected a secret reference');
    expect(message).not.toContain(SECRET);
  });

  it('refuses a secret reference with extra fields (a value smuggled next to it)', () => {
    const c = base();
    c.issuers[0]!.eab = { kid: 'kid-1', hmacKey: { env: 'EAB_KEY', value: SECRET } };
    const out = problems(c).join('\n');
    expect(out).toBe('issuers[0].eab.hmacKey.value: unknown field');
    expect(out).not.toContain(SECRET);
  });

  it('names an unknown kind and lists the known ones', () => {
    const c = base();
    c.issuers.push({ kind: 'vault-pki', name: 'x' });
    expect(problems(c)).toEqual(['issuers[1].kind: expected one of "acme" | "dev-ca" | "command"']);
  });

  it('reports a misspelt field as unknown', () => {
    const c = { ...base(), htpp: { port: 1 } };
    expect(problems(c)).toEqual(['htpp: unknown field']);
  });

  it('reports every problem at once', () => {
    const c = base();
    c.vaults.push({ kind: 'local', name: 'lv', dir: '/var/lib/certflow' });
    c.bindings.push({ kind: 'files', name: 'nginx', certificates: {}, validate: { command: 'nginx' } });
    c.certificates.push({ id: 'nope', issuer: 'zerossl' });
    const out = problems({ ...c, http: { port: 70_000 }, log: { level: 'loud' } });
    expect(out).toEqual(
      expect.arrayContaining([
        'vaults[1].encryptionKey: missing: expected a secret reference { "env": "VARIABLE" } or { "file": "/path/to/file" } (inline secrets are refused)',
        'bindings[0].certificates: expected at least one of ids, pattern or tag',
        'bindings[0].reload: missing: expected an object',
        'http.port: expected port of at most 65535',
        'log.level: expected one of "trace" | "debug" | "info" | "warn" | "error"',
        'certificates[1].id: expected "<vault>/<name>", got "nope"',
        'certificates[1].issuer: expected a configured issuer (known: "le")',
      ]),
    );
    expect(out).toHaveLength(7);
  });

  it('checks cross-references: unique names, configured vaults and issuers', () => {
    const c = base();
    c.issuers.push({ ...c.issuers[0], accountKeyVault: 'kv-missing' });
    c.certificates.push({ id: 'kv-other/web' }, { id: 'kv-prod/api', issuer: 'le' });
    expect(problems(c)).toEqual([
      'issuers[1].name: expected a unique name: "le" appears twice',
      'certificates[2].id: expected a unique id: "kv-prod/api" appears twice',
      'certificates[1].id: expected a configured vault before "/" (known: "kv-prod")',
      'certificates[1].issuer: missing: expected a configured issuer name (or set defaults.issuer)',
      'issuers[1].accountKeyVault: expected a configured vault (known: "kv-prod")',
    ]);
  });

  it('takes the issuer from defaults', () => {
    const c = parseConfig(
      { ...base(), certificates: [{ id: 'kv-prod/web' }], defaults: { issuer: 'le' } },
      {},
    );
    expect(c.certificates[0]?.issuer).toBeUndefined();
    expect(c.defaults.issuer).toBe('le');
  });

  it('checks the shape of each binding kind', () => {
    const c = base();
    c.bindings.push(
      {
        kind: 'files',
        name: 'nginx',
        certificates: { pattern: 'kv-prod/*' },
        certPath: '/etc/nginx/tls/site.pem',
        validate: { command: 'nginx', args: ['-t'] },
        reload: { command: 'nginx', args: ['-s', 'reload'] },
      },
      { kind: 'app-service', name: 'web', certificates: { ids: ['kv-prod/api'] }, subscriptions: [] },
      {
        kind: 'webhook',
        name: 'hook',
        certificates: { pattern: 'kv-prod/*', tag: { name: 'team', value: 'x' } },
        url: 'ftp://x',
        secret: { env: 'S' },
      },
    );
    expect(problems(c)).toEqual([
      'bindings[0]: expected certPath and keyPath, or combinedPath alone',
      'bindings[1].subscriptions: expected at least one subscription',
      'bindings[2].url: expected an https or http URL like https://hooks.example.com/certflow',
    ]);
  });

  it('caps the key mode of a file binding at 0640, naming the field', () => {
    const c = base();
    const files = (mode: string) => ({
      kind: 'files',
      name: `nginx-${mode}`,
      certificates: { pattern: 'kv-prod/*' },
      certPath: '/etc/nginx/tls/site.pem',
      keyPath: '/etc/nginx/tls/site.key',
      mode,
      validate: { command: 'nginx', args: ['-t'] },
      reload: { command: 'nginx', args: ['-s', 'reload'] },
    });
    c.bindings.push(files('0666'), files('0644'), files('0640'), files('0600'));
    expect(problems(c)).toEqual(
      [0, 1].map(
        (i) =>
          `bindings[${i}].mode: expected a mode of at most 0640 for a private key (no write by the group, nothing for others), like "0600" or "0640"`,
      ),
    );
  });

  it('takes SSH hosts and the bindings that run on them, by name or tag', () => {
    const c = {
      ...base(),
      hosts: [
        {
          name: 'web-1',
          address: '10.0.0.4',
          user: 'certflow',
          privateKey: { env: 'CERTFLOW_SSH_KEY' },
          hostKeys: ['SHA256:' + 'A'.repeat(43)],
          tags: ['web'],
        },
        {
          name: 'iis-1',
          address: 'iis-1.corp.example.com',
          port: 2222,
          user: 'certflow',
          privateKey: { file: '/run/secrets/ssh' },
          hostKeys: [
            'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE0Kk9i3y2x8v7u6t5s4r3q2p1o0n9m8l7k6j5h4g3f2 iis-1',
          ],
          tags: ['iis'],
        },
      ],
    };
    c.bindings.push(
      {
        kind: 'ssh-files',
        name: 'web-nginx',
        certificates: { ids: ['kv-prod/api'] },
        hosts: { tag: 'web' },
        certPath: '/etc/nginx/tls/site.pem',
        keyPath: '/etc/nginx/tls/site.key',
        pkcs12Path: '/etc/tomcat/site.p12',
        validate: { command: 'nginx', args: ['-t'] },
        reload: { command: 'systemctl', args: ['reload', 'nginx'] },
        probe: { servername: 'api.example.com' },
      },
      {
        kind: 'remote-command',
        name: 'iis',
        certificates: { ids: ['kv-prod/api'] },
        hosts: { names: ['iis-1'] },
        command: 'powershell.exe -NoProfile -File C:\\ProgramData\\Certflow\\iis-rebind.ps1',
        probe: {},
      },
    );
    const parsed = parseConfig(c, {});
    expect(parsed.hosts.map((h) => [h.name, h.port, h.connectTimeoutSeconds])).toEqual([
      ['web-1', 22, 10],
      ['iis-1', 2222, 10],
    ]);
    expect(parsed.bindings[0]).toMatchObject({
      kind: 'ssh-files',
      probe: { port: 443, settleSeconds: 5, reloadSeconds: 60 },
    });
    expect(parsed.bindings[1]).toMatchObject({ kind: 'remote-command', timeoutSeconds: 300, maxHosts: 4 });
  });

  it('names each bad SSH host field and host selector, and never accepts a host without a pinned key', () => {
    const c = {
      ...base(),
      hosts: [
        { name: 'web-1', address: 'not a host!', user: '', privateKey: 'inline-key', hostKeys: [] },
        { name: 'web-1', address: '10.0.0.5', user: 'u', privateKey: { env: 'K' }, hostKeys: ['MD5:aa:bb'] },
        { name: 'web-3', address: '10.0.0.6', user: 'u', privateKey: { env: 'K' } },
      ],
    };
    c.bindings.push({
      kind: 'remote-command',
      name: 'iis',
      certificates: { ids: ['kv-prod/api'] },
      hosts: {},
      command: 'x',
    });
    const found = problems(c);
    expect(found).toEqual(
      expect.arrayContaining([
        'hosts[0].address: expected a host name or IP address, like frontdoor.example.net or 10.0.0.4',
        'hosts[0].user: expected the SSH user name',
        expect.stringMatching(/^hosts\[0\]\.privateKey: expected a secret reference/),
        expect.stringMatching(
          /^hosts\[0\]\.hostKeys: missing: expected at least one pinned host key \(an unknown host key is always refused\)/,
        ),
        expect.stringMatching(
          /^hosts\[1\]\.hostKeys\[0\]: expected a pinned host key: its fingerprint "SHA256:\.\.\."/,
        ),
        expect.stringMatching(/^hosts\[2\]\.hostKeys: missing: expected a list of pinned host keys/),
        'bindings[0].hosts: expected names (a list of configured hosts) or tag (every host with that tag), or both',
      ]),
    );
    expect(found.join('\n')).not.toContain('inline-key');
  });

  it('checks that host names are unique and that selectors name configured hosts or a tag some host has', () => {
    const host = (name: string) => ({
      name,
      address: '10.0.0.4',
      user: 'u',
      privateKey: { env: 'K' },
      hostKeys: ['SHA256:' + 'A'.repeat(43)],
      tags: ['web'],
    });
    const c = { ...base(), hosts: [host('web-1'), host('web-1')] };
    c.bindings.push({
      kind: 'remote-command',
      name: 'iis',
      certificates: { ids: ['kv-prod/api'] },
      hosts: { names: ['web-1', 'web-9'], tag: 'iis' },
      command: 'x',
    });
    expect(problems(c)).toEqual([
      'hosts[1].name: expected a unique name: "web-1" appears twice',
      'bindings[0].hosts.names[1]: expected a configured host (known: "web-1")',
      'bindings[0].hosts.tag: expected a tag that some configured host has: none has "iis"',
    ]);
  });

  it('takes ACME DNS-01 propagation settings and names each bad one', () => {
    const c = base();
    const azureDns = {
      kind: 'azure',
      subscriptionId: '00000000-0000-0000-0000-000000000001',
      resourceGroup: 'rg-dns',
      zone: 'example.com',
    };
    const propagation = {
      resolvers: ['1.1.1.1', 'ns1-01.azure-dns.com:53', '[2606:4700::1111]:53', '2001:db8::53'],
      timeoutSeconds: 180,
      intervalSeconds: 5,
      delaySeconds: 10,
    };
    c.issuers[0] = { ...c.issuers[0], dns: azureDns, propagation };
    expect(parseConfig(c, {}).issuers[0]).toMatchObject({ dns: { kind: 'azure' }, propagation });

    c.issuers[0] = {
      ...c.issuers[0],
      propagation: { resolvers: ['1.1.1.1', 'ns 1', '[::1', 'h:0', '1.2.3.999'], timeoutSeconds: 0 },
    };
    c.issuers.push(
      { ...c.issuers[0], name: 'http', dns: undefined, http01: { kind: 'server' }, propagation: {} },
      { ...base().issuers[0], name: 'pebble', propagation: { check: true } },
      { ...base().issuers[0], name: 'off', propagation: { check: false, timeoutSeconds: 60 } },
    );
    const server = 'expected a name server: an IP address or host name, optionally with :port';
    expect(problems(c).map((p) => p.replace(/ \(\[v6\].*/, ''))).toEqual([
      `issuers[0].propagation.resolvers[1]: ${server}`,
      `issuers[0].propagation.resolvers[2]: ${server}`,
      `issuers[0].propagation.resolvers[3]: ${server}`,
      `issuers[0].propagation.resolvers[4]: ${server}`,
      'issuers[0].propagation.timeoutSeconds: expected timeoutSeconds of at least 1',
      'issuers[1].propagation: expected dns (DNS-01) with propagation: it applies to DNS-01 answers only',
      'issuers[2].propagation.resolvers: missing: expected the name servers to ask (challtestsrv does not know them), like 127.0.0.1:8053',
      'issuers[3].propagation: expected no resolvers, timeoutSeconds or intervalSeconds with check: false (they tune the check)',
    ]);
  });

  it('takes an App Service live probe, with defaults, and names each bad field', () => {
    const c = base();
    const appService = {
      kind: 'app-service',
      name: 'web',
      certificates: { ids: ['kv-prod/api'] },
      subscriptions: [{ subscriptionId: '00000000-0000-0000-0000-000000000001' }],
    };
    c.bindings.push(
      { ...appService, probe: {} },
      {
        ...appService,
        name: 'web-2',
        probe: {
          port: 8443,
          address: '20.1.2.3',
          caFile: '/etc/ca.pem',
          settleSeconds: 5,
          hostNames: ['api.example.com'],
        },
      },
      { ...appService, name: 'web-3' },
    );
    const ok = parseConfig(c, {}).bindings;
    expect(ok[0]).toMatchObject({ probe: { port: 443, settleSeconds: 30 } });
    expect(ok[1]).toMatchObject({ probe: c.bindings[1]!.probe as object });
    expect(ok[2]).not.toHaveProperty('probe');

    c.bindings[0] = {
      ...appService,
      probe: {
        port: 0,
        address: 'front door',
        settleSeconds: -1,
        hostNames: ['ok.example.com', '*.example.com'],
        caFile: '',
      },
    };
    expect(problems(c)).toEqual([
      'bindings[0].probe.port: expected port of at least 1',
      'bindings[0].probe.address: expected a host name or IP address, like frontdoor.example.net or 10.0.0.4',
      'bindings[0].probe.caFile: expected a path to the CA that signs the served chain (PEM)',
      'bindings[0].probe.settleSeconds: expected settleSeconds of at least 0',
      'bindings[0].probe.hostNames[1]: expected a host name like www.example.com (a wildcard has no name to probe)',
    ]);
  });

  it("takes a file target's probe timing: settle 5 s and reload 60 s by default, each named when out of range", () => {
    const c = base();
    const files = {
      kind: 'files',
      name: 'nginx',
      certificates: { ids: ['kv-prod/api'] },
      certPath: '/etc/nginx/site.pem',
      keyPath: '/etc/nginx/site.key',
      validate: { command: 'nginx', args: ['-t'] },
      reload: { command: 'nginx', args: ['-s', 'reload'] },
    };
    const probe = { host: '127.0.0.1', port: 443, servername: 'api.example.com' };
    c.bindings.push(
      { ...files, probe },
      { ...files, name: 'big-nginx', probe: { ...probe, settleSeconds: 10, reloadSeconds: 300 } },
    );
    const ok = parseConfig(c, {}).bindings;
    expect(ok[0]).toMatchObject({ probe: { settleSeconds: 5, reloadSeconds: 60 } });
    expect(ok[1]).toMatchObject({ probe: { settleSeconds: 10, reloadSeconds: 300 } });

    c.bindings[1] = {
      ...files,
      name: 'big-nginx',
      probe: { ...probe, settleSeconds: 601, reloadSeconds: 3601 },
    };
    expect(problems(c)).toEqual([
      'bindings[1].probe.settleSeconds: expected settleSeconds of at most 600',
      'bindings[1].probe.reloadSeconds: expected reloadSeconds of at most 3600',
    ]);
  });

  it('refuses two renewal policies at once', () => {
    const c = { ...base(), defaults: { policy: { lifetimePercentage: 70, daysBeforeExpiry: 30 } } };
    expect(problems(c)).toEqual([
      'defaults.policy: expected lifetimePercentage or daysBeforeExpiry, not both',
    ]);
  });
});

describe('environment overrides', () => {
  it('override the file, numbers converted and levels lower-cased', () => {
    const c = parseConfig(base(), {
      CERTFLOW_TEMPORAL_ADDRESS: 'temporal.prod:7233',
      CERTFLOW_TEMPORAL_NAMESPACE: 'prod',
      CERTFLOW_TASK_QUEUE: 'certflow-blue',
      CERTFLOW_HTTP_PORT: '9100',
      CERTFLOW_LOG_LEVEL: 'DEBUG',
      CERTFLOW_SHUTDOWN_GRACE_SECONDS: '120',
    });
    expect(c.temporal.address).toBe('temporal.prod:7233');
    expect(c.temporal.namespace).toBe('prod');
    expect(c.taskQueue).toBe('certflow-blue');
    expect(c.http.port).toBe(9100);
    expect(c.log.level).toBe('debug');
    expect(c.shutdownGraceSeconds).toBe(120);
  });

  it('name the variable when its value is wrong', () => {
    expect(problems(base(), { CERTFLOW_HTTP_PORT: 'http' })).toEqual([
      'http.port: expected port (a whole number 1-65535) (set by CERTFLOW_HTTP_PORT)',
    ]);
  });

  it('take the Temporal API key by reference, never by value', () => {
    const c = parseConfig(base(), { CERTFLOW_TEMPORAL_API_KEY: SECRET });
    expect(c.temporal.apiKey).toEqual({ env: 'CERTFLOW_TEMPORAL_API_KEY' });
    expect(JSON.stringify(c)).not.toContain(SECRET);
  });
});

describe('loadConfig', () => {
  it('reads a JSON file', () => {
    const file = path.join(tmp, 'ok.json');
    writeFileSync(file, JSON.stringify(base()));
    expect(loadConfig({ file, env: {} }).vaults[0]?.name).toBe('kv-prod');
  });

  it('says where a JSON file is broken without quoting it', () => {
    const file = path.join(tmp, 'broken.json');
    writeFileSync(file, `{\n  "notify": { "password": "${SECRET}" }\n  "x": 1\n}`);
    try {
      loadConfig({ file, env: {} });
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toMatch(/broken\.json: not valid JSON at line 3 column 3/);
      expect((err as Error).message).not.toContain(SECRET);
    }
  });

  it('names a missing file', () => {
    expect(() => loadConfig({ file: path.join(tmp, 'nope.json'), env: {} })).toThrow(
      /nope\.json: cannot read the configuration file \(no such file\)/,
    );
  });

  it('takes the file from CERTFLOW_CONFIG, and works without one', () => {
    const file = path.join(tmp, 'env.json');
    writeFileSync(file, JSON.stringify({ taskQueue: 'from-file' }));
    expect(loadConfig({ env: { CERTFLOW_CONFIG: file } }).taskQueue).toBe('from-file');
    expect(loadConfig({ env: {} }).taskQueue).toBe('certflow');
  });
});

describe('secrets', () => {
  it('resolve from the environment or a file', () => {
    const file = path.join(tmp, 'secret.txt');
    writeFileSync(file, `${SECRET}\n`);
    expect(resolveSecret({ env: 'X' }, { X: SECRET })).toBe(SECRET);
    expect(resolveSecret({ file }, {})).toBe(SECRET);
  });

  it('name the reference when it cannot be resolved', () => {
    expect(() => resolveSecret({ env: 'SMTP_PASSWORD' }, {}, 'notify.email.password')).toThrow(
      /notify\.email\.password: expected the environment variable SMTP_PASSWORD to be set/,
    );
    expect(() => resolveSecret({ file: path.join(tmp, 'missing') }, {}, 'temporal.apiKey')).toThrow(
      /temporal\.apiKey: expected a readable secret file .*missing \(ENOENT\)/,
    );
  });

  it('stay out of the redacted configuration', () => {
    const c = parseConfig(
      {
        ...base(),
        issuers: [
          ...base().issuers,
          {
            kind: 'command',
            name: 'adcs',
            command: '/opt/adcs',
            env: { ADCS_TOKEN: SECRET, PASS: { env: 'P' } },
          },
        ],
        bindings: [
          {
            kind: 'webhook',
            name: 'hook',
            certificates: { ids: ['kv-prod/api'] },
            url: `https://user:${SECRET}@hooks.example.com/x?token=${SECRET}`,
            secret: { env: 'HOOK_SECRET' },
          },
        ],
      },
      {},
    );
    const shown = JSON.stringify(redactedConfig(c));
    expect(shown).not.toContain(SECRET);
    expect(shown).toContain('"PASS":{"env":"P"}');
    expect(shown).toContain('https://hooks.example.com/x?[redacted]');
  });
});

describe('selectBindings', () => {
  const config = {
    bindings: [
      { kind: 'webhook', name: 'by-id', certificates: { ids: ['kv-prod/api'] } },
      { kind: 'webhook', name: 'by-pattern', certificates: { pattern: 'kv-prod/www-*' } },
      {
        kind: 'webhook',
        name: 'by-tag',
        certificates: { pattern: 'kv-test/*', tag: { name: 'Team', value: 'web' } },
      },
      { kind: 'webhook', name: 'everything', certificates: { pattern: '**' } },
    ],
  } as unknown as CertflowConfig;
  const names = (id: string, tags?: Record<string, string>) =>
    selectBindings(config, id, tags).map((b) => b.name);

  it('picks bindings by id, pattern and tag, in configuration order', () => {
    expect(names('kv-prod/api')).toEqual(['by-id', 'everything']);
    expect(names('kv-prod/www-example-com')).toEqual(['by-pattern', 'everything']);
    expect(names('kv-test/www-x', { Team: 'web' })).toEqual(['by-tag', 'everything']);
    expect(names('kv-test/www-x', { Team: 'api' })).toEqual(['everything']);
  });

  it('a tag narrows what ids or pattern pick and never widens it; a tag alone is refused', () => {
    // the tag on a certificate outside the pattern does not route it into the binding
    expect(names('kv-prod/evil', { Team: 'web' })).toEqual(['everything']);
    const c = base();
    c.bindings.push({
      kind: 'webhook',
      name: 'tag-only',
      certificates: { tag: { name: 'Team', value: 'web' } },
      url: 'https://hooks.example.com/x',
      secret: { env: 'S' },
    });
    expect(problems(c)).toEqual([
      'bindings[0].certificates.tag: expected ids or pattern together with tag: a tag only narrows the certificates that ids or pattern pick',
    ]);
  });
});
