/**
 * The published JSON Schema of the configuration (schema/config.schema.json): regenerated from the zod schema and
 * compared with the file (so it never drifts from the worker's own checks), referenced by config.example.json, and
 * usable: read back (zod's fromJSONSchema, a reader of the published file independent of worker/config-schema.ts)
 * it accepts the example and the deploy configurations and refuses what the worker refuses for type and shape.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../worker/config';
import { configSchema } from '../../worker/config-schema';
import { CONFIG_SCHEMA_FILE, configJsonSchemaText } from '../../worker/config-json-schema';
import { repoRoot } from '../support/tools';

const published = readFileSync(path.join(repoRoot, CONFIG_SCHEMA_FILE), 'utf8');
const json = (rel: string) =>
  JSON.parse(readFileSync(path.join(repoRoot, rel), 'utf8')) as Record<string, unknown>;

describe('schema/config.schema.json', () => {
  it('is what the zod schema generates now (else: npm run schema)', () => {
    expect(published, `${CONFIG_SCHEMA_FILE} is out of date: run \`npm run schema\``).toBe(
      configJsonSchemaText(),
    );
  });

  it('lists every top-level key of the zod schema, "$schema" included, and no other', () => {
    const schema = JSON.parse(published) as {
      properties: Record<string, unknown>;
      additionalProperties: boolean;
    };
    expect(Object.keys(schema.properties).sort()).toEqual(Object.keys(configSchema.shape).sort());
    expect(schema.properties).toHaveProperty('$schema');
    expect(schema.additionalProperties).toBe(false);
  });

  it('read back as a validator, accepts the shipped configurations and refuses bad types, values and keys', () => {
    const validator = z.fromJSONSchema(JSON.parse(published) as Parameters<typeof z.fromJSONSchema>[0]);
    for (const file of ['config.example.json', 'deploy/certflow.compose.json', 'deploy/certflow.demo.json'])
      expect(validator.safeParse(json(file)).success, file).toBe(true);
    expect(validator.safeParse({ http: { port: 'not-a-port' } }).success).toBe(false);
    expect(validator.safeParse({ log: { level: 'loud' } }).success).toBe(false);
    expect(validator.safeParse({ vaults: [{ kind: 'floppy', name: 'x' }] }).success).toBe(false);
    expect(validator.safeParse({ tempral: {} }).success).toBe(false);
  });
});

describe('"$schema" in a configuration file', () => {
  it('config.example.json references the published schema, and the loader accepts the key', () => {
    expect(json('config.example.json').$schema).toBe(`./${CONFIG_SCHEMA_FILE}`);
    const c = loadConfig({ file: path.join(repoRoot, 'config.example.json'), env: {} });
    expect(c.vaults[0]?.name).toBe('kv-prod');
  });
});
