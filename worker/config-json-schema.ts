/**
 * The configuration's JSON Schema, generated from the zod schema (worker/config-schema.ts, the one source) with
 * zod's own z.toJSONSchema and published as schema/config.schema.json (`npm run schema` writes it; a test checks
 * the file is current). Editors that follow a file's "$schema" then complete and check a Certflow configuration.
 * It describes what may be written (zod's input side: defaulted fields are optional); the checks zod runs in code
 * (cross-field rules, secret references resolving, allowed-name globs) stay the worker's: `--check` runs them all.
 */
import { z } from 'zod';
import { configSchema } from './config-schema';

export const CONFIG_SCHEMA_FILE = 'schema/config.schema.json';
export const CONFIG_SCHEMA_ID = 'https://certflow.dev/schema/config.schema.json';

export function configJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(configSchema, {
    io: 'input',
    target: 'draft-2020-12',
    // refinements and transforms have no JSON Schema form: their base type is kept, the check stays in code
    unrepresentable: 'any',
  });
  const { $schema, ...rest } = generated;
  return {
    $schema,
    $id: CONFIG_SCHEMA_ID,
    title: 'Certflow worker configuration',
    description:
      'The configuration file of the Certflow worker (docs/configuration.md). Generated from worker/config-schema.ts by `npm run schema`; do not edit.',
    ...rest,
  };
}

/** The file's text: two-space JSON and a final newline, as prettier leaves it. */
export const configJsonSchemaText = (): string => `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
