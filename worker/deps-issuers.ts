/**
 * The configured issuers as adapters: ACME (DNS-01 through Azure DNS or pebble's challtestsrv, HTTP-01 through a
 * webroot or the built-in server; the account key kept in a vault's SecretStore), the dev CA, and an external
 * command. Also each issuer's trust anchors: the dev CA's own root and any configured root files.
 * Each kind's adapter (and DNS or HTTP-01 provider) is loaded when an issuer of that kind is configured, once,
 * at start: acme-client and the Azure DNS SDK stay unloaded in a worker that does not use them.
 */
import type { Issuer } from '../activities/types';
import { withAllowedNames } from '../activities/issuers/allowed-names';
import type { ChallengeOptions } from '../activities/issuers/acme-challenges';
import type { DnsProvider } from '../activities/issuers/dns';
import type { Http01Provider } from '../activities/issuers/http01';
import type { IssuerConfig } from './config';
import { propagationCheckOn } from './config-schema';
import { ARM, type Credentials } from './deps-azure';
import type { Collector } from './deps-collector';
import { encryptionKeyFrom, type BuiltVault } from './deps-vaults';
import type { CertflowLogger } from './logger';

type AcmeConfig = Extract<IssuerConfig, { kind: 'acme' }>;

export interface IssuerContext {
  c: Collector;
  credentials: Credentials;
  vaults: ReadonlyMap<string, BuiltVault>;
  logger?: CertflowLogger;
  /** Resources to release when the worker stops (the HTTP-01 server). */
  closers: Array<() => Promise<void>>;
}

export interface BuiltIssuer {
  issuer: Issuer;
  /** Roots the issued chains must validate against (PEM). */
  trustAnchors: string[];
  /** DNS-name globs the issuer may issue for (checked before the CA and on the chain); any name when absent. */
  allowedNames?: string[];
}

/** DNS-01 propagation settings as the ACME adapter takes them (seconds become milliseconds). */
export function acmeChallengeOptions(
  i: AcmeConfig,
): Pick<ChallengeOptions, 'propagation' | 'propagationDelayMs'> {
  const p = i.propagation ?? {};
  if (!i.dns) return {};
  const check = propagationCheckOn(i.dns.kind, p);
  return {
    ...(check
      ? {
          propagation: {
            ...(p.resolvers ? { resolvers: p.resolvers } : {}),
            ...(p.timeoutSeconds !== undefined ? { timeoutMs: p.timeoutSeconds * 1000 } : {}),
            ...(p.intervalSeconds !== undefined ? { intervalMs: p.intervalSeconds * 1000 } : {}),
          },
        }
      : {}),
    ...(p.delaySeconds ? { propagationDelayMs: p.delaySeconds * 1000 } : {}),
  };
}

async function acmeDns(i: AcmeConfig, path: string, ctx: IssuerContext): Promise<DnsProvider | undefined> {
  const dns = i.dns;
  if (!dns) return undefined;
  if (dns.kind === 'challtestsrv') {
    const { createChalltestsrvDns } = await import('../activities/issuers/dns-challtestsrv');
    return createChalltestsrvDns({ managementUrl: dns.managementUrl });
  }
  const credential = await ctx.credentials.get(dns.credential, dns.cloud, `${path}.dns.credential`);
  if (!credential) return undefined;
  const endpoint = ARM[dns.cloud].endpoint;
  const { createAzureDns } = await import('../activities/issuers/dns-azure');
  return createAzureDns({
    subscriptionId: dns.subscriptionId,
    resourceGroup: dns.resourceGroup,
    zone: dns.zone,
    credential,
    clientOptions: { $host: endpoint, credentialScopes: [`${endpoint}/.default`] },
  });
}

async function acmeHttp01(
  i: AcmeConfig,
  path: string,
  ctx: IssuerContext,
): Promise<Http01Provider | undefined> {
  const h = i.http01;
  if (!h) return undefined;
  const { createWebrootHttp01, startHttp01Server } = await import('../activities/issuers/http01');
  if (h.kind === 'webroot') return createWebrootHttp01({ webroot: h.webroot });
  const server = await ctx.c.buildAsync(`${path}.http01`, () =>
    startHttp01Server({ host: h.host, port: h.port }).catch((err: NodeJS.ErrnoException) => {
      throw new Error(`cannot listen on ${h.host}:${h.port} for HTTP-01 (${err.code ?? err.message})`);
    }),
  );
  if (server) ctx.closers.push(() => server.close());
  return server;
}

async function buildAcme(i: AcmeConfig, path: string, ctx: IssuerContext): Promise<Issuer | undefined> {
  const { c } = ctx;
  const storeVault = i.accountKeyVault ? ctx.vaults.get(i.accountKeyVault) : [...ctx.vaults.values()][0];
  const eab = i.eab ? { kid: i.eab.kid, hmacKey: c.secret(i.eab.hmacKey, `${path}.eab.hmacKey`) } : undefined;
  const caBundlePem = i.caBundleFile ? c.file(i.caBundleFile, `${path}.caBundleFile`) : undefined;
  const dns = await acmeDns(i, path, ctx);
  const http01 = await acmeHttp01(i, path, ctx);
  // a vault that failed to build was reported with its own path
  if (!storeVault || (i.dns && !dns) || (i.http01 && !http01)) return undefined;
  const { createAcmeIssuer } = await import('../activities/issuers/acme');
  return c.build(path, () =>
    createAcmeIssuer({
      name: i.name,
      directoryUrl: i.directoryUrl,
      contactEmail: i.contactEmail,
      accountKey: { store: storeVault, secretName: i.accountKeySecretName },
      ...(dns ? { dns, ...acmeChallengeOptions(i) } : {}),
      ...(http01 ? { http01 } : {}),
      ...(i.preferredChallenge ? { preferredChallenge: i.preferredChallenge } : {}),
      ...(i.profile ? { profile: i.profile } : {}),
      ...(eab ? { externalAccountBinding: eab } : {}),
      ...(caBundlePem ? { caBundlePem } : {}),
      ...(ctx.logger ? { logger: ctx.logger.child({ issuer: i.name }) } : {}),
    }),
  );
}

/** The configured issuer, wrapped so that it refuses names outside its allowedNames before any CA call. */
export async function buildIssuer(
  i: IssuerConfig,
  path: string,
  ctx: IssuerContext,
): Promise<BuiltIssuer | undefined> {
  const built = await buildAdapter(i, path, ctx);
  if (!built || !i.allowedNames) return built;
  return { ...built, issuer: withAllowedNames(built.issuer, i.allowedNames), allowedNames: i.allowedNames };
}

async function buildAdapter(
  i: IssuerConfig,
  path: string,
  ctx: IssuerContext,
): Promise<BuiltIssuer | undefined> {
  const { c } = ctx;
  const anchors =
    i.kind === 'dev-ca'
      ? []
      : (i.trustAnchorFiles ?? []).map((f, j) => c.file(f, `${path}.trustAnchorFiles[${j}]`));
  if (i.kind === 'acme') {
    const issuer = await buildAcme(i, path, ctx);
    return issuer && { issuer, trustAnchors: anchors };
  }
  if (i.kind === 'command') {
    const env = Object.fromEntries(
      Object.entries(i.env ?? {}).map(([k, v]) => [
        k,
        typeof v === 'string' ? v : c.secret(v, `${path}.env.${k}`),
      ]),
    );
    const { createCommandIssuer } = await import('../activities/issuers/command');
    const issuer = c.build(path, () =>
      createCommandIssuer({
        name: i.name,
        command: i.command,
        args: i.args,
        env,
        ...(i.timeoutMs ? { timeoutMs: i.timeoutMs } : {}),
      }),
    );
    return issuer && { issuer, trustAnchors: anchors };
  }
  const encryptionKey = i.encryptionKey
    ? encryptionKeyFrom(i.encryptionKey, `${path}.encryptionKey`, c)
    : undefined;
  if (i.encryptionKey && !encryptionKey) return undefined;
  const { createDevCaIssuer } = await import('../activities/issuers/dev-ca');
  const devCa = c.build(path, () =>
    createDevCaIssuer({
      name: i.name,
      dir: i.dir,
      validity: i.validity,
      ...(encryptionKey ? { encryptionKey } : {}),
    }),
  );
  if (!devCa) return undefined;
  // loads (or creates, on first start) the CA now: a broken CA directory is a start-up error, not a failed renewal
  const root = await c.buildAsync(`${path}.dir`, () => devCa.rootPem());
  return root ? { issuer: devCa, trustAnchors: [root] } : undefined;
}
