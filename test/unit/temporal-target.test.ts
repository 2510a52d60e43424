// The one setting that points tests, benchmarks, the chaos suite and `npm start` at a Temporal other than the dev server.
import { describe, expect, it } from 'vitest';
import { parseOptions, temporalAddressOf, UsageError } from '../../scripts/embedded/options';
import { temporalTargetFromEnv } from '../support/temporal-target';

describe('temporalTargetFromEnv', () => {
  it('is the dev server by default', () => {
    expect(temporalTargetFromEnv({})).toEqual({ kind: 'dev-server' });
  });
  it('takes an existing server as host:port, namespace default unless given', () => {
    expect(temporalTargetFromEnv({ CERTFLOW_TEST_TEMPORAL: '127.0.0.1:7233' })).toEqual({
      kind: 'existing',
      address: '127.0.0.1:7233',
      namespace: 'default',
    });
    expect(
      temporalTargetFromEnv({
        CERTFLOW_TEST_TEMPORAL: 'temporal.lan:7233',
        CERTFLOW_TEST_TEMPORAL_NAMESPACE: 'ci',
      }),
    ).toMatchObject({ address: 'temporal.lan:7233', namespace: 'ci' });
  });
  it('starts a cluster: services by default, single on request', () => {
    expect(temporalTargetFromEnv({ CERTFLOW_TEST_CLUSTER: '1' })).toEqual({
      kind: 'cluster',
      topology: 'services',
    });
    expect(temporalTargetFromEnv({ CERTFLOW_TEST_CLUSTER: 'single' })).toEqual({
      kind: 'cluster',
      topology: 'single',
    });
  });
  it('refuses bad values, naming the variable', () => {
    expect(() => temporalTargetFromEnv({ CERTFLOW_TEST_TEMPORAL: 'http://x:7233' })).toThrow(
      /CERTFLOW_TEST_TEMPORAL must be host:port/,
    );
    expect(() => temporalTargetFromEnv({ CERTFLOW_TEST_CLUSTER: 'yes' })).toThrow(
      /CERTFLOW_TEST_CLUSTER must be/,
    );
    expect(() =>
      temporalTargetFromEnv({ CERTFLOW_TEST_TEMPORAL: '127.0.0.1:7233', CERTFLOW_TEST_CLUSTER: '1' }),
    ).toThrow(/not both/);
  });
});

describe('npm start --temporal-address', () => {
  it('uses the given server and leaves its ports alone', () => {
    const o = parseOptions(['--temporal-address', '127.0.0.1:17233', '--temporal-port', '9464'], {}, '/tmp')!;
    expect(o.temporalAddress).toBe('127.0.0.1:17233');
    expect(temporalAddressOf(o)).toBe('127.0.0.1:17233');
  });
  it('reads CERTFLOW_START_TEMPORAL_ADDRESS; without it, the dev server on --temporal-port', () => {
    expect(parseOptions([], { CERTFLOW_START_TEMPORAL_ADDRESS: 'h:1' }, '/tmp')!.temporalAddress).toBe('h:1');
    const o = parseOptions(['--temporal-port', '17000'], {}, '/tmp')!;
    expect(o.temporalAddress).toBeNull();
    expect(temporalAddressOf(o)).toBe('127.0.0.1:17000');
  });
  it('refuses an address that is not host:port, naming the flag and the variable', () => {
    expect(() => parseOptions(['--temporal-address', 'nope'], {}, '/tmp')).toThrow(UsageError);
    expect(() => parseOptions(['--temporal-address', 'nope'], {}, '/tmp')).toThrow(
      /--temporal-address \(CERTFLOW_START_TEMPORAL_ADDRESS\): expected host:port/,
    );
  });
});
