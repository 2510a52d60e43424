/**
 * PKCS#12 (PFX) from a PEM key and chain, for servers that want one file with a password: IIS and http.sys
 * (imported into LocalMachine\My), Java keystores (keytool imports PKCS#12; Java 9+ reads it directly), Tomcat,
 * Exchange. Built with PKIjs, because node-forge reads RSA keys only and ACME CAs issue EC certificates routinely.
 *
 * Protection as current OpenSSL and Windows Server 2019+ write it: the key in a PKCS#8 shrouded bag and the
 * certificates in an encrypted safe, both PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC), and a SHA-256 HMAC over the
 * whole file. The leaf and the key carry the same localKeyId (SHA-1 of the leaf) and friendly name, which is how
 * Windows pairs them on import. The password is generated per file (`newPkcs12Password`), ASCII only.
 */
import { X509Certificate, createHash, createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

const OID = {
  shroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  friendlyName: '1.2.840.113549.1.9.20',
  localKeyId: '1.2.840.113549.1.9.21',
};
const ITERATIONS = 10_000;
const PROTECTION = {
  contentEncryptionAlgorithm: { name: 'AES-CBC', length: 256 },
  hmacHashAlgorithm: 'SHA-256',
  iterationCount: ITERATIONS,
};

let engine: pkijs.ICryptoEngine | undefined;
/** Node's WebCrypto as PKIjs's engine (PKIjs looks for a browser's `self.crypto` by default). */
function cryptoEngine(): pkijs.ICryptoEngine {
  engine ??= new pkijs.CryptoEngine({
    name: 'node',
    crypto: webcrypto as unknown as ConstructorParameters<typeof pkijs.CryptoEngine>[0]['crypto'],
  });
  return engine;
}

/** A random password for one PKCS#12 file: 32 characters of base64url (192 bits). */
export function newPkcs12Password(): string {
  return randomBytes(24).toString('base64url');
}

const derOf = (pem: string) => Buffer.from(new X509Certificate(pem).raw);
const toArrayBuffer = (b: Buffer): ArrayBuffer =>
  b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
const parse = (b: Buffer) => {
  const asn = asn1js.fromBER(toArrayBuffer(b));
  if (asn.offset === -1) throw new Error('PKCS#12: cannot parse DER');
  return asn.result;
};

function bagAttributes(localKeyId: Buffer, friendlyName: string): pkijs.Attribute[] {
  return [
    new pkijs.Attribute({
      type: OID.localKeyId,
      values: [new asn1js.OctetString({ valueHex: toArrayBuffer(localKeyId) })],
    }),
    new pkijs.Attribute({ type: OID.friendlyName, values: [new asn1js.BmpString({ value: friendlyName })] }),
  ];
}

/**
 * The PFX (DER) holding `keyPem` and the chain (leaf first). `friendlyName` is what certlm.msc shows; default
 * the leaf's thumbprint.
 */
export async function toPkcs12(
  keyPem: string,
  chainPem: string[],
  password: string,
  friendlyName?: string,
): Promise<Buffer> {
  if (!/^[\x20-\x7e]+$/.test(password)) throw new Error('PKCS#12: the password must be printable ASCII');
  const [leafPem, ...rest] = chainPem;
  if (!leafPem) throw new Error('PKCS#12: the chain is empty');
  const crypto = cryptoEngine();
  const leafDer = derOf(leafPem);
  const localKeyId = createHash('sha1').update(leafDer).digest();
  const name = friendlyName ?? localKeyId.toString('hex').toUpperCase();
  const pkcs8 = createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'der' });
  const pass = toArrayBuffer(Buffer.from(password, 'ascii'));

  const keyBag = new pkijs.SafeBag({
    bagId: OID.shroudedKeyBag,
    bagValue: new pkijs.PKCS8ShroudedKeyBag({
      parsedValue: new pkijs.PrivateKeyInfo({ schema: parse(pkcs8) }),
    }),
    bagAttributes: bagAttributes(localKeyId, name),
  });
  const certBags = [leafDer, ...rest.map(derOf)].map(
    (der, i) =>
      new pkijs.SafeBag({
        bagId: OID.certBag,
        bagValue: new pkijs.CertBag({ parsedValue: new pkijs.Certificate({ schema: parse(der) }) }),
        ...(i === 0 ? { bagAttributes: bagAttributes(localKeyId, name) } : {}),
      }),
  );
  const pfx = new pkijs.PFX({
    parsedValue: {
      integrityMode: 0, // password-based integrity (HMAC)
      authenticatedSafe: new pkijs.AuthenticatedSafe({
        parsedValue: {
          safeContents: [
            { privacyMode: 0, value: new pkijs.SafeContents({ safeBags: [keyBag] }) },
            { privacyMode: 1, value: new pkijs.SafeContents({ safeBags: certBags }) },
          ],
        },
      }),
    },
  });
  await (keyBag.bagValue as pkijs.PKCS8ShroudedKeyBag).makeInternalValues(
    { password: pass, ...PROTECTION },
    crypto,
  );
  await pfx.parsedValue!.authenticatedSafe!.makeInternalValues(
    { safeContents: [{}, { password: pass, ...PROTECTION }] },
    crypto,
  );
  await pfx.makeInternalValues(
    { password: pass, iterations: ITERATIONS, pbkdf2HashAlgorithm: 'SHA-256', hmacHashAlgorithm: 'SHA-256' },
    crypto,
  );
  return Buffer.from(pfx.toSchema().toBER(false));
}
