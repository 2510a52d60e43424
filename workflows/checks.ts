/**
 * Questions the CLI asks the workers, because only they know their configuration: can this certificate be enrolled
 * (its vault configured and holding it, its issuer configured)? A short workflow around one activity on the main
 * task queue, so the answer comes from the same configuration the lifecycle will run with.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index';
import type { EnrollmentCheck } from '../activities/types';

const { checkEnrollment } = proxyActivities<Activities>({
  // no worker within this: the CLI says so instead of enrolling blind
  scheduleToStartTimeout: '15 seconds',
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 2 },
});

export async function enrollmentCheck(input: {
  certificateId: string;
  issuer: string;
}): Promise<EnrollmentCheck> {
  return checkEnrollment(input);
}
