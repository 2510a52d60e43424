import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  certificateIdFromWorkflowId,
  createLogger,
  redact,
  useColor,
  type LoggerOptions,
} from '../../worker/logger';

function capture(opts: Omit<LoggerOptions, 'out'> & { tty?: boolean } = {}) {
  const lines: string[] = [];
  const logger = createLogger({
    now: () => new Date('2026-03-01T10:00:00.000Z'),
    env: {},
    ...opts,
    out: { write: (l: string) => lines.push(l), isTTY: opts.tty ?? false },
  });
  const json = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { logger, lines, json };
}

const PRIVATE_KEY = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
  type: 'pkcs8',
  format: 'pem',
}) as string;
const KEY_BODY = PRIVATE_KEY.split('\n')[1]!;

describe('redact', () => {
  it('removes PEM private keys, whole or cut off', () => {
    const out = redact(`before ${PRIVATE_KEY} after`);
    expect(out).toBe('before [REDACTED PRIVATE KEY]\n after');
    expect(redact(`tail: ${PRIVATE_KEY.slice(0, 80)}`)).toBe('tail: [REDACTED PRIVATE KEY]');
    expect(redact('-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----')).toBe(
      '[REDACTED PRIVATE KEY]',
    );
  });

  it('keeps certificates, which are public', () => {
    const cert = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----';
    expect(redact(cert)).toBe(cert);
  });

  it('removes password=, token= and api_key= values, JSON secrets and bearer tokens', () => {
    expect(redact('smtp://u:x@h?password=s3cr3t&x=1')).toBe('smtp://u:x@h?password=[REDACTED]&x=1');
    expect(redact('token=abc.def api_key="k e y" pwd=p')).toBe(
      'token=[REDACTED] api_key=[REDACTED] pwd=[REDACTED]',
    );
    expect(redact('{"user":"a","password":"p\\"q"}')).toBe('{"user":"a","password":"[REDACTED]"}');
    expect(redact('Authorization: Bearer eyJhbGciOi.eyJzdWIi.sig-_')).toBe(
      'Authorization: Bearer [REDACTED]',
    );
    expect(redact('Basic dXNlcjpwYXNz')).toBe('Basic [REDACTED]');
  });

  it("removes a URL's ?code=, Azure connection string keys, SAS tokens and signatures", () => {
    expect(redact('POST /eventgrid?code=abc123 failed')).toBe('POST /eventgrid?code=[REDACTED] failed');
    expect(redact('https://fn.azurewebsites.net/api/x?a=1&code=Zm9v%3D%3D#f')).toBe(
      'https://fn.azurewebsites.net/api/x?a=1&code=[REDACTED]#f',
    );
    expect(redact('key code=4b8a1e0c2f9d4e7a8b6c5d3e2f1a0b9c')).toBe('key code=[REDACTED]');
    expect(redact('HTTP status code=404')).toBe('HTTP status code=404');
    expect(
      redact(
        'DefaultEndpointsProtocol=https;AccountName=acc;AccountKey=abc+def/ghi==;EndpointSuffix=core.windows.net',
      ),
    ).toBe(
      'DefaultEndpointsProtocol=https;AccountName=acc;AccountKey=[REDACTED];EndpointSuffix=core.windows.net',
    );
    expect(
      redact('Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=s3='),
    ).toBe('Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=[REDACTED]');
    expect(redact('auth SharedAccessSignature sr=https%3a%2f%2fx&sig=abc%3d&se=1700000000&skn=Root')).toBe(
      'auth SharedAccessSignature [REDACTED]',
    );
    expect(redact('BlobEndpoint=https://a;SharedAccessSignature=sv=2020&sig=x')).toBe(
      'BlobEndpoint=https://a;SharedAccessSignature=[REDACTED]',
    );
    expect(redact('https://acc.blob.core.windows.net/c?sv=2020&sig=abc%2B%3D&se=2030')).toBe(
      'https://acc.blob.core.windows.net/c?sv=2020&sig=[REDACTED]&se=2030',
    );
  });

  it('removes secret HTTP headers, as header lines and as JSON', () => {
    for (const h of ['aeg-sas-key', 'x-functions-key', 'Ocp-Apim-Subscription-Key', 'Cookie', 'Set-Cookie'])
      expect(redact(`> ${h}: value-0123456789\n< 200`)).toBe(`> ${h}: [REDACTED]\n< 200`);
    expect(redact('Authorization: Negotiate YIIGhgYGKwYBBQUC')).toBe('Authorization: [REDACTED]');
    expect(
      redact(
        '{"aeg-sas-key":"v1","x-functions-key":"v2","ocp-apim-subscription-key":"v3","cookie":"c","a":"ok"}',
      ),
    ).toBe(
      '{"aeg-sas-key":"[REDACTED]","x-functions-key":"[REDACTED]","ocp-apim-subscription-key":"[REDACTED]","cookie":"[REDACTED]","a":"ok"}',
    );
  });
});

describe('secret fields', () => {
  it('are redacted by name, headers included, however deep', () => {
    const { logger, json } = capture();
    logger.warn('delivery refused', {
      headers: {
        'aeg-sas-key': 'k1-value',
        'x-functions-key': 'k2-value',
        'ocp-apim-subscription-key': 'k3-value',
        cookie: 'k4-value',
        authorization: 'k5-value',
        'content-type': 'application/json',
      },
      accountKey: 'k6-value',
      url: '/eventgrid?code=k7-value',
    });
    const line = json()[0]!;
    expect(JSON.stringify(line)).not.toMatch(/k\d-value/);
    expect((line.headers as Record<string, string>)['content-type']).toBe('application/json');
  });
});

describe('certificateIdFromWorkflowId', () => {
  it('reads lifecycle and renewal workflow ids', () => {
    expect(certificateIdFromWorkflowId('certificate:kv-prod/api')).toBe('kv-prod/api');
    expect(certificateIdFromWorkflowId('renewal:kv-prod/api:c3:a1')).toBe('kv-prod/api');
    expect(certificateIdFromWorkflowId('fleet-discovery')).toBeUndefined();
    expect(certificateIdFromWorkflowId(undefined)).toBeUndefined();
  });
});

describe('createLogger', () => {
  it('writes one JSON object a line with certificate and workflow ids first', () => {
    const { logger, json, lines } = capture();
    // the shape Temporal's activity context logger passes
    logger.info('CSR ready in the vault', {
      sdkComponent: 'activity',
      workflowId: 'renewal:kv-prod/api:c1:a2',
      activityType: 'beginRenewal',
      taskToken: 'Q2hBd...',
      attempt: 1,
    });
    expect(
      lines[0]!.startsWith(
        '{"time":"2026-03-01T10:00:00.000Z","level":"info","msg":"CSR ready in the vault","certificateId":"kv-prod/api","workflowId":"renewal:kv-prod/api:c1:a2"',
      ),
    ).toBe(true);
    expect(json()[0]).toEqual({
      time: '2026-03-01T10:00:00.000Z',
      level: 'info',
      msg: 'CSR ready in the vault',
      certificateId: 'kv-prod/api',
      workflowId: 'renewal:kv-prod/api:c1:a2',
      sdkComponent: 'activity',
      activityType: 'beginRenewal',
      attempt: 1,
    });
  });

  it('keeps an explicit certificate id and adds child fields to every line', () => {
    const { logger, json } = capture();
    const child = logger.child({ issuer: 'le' });
    child.warn('slow CA', { certificateId: 'kv/a' });
    child.warn('no ids here');
    expect(json()).toEqual([
      expect.objectContaining({ level: 'warn', certificateId: 'kv/a', issuer: 'le' }),
      expect.objectContaining({ msg: 'no ids here', issuer: 'le' }),
    ]);
    expect(json()[1]).not.toHaveProperty('certificateId');
  });

  it("uses Temporal's timestamp when the SDK passes one", () => {
    const { logger, json } = capture();
    logger.log('INFO', 'from core', { [Symbol.for('log_timestamp')]: 1_772_359_200_123_000_000n });
    expect(json()[0]?.time).toBe('2026-03-01T10:00:00.123Z');
  });

  it('filters by level, for the SDK upper-case levels too', () => {
    const { logger, json } = capture({ level: 'warn' });
    logger.info('dropped');
    logger.log('DEBUG', 'dropped too');
    logger.log('ERROR', 'kept');
    expect(json().map((l) => l.msg)).toEqual(['kept']);
  });

  it('redacts secrets in messages, in nested fields, in errors, and by field name', () => {
    const { logger, lines } = capture();
    const err = new Error(`merge failed with key ${PRIVATE_KEY}`);
    logger.error(`request with password=${KEY_BODY}`, {
      workflowId: 'certificate:kv/a',
      error: err,
      request: { headers: { authorization: 'Bearer abc' }, body: { keyPem: PRIVATE_KEY, note: 'ok' } },
      clientSecret: 'cs-value',
      secretId: 'https://kv.vault.azure.net/secrets/a/1',
    });
    const out = lines.join('');
    expect(out).not.toContain(KEY_BODY);
    expect(out).not.toContain('cs-value');
    expect(out).not.toContain('abc');
    const line = JSON.parse(out) as {
      msg: string;
      error: { message: string };
      request: { body: unknown };
      secretId: string;
    };
    expect(line.msg).toBe('request with password=[REDACTED]');
    expect(line.error.message).toBe('merge failed with key [REDACTED PRIVATE KEY]\n');
    expect(line.request.body).toEqual({ keyPem: '[REDACTED]', note: 'ok' });
    expect(line.secretId).toBe('https://kv.vault.azure.net/secrets/a/1');
  });

  it('survives cycles and bigints', () => {
    const { logger, json } = capture();
    const a: Record<string, unknown> = { n: 10n };
    a.self = a;
    logger.info('cyclic', { a });
    expect(json()[0]?.a).toEqual({ n: '10', self: '[...]' });
  });

  it('writes readable lines in a terminal (auto) or when asked (pretty)', () => {
    const tty = capture({ tty: true });
    tty.logger.info('renewed', { workflowId: 'certificate:kv/a', thumbprint: 'AB12' });
    expect(tty.lines[0]).toBe(
      '10:00:00.000 \x1b[32mINFO \x1b[0m renewed  certificateId=kv/a  workflowId=certificate:kv/a  thumbprint=AB12\n',
    );
    const plain = capture({ format: 'pretty' });
    plain.logger.warn('x', { n: { a: 1 } });
    expect(plain.lines[0]).toBe('10:00:00.000 WARN  x  n={"a":1}\n');
    const forced = capture({ format: 'json', tty: true });
    forced.logger.info('x');
    expect(() => JSON.parse(forced.lines[0]!)).not.toThrow();
  });
});

describe('colour: NO_COLOR and FORCE_COLOR', () => {
  const ESC = '\x1b[';
  const line = (env: NodeJS.ProcessEnv, tty: boolean, format: LoggerOptions['format'] = 'pretty') => {
    const { logger, lines } = capture({ env, tty, format });
    logger.warn('hello');
    return lines[0]!;
  };

  it('colours pretty lines on a terminal, and not on a pipe', () => {
    expect(line({}, true)).toContain(ESC);
    expect(line({}, false)).not.toContain(ESC);
  });

  it('NO_COLOR (set, not empty) turns colour off on a terminal', () => {
    expect(line({ NO_COLOR: '1' }, true)).not.toContain(ESC);
    expect(line({ NO_COLOR: '' }, true)).toContain(ESC);
  });

  it('FORCE_COLOR turns colour on on a pipe, or off ("0", "false"), and wins over NO_COLOR', () => {
    expect(line({ FORCE_COLOR: '1' }, false)).toContain(ESC);
    expect(line({ FORCE_COLOR: '' }, false)).toContain(ESC);
    expect(line({ FORCE_COLOR: '0' }, true)).not.toContain(ESC);
    expect(line({ FORCE_COLOR: 'false' }, true)).not.toContain(ESC);
    expect(line({ FORCE_COLOR: '1', NO_COLOR: '1' }, false)).toContain(ESC);
    expect(useColor({ NO_COLOR: 'yes' }, true)).toBe(false);
  });

  it('never colours JSON lines, whatever FORCE_COLOR says', () => {
    expect(line({ FORCE_COLOR: '3' }, false, 'json')).not.toContain(ESC);
    expect(line({ FORCE_COLOR: '3' }, true, 'json')).not.toContain(ESC);
  });
});
