/**
 * The secret behind a Key Vault certificate, split into a PKCS#8 key and a PEM chain (leaf first).
 * Key Vault serves it as PEM (application/x-pem-file) or as a password-less PKCS#12 in base64
 * (application/x-pkcs12, the default). Errors here name the problem, never the value.
 */
import crypto, { X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import { toPem } from './azure-key-vault-convert';

export interface ExportedSecret {
  keyPem: string;
  chainPem: string[];
}

/** The secret carries certificates but no key: how Key Vault serves a certificate whose key is not exportable. */
export class SecretWithoutKeyError extends Error {
  constructor() {
    super('the secret holds no private key');
  }
}

export function parseCertificateSecret(value: string, contentType: string | undefined): ExportedSecret {
  const { key, certs } =
    contentType === 'application/x-pem-file' || (!contentType && value.includes('-----BEGIN'))
      ? fromPem(value)
      : fromPkcs12(value);
  if (certs.length === 0) throw new Error('the secret holds no certificate');
  if (!key) throw new SecretWithoutKeyError();
  const spki = crypto.createPublicKey(key).export({ type: 'spki', format: 'der' });
  const leafAt = certs.findIndex((c) =>
    new X509Certificate(c).publicKey.export({ type: 'spki', format: 'der' }).equals(spki),
  );
  if (leafAt < 0) throw new Error('none of the certificates in the secret matches its private key');
  const ordered = [certs[leafAt] as Buffer, ...certs.filter((_, i) => i !== leafAt)];
  return {
    keyPem: key.export({ type: 'pkcs8', format: 'pem' }) as string,
    chainPem: ordered.map((der) => toPem(der, 'CERTIFICATE')),
  };
}

function fromPem(value: string): { key: crypto.KeyObject | undefined; certs: Buffer[] } {
  const keyBlock =
    /-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----[\s\S]*?-----END (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/.exec(
      value,
    );
  let key: crypto.KeyObject | undefined;
  if (keyBlock) {
    try {
      key = crypto.createPrivateKey(keyBlock[0]);
    } catch {
      throw new Error("the secret's PEM private key could not be read");
    }
  }
  const certs = [...value.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)].map(
    (m) => Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64'),
  );
  return { key, certs };
}

function fromPkcs12(value: string): { key: crypto.KeyObject | undefined; certs: Buffer[] } {
  let p12: forge.pkcs12.Pkcs12Pfx;
  try {
    const der = forge.util.decode64(value.replace(/\s+/g, ''));
    p12 = forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(der), '');
  } catch {
    throw new Error('the secret is not a password-less PKCS#12 in base64');
  }
  const toBuffer = (asn: forge.asn1.Asn1) => Buffer.from(forge.asn1.toDer(asn).getBytes(), 'binary');
  // node-forge decodes RSA only; for EC it leaves the raw ASN.1 on the bag, which node:crypto reads
  const keyBags = [forge.pki.oids.pkcs8ShroudedKeyBag, forge.pki.oids.keyBag].flatMap(
    (t) => p12.getBags({ bagType: t as string })[t as string] ?? [],
  );
  const keyBag = keyBags[0] as (forge.pkcs12.Bag & { asn1?: forge.asn1.Asn1 }) | undefined;
  let key: crypto.KeyObject | undefined;
  if (keyBag) {
    const asn = keyBag.key
      ? forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(keyBag.key as forge.pki.rsa.PrivateKey))
      : keyBag.asn1;
    if (asn) key = crypto.createPrivateKey({ key: toBuffer(asn), format: 'der', type: 'pkcs8' });
  }
  const certBags = (p12.getBags({ bagType: forge.pki.oids.certBag as string })[
    forge.pki.oids.certBag as string
  ] ?? []) as (forge.pkcs12.Bag & { asn1?: forge.asn1.Asn1 })[];
  const certs = certBags.flatMap((b) => {
    const asn = b.cert ? forge.pki.certificateToAsn1(b.cert) : b.asn1;
    return asn ? [toBuffer(asn)] : [];
  });
  return { key, certs };
}
