/**
 * An error from the App Service Certificate orders API with its classification (`failure.kind`,
 * `failure.retryable`). Apart from the orders adapter so that the activities can recognise it without loading
 * the Azure SDK (start-up time).
 */
import type { ArmFailure } from './arm-common';

export class CertificateOrderError extends Error {
  constructor(
    message: string,
    readonly failure: ArmFailure,
  ) {
    super(message);
    this.name = 'CertificateOrderError';
  }
}
