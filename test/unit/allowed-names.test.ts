/**
 * An issuer's allowedNames, from the configuration to the CA and back: the issuer built by buildDeps refuses a
 * request (or a CSR) with a name outside its globs before anything reaches the CA, and the verify activity
 * refuses an issued chain with such a name. A real local vault makes the CSRs, a real dev CA issues.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createActivities } from '../../activities/index';
import { withAllowedNames } from '../../activities/issuers/allowed-names';
import type { Issued, Issuer, Vault } from '../../activities/types';
import { ConfigError, parseConfig } from '../../worker/config';
import { buildDeps, type BuiltDeps } from '../../worker/deps';

const tmp = mkdtempSync(path.join(tmpdir(), 'certflow-allowed-'));
const env = { VAULT_KEY: Buffer.alloc(32, 9).toString('base64') };
const caDir = path.join(tmp, 'ca');

const config = (allowedNames: unknown) => ({
  vaults: [{ kind: 'local', name: 'lv', dir: path.join(tmp, 'vault'), encryptionKey: { env: 'VAULT_KEY' } }],
  issuers: [
    { kind: 'dev-ca', name: 'guarded', dir: caDir, validity: { days: 1 }, allowedNames },
    // the same CA without a limit: issues what the guarded one refuses, for the verify step to catch
    { kind: 'dev-ca', name: 'open', dir: caDir, validity: { days: 1 } },
  ],
});

let deps: BuiltDeps;
let vault: Vault;

async function csrFor(name: string, dnsNames: string[]): Promise<string> {
  const { csrPem } = await vault.create(name, {
    subject: `CN=${dnsNames[0]}`,
    dnsNames,
    issuerName: 'Unknown',
    key: { keyType: 'EC', curve: 'P-256', reuseKey: false, exportable: true },
  });
  return csrPem;
}

async function failure(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

beforeAll(async () => {
  deps = await buildDeps(parseConfig(config(['*.allowed.test', 'allowed.test']), env), { env });
  vault = deps.vaults.get('lv')!;
});
afterAll(async () => {
  await deps?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('allowedNames', () => {
  it('is validated as DNS-name globs, each problem under its field', () => {
    const err = (() => {
      try {
        parseConfig(config(['*.ok.test', 'bad name.test', '**']), env);
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error('expected a ConfigError');
    })();
    expect(err.issues.map((i) => i.path)).toEqual([
      'issuers[0].allowedNames[1]',
      'issuers[0].allowedNames[2]',
    ]);
    expect(err.issues[0]!.message).toMatch(/label "bad name"/);
    expect(err.issues[1]!.message).toMatch(/at least one literal label/);
    expect(() => parseConfig(config([]), env)).toThrow(/at least one DNS name glob/);
  });

  it('refuses a request for a name outside the globs before the CA is asked', async () => {
    const guarded = deps.issuers.get('guarded')!;
    const csrPem = await csrFor('evil', ['login.evil.test']);
    const f = await failure(
      guarded.submit({ certificateId: 'lv/evil', csrPem, dnsNames: ['login.evil.test'] }),
    );
    expect(f.type).toBe('NameNotAllowed');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain('issuer "guarded" may not issue for login.evil.test (requested)');
    expect(f.message).toContain('"*.allowed.test", "allowed.test"');
    // one label deep only: a name two labels below is outside "*.allowed.test"
    const deep = await csrFor('deep', ['a.b.allowed.test']);
    expect(
      (
        await failure(
          guarded.submit({ certificateId: 'lv/deep', csrPem: deep, dnsNames: ['a.b.allowed.test'] }),
        )
      ).type,
    ).toBe('NameNotAllowed');
  });

  it('refuses a CSR that carries a name the request does not (the CA signs the CSR)', async () => {
    const guarded = deps.issuers.get('guarded')!;
    const csrPem = await csrFor('sneaky', ['www.allowed.test', 'mail.evil.test']);
    const f = await failure(
      guarded.submit({ certificateId: 'lv/sneaky', csrPem, dnsNames: ['www.allowed.test'] }),
    );
    expect(f.type).toBe('NameNotAllowed');
    expect(f.message).toContain('mail.evil.test (in the CSR)');
  });

  it('issues for names inside the globs', async () => {
    const csrPem = await csrFor('fine', ['www.allowed.test', 'allowed.test']);
    const out = (await deps.issuers.get('guarded')!.submit({
      certificateId: 'lv/fine',
      csrPem,
      dnsNames: ['www.allowed.test', 'allowed.test'],
    })) as Issued;
    expect(out.status).toBe('issued');
    const activities = createActivities(deps);
    const v = await activities.verify({
      certificateId: 'lv/fine',
      csrPem,
      chainPem: out.chainPem,
      dnsNames: ['www.allowed.test', 'allowed.test'],
      issuer: 'guarded',
    });
    expect(v.dnsNames.sort()).toEqual(['allowed.test', 'www.allowed.test']);
  });

  it('refuses, in the verify step, an issued chain whose names are outside the globs', async () => {
    const csrPem = await csrFor('stray', ['stray.evil.test']);
    const out = (await deps.issuers.get('open')!.submit({
      certificateId: 'lv/stray',
      csrPem,
      dnsNames: ['stray.evil.test'],
    })) as Issued;
    const activities = createActivities(deps);
    const input = {
      certificateId: 'lv/stray',
      csrPem,
      chainPem: out.chainPem,
      dnsNames: ['stray.evil.test'],
    };
    await expect(activities.verify({ ...input, issuer: 'open' })).resolves.toBeDefined();
    const f = await failure(activities.verify({ ...input, issuer: 'guarded' }));
    expect(f.type).toBe('NameNotAllowed');
    expect(f.message).toContain('stray.evil.test (in the issued certificate)');
    // the lifecycle's verify-and-merge step too: refused, and nothing merged
    const g = await failure(activities.verifyAndMerge({ ...input, issuer: 'guarded' }));
    expect(g.type).toBe('NameNotAllowed');
    expect((await vault.describe('stray')).version).toBeNull();
  });

  it('keeps the wrapped issuer whole: poll is guarded too, the ARI window passes through', async () => {
    const inner: Issuer = {
      name: 'inner',
      submit: vi.fn(),
      poll: vi.fn(),
      renewalWindow: vi.fn(async () => null),
    };
    const wrapped = withAllowedNames(inner, ['*.allowed.test']);
    const csrPem = await csrFor('polled', ['x.evil.test']);
    const f = await failure(
      wrapped.poll('order-1', { certificateId: 'lv/polled', csrPem, dnsNames: ['x.evil.test'] }),
    );
    expect(f.type).toBe('NameNotAllowed');
    expect(inner.poll).not.toHaveBeenCalled();
    expect(inner.submit).not.toHaveBeenCalled();
    await wrapped.renewalWindow!('pem');
    expect(inner.renewalWindow).toHaveBeenCalledWith('pem');
  });
});
