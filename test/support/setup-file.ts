// Runs in every test worker process before its test file: quiet Temporal's worker logs to warnings.
import { DefaultLogger, Runtime } from '@temporalio/worker';

Runtime.install({ logger: new DefaultLogger('WARN'), telemetryOptions: { logging: { filter: 'WARN' } } });
