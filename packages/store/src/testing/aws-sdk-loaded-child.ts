// Child process for s3-blob-store.test.ts: records every module under @aws-sdk/ that is
// resolved while a SQLite store with filesystem blobs is opened and used (must be none), then
// while an s3:// blob store is opened (the control: must be some). Prints
// {"sqlite": [specifiers…], "s3": <loaded>}.
//
// Usage: node aws-sdk-loaded-child.ts <dir>

import { registerHooks } from 'node:module';

const resolved: string[] = [];
registerHooks({
  resolve(specifier, context, nextResolve) {
    if (specifier.includes('@aws-sdk/')) resolved.push(specifier);
    return nextResolve(specifier, context);
  },
});

const dir = process.argv[2];
if (dir === undefined) {
  process.stderr.write('usage: aws-sdk-loaded-child.ts <dir>\n');
  process.exit(2);
}
const { openBlobStore, openStore } = await import('../open.ts');
const store = await openStore(dir);
await store.blobs.put(new TextEncoder().encode('{"hello":"world"}'));
await store.close();
const sqlite = [...resolved];

// Nothing listens on port 1: opening fails, after loading the SDK.
await openBlobStore('s3://some-bucket/p', {
  env: { AWS_ENDPOINT_URL: 'http://127.0.0.1:1', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y' },
}).then(
  (blobs) => blobs.close(),
  () => undefined,
);
process.stdout.write(JSON.stringify({ sqlite, s3: resolved.length > sqlite.length }));
