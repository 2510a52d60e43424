export { certificateLifecycle } from './lifecycle';
/** Release 2's renewal child: still registered so lifecycles running release 2's code finish their attempts. */
export { renewalWorkflow } from './legacy/renewal-v2';
export * from './fleet';
export { enrollmentCheck } from './checks';
export { reissueWave, reissueWavePart } from './wave';
