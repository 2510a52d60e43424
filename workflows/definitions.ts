/**
 * defineQuery, defineSignal and defineUpdate as @temporalio/workflow makes them (a plain `{ type, name }`, checked
 * against the SDK's own in test/unit/definitions.test.ts), so that the message vocabulary (messages.ts,
 * wave-messages.ts) does not load the workflow SDK into the CLI: about 0.09 s of every `certflow status`.
 * Workflow code imports the same objects; the SDK only reads `type` and `name` from them.
 */
import type {
  QueryDefinition,
  QueryDefinitionOptions,
  SignalDefinition,
  SignalDefinitionOptions,
  UpdateDefinition,
  UpdateDefinitionOptions,
} from '@temporalio/common';

export function defineUpdate<Ret, Args extends unknown[] = [], Name extends string = string>(
  name: Name,
  options: UpdateDefinitionOptions = {},
): UpdateDefinition<Ret, Args, Name> {
  return { type: 'update', name, ...options } as UpdateDefinition<Ret, Args, Name>;
}

export function defineSignal<Args extends unknown[] = [], Name extends string = string>(
  name: Name,
  options: SignalDefinitionOptions = {},
): SignalDefinition<Args, Name> {
  return { type: 'signal', name, ...options } as SignalDefinition<Args, Name>;
}

export function defineQuery<Ret, Args extends unknown[] = [], Name extends string = string>(
  name: Name,
  options: QueryDefinitionOptions = {},
): QueryDefinition<Ret, Args, Name> {
  return { type: 'query', name, ...options } as QueryDefinition<Ret, Args, Name>;
}
