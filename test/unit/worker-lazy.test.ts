/**
 * The worker loads an adapter's packages only when the configuration uses that kind (worker/deps-*.ts import
 * them at start, by kind): a worker with a local vault and the dev CA never loads the Azure SDK, acme-client,
 * ssh2 or nodemailer (about a second of start-up). Checked in a child process (a fresh module cache) through tsx
 * as in development, with a resolve hook recording every module loaded through import.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../support/tools';

const tmp = mkdtempSync(path.join(tmpdir(), 'certflow-lazy-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const HOOK = `
let port;
export function initialize(data) { port = data.port; }
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  port.postMessage(r.url);
  return r;
}`;

/** The packages (and first-party modules) loaded by building the dependencies of `config`. */
function loadedBy(config: Record<string, unknown>, env: Record<string, string>): string[] {
  const script = `
    import { register, createRequire } from 'node:module';
    import { MessageChannel } from 'node:worker_threads';
    const urls = [];
    const { port1, port2 } = new MessageChannel();
    port1.on('message', (u) => urls.push(u));
    register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(HOOK)}), {
      data: { port: port2 },
      transferList: [port2],
    });
    const { parseConfig } = await import('./worker/config.ts');
    const { buildDeps } = await import('./worker/deps.ts');
    const deps = await buildDeps(parseConfig(${JSON.stringify(config)}, {}), { env: ${JSON.stringify(env)} });
    await deps.close();
    await new Promise((r) => setTimeout(r, 100));
    port1.close();
    const cjs = Object.keys(createRequire(import.meta.url).cache).map((f) => 'file://' + f);
    process.stdout.write(JSON.stringify([...urls, ...cjs]));
  `;
  const stdout = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  return [...new Set(JSON.parse(stdout) as string[])];
}

const packagesOf = (urls: string[]) =>
  [
    ...new Set(
      urls.flatMap((u) => {
        const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u);
        return m ? [m[1]!] : [];
      }),
    ),
  ].sort();

const ADAPTER_PACKAGES = [
  '@azure/identity',
  '@azure/keyvault-certificates',
  '@azure/keyvault-secrets',
  '@azure/arm-appservice',
  '@azure/arm-network',
  '@azure/arm-cdn',
  '@azure/arm-apimanagement',
  '@azure/arm-dns',
  '@azure/arm-certificateregistration',
  'acme-client',
  'ssh2',
  'nodemailer',
];

describe('the worker loads the adapters of the configured kinds only', () => {
  const key = Buffer.alloc(32, 7).toString('base64');

  it('a local vault and the dev CA load no Azure SDK, acme-client, ssh2 or nodemailer', () => {
    const loaded = loadedBy(
      {
        vaults: [{ kind: 'local', name: 'v', dir: path.join(tmp, 'v1'), encryptionKey: { env: 'K' } }],
        issuers: [{ kind: 'dev-ca', name: 'dev', dir: path.join(tmp, 'ca1'), validity: { days: 30 } }],
        bindings: [
          {
            kind: 'files',
            name: 'f',
            certificates: { pattern: 'v/*' },
            certPath: path.join(tmp, 'c.pem'),
            keyPath: path.join(tmp, 'k.pem'),
            validate: { command: 'true', args: [] },
            reload: { command: 'true', args: [] },
          },
        ],
      },
      { K: key },
    );
    const packages = packagesOf(loaded);
    expect(packages.filter((p) => ADAPTER_PACKAGES.includes(p))).toEqual([]);
    // and the check sees packages at all
    expect(packages).toContain('@temporalio/common');
  });

  it('an Azure vault, ACME and mail load their packages (and still no ssh2 or ARM client)', () => {
    const loaded = packagesOf(
      loadedBy(
        {
          vaults: [{ kind: 'azure', name: 'kv', url: 'https://kv.vault.azure.net' }],
          issuers: [
            {
              kind: 'acme',
              name: 'le',
              directoryUrl: 'https://127.0.0.1:14000/dir',
              contactEmail: 'pki@example.com',
              accountKeySecretName: 'acme-le',
              http01: { kind: 'webroot', webroot: path.join(tmp, 'webroot') },
            },
          ],
          notify: { email: { host: '127.0.0.1', port: 2525, from: 'certflow <c@example.test>' } },
        },
        {},
      ),
    );
    for (const p of ['@azure/identity', '@azure/keyvault-certificates', 'acme-client', 'nodemailer'])
      expect(loaded).toContain(p);
    for (const p of ['ssh2', '@azure/arm-network', '@azure/arm-appservice']) expect(loaded).not.toContain(p);
  });
});
