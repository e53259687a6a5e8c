// `rewind` with blobs in an S3-compatible object store (--blobs / $REWIND_BLOBS s3://…), end to
// end through the real binary against s3rver on loopback.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { runRewind as rewind } from './rewind-cli.ts';

const scratch = mkdtempSync(join(tmpdir(), 'rewind-cli-s3-'));
const server = new S3rver({ address: '127.0.0.1', port: 0, directory: join(scratch, 's3'), silent: true });
let env: Record<string, string> = {};
let client: S3Client;

before(async () => {
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  env = { AWS_ENDPOINT_URL_S3: endpoint, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };
  client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  await client.send(new CreateBucketCommand({ Bucket: 'rewind-cli' }));
});
after(async () => {
  client?.destroy();
  await server.close();
  rmSync(scratch, { recursive: true, force: true });
});

describe('rewind --blobs s3://bucket/prefix', () => {
  it('demo writes its payloads to the bucket; show reads them back through $REWIND_BLOBS', async () => {
    const cwd = mkdtempSync(join(scratch, 'work-'));
    const demo = await rewind(['demo', '--json', '--blobs', 's3://rewind-cli/demo'], { cwd, env });
    assert.equal(demo.code, 0, demo.stderr);
    const id = (JSON.parse(demo.stdout) as { run: { id: string } }).run.id;
    assert.deepEqual(readdirSync(join(cwd, '.rewind')).includes('blobs'), false, 'no local blob directory');
    const listed = await client.send(
      new ListObjectsV2Command({ Bucket: 'rewind-cli', Prefix: 'demo/sha256/' }),
    );
    assert.ok((listed.KeyCount ?? 0) > 5, `objects in the bucket: ${listed.KeyCount}`);

    const show = await rewind(['show', id, '--json'], {
      cwd,
      env: { ...env, REWIND_BLOBS: 's3://rewind-cli/demo' },
    });
    assert.equal(show.code, 0, show.stderr);
    const parsed = JSON.parse(show.stdout) as { run: { input: { customerId: string } } };
    assert.equal(parsed.run.input.customerId, 'cus_8812');
  });

  it('a malformed s3 URL or a missing bucket is a one-line error, exit 3', async () => {
    const cwd = mkdtempSync(join(scratch, 'work-'));
    const malformed = await rewind(['demo', '--blobs', 's3://x/demo'], { cwd, env });
    assert.equal(malformed.code, 3, malformed.stderr);
    assert.match(malformed.stderr, /"x" is not a valid bucket name/);
    assert.equal(malformed.stderr.trimEnd().split('\n').length, 1, malformed.stderr);
    const missing = await rewind(['demo', '--blobs', 's3://rewind-nowhere/demo'], { cwd, env });
    assert.equal(missing.code, 3, missing.stderr);
    assert.match(
      missing.stderr,
      /the S3 bucket "rewind-nowhere" does not exist at http:\/\/127\.0\.0\.1:\d+/,
    );
  });
});
