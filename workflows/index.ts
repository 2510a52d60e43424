export { certificateLifecycle } from './lifecycle';
export { renewalWorkflow } from './renewal';
export * from './fleet';
