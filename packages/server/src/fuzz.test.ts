import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { blobHashOf } from '@rewind/schema';
import { buildStream, newNamespace, simpleRunPlan } from '@rewind/store/contract';
import fc from 'fast-check';
import type { LogLine } from './server.ts';
import { BACKENDS, startTestServer, type TestServer } from './testing/backends.ts';

// Property-based fuzzing of every route with arbitrary methods, paths (with `..`, encoded
// traversal, NULs, odd hex), headers and bodies, sent raw with node:http (fetch would normalize
// the paths): never a 5xx, never a crash, never a byte from outside the blob store.

const SECRET = 'REWIND-FUZZ-SECRET-7f3a';
const RUNS = Number(process.env.REWIND_FUZZ_RUNS ?? 250);

interface RawResponse {
  status: number;
  body: Buffer;
}

function send(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body: Buffer | undefined,
): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);
const segment = fc.oneof(
  fc.constantFrom(
    'v1',
    'events',
    'blobs',
    'sha256',
    'missing',
    'runs',
    'steps',
    'otlp',
    'traces',
    'healthz',
    'readyz',
    'metrics',
    '',
  ),
  fc.constantFrom(
    '..',
    '.',
    '%2e%2e',
    '%2E%2E',
    '..%2f',
    '%2f..',
    '%2F%2E%2E%2F',
    '..%5c..',
    '%00',
    '%',
    '%zz',
    '~',
    'etc',
    'passwd',
    'secret.txt',
    '..%252f',
  ),
  hex64,
  hex64.map((h) => h.toUpperCase()),
  hex64.map((h) => `${h}/..`),
  hex64.map((h) => h.slice(1)),
  fc.stringMatching(/^[A-Za-z0-9._~%-]{0,20}$/),
  fc.integer({ min: -5, max: 1e6 }).map(String),
);
const knownPrefix = fc.constantFrom(
  '/v1/events',
  '/v1/blobs',
  '/v1/blobs/missing',
  '/v1/blobs/sha256/',
  '/v1/runs',
  '/v1/runs/',
  '/v1/otlp/traces',
  '/healthz',
  '/readyz',
  '/metrics',
  '/',
);
const path = fc
  .tuple(
    knownPrefix,
    fc.array(segment, { maxLength: 6 }),
    fc.option(fc.stringMatching(/^[A-Za-z0-9=&%._-]{0,40}$/)),
  )
  .map(
    ([prefix, segments, query]) =>
      `${prefix}${segments.length > 0 && !prefix.endsWith('/') ? '/' : ''}${segments.join('/')}${query === null ? '' : `?${query}`}`,
  );

const headerValue = fc.stringMatching(/^[\x20-\x7e]{0,60}$/);
const headers = fc.record(
  {
    'content-type': fc.oneof(
      fc.constantFrom(
        'application/json',
        'application/json; charset=utf-8',
        'application/octet-stream',
        'application/vnd.rewind.blobs',
        'text/plain',
        '',
      ),
      headerValue,
    ),
    'content-encoding': fc.oneof(fc.constantFrom('gzip', 'identity', 'br', 'deflate', 'x-gzip'), headerValue),
    authorization: fc.oneof(fc.constantFrom('Bearer ', 'Bearer x', 'Basic abc'), headerValue),
    'x-request-id': headerValue,
  },
  { requiredKeys: [] },
);

function eventsBody(): fc.Arbitrary<Buffer> {
  return fc
    .constant(null)
    .map(() =>
      Buffer.from(JSON.stringify({ events: buildStream([simpleRunPlan(2)], newNamespace()).events })),
    );
}

const body = fc.oneof(
  fc.constant(undefined),
  fc.uint8Array({ maxLength: 2000 }).map((bytes) => Buffer.from(bytes)),
  fc.json({ depthSize: 'medium' }).map((text) => Buffer.from(text)),
  fc.json().map((text) => Buffer.from(`{"events":[${text}]}`)),
  fc.json().map((text) => Buffer.from(`{"hashes":[${text}]}`)),
  eventsBody(),
  eventsBody().map((bytes) => gzipSync(bytes)),
  fc.uint8Array({ maxLength: 500 }).map((bytes) => gzipSync(bytes)),
  fc
    .tuple(hex64, fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 0, max: 2 ** 32 - 1 }))
    .map(([hex, bytes, length]) => {
      const size = Buffer.alloc(4);
      size.writeUInt32BE(length);
      return Buffer.concat([Buffer.from(`sha256:${hex}`), size, bytes]);
    }),
  fc
    .integer({ min: 1, max: 200 })
    .map((depth) => Buffer.from(`{"events":[${'['.repeat(depth)}${']'.repeat(depth)}]}`)),
);

const method = fc.oneof(
  fc.constantFrom('GET', 'POST', 'PUT', 'HEAD', 'DELETE', 'PATCH', 'OPTIONS'),
  fc.stringMatching(/^[A-Z]{1,10}$/),
);

for (const backend of BACKENDS) {
  describe(`fuzzing the server on ${backend.name}`, () => {
    let t: TestServer;
    const logs: LogLine[] = [];
    const stored = Buffer.from(`{"stored":"${backend.name}"}`);
    before(async () => {
      t = await startTestServer(backend, { log: (line) => logs.push(line) });
      // A file right next to the blob store (and in it, under a name that is not a blob): no
      // request may ever return its bytes.
      await writeFile(join(dirname(t.blobs), 'secret.txt'), SECRET);
      await writeFile(join(t.blobs, 'secret.txt'), SECRET);
      const put = await fetch(`${t.url}/v1/blobs/sha256/${blobHashOf(stored).slice(7)}`, {
        method: 'PUT',
        body: stored,
      });
      assert.equal(put.status, 201);
    });
    after(async () => {
      await t.close();
    });

    test('arbitrary requests to every route: never a 5xx, never a crash, never a read outside the blob store', async () => {
      await fc.assert(
        fc.asyncProperty(method, path, headers, body, async (m, p, h, b) => {
          const response = await send(t.url, m, p, h, b);
          assert.ok(
            response.status >= 200 && response.status < 500,
            `${m} ${p} → ${response.status}: ${response.body.toString().slice(0, 300)}`,
          );
          assert.equal(response.body.includes(SECRET), false, `${m} ${p} returned the secret`);
          if (response.status === 200 && m === 'GET' && p.startsWith('/v1/blobs/sha256/'))
            assert.deepEqual(response.body, stored, `${m} ${p} returned bytes that are not the stored blob`);
        }),
        { numRuns: RUNS },
      );
      const health = await fetch(`${t.url}/healthz`);
      assert.equal(health.status, 200);
      assert.deepEqual(
        logs.filter((line) => line.level === 'error'),
        [],
      );
    });

    test('traversal attempts on the blob routes, sent raw', async () => {
      for (const p of [
        '/v1/blobs/sha256/../../secret.txt',
        '/v1/blobs/sha256/..%2f..%2fsecret.txt',
        '/v1/blobs/sha256/%2e%2e/%2e%2e/secret.txt',
        '/v1/blobs/sha256/secret.txt',
        '/v1/blobs/sha256/..%5csecret.txt',
        `/v1/blobs/sha256/${'0'.repeat(62)}/../secret.txt`,
        '/v1/blobs/sha256/%2e%2e%2fsecret.txt',
      ]) {
        for (const m of ['GET', 'HEAD', 'PUT']) {
          const response = await send(t.url, m, p, {}, m === 'PUT' ? Buffer.from(SECRET) : undefined);
          assert.ok(response.status === 400 || response.status === 404, `${m} ${p} → ${response.status}`);
          assert.equal(response.body.includes(SECRET), false);
        }
      }
    });
  });
}
