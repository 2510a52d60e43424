/** The local stack of real servers (stack.ts) with a Certflow Worker polling a task queue of its own, and a client. */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { createCertflowWorker } from '../../worker/worker';
import { startLocalStack, type LocalStack, type LocalStackOptions } from './stack';

export interface StackWithWorker {
  stack: LocalStack;
  client: Client;
  taskQueue: string;
  stop(): Promise<void>;
}

export async function startStackWithWorker(
  temporal: { address: string; namespace: string; taskQueue: string },
  opts: LocalStackOptions,
): Promise<StackWithWorker> {
  const stack = await startLocalStack(opts);
  try {
    const connection = await NativeConnection.connect({ address: temporal.address });
    const worker = await createCertflowWorker({
      connection,
      namespace: temporal.namespace,
      taskQueue: temporal.taskQueue,
      activities: stack.activities,
    });
    const run = worker.run();
    const client = new Client({
      connection: await Connection.connect({ address: temporal.address }),
      namespace: temporal.namespace,
    });
    return {
      stack,
      client,
      taskQueue: temporal.taskQueue,
      async stop() {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await run;
        await connection.close();
        await client.connection.close();
        await stack.stop();
      },
    };
  } catch (err) {
    await stack.stop();
    throw err;
  }
}
