/** The one glob dialect (activities/globs.ts): DNS names for allowedNames, certificate ids for selectors. */
import { describe, expect, it } from 'vitest';
import { dnsGlobProblem, globMatch, matchDnsName, namesNotAllowed } from '../../activities/globs';

describe('DNS name globs', () => {
  it('ignore case and a trailing dot; the rest is literal', () => {
    expect(matchDnsName('www.Example.com', 'WWW.example.COM.')).toBe(true);
    expect(matchDnsName('www.example.com', 'www.example.co')).toBe(false);
    expect(matchDnsName('www.example.com', 'wwwxexample.com')).toBe(false);
  });

  it('* is one label, never a dot, never the parent itself', () => {
    expect(matchDnsName('*.example.com', 'a.example.com')).toBe(true);
    expect(matchDnsName('*.example.com', 'a.b.example.com')).toBe(false);
    expect(matchDnsName('*.example.com', 'example.com')).toBe(false);
    expect(matchDnsName('*.example.com', 'example.com.evil.test')).toBe(false);
    expect(matchDnsName('api-*.example.com', 'api-1.example.com')).toBe(true);
    expect(matchDnsName('api-*.example.com', 'web-1.example.com')).toBe(false);
    expect(matchDnsName('ap?.example.com', 'api.example.com')).toBe(true);
  });

  it('** is one or more whole labels', () => {
    expect(matchDnsName('**.example.com', 'a.b.c.example.com')).toBe(true);
    expect(matchDnsName('**.example.com', 'a.example.com')).toBe(true);
    expect(matchDnsName('**.example.com', 'example.com')).toBe(false);
    expect(matchDnsName('**.example.com', 'badexample.com')).toBe(false);
  });

  it('a wildcard name only where the pattern has a whole-label wildcard', () => {
    expect(matchDnsName('*.example.com', '*.example.com')).toBe(true);
    expect(matchDnsName('**.example.com', '*.example.com')).toBe(true);
    expect(matchDnsName('api-*.example.com', '*.example.com')).toBe(false);
    expect(matchDnsName('www.example.com', '*.example.com')).toBe(false);
    expect(matchDnsName('*.*.example.com', 'a.*.example.com')).toBe(false);
    expect(matchDnsName('**.example.com', 'a*.example.com')).toBe(false);
  });

  it('names the names no pattern covers', () => {
    expect(namesNotAllowed(['a.example.com', 'evil.test', 'b.example.com'], ['*.example.com'])).toEqual([
      'evil.test',
    ]);
    expect(namesNotAllowed(['x.test'], [])).toEqual(['x.test']);
  });

  it('validates patterns for the configuration', () => {
    for (const ok of ['example.com', '*.example.com', '**.example.com', 'api-*.example.com', 'a?.b.c'])
      expect(dnsGlobProblem(ok), ok).toBeNull();
    expect(dnsGlobProblem('*')).toMatch(/at least one literal label/);
    expect(dnsGlobProblem('**')).toMatch(/at least one literal label/);
    expect(dnsGlobProblem('a..b')).toMatch(/single dots/);
    expect(dnsGlobProblem('a**.b')).toMatch(/label "a\*\*"/);
    expect(dnsGlobProblem('exa mple.com')).toMatch(/label "exa mple"/);
    expect(dnsGlobProblem('')).toMatch(/expected a DNS name glob/);
  });
});

describe('certificate id globs', () => {
  it('* stays within a segment, ** crosses, ? is one character, the rest is literal, case ignored', () => {
    expect(globMatch('kv-*/api', 'kv-prod/api')).toBe(true);
    expect(globMatch('*', 'kv-prod/api')).toBe(false);
    expect(globMatch('**', 'kv-prod/api')).toBe(true);
    expect(globMatch('kv-prod/ap?', 'kv-prod/api')).toBe(true);
    expect(globMatch('kv.prod/*', 'kvxprod/api')).toBe(false);
    expect(globMatch('KV-PROD/Api-*', 'kv-prod/api-1')).toBe(true);
  });

  it('matches bare certificate names (enroll --pattern) the same way', () => {
    expect(globMatch('api-*', 'api-one')).toBe(true);
    expect(globMatch('api-*', 'web-one')).toBe(false);
  });
});
