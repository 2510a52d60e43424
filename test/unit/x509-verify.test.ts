import 'reflect-metadata';
import { webcrypto, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { ApplicationFailure } from '@temporalio/common';
import * as pkijs from 'pkijs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  splitPemChain,
  thumbprintOf,
  verifyIssuedChain,
  type VerifyIssuedChainInput,
} from '../../activities/verify/x509';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
type Algorithm = webcrypto.Algorithm;
type EcdsaParams = webcrypto.EcdsaParams;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type Kind = 'EC' | 'RSA';
const ALG: Record<Kind, webcrypto.RsaHashedKeyGenParams | webcrypto.EcKeyGenParams> = {
  EC: { name: 'ECDSA', namedCurve: 'P-256' },
  RSA: {
    name: 'RSASSA-PKCS1-v1_5',
    modulusLength: 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: 'SHA-256',
  },
};
const SIGN: Record<Kind, Algorithm | EcdsaParams> = {
  EC: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
  RSA: { name: 'RSASSA-PKCS1-v1_5' },
};

const keys = (kind: Kind) =>
  webcrypto.subtle.generateKey(ALG[kind], false, ['sign', 'verify']) as Promise<CryptoKeyPair>;

interface Ca {
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
  kind: Kind;
}

const HOUR = 3600_000;
const NOW = new Date();

async function makeCa(name: string, kind: Kind, parent?: Ca): Promise<Ca> {
  const k = await keys(kind);
  const cert = await x509.X509CertificateGenerator.create({
    subject: `CN=${name}`,
    issuer: parent ? parent.cert.subject : `CN=${name}`,
    notBefore: new Date(NOW.getTime() - 24 * HOUR),
    notAfter: new Date(NOW.getTime() + 24 * HOUR),
    publicKey: k.publicKey,
    signingKey: (parent ?? { keys: k }).keys.privateKey,
    signingAlgorithm: SIGN[(parent ?? { kind }).kind],
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(k.publicKey),
    ],
  });
  return { cert, keys: k, kind };
}

async function makeCsr(k: CryptoKeyPair, kind: Kind, names: string[]): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${names[0]}`,
    keys: k,
    signingAlgorithm: SIGN[kind],
    extensions: [
      new x509.SubjectAlternativeNameExtension(names.map((value) => ({ type: 'dns' as const, value }))),
    ],
  });
  return csr.toString('pem');
}

interface LeafOpts {
  publicKey: CryptoKey;
  issuer: Ca;
  names: string[];
  notBefore?: Date;
  notAfter?: Date;
  eku?: string[] | null;
  ca?: boolean;
  keyUsage?: x509.KeyUsageFlags;
  extraSans?: x509.JsonGeneralNames;
}

async function makeLeaf(o: LeafOpts): Promise<string> {
  const cert = await x509.X509CertificateGenerator.create({
    subject: `CN=${o.names[0]}`,
    issuer: o.issuer.cert.subject,
    notBefore: o.notBefore ?? new Date(NOW.getTime() - HOUR),
    notAfter: o.notAfter ?? new Date(NOW.getTime() + HOUR),
    publicKey: o.publicKey,
    signingKey: o.issuer.keys.privateKey,
    signingAlgorithm: SIGN[o.issuer.kind],
    extensions: [
      new x509.BasicConstraintsExtension(o.ca ?? false, undefined, true),
      new x509.KeyUsagesExtension(o.keyUsage ?? x509.KeyUsageFlags.digitalSignature, true),
      ...(o.eku === null
        ? []
        : [new x509.ExtendedKeyUsageExtension(o.eku ?? [x509.ExtendedKeyUsage.serverAuth])]),
      new x509.SubjectAlternativeNameExtension([
        ...o.names.map((value) => ({ type: 'dns' as const, value })),
        ...(o.extraSans ?? []),
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(o.issuer.keys.publicKey),
    ],
  });
  return cert.toString('pem');
}

async function failureOf(result: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await result;
  } catch (err) {
    expect(err).toBeInstanceOf(ApplicationFailure);
    const f = err as ApplicationFailure;
    expect(f.nonRetryable).toBe(true);
    return f;
  }
  throw new Error('expected verifyIssuedChain to throw');
}

const NAMES = ['app.example.com', 'www.app.example.com'];

describe('verifyIssuedChain', () => {
  let root: Ca; // RSA root
  let inter: Ca; // EC intermediate under the RSA root
  let otherRoot: Ca;
  let ecKeys: CryptoKeyPair;
  let rsaKeys: CryptoKeyPair;
  let ecCsr: string;
  let rsaCsr: string;
  let ecLeaf: string;
  let base: (over: Partial<VerifyIssuedChainInput>) => VerifyIssuedChainInput;

  beforeAll(async () => {
    root = await makeCa('certflow test root', 'RSA');
    inter = await makeCa('certflow test intermediate', 'EC', root);
    otherRoot = await makeCa('certflow other root', 'EC');
    [ecKeys, rsaKeys] = await Promise.all([keys('EC'), keys('RSA')]);
    ecCsr = await makeCsr(ecKeys, 'EC', NAMES);
    rsaCsr = await makeCsr(rsaKeys, 'RSA', NAMES);
    ecLeaf = await makeLeaf({ publicKey: ecKeys.publicKey, issuer: inter, names: NAMES });
    base = (over) => ({
      csrPem: ecCsr,
      chainPem: [ecLeaf, inter.cert.toString('pem')],
      expectedDnsNames: NAMES,
      now: NOW,
      trustAnchorsPem: [root.cert.toString('pem')],
      ...over,
    });
  }, 30_000);

  it('accepts an EC leaf for an EC CSR, chained to the trusted root', async () => {
    const v = await verifyIssuedChain(base({}));
    const node = new X509Certificate(ecLeaf);
    expect(v.thumbprint).toBe(node.fingerprint.replace(/:/g, ''));
    expect(v.sha256).toBe(node.fingerprint256.replace(/:/g, ''));
    expect(v.serialNumber).toBe(node.serialNumber.toUpperCase());
    expect(v.dnsNames.sort()).toEqual([...NAMES].sort());
    expect(v.subject).toBe('CN=app.example.com');
    expect(v.issuer).toBe('CN=certflow test intermediate');
    expect(new Date(v.notAfter).getTime()).toBe(new Date(node.validTo).getTime());
  });

  it('accepts an RSA leaf for an RSA CSR issued directly by the RSA root, names compared case-insensitively', async () => {
    const leaf = await makeLeaf({ publicKey: rsaKeys.publicKey, issuer: root, names: NAMES });
    const v = await verifyIssuedChain(
      base({ csrPem: rsaCsr, chainPem: [leaf], expectedDnsNames: NAMES.map((n) => n.toUpperCase()) }),
    );
    expect(v.thumbprint).toBe(thumbprintOf(leaf));
  });

  it('accepts a chain that includes the trust anchor itself', async () => {
    await expect(
      verifyIssuedChain(base({ chainPem: [ecLeaf, inter.cert.toString('pem'), root.cert.toString('pem')] })),
    ).resolves.toBeDefined();
  });

  it('KeyMismatch: a certificate for another key', async () => {
    const other = await keys('EC');
    const leaf = await makeLeaf({ publicKey: other.publicKey, issuer: inter, names: NAMES });
    const f = await failureOf(verifyIssuedChain(base({ chainPem: [leaf, inter.cert.toString('pem')] })));
    expect(f.type).toBe('KeyMismatch');
    expect(f.message).toMatch(/EC prime256v1|EC P-256/);
  });

  it('KeyMismatch: an RSA certificate for an EC CSR', async () => {
    const leaf = await makeLeaf({ publicKey: rsaKeys.publicKey, issuer: inter, names: NAMES });
    const f = await failureOf(verifyIssuedChain(base({ chainPem: [leaf, inter.cert.toString('pem')] })));
    expect(f.type).toBe('KeyMismatch');
    expect(f.message).toContain('RSA 2048');
  });

  it('NameMismatch: a missing SAN is listed', async () => {
    const leaf = await makeLeaf({ publicKey: ecKeys.publicKey, issuer: inter, names: [NAMES[0]!] });
    const f = await failureOf(verifyIssuedChain(base({ chainPem: [leaf, inter.cert.toString('pem')] })));
    expect(f.type).toBe('NameMismatch');
    expect(f.message).toContain('missing www.app.example.com');
    expect(f.message).not.toContain('unexpected');
  });

  it('NameMismatch: an extra SAN (DNS or IP) is listed', async () => {
    const leaf = await makeLeaf({
      publicKey: ecKeys.publicKey,
      issuer: inter,
      names: [...NAMES, 'evil.example.net'],
      extraSans: [{ type: 'ip', value: '10.0.0.1' }],
    });
    const f = await failureOf(verifyIssuedChain(base({ chainPem: [leaf, inter.cert.toString('pem')] })));
    expect(f.type).toBe('NameMismatch');
    expect(f.message).toContain('unexpected evil.example.net, ip:10.0.0.1');
  });

  it('Expired: beyond the skew; accepted within it', async () => {
    const leaf = await makeLeaf({
      publicKey: ecKeys.publicKey,
      issuer: inter,
      names: NAMES,
      notBefore: new Date(NOW.getTime() - 2 * HOUR),
      notAfter: new Date(NOW.getTime() - 60_000),
    });
    const input = base({ chainPem: [leaf, inter.cert.toString('pem')] });
    expect((await failureOf(verifyIssuedChain({ ...input, maxSkewSeconds: 30 }))).type).toBe('Expired');
    await expect(verifyIssuedChain({ ...input, maxSkewSeconds: 120 })).resolves.toBeDefined();
  });

  it('NotYetValid: beyond the skew; accepted within it', async () => {
    const leaf = await makeLeaf({
      publicKey: ecKeys.publicKey,
      issuer: inter,
      names: NAMES,
      notBefore: new Date(NOW.getTime() + 10 * 60_000),
    });
    const input = base({ chainPem: [leaf, inter.cert.toString('pem')] });
    const f = await failureOf(verifyIssuedChain(input)); // default skew 300 s
    expect(f.type).toBe('NotYetValid');
    expect(f.message).toContain('leaf certificate is not valid before');
    await expect(verifyIssuedChain({ ...input, maxSkewSeconds: 900 })).resolves.toBeDefined();
  });

  it('Expired: an expired intermediate is named', async () => {
    const k = await keys('EC');
    const oldInter = await x509.X509CertificateGenerator.create({
      subject: inter.cert.subject,
      issuer: root.cert.subject,
      notBefore: new Date(NOW.getTime() - 48 * HOUR),
      notAfter: new Date(NOW.getTime() - 24 * HOUR),
      publicKey: k.publicKey,
      signingKey: root.keys.privateKey,
      signingAlgorithm: SIGN.RSA,
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
    });
    const leaf = await makeLeaf({
      publicKey: ecKeys.publicKey,
      issuer: { cert: oldInter, keys: k, kind: 'EC' },
      names: NAMES,
    });
    const f = await failureOf(verifyIssuedChain(base({ chainPem: [leaf, oldInter.toString('pem')] })));
    expect(f.type).toBe('Expired');
    expect(f.message).toContain('chain certificate #1');
  });

  it('BrokenChain: the wrong issuer next in the chain; a missing intermediate is Untrusted', async () => {
    const f = await failureOf(verifyIssuedChain(base({ chainPem: [ecLeaf, root.cert.toString('pem')] })));
    expect(f.type).toBe('BrokenChain');
    expect(f.message).toContain('was not issued by the next certificate');
    const g = await failureOf(verifyIssuedChain(base({ chainPem: [ecLeaf] })));
    expect(g.type).toBe('Untrusted');
  });

  it('BrokenChain: an impostor intermediate with the same name but another key', async () => {
    const impostor = await makeCa('certflow test intermediate', 'EC', root);
    // no AKI in the leaf, so the name check passes and only the signature reveals it
    const leafNoAki = await x509.X509CertificateGenerator.create({
      subject: 'CN=app.example.com',
      issuer: inter.cert.subject,
      notBefore: new Date(NOW.getTime() - HOUR),
      notAfter: new Date(NOW.getTime() + HOUR),
      publicKey: ecKeys.publicKey,
      signingKey: inter.keys.privateKey,
      signingAlgorithm: SIGN.EC,
      extensions: [
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.SubjectAlternativeNameExtension(NAMES.map((value) => ({ type: 'dns' as const, value }))),
      ],
    });
    const good = base({ chainPem: [leafNoAki.toString('pem'), inter.cert.toString('pem')] });
    await expect(verifyIssuedChain(good)).resolves.toBeDefined();
    const f = await failureOf(
      verifyIssuedChain({ ...good, chainPem: [leafNoAki.toString('pem'), impostor.cert.toString('pem')] }),
    );
    expect(f.type).toBe('BrokenChain');
    expect(f.message).toContain('signature does not verify');
  });

  it('Untrusted: a chain to another root', async () => {
    const f = await failureOf(verifyIssuedChain(base({ trustAnchorsPem: [otherRoot.cert.toString('pem')] })));
    expect(f.type).toBe('Untrusted');
    expect(f.message).toContain("issued by 'CN=certflow test root'");
  });

  it('parsed anchors are reused per text, never across texts: each call is judged by the anchors it gives', async () => {
    const rootPem = root.cert.toString('pem');
    const otherPem = otherRoot.cert.toString('pem');
    for (let i = 0; i < 3; i++) {
      await expect(verifyIssuedChain(base({ trustAnchorsPem: [rootPem] }))).resolves.toBeDefined();
      expect((await failureOf(verifyIssuedChain(base({ trustAnchorsPem: [otherPem] })))).type).toBe(
        'Untrusted',
      );
      // a bundle that also holds the right root is another text, trusted on its own merits
      await expect(verifyIssuedChain(base({ trustAnchorsPem: [otherPem, rootPem] }))).resolves.toBeDefined();
      await expect(
        verifyIssuedChain(base({ trustAnchorsPem: [`${otherPem}${rootPem}`] })),
      ).resolves.toBeDefined();
    }
    // many distinct anchor sets (beyond what is kept) do not change the verdict for the first ones
    for (let i = 0; i < 40; i++)
      expect(
        (await failureOf(verifyIssuedChain(base({ trustAnchorsPem: [otherPem, `\n${' '.repeat(i)}`] }))))
          .type,
      ).toBe('Untrusted');
    await expect(verifyIssuedChain(base({ trustAnchorsPem: [rootPem] }))).resolves.toBeDefined();
    expect((await failureOf(verifyIssuedChain(base({ trustAnchorsPem: [otherPem] })))).type).toBe(
      'Untrusted',
    );
  });

  it('Untrusted by default: without trustAnchorsPem the chain must lead to a public web PKI root', async () => {
    const { trustAnchorsPem: _none, ...noAnchors } = base({});
    const f = await failureOf(verifyIssuedChain(noAnchors));
    expect(f.type).toBe('Untrusted');
    expect(f.message).toContain("issued by 'CN=certflow test root'");
    expect(f.message).toMatch(/public web PKI roots/);
    expect(f.message).toMatch(/trustAnchorsPem/);
    // the root itself at the end of the chain does not make it trusted either
    const withRoot = {
      ...noAnchors,
      chainPem: [ecLeaf, inter.cert.toString('pem'), root.cert.toString('pem')],
    };
    expect((await failureOf(verifyIssuedChain(withRoot))).type).toBe('Untrusted');
  });

  it('an explicit empty trustAnchorsPem skips the trust check (and only that)', async () => {
    await expect(verifyIssuedChain(base({ trustAnchorsPem: [] }))).resolves.toBeDefined();
    const broken = base({ trustAnchorsPem: [], chainPem: [ecLeaf, root.cert.toString('pem')] });
    expect((await failureOf(verifyIssuedChain(broken))).type).toBe('BrokenChain');
  });

  it('Untrusted: anchors given as text that holds no certificate are refused, not ignored', async () => {
    const f = await failureOf(verifyIssuedChain(base({ trustAnchorsPem: ['not a certificate'] })));
    expect(f.type).toBe('Untrusted');
    expect(f.message).toMatch(/no certificate/);
  });

  it('accepts a chain whose upper part is a cross-signature, trusted at the anchor it reaches', async () => {
    // the root re-issued under another CA (same name and key): a chain may end with it
    const crossSigned = await x509.X509CertificateGenerator.create({
      subject: root.cert.subject,
      issuer: otherRoot.cert.subject,
      notBefore: new Date(NOW.getTime() - HOUR),
      notAfter: new Date(NOW.getTime() + HOUR),
      publicKey: root.keys.publicKey,
      signingKey: otherRoot.keys.privateKey,
      signingAlgorithm: SIGN.EC,
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
    });
    const chainPem = [ecLeaf, inter.cert.toString('pem'), crossSigned.toString('pem')];
    await expect(verifyIssuedChain(base({ chainPem }))).resolves.toBeDefined(); // anchored at root
    await expect(
      verifyIssuedChain(base({ chainPem, trustAnchorsPem: [otherRoot.cert.toString('pem')] })),
    ).resolves.toBeDefined();
    const stranger = await makeCa('certflow stranger root', 'EC');
    expect(
      (
        await failureOf(
          verifyIssuedChain(base({ chainPem, trustAnchorsPem: [stranger.cert.toString('pem')] })),
        )
      ).type,
    ).toBe('Untrusted');
  });

  it('WrongUsage: clientAuth-only EKU, CA:TRUE leaf, keyUsage without digitalSignature', async () => {
    const chain = async (o: Partial<LeafOpts>) => [
      await makeLeaf({ publicKey: ecKeys.publicKey, issuer: inter, names: NAMES, ...o }),
      inter.cert.toString('pem'),
    ];
    const cases: [Partial<LeafOpts>, RegExp][] = [
      [{ eku: [x509.ExtendedKeyUsage.clientAuth] }, /lacks serverAuth/],
      [{ ca: true }, /is a CA certificate/],
      [{ keyUsage: x509.KeyUsageFlags.keyEncipherment }, /lacks digitalSignature/],
    ];
    for (const [o, re] of cases) {
      const c = await chain(o);
      const f = await failureOf(verifyIssuedChain(base({ chainPem: c })));
      expect(f.type).toBe('WrongUsage');
      expect(f.message).toMatch(re);
    }
    // no EKU at all is fine (any usage)
    const noEku = await chain({ eku: null });
    await expect(verifyIssuedChain(base({ chainPem: noEku }))).resolves.toBeDefined();
  });

  it('Unparseable: an empty chain, garbage bytes, a mangled PEM, a non-PEM CSR', async () => {
    expect((await failureOf(verifyIssuedChain(base({ chainPem: [] })))).type).toBe('Unparseable');
    const garbage = Buffer.from(webcrypto.getRandomValues(new Uint8Array(200))).toString('latin1');
    expect((await failureOf(verifyIssuedChain(base({ chainPem: [garbage] })))).type).toBe('Unparseable');
    const mangled = `-----BEGIN CERTIFICATE-----\n${Buffer.from('not a certificate at all').toString('base64')}\n-----END CERTIFICATE-----\n`;
    const f = await failureOf(verifyIssuedChain(base({ chainPem: [mangled] })));
    expect(f.type).toBe('Unparseable');
    expect(f.message).toContain('leaf certificate could not be parsed');
    const g = await failureOf(verifyIssuedChain(base({ csrPem: 'MIIBIjANBgkqh' })));
    expect(g.type).toBe('Unparseable');
    expect(g.message).toContain('CSR is not PEM');
  });
});

describe('verifyIssuedChain: RFC 5280 path validation (pkijs)', () => {
  interface CaOpts {
    pathLen?: number;
    permitted?: string[];
    excluded?: string[];
    notAfter?: Date;
  }
  /** A CA with optional pathLenConstraint and DNS name constraints (built with pkijs' NameConstraints). */
  async function ca(name: string, parent: Ca | undefined, o: CaOpts = {}): Promise<Ca> {
    const k = await keys('EC');
    const subtrees = (names: string[] = []) =>
      names.map((value) => new pkijs.GeneralSubtree({ base: new pkijs.GeneralName({ type: 2, value }) }));
    const constraints =
      o.permitted || o.excluded
        ? [
            new x509.Extension(
              '2.5.29.30',
              true,
              new pkijs.NameConstraints({
                ...(o.permitted ? { permittedSubtrees: subtrees(o.permitted) } : {}),
                ...(o.excluded ? { excludedSubtrees: subtrees(o.excluded) } : {}),
              })
                .toSchema()
                .toBER(false),
            ),
          ]
        : [];
    const cert = await x509.X509CertificateGenerator.create({
      subject: `CN=${name}`,
      issuer: parent ? parent.cert.subject : `CN=${name}`,
      notBefore: new Date(NOW.getTime() - 24 * HOUR),
      notAfter: o.notAfter ?? new Date(NOW.getTime() + 24 * HOUR),
      publicKey: k.publicKey,
      signingKey: (parent ?? { keys: k }).keys.privateKey,
      signingAlgorithm: SIGN.EC,
      extensions: [
        new x509.BasicConstraintsExtension(true, o.pathLen, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(k.publicKey),
        ...(parent ? [await x509.AuthorityKeyIdentifierExtension.create(parent.keys.publicKey)] : []),
        ...constraints,
      ],
    });
    return { cert, keys: k, kind: 'EC' };
  }

  let leafKeys: CryptoKeyPair;
  let csr: string;
  beforeAll(async () => {
    leafKeys = await keys('EC');
    csr = await makeCsr(leafKeys, 'EC', NAMES);
  });
  const pem = (c: Ca) => c.cert.toString('pem');
  const input = (chainPem: string[], anchor: Ca): VerifyIssuedChainInput => ({
    csrPem: csr,
    chainPem,
    expectedDnsNames: NAMES,
    now: NOW,
    trustAnchorsPem: [pem(anchor)],
  });

  it('ChainConstraint: two intermediates below a CA whose pathLenConstraint is 0', async () => {
    const root = await ca('pl root', undefined);
    const upper = await ca('pl upper', root, { pathLen: 0 });
    const lower = await ca('pl lower', upper);
    const leaf = await makeLeaf({ publicKey: leafKeys.publicKey, issuer: lower, names: NAMES });
    const f = await failureOf(verifyIssuedChain(input([leaf, pem(lower), pem(upper)], root)));
    expect(f.type).toBe('ChainConstraint');
    expect(f.message).toContain("'CN=pl upper' allows 0 intermediate CA certificate(s) below it");
    // the same limit on the anchor itself counts as well
    const tightRoot = await ca('pl tight root', undefined, { pathLen: 0 });
    const mid = await ca('pl mid', tightRoot);
    const low = await ca('pl low', mid);
    const leaf2 = await makeLeaf({ publicKey: leafKeys.publicKey, issuer: low, names: NAMES });
    expect((await failureOf(verifyIssuedChain(input([leaf2, pem(low), pem(mid)], tightRoot)))).type).toBe(
      'ChainConstraint',
    );
    // pathLen 1 allows the one intermediate below it
    const okUpper = await ca('pl ok upper', root, { pathLen: 1 });
    const okLower = await ca('pl ok lower', okUpper);
    const okLeaf = await makeLeaf({ publicKey: leafKeys.publicKey, issuer: okLower, names: NAMES });
    await expect(verifyIssuedChain(input([okLeaf, pem(okLower), pem(okUpper)], root))).resolves.toBeDefined();
  });

  it('ChainConstraint: a leaf outside the permitted names or inside the excluded names of its CA', async () => {
    const root = await ca('nc root', undefined);
    const elsewhere = await ca('nc elsewhere', root, { permitted: ['example.org'] });
    const leaf = await makeLeaf({ publicKey: leafKeys.publicKey, issuer: elsewhere, names: NAMES });
    const f = await failureOf(verifyIssuedChain(input([leaf, pem(elsewhere)], root)));
    expect(f.type).toBe('ChainConstraint');
    expect(f.message).toMatch(/permitted sub-trees/);

    const excluding = await ca('nc excluding', root, { excluded: ['www.app.example.com'] });
    const leaf2 = await makeLeaf({ publicKey: leafKeys.publicKey, issuer: excluding, names: NAMES });
    const g = await failureOf(verifyIssuedChain(input([leaf2, pem(excluding)], root)));
    expect(g.type).toBe('ChainConstraint');
    expect(g.message).toMatch(/excluded sub-trees/);

    const fitting = await ca('nc fitting', root, { permitted: ['app.example.com'] });
    const leaf3 = await makeLeaf({ publicKey: leafKeys.publicKey, issuer: fitting, names: NAMES });
    await expect(verifyIssuedChain(input([leaf3, pem(fitting)], root))).resolves.toBeDefined();
  });

  it('Untrusted: a trust anchor that has expired', async () => {
    const oldRoot = await ca('expired root', undefined, { notAfter: new Date(NOW.getTime() - HOUR) });
    const inter = await ca('under expired root', oldRoot);
    const leaf = await makeLeaf({ publicKey: leafKeys.publicKey, issuer: inter, names: NAMES });
    const f = await failureOf(verifyIssuedChain(input([leaf, pem(inter)], oldRoot)));
    expect(f.type).toBe('Untrusted');
    expect(f.message).toContain("trust anchor 'CN=expired root' is not valid at");
  });

  it("NameNotAllowed: the issued names are checked against the issuer's allowedNames", async () => {
    const root = await ca('an root', undefined);
    const leaf = await makeLeaf({ publicKey: leafKeys.publicKey, issuer: root, names: NAMES });
    const base = input([leaf], root);
    await expect(
      verifyIssuedChain({ ...base, allowedNames: { issuer: 'le', patterns: ['**.example.com'] } }),
    ).resolves.toBeDefined();
    const f = await failureOf(
      verifyIssuedChain({ ...base, allowedNames: { issuer: 'le', patterns: ['*.example.com'] } }),
    );
    expect(f.type).toBe('NameNotAllowed');
    expect(f.message).toContain(
      'issuer "le" may not issue for www.app.example.com (in the issued certificate)',
    );
  });
});

describe('splitPemChain / thumbprintOf', () => {
  it('splits a bundle with noise and CRLF into normalised PEMs, leaf first', async () => {
    const root = await makeCa('split root', 'EC');
    const inter = await makeCa('split inter', 'EC', root);
    const a = inter.cert.toString('pem');
    const b = root.cert.toString('pem');
    const text = `subject=foo\r\n${a.replace(/\n/g, '\r\n')}\r\n\r\nsome text\n${b}`;
    const parts = splitPemChain(text);
    expect(parts).toHaveLength(2);
    expect(new X509Certificate(parts[0]!).subject).toBe('CN=split inter');
    expect(new X509Certificate(parts[1]!).subject).toBe('CN=split root');
    expect(parts[0]).toMatch(/^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+\n-----END CERTIFICATE-----\n$/);
    expect(thumbprintOf(parts[1]!)).toBe(new X509Certificate(b).fingerprint.replace(/:/g, ''));
    expect(splitPemChain('nothing here')).toEqual([]);
  });
});
