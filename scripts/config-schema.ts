/** `npm run schema`: writes schema/config.schema.json from the zod schema (worker/config-json-schema.ts). */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFIG_SCHEMA_FILE, configJsonSchemaText } from '../worker/config-json-schema';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const text = configJsonSchemaText();
writeFileSync(path.join(root, CONFIG_SCHEMA_FILE), text);
process.stdout.write(`[schema] ${CONFIG_SCHEMA_FILE} (${Math.round(text.length / 1024)} KiB)\n`);
