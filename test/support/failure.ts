import { ApplicationFailure } from '@temporalio/common';
import { expect } from 'vitest';

/**
 * The ApplicationFailure a call ends with (the test fails when it resolves or throws something else).
 * `seen` collects every failure, for files that check at the end that none carried key material.
 */
export async function failureOf(p: Promise<unknown>, seen?: unknown[]): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  seen?.push(err);
  expect(err, 'expected the call to fail with an ApplicationFailure').toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}
