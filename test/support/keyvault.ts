/**
 * One call to get a running test Key Vault (our REST-compatible server, test/servers/keyvault) with a
 * token issuer, a TLS chain the clients trust, and the client options the Azure SDK needs for it.
 */
import type { TokenCredential } from '@azure/identity';
import {
  CertificateClient,
  type CertificateClientOptions,
  type CertificatePolicy,
} from '@azure/keyvault-certificates';
import { createAzureKeyVault } from '../../activities/vault/azure-key-vault';
import { createTestEntra, type TestEntra } from '../servers/keyvault/entra';
import {
  startKeyVaultServer,
  type KeyVaultServer,
  type KeyVaultServerOptions,
} from '../servers/keyvault/server';
import { createTestCa, pemToDer, type SignOptions, type TestCa } from './test-ca';
import { agentToLocalVault } from './vault-host';

export interface SeedOptions extends SignOptions {
  /** Merged over the default: Unknown issuer, CN/SAN `<name>.example.test`, EC P-256, PEM secret. */
  policy?: Partial<CertificatePolicy>;
  tags?: Record<string, string>;
}

export interface TestKeyVault {
  url: string;
  vaultName: string;
  credential: TokenCredential;
  /**
   * Trust for the server's TLS (tlsOptions.ca), challenge verification off (loopback host), no SDK retries; with
   * `server.publicUrl`, an agent that connects that host to the server instead, challenge verification on.
   */
  clientOptions: CertificateClientOptions;
  /** The CA that issued the server's TLS certificate (PEM). */
  caPem: string;
  /** A CA for signing CSRs in tests (separate from the TLS one). */
  ca: TestCa;
  entra: TestEntra;
  server: KeyVaultServer;
  /** The Azure Key Vault adapter on this vault (certificate ids `<name>/...`), with the client options above. */
  adapter(name?: string): ReturnType<typeof createAzureKeyVault>;
  /** Issues a certificate into the vault the way an operator would: Unknown-issuer create, CSR signed by `ca`, merge. */
  seed(name: string, opts?: SeedOptions): Promise<{ version: string; thumbprint: string; leafPem: string }>;
  stop(): Promise<void>;
}

export async function startTestKeyVault(
  opts: {
    dataDir?: string;
    vaultName?: string;
    /** The vault's Key Vault audience, also the resource of its 401 challenge; default https://vault.azure.net. */
    audience?: string;
    /** More names for the server's TLS certificate (e.g. certflow-test.vault.azure.net). */
    hostnames?: string[];
    /** The server's other options: issuers, clock, issuance delay, auto-renew, Event Grid, quota, ... */
    server?: Partial<
      Omit<
        KeyVaultServerOptions,
        'jwks' | 'issuer' | 'tenantId' | 'tls' | 'dataDir' | 'vaultName' | 'audience'
      >
    >;
  } = {},
): Promise<TestKeyVault> {
  const tlsCa = createTestCa({ commonName: 'Certflow test Key Vault TLS CA', keyType: 'ec' });
  const tls = tlsCa.issueServerCert(['127.0.0.1', 'localhost', ...(opts.hostnames ?? [])]);
  const entra = createTestEntra();
  const server = await startKeyVaultServer({
    jwks: entra.jwks,
    issuer: entra.issuer,
    tenantId: entra.tenantId,
    tls,
    dataDir: opts.dataDir,
    vaultName: opts.vaultName,
    audience: opts.audience,
    ...opts.server,
  });
  const credential = entra.credential();
  const clientOptions: CertificateClientOptions = opts.server?.publicUrl
    ? // a production-style host (https://<name>.vault.azure.net): connected to this server, verified as that host
      { agent: agentToLocalVault(server.port, tlsCa.caCertPem), retryOptions: { maxRetries: 0 } }
    : {
        tlsOptions: { ca: tlsCa.caCertPem },
        disableChallengeResourceVerification: true,
        // Temporal owns retries (visible in history, honours Retry-After as nextRetryDelay)
        retryOptions: { maxRetries: 0 },
      };
  const ca = createTestCa();
  const client = new CertificateClient(server.url, credential, clientOptions);
  return {
    url: server.url,
    vaultName: server.vaultName,
    credential,
    clientOptions,
    caPem: tlsCa.caCertPem,
    ca,
    entra,
    server,
    adapter: (name = 'kv') => createAzureKeyVault({ name, url: server.url, credential, clientOptions }),
    async seed(name, seedOpts = {}) {
      const { policy, tags, ...signOpts } = seedOpts;
      const host = `${name}.example.test`;
      await client.beginCreateCertificate(
        name,
        {
          issuerName: 'Unknown',
          subject: `CN=${host}`,
          subjectAlternativeNames: { dnsNames: [host] },
          keyType: 'EC',
          keyCurveName: 'P-256',
          contentType: 'application/x-pem-file',
          ...policy,
        } as CertificatePolicy,
        { tags },
      );
      const op = (await client.getCertificateOperation(name)).getOperationState().certificateOperation;
      if (!op?.csr) throw new Error(`seed ${name}: the vault returned no CSR`);
      const leafPem = ca.signCsr(op.csr, { days: 30, ...signOpts });
      const merged = await client.mergeCertificate(name, [pemToDer(leafPem, 'CERTIFICATE'), ca.caCertDer]);
      return {
        version: merged.properties.version ?? '',
        thumbprint: (merged.properties.x509ThumbprintString ?? '').toUpperCase(),
        leafPem,
      };
    },
    stop: () => server.close(),
  };
}
