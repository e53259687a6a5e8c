// Writes packages/schema/trace-v1.schema.json from the shapes in packages/schema/src, or with
// --check fails when the committed file is not what the source generates.
import { readFileSync, writeFileSync } from 'node:fs';
import { SCHEMA_VERSION, traceJsonSchema } from '@rewind/schema';

const path = new URL(`../packages/schema/trace-v${SCHEMA_VERSION}.schema.json`, import.meta.url);
const generated = `${JSON.stringify(traceJsonSchema(), null, 2)}\n`;

if (process.argv.includes('--check')) {
  let committed = '';
  try {
    committed = readFileSync(path, 'utf8');
  } catch {}
  if (committed !== generated) {
    console.error(
      `${path.pathname} is out of date with packages/schema/src; run \`npm run gen\` and commit the result`,
    );
    process.exit(1);
  }
  console.log('json schema: current');
} else {
  writeFileSync(path, generated);
  console.log(`wrote ${path.pathname}`);
}
