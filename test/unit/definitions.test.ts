/**
 * The message definitions are made by workflows/definitions.ts (so that the CLI does not load the workflow SDK):
 * each must be exactly what @temporalio/workflow's defineQuery / defineSignal / defineUpdate would make.
 */
import * as sdk from '@temporalio/workflow';
import { describe, expect, it } from 'vitest';
import * as ours from '../../workflows/definitions';
import * as messages from '../../workflows/messages';
import * as waveMessages from '../../workflows/wave-messages';

type Definition = { type: 'query' | 'signal' | 'update'; name: string };
const isDefinition = (v: unknown): v is Definition =>
  !!v &&
  typeof v === 'object' &&
  ['query', 'signal', 'update'].includes((v as Definition).type) &&
  typeof (v as Definition).name === 'string';

const sdkDefine = {
  query: (name: string) => sdk.defineQuery(name),
  signal: (name: string) => sdk.defineSignal(name),
  update: (name: string) => sdk.defineUpdate(name),
};

describe('message definitions', () => {
  const defs = Object.entries({ ...messages, ...waveMessages }).filter(([, v]) => isDefinition(v)) as Array<
    [string, Definition]
  >;

  it('cover the vocabulary', () => {
    expect(defs.length).toBeGreaterThan(15);
    expect(defs.map(([, d]) => d.type)).toEqual(expect.arrayContaining(['query', 'signal', 'update']));
  });

  it.each(defs.map(([k, d]) => [k, d] as const))('%s is what the SDK would define', (_, d) => {
    expect(d).toStrictEqual(sdkDefine[d.type](d.name));
  });

  it('pass options through as the SDK does', () => {
    const typeInfo = { args: [] } as never;
    expect(ours.defineQuery('q', { typeInfo })).toStrictEqual(sdk.defineQuery('q', { typeInfo }));
    expect(ours.defineSignal('s', { typeInfo })).toStrictEqual(sdk.defineSignal('s', { typeInfo }));
    expect(ours.defineUpdate('u', { typeInfo })).toStrictEqual(sdk.defineUpdate('u', { typeInfo }));
  });
});
