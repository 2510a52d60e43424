/**
 * certflow: steer certificate lifecycles from a terminal.
 *   certflow renew <vault>/<name> [--reason TEXT] [--no-wait] [--json]
 *   certflow status <vault>/<name> [--json]
 *   certflow pause <vault>/<name> --reason TEXT
 *   certflow resume <vault>/<name>
 * Global: --address HOST:PORT (CERTFLOW_TEMPORAL_ADDRESS), --namespace NS (CERTFLOW_TEMPORAL_NAMESPACE).
 * Exit codes: 0 done, 1 the renewal failed, 2 bad usage, 3 not found or Temporal unreachable.
 */
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { parseArgs } from 'node:util';
import { parseCertificateId } from '../activities/ids';
import {
  type CertificateStatus,
  pauseSignal,
  type RenewalOutcome,
  renewNowSignal,
  renewNowUpdate,
  resumeSignal,
  statusQuery,
  workflowIdFor,
} from '../workflows/messages';
import { clientSettingsFromEnv, connectClient } from './connect';

const USAGE = `usage: certflow <command> <vault>/<name> [options]

commands:
  renew <id>    renew now and wait for the outcome (--no-wait: just ask)
  status <id>   phase, thumbprints, expiry, next renewal, last attempt
  pause <id>    stop automatic renewal (--reason TEXT required)
  resume <id>   resume automatic renewal

options:
  --reason TEXT         why (shown in history, status and emails)
  --no-wait             renew: send the request and return
  --json                machine-readable output
  --address HOST:PORT   Temporal frontend (default $CERTFLOW_TEMPORAL_ADDRESS or 127.0.0.1:7233)
  --namespace NS        Temporal namespace (default $CERTFLOW_TEMPORAL_NAMESPACE or default)
  -h, --help            this text`;

class UsageError extends Error {}

export async function main(argv: string[], out = process.stdout, err = process.stderr): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        reason: { type: 'string' },
        'no-wait': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        address: { type: 'string' },
        namespace: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e) {
    err.write(`certflow: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values: o, positionals } = parsed;
  if (o.help || positionals.length === 0) {
    (o.help ? out : err).write(`${USAGE}\n`);
    return o.help ? 0 : 2;
  }
  const [command, id, ...extra] = positionals;
  try {
    if (!['renew', 'status', 'pause', 'resume'].includes(command ?? '')) {
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
    if (!id) throw new UsageError(`${command}: missing <vault>/<name>`);
    if (extra.length) throw new UsageError(`${command}: unexpected argument ${JSON.stringify(extra[0])}`);
    try {
      parseCertificateId(id);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    if (command === 'pause' && !o.reason) throw new UsageError('pause: --reason is required');
  } catch (e) {
    err.write(`certflow: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }

  const settings = clientSettingsFromEnv();
  if (o.address) settings.address = o.address;
  if (o.namespace) settings.namespace = o.namespace;
  let client;
  try {
    client = await connectClient(settings);
  } catch (e) {
    err.write(`certflow: ${(e as Error).message}\n`);
    return 3;
  }
  const handle = client.workflow.getHandle(workflowIdFor(id!));
  const print = (human: string, data: unknown): void => {
    out.write(o.json ? `${JSON.stringify(data, null, 2)}\n` : `${human}\n`);
  };
  try {
    switch (command) {
      case 'renew': {
        const req = { reason: o.reason ?? 'manual renew from the CLI', requestedBy: 'cli' };
        if (o['no-wait']) {
          await handle.signal(renewNowSignal, req);
          print(`renewal of ${id} requested; follow it with: certflow status ${id}`, { requested: true, id });
          return 0;
        }
        if (!o.json) out.write(`renewing ${id} ...\n`);
        const outcome = await handle.executeUpdate(renewNowUpdate, { args: [req] });
        print(formatOutcome(id!, outcome), outcome);
        return outcome.status === 'renewed' ? 0 : 1;
      }
      case 'status': {
        const st = await handle.query(statusQuery);
        print(formatStatus(st), st);
        return 0;
      }
      case 'pause':
        await handle.signal(pauseSignal, { reason: o.reason! });
        print(`paused ${id}: ${o.reason}`, { paused: true, id, reason: o.reason });
        return 0;
      case 'resume':
        await handle.signal(resumeSignal);
        print(`resumed ${id}`, { paused: false, id });
        return 0;
    }
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) {
      err.write(`certflow: no lifecycle is running for ${id} (workflow ${workflowIdFor(id!)})\n`);
      return 3;
    }
    if (e instanceof WorkflowUpdateFailedError) {
      err.write(`certflow: ${command} refused: ${e.cause?.message ?? e.message}\n`);
      return 1;
    }
    err.write(`certflow: ${command} failed: ${(e as Error).message}\n`);
    return 1;
  } finally {
    await client.connection.close();
  }
  return 0;
}

function formatOutcome(id: string, r: RenewalOutcome): string {
  const lines = [
    r.status === 'renewed'
      ? `renewed ${id}: ${r.oldThumbprint ?? '(none)'} -> ${r.newThumbprint} (version ${r.newVersion}, expires ${r.notAfter})`
      : `renewal of ${id} FAILED: ${r.error?.type}: ${r.error?.message}`,
    ...r.bindings.map(
      (b) =>
        `  binding ${b.target} ${b.binding}: ${b.status} (${b.before ?? '-'} -> ${b.after ?? '-'}) ${b.detail}`,
    ),
    `  notified: ${r.notified ? 'yes' : 'no'}`,
  ];
  return lines.join('\n');
}

function formatStatus(s: CertificateStatus): string {
  return [
    `${s.certificateId}: ${s.phase}${s.paused ? ` (paused: ${s.paused.reason})` : ''}`,
    `  thumbprint:  ${s.thumbprint ?? '-'} (previous ${s.previousThumbprint ?? '-'})`,
    `  version:     ${s.version ?? '-'}`,
    `  valid:       ${s.notBefore ?? '-'} .. ${s.notAfter ?? '-'}`,
    `  next renew:  ${s.nextRenewalAt ?? '-'} (${s.nextRenewalReason ?? '-'})`,
    `  attempts:    ${s.attempts}, last: ${s.lastAttempt ? `${s.lastAttempt.status}${s.lastAttempt.error ? ` ${s.lastAttempt.error.type}` : ''}` : '-'}`,
  ].join('\n');
}
