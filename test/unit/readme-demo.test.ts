/**
 * What the README says about the demo certificates of `npm start` is what the code does: the dev CA's real
 * validity window (issued for N minutes, back-dated one) and the renewal time the lifecycle computes from it
 * (workflows/policy.ts), for each demo certificate's percentage, with the embedded default's validity.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { readFileSync } from 'node:fs';
import { X509Certificate, webcrypto } from 'node:crypto';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createDevCaIssuer } from '../../activities/issuers/dev-ca';
import type { Issued } from '../../activities/types';
import { DEMO_CERTIFICATES, demoRenewalOffsets } from '../../scripts/embedded/demo';
import { parseOptions } from '../../scripts/embedded/options';
import { renewalTime } from '../../workflows/policy';
import { repoRoot, scratchDir } from '../support/tools';
import { rmSync } from 'node:fs';

const dir = scratchDir('readme-demo');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8').replace(/\s+/g, ' ');

describe('README: the demo certificates', () => {
  it('states the validity and the renewal times the code gives', async () => {
    const { validityMinutes } = parseOptions([], {}, repoRoot)!;
    const ca = createDevCaIssuer({ name: 'demo', dir, validity: { minutes: validityMinutes } });
    const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair;
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: 'CN=localhost',
      keys: keys as x509.Pkcs10CertificateRequestCreateParams['keys'],
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    });
    const before = Date.now();
    const { chainPem } = (await ca.submit({
      certificateId: 'local/demo-site',
      csrPem: csr.toString('pem'),
      dnsNames: ['localhost'],
    })) as Issued;
    const leaf = new X509Certificate(chainPem[0]!);
    const notBefore = new Date(leaf.validFrom).toISOString();
    const notAfter = new Date(leaf.validTo).toISOString();
    const validMinutes = (Date.parse(notAfter) - Date.parse(notBefore)) / 60_000;
    // X.509 times have whole seconds: issuance lies within the second before notBefore + 1 minute
    const issuedAt = Date.parse(notBefore) + 60_000;
    expect(Math.abs(issuedAt - before)).toBeLessThan(2_000);

    expect(readme).toContain(`issues them for ${validityMinutes} minutes and back-dates them one minute`);
    expect(readme).toContain(`so each is valid ${validMinutes} minutes`);
    const offsets = demoRenewalOffsets(validityMinutes);
    for (const [i, c] of DEMO_CERTIFICATES.entries()) {
      const at = renewalTime(
        { version: 'v1', notBefore, notAfter },
        {
          policy: {
            source: 'vault',
            lifetimePercentage: c.lifetimePercentage,
            jitterMinutes: 0,
          },
        },
      )!;
      const s = Math.round((at.getTime() - issuedAt) / 1000);
      expect(offsets[i]!.after, c.name).toBe(`${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`);
    }
    const percents = DEMO_CERTIFICATES.map((c) => c.lifetimePercentage);
    expect(readme).toContain(`renew at ${percents.slice(0, -1).join(', ')} and ${percents.at(-1)} % of that`);
    const times = offsets.map((o) => o.after);
    expect(readme).toContain(
      `which is ${times.slice(0, -1).join(', ')} and ${times.at(-1)} (minutes:seconds) after`,
    );
  });
});
