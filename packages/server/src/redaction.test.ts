import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createRedactor, parsePolicy } from '@rewind/redact';
import { blobHashOf, type RewindEvent } from '@rewind/schema';
import { openStore, type Store } from '@rewind/store';
import { buildStream, simpleRunPlan } from '@rewind/store/contract';
import { captureOtlp } from './otlp/testing/capture-otlp.ts';
import { type RunningServer, startServer } from './server.ts';

// The redaction policy at ingest (docs/redaction.md, "On the server"), over real HTTP against a
// real SQLite store: blobs holding what the policy redacts are rejected (a blob cannot be
// rewritten without changing its hash), events are redacted in place, and what cannot be
// checked is rejected, never stored.

const scratch = await mkdtemp(join(tmpdir(), 'rewind-server-redaction-'));
after(() => rm(scratch, { recursive: true, force: true }));

const SECRET = 'sk-proj-Ab3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF3hJ5';
let serial = 0;

async function withServer(
  policy: unknown,
  body: (server: RunningServer, store: Store) => Promise<void>,
): Promise<void> {
  const store = await openStore(join(scratch, `store-${serial++}`));
  const redactor = policy === undefined ? undefined : createRedactor(parsePolicy(policy));
  const server = await startServer({ store, port: 0, log: false, ...(redactor ? { redactor } : {}) });
  try {
    await body(server, store);
  } finally {
    await server.close();
    await store.close();
  }
}

function frame(bytes: Uint8Array): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([Buffer.from(blobHashOf(bytes), 'latin1'), length, bytes]);
}

test('PUT /v1/blobs: a blob holding a secret is rejected with a reason naming the detector and what to do; a clean one is stored', async () => {
  await withServer(undefined, async (server, store) => {
    const dirty = Buffer.from(JSON.stringify({ prompt: `use ${SECRET}` }));
    const put = (bytes: Buffer) =>
      fetch(`${server.url}/v1/blobs/sha256/${blobHashOf(bytes).slice(7)}`, { method: 'PUT', body: bytes });
    const refused = await put(dirty);
    assert.equal(refused.status, 422);
    const error = ((await refused.json()) as { error: { code: string; message: string } }).error;
    assert.equal(error.code, 'contains_redactable');
    assert.match(error.message, /openai at prompt/);
    assert.match(error.message, /same policy in the SDK/);
    assert.equal(error.message.includes(SECRET), false, 'the answer never echoes the secret');
    assert.equal(await store.blobs.has(blobHashOf(dirty)), false);
    const clean = Buffer.from(JSON.stringify({ prompt: 'use [REDACTED:openai]' }));
    assert.equal((await put(clean)).status, 201);
    assert.equal(await store.blobs.has(blobHashOf(clean)), true);
  });
});

test('POST /v1/blobs: each frame is checked; a secret, unreadable bytes and a too-deep value are rejected, the clean frame stored', async () => {
  await withServer(undefined, async (server, store) => {
    let deep = '"x"';
    for (let i = 0; i < 100; i++) deep = `[${deep}]`;
    const blobs = [
      Buffer.from(JSON.stringify(`token ${SECRET}`)),
      Buffer.from([0xff, 0xfe, 0x00, 0x41]),
      Buffer.from(deep),
      Buffer.from('{"ok":true}'),
    ];
    const answer = await fetch(`${server.url}/v1/blobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/vnd.rewind.blobs' },
      body: Buffer.concat(blobs.map(frame)),
    });
    assert.equal(answer.status, 200);
    const { results } = (await answer.json()) as { results: { status: string; reason?: string }[] };
    assert.deepEqual(
      results.map((r) => [r.status, r.reason?.split(':')[0]]),
      [
        ['rejected', 'contains_redactable'],
        ['rejected', 'redaction_failed'],
        ['rejected', 'redaction_failed'],
        ['stored', undefined],
      ],
    );
    assert.match(results[2]!.reason!, /too_deep/);
    for (const [i, bytes] of blobs.entries())
      assert.equal(await store.blobs.has(blobHashOf(bytes)), i === 3, `blob ${i}`);
  });
});

test('POST /v1/events: free text in events is redacted in place; an event that cannot be checked is rejected and not stored', async () => {
  const policy = { version: 1, detectors: { email: 'mask' }, limits: { maxStringLength: 2000 } };
  await withServer(policy, async (server) => {
    const { events } = buildStream([simpleRunPlan(0)], 7);
    const started = events.find((e) => e.type === 'run.started') as Extract<
      RewindEvent,
      { type: 'run.started' }
    >;
    const finished = events.find((e) => e.type === 'run.finished')!;
    const dirty = { ...started, attributes: { owner: 'jane.doe@example.com', note: `key ${SECRET}` } };
    const unreadable = { ...finished, status: 'error', error: { type: 'Error', message: 'x'.repeat(5000) } };
    delete (unreadable as { output?: unknown }).output;
    const answer = await fetch(`${server.url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ events: [dirty, unreadable] }),
    });
    const body = (await answer.json()) as {
      accepted: number;
      rejected: number;
      results: { eventId: string; status: string; reason?: string }[];
    };
    assert.equal(body.rejected, 1, JSON.stringify(body));
    assert.equal(body.results[1]!.status, 'rejected');
    assert.equal(body.results[1]!.eventId, finished.eventId);
    assert.match(body.results[1]!.reason!, /^redaction_failed: error could not be checked \(too_large\)/);
    const run = (await (await fetch(`${server.url}/v1/runs/${started.runId}`)).json()) as {
      run: { attributes: Record<string, unknown>; status: string };
    };
    assert.equal(run.run.attributes.owner, '[REDACTED:email]');
    assert.equal(run.run.attributes.note, 'key [REDACTED:openai]');
    assert.notEqual(run.run.status, 'error', 'the unchecked run.finished was not stored');
  });
});

test('POST /v1/otlp/traces: the server builds these payloads itself, so it redacts them with the policy (rules included)', async () => {
  const policy = { version: 1, rules: [{ path: 'tool:get_weather.request.arguments.city', action: 'mask' }] };
  await withServer(policy, async (server, store) => {
    const bodies = await captureOtlp({ processor: 'batch' }, async (tracer, { within }) => {
      const agent = tracer.startSpan('agent', {
        attributes: { 'openinference.span.kind': 'AGENT', 'input.value': `Weather? my key is ${SECRET}` },
      });
      tracer
        .startSpan(
          'get_weather',
          {
            attributes: {
              'openinference.span.kind': 'TOOL',
              'tool.name': 'get_weather',
              'input.value': '{"city":"Paris"}',
              'output.value': '{"tempC":18}',
            },
          },
          within(agent),
        )
        .end();
      agent.end();
    });
    const answer = await fetch(`${server.url}/v1/otlp/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(bodies[0]),
    });
    assert.equal(answer.status, 200);
    const runs = await store.listRuns({ limit: 10 });
    assert.equal(runs.items.length, 1);
    const runId = runs.items[0]!.id;
    const texts: string[] = [];
    const timeline = await store.readTimeline(runId, {});
    const run = await store.getRun(runId);
    const refs = [run?.input, ...timeline.items.flatMap((s) => [s.request, s.response])];
    for (const ref of refs) if (ref) texts.push(Buffer.from(await store.blobs.get(ref.hash)).toString());
    const all = texts.join('\n');
    assert.equal(all.includes(SECRET), false);
    assert.ok(all.includes('[REDACTED:openai]'));
    assert.equal(all.includes('Paris'), false);
    assert.ok(all.includes('[REDACTED:city]'));
  });
});
