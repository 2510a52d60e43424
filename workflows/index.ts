export { certificateLifecycle } from './lifecycle';
export { renewalWorkflow } from './renewal';
