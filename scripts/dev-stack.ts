/**
 * `npm start`: Certflow on this machine, no Azure account needed.
 * A Temporal dev server with its Web UI (state kept in .data/), the Key Vault-compatible test server
 * (state kept in .data/vault), pebble as the ACME CA with real DNS-01, nginx serving a demo site, an SMTP sink
 * whose mails land in .data/mail/, and the Certflow worker. One demo certificate with a 5-minute lifetime
 * renews by itself every 4 minutes (80 % of its lifetime); `certflow renew` renews it now.
 * Ctrl-C stops everything; a second start resumes the same workflows and vault.
 *
 * This is the foundation's start command: it reuses the servers the tests use. A later step replaces the
 * test vault server and pebble with Certflow's own embedded local vault and dev CA.
 */
import { Client, Connection, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { certificateLifecycle } from '../workflows/lifecycle';
import { workflowIdFor } from '../workflows/messages';
import { createCertflowWorker } from '../worker/worker';
import { tcpOpen } from '../test/support/proc';
import { startLocalStack } from '../test/support/stack';
import { startDevServer } from '../test/support/temporal';
import { repoRoot } from '../test/support/tools';

const dataDir = path.resolve(process.env.CERTFLOW_DATA_DIR ?? path.join(repoRoot, '.data'));
const port = Number(process.env.CERTFLOW_TEMPORAL_PORT ?? 7233);
const uiPort = Number(process.env.CERTFLOW_UI_PORT ?? 8233);
const taskQueue = 'certflow';

async function main(): Promise<void> {
  for (const [what, p] of [
    ['CERTFLOW_TEMPORAL_PORT', port],
    ['CERTFLOW_UI_PORT', uiPort],
  ] as const) {
    if (!Number.isInteger(p) || p < 1 || p > 65535)
      throw new Error(`${what}: expected a port number, got ${p}`);
    if (await tcpOpen(p)) {
      throw new Error(
        `port ${p} is already in use (another Temporal or Certflow?); set ${what} to a free port`,
      );
    }
  }
  mkdirSync(path.join(dataDir, 'mail'), { recursive: true });
  const stops: Array<() => Promise<void>> = [];
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    console.log('\nstopping ...');
    for (const s of stops.reverse()) await s().catch((e) => console.error(`  ${(e as Error).message}`));
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));

  try {
    console.log('starting the Temporal dev server ...');
    const temporal = await startDevServer({
      dir: dataDir,
      ui: true,
      dbFile: path.join(dataDir, 'temporal.db'),
      port,
      uiPort,
    });
    stops.push(() => temporal.stop());

    console.log('starting the vault, pebble, nginx and the mail sink ...');
    const stack = await startLocalStack({
      certName: 'demo-site',
      vaultDataDir: path.join(dataDir, 'vault'),
      pebbleValiditySeconds: 300,
      seedMinutes: 5,
    });
    stops.push(() => stack.stop());

    const connection = await NativeConnection.connect({ address: temporal.address });
    const worker = await createCertflowWorker({
      connection,
      namespace: temporal.namespace,
      taskQueue,
      activities: stack.activities,
    });
    const running = worker.run();
    stops.push(async () => {
      // Temporal's runtime may already have begun the shutdown on the same signal
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await connection.close();
    });

    const client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
    stops.push(() => client.connection.close());
    const id = stack.certificateId;
    try {
      await client.workflow.start(certificateLifecycle, {
        taskQueue,
        workflowId: workflowIdFor(id),
        args: [{ certificateId: id, issuer: stack.issuerName }],
        staticSummary: `Lifecycle of ${id} (issuer ${stack.issuerName})`,
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }

    // the mail sink: every message is saved as .eml and announced here
    let saved = 0;
    const timer = setInterval(() => {
      while (saved < stack.smtp.messages.length) {
        const m = stack.smtp.messages[saved++]!;
        const base = path.join(dataDir, 'mail', `${new Date().toISOString().replace(/[:.]/g, '-')}-${saved}`);
        const file = `${base}.txt`;
        const head = `To: ${m.envelope.to.join(', ')}\nSubject: ${m.subject ?? ''}\nMessage-ID: ${m.messageId ?? ''}\n\n`;
        writeFileSync(file, head + (m.text ?? ''));
        if (m.html) writeFileSync(`${base}.html`, m.html);
        console.log(`mail to ${m.envelope.to.join(', ')}: "${m.subject}" (${path.relative(repoRoot, file)})`);
      }
    }, 500);
    stops.push(async () => clearInterval(timer));

    const ui = `${temporal.uiUrl}/namespaces/default/workflows/${encodeURIComponent(workflowIdFor(id))}`;
    console.log(`
Certflow is running (Ctrl-C stops everything; state is kept in ${path.relative(repoRoot, dataDir) || dataDir}/).

  Temporal Web UI   ${temporal.uiUrl}
  this certificate  ${ui}
  demo site (nginx) https://127.0.0.1:${stack.nginx.port}/  (certificate for ${stack.dnsName})
  mail              ${path.relative(repoRoot, path.join(dataDir, 'mail'))}/*.txt (and .html), and announced below

The demo certificate lives 5 minutes and renews itself at 80 % of its lifetime. Try:
  ./bin/certflow.mjs status ${id}
  ./bin/certflow.mjs renew ${id}
  ./bin/certflow.mjs pause ${id} --reason "change freeze"   then   ./bin/certflow.mjs resume ${id}
`);
  } catch (err) {
    console.error(`certflow: could not start: ${(err as Error).message}`);
    await shutdown(1);
  }
}

void main();
