import { describe, expect, it } from 'vitest';
import { checkWebhookUrl, describeUrl, isRetryableStatus, parseRetryAfter } from '../../activities/http';

describe('webhook HTTP helpers', () => {
  it.each([
    [null, undefined],
    ['', undefined],
    ['120', 120_000],
    ['0', 0],
    ['Wed, 01 Jan 2031 00:00:30 GMT', 30_000],
    ['Wed, 01 Jan 2031 00:00:00 GMT', 0],
    ['Tue, 31 Dec 2030 23:00:00 GMT', 0], // in the past: now
    ['soon', undefined],
    ['-5', undefined],
  ])('Retry-After %j -> %j ms', (value, ms) => {
    expect(parseRetryAfter(value, Date.parse('2031-01-01T00:00:00Z'))).toBe(ms);
  });

  it.each([
    [200, false],
    [400, false],
    [401, false],
    [404, false],
    [408, true],
    [409, false],
    [429, true],
    [500, true],
    [503, true],
  ])('status %i retryable: %s', (status, retry) => {
    expect(isRetryableStatus(status)).toBe(retry);
  });

  it('names a webhook by origin only: the path and query may be its token', () => {
    expect(describeUrl('https://hooks.slack.com/services/T0/B0/secret?x=1')).toBe('https://hooks.slack.com');
    expect(describeUrl('not a url')).toBe('(unparseable URL)');
  });

  it('wants https, except for loopback or when plain http is allowed', () => {
    expect(checkWebhookUrl('https://a.example/x', 'f').host).toBe('a.example');
    expect(checkWebhookUrl('http://127.0.0.1:8080/x', 'f').port).toBe('8080');
    expect(checkWebhookUrl('http://a.example/x', 'f', true).protocol).toBe('http:');
    expect(() => checkWebhookUrl('http://a.example/x?token=t', 'hooks[0].url')).toThrow(
      'hooks[0].url: expected an https URL (plain http only for loopback or with allowHttp), got http://a.example',
    );
    expect(() => checkWebhookUrl('ftp://a.example/', 'f')).toThrow('got ftp://a.example');
    expect(() => checkWebhookUrl('/relative', 'f')).toThrow('f: expected an absolute http(s) URL');
  });
});
