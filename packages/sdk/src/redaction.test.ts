import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createRedactor, defaultPolicy, parsePolicy } from '@rewind/redact';
import type { RunFinished, RunStarted, StepFinished, StepStarted } from '@rewind/schema';
import { startStep } from './capture.ts';
import type { RewindCaptureError } from './errors.ts';
import { Recorder } from './recorder.ts';
import { redactChunks, redactPayload, requestHashFor } from './redaction.ts';
import { serializeModelResponse } from './split.ts';
import { MemoryStore } from './testing.ts';

const temp = mkdtempSync(join(tmpdir(), 'rewind-sdk-redaction-'));
after(() => rmSync(temp, { recursive: true, force: true }));

// A real-looking OpenAI key (the detector wants sk-proj- and ≥ 20 letters and digits).
const SECRET = 'sk-proj-Ab3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF3hJ5';

function allStored(store: MemoryStore): string {
  const blobs = [...store.blobMap.values()].map((bytes) => Buffer.from(bytes).toString('utf8'));
  return JSON.stringify(store.events) + blobs.join('\n');
}

function collect(): { errors: RewindCaptureError[]; onError: (error: RewindCaptureError) => void } {
  const errors: RewindCaptureError[] = [];
  return { errors, onError: (error) => errors.push(error) };
}

test('the default policy is on without any configuration: secrets in every part of a run are masked before they are stored', async () => {
  const store = new MemoryStore();
  const r = new Recorder({ store, cwd: temp, env: {}, attributes: { deploy: `token ${SECRET}` } });
  const lookup = r.tool('lookup', (query: string) => ({ found: `the key is ${SECRET}` }));
  const failing = r.tool('failing', () => {
    throw new Error(`upstream refused ${SECRET}`);
  });
  const agent = r.agent('bot', async (input: { prompt: string }) => {
    await lookup(`find ${SECRET}`);
    try {
      await failing();
    } catch {}
    return `done with ${SECRET}`;
  });
  // the agent itself sees its own values unchanged
  assert.equal(await agent({ prompt: `use ${SECRET}` }), `done with ${SECRET}`);
  await r.shutdown();
  const stored = allStored(store);
  assert.equal(stored.includes(SECRET), false);
  assert.equal(stored.includes('sk-proj-'), false);
  assert.ok(stored.includes('[REDACTED:openai]'));
  const started = store.events.find((e): e is RunStarted => e.type === 'run.started')!;
  assert.equal(started.attributes?.deploy, 'token [REDACTED:openai]');
  const failed = store.events.find(
    (e): e is StepFinished => e.type === 'step.finished' && e.status === 'error',
  ) as Extract<StepFinished, { status: 'error' }>;
  assert.equal(failed.error?.message, 'upstream refused [REDACTED:openai]');
  assert.ok(failed.error?.stack?.includes('[REDACTED:openai]'));
  assert.equal(r.stats().dropped, 0);
});

test('request hashes are taken after redaction, and requestHashFor computes the same hash for a live request', async () => {
  const store = new MemoryStore();
  const r = new Recorder({ store, cwd: temp, env: {} });
  const request = { messages: [{ role: 'user' as const, content: `my key is ${SECRET}` }], model: 'gpt' };
  const call = r.model('chat', async (_: unknown) => 'ok', {
    request: () => ({ provider: 'openai', model: 'gpt', messages: request.messages, params: {} }),
  });
  await r.agent('bot', () => call(request))();
  await r.shutdown();
  const step = store.events.find((e): e is StepStarted => e.type === 'step.started')!;
  const normalized = { provider: 'openai', model: 'gpt', messages: request.messages, params: {} };
  assert.equal(requestHashFor('model', 'chat', normalized, r.redactor), step.requestHash);
  assert.notEqual(requestHashFor('model', 'chat', normalized, undefined), step.requestHash);
  // the same request with another secret in the same place hashes the same: matching never needs the secret
  const other = {
    ...normalized,
    messages: [{ role: 'user' as const, content: `my key is ${SECRET.replace('Ab3', 'Zz9')}` }],
  };
  assert.equal(requestHashFor('model', 'chat', other, r.redactor), step.requestHash);
});

test('a secret split across streamed chunks is caught in raw.chunks, and the chunks still concatenate to the redacted text', () => {
  const redactor = createRedactor(defaultPolicy());
  const pieces = ['Here: sk-pr', 'oj-Ab3dE5gH7j', 'K9mN1pQ3sT5vW7yZ9bC1dF3hJ5', ' done'];
  const response = {
    message: { role: 'assistant', content: pieces.join('') },
    raw: {
      chunks: pieces.map((content, i) => ({ id: 'c1', choices: [{ index: 0, delta: { content } }], n: i })),
    },
  };
  const { payload, redacted } = redactPayload(
    redactor,
    serializeModelResponse(response),
    'model:openai.chat.response',
    serializeModelResponse,
    { streamed: true },
  );
  assert.equal(redacted, true);
  const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
  assert.equal(text.includes('Ab3dE5gH7j'), false);
  assert.equal(text.includes('K9mN1pQ3sT5vW7yZ9bC1dF3hJ5'), false);
  const value = JSON.parse(typeof payload === 'string' ? payload : '') as typeof response;
  const joined = value.raw.chunks.map((chunk) => chunk.choices[0]!.delta.content).join('');
  assert.equal(joined, 'Here: [REDACTED:openai] done');
  assert.equal(value.message.content, 'Here: [REDACTED:openai] done');
  assert.equal(value.raw.chunks.length, 4);
  // chunks without a split secret are left exactly as they were
  const clean = { raw: { chunks: [{ delta: 'hello ' }, { delta: 'world' }] } };
  assert.equal(redactChunks(redactor, clean, 'model.response.raw.chunks'), false);
  assert.deepEqual(clean.raw.chunks, [{ delta: 'hello ' }, { delta: 'world' }]);
});

test('a recorded streamed step (startStep with stream offsets) goes through the chunk pass', async () => {
  const store = new MemoryStore();
  const r = new Recorder({ store, cwd: temp, env: {} });
  await r.agent('bot', async () => {
    const step = startStep({ kind: 'model', name: 'stream', request: { messages: [] } });
    step?.finish(
      {
        message: { role: 'assistant', content: 'x' },
        raw: { chunks: [{ t: 'key sk-proj-Ab3dE5g' }, { t: 'H7jK9mN1pQ3sT5vW7' }] },
      },
      { stream: { offsetsMs: [1, 2] } },
    );
  })();
  await r.shutdown();
  const stored = allStored(store);
  assert.equal(stored.includes('Ab3dE5g'), false);
  assert.equal(stored.includes('H7jK9mN1pQ3sT5vW7'), false);
});

test('the policy comes from rewind.policy.json in the working directory; hash gives stable pseudonyms with the project key', async () => {
  const dir = mkdtempSync(join(temp, 'policy-'));
  writeFileSync(
    join(dir, 'rewind.policy.json'),
    JSON.stringify({ version: 1, detectors: { email: 'hash' } }),
  );
  const key = randomBytes(32).toString('base64');
  const pseudonyms: string[] = [];
  for (let i = 0; i < 2; i++) {
    const store = new MemoryStore();
    const r = new Recorder({ store, cwd: dir, env: { REWIND_PROJECT_KEY: key } });
    await r.agent('bot', (text: string) => text)('write to jane.doe@example.com please');
    await r.shutdown();
    const stored = allStored(store);
    assert.equal(stored.includes('jane.doe@example.com'), false);
    const match = /«email:[0-9a-f]{12}»/.exec(stored);
    assert.ok(match, stored);
    pseudonyms.push(match[0]);
  }
  assert.equal(pseudonyms[0], pseudonyms[1]);
});

test('fails closed: a value too large to scan becomes a marker that says why, and the run goes on', async () => {
  const store = new MemoryStore();
  const { errors, onError } = collect();
  const policy = { version: 1, limits: { maxStringLength: 1000 } };
  const r = new Recorder({ store, cwd: temp, env: {}, policy, onError });
  const big = `${'a'.repeat(2000)} ${SECRET}`;
  const tool = r.tool('echo', (value: string) => value.length);
  assert.equal(await r.agent('bot', async () => tool(big))(), big.length);
  await r.shutdown();
  const stored = allStored(store);
  assert.equal(stored.includes(SECRET), false);
  assert.ok(stored.includes('[REDACTED:scan_failed:too_large]'));
  const finished = store.events.find((e): e is RunFinished => e.type === 'run.finished')!;
  assert.equal(finished.status, 'ok');
  assert.deepEqual(errors, []);
});

test('field rules apply by step name and part; a policy object is checked like a file', async () => {
  const store = new MemoryStore();
  const policy = {
    version: 1,
    rules: [
      { path: 'tool:crm.lookup.response.output.ssn', action: 'drop' },
      { path: 'run.input.password', action: 'mask' },
    ],
  };
  assert.doesNotThrow(() => parsePolicy(policy));
  const r = new Recorder({ store, cwd: temp, env: {}, policy });
  const lookup = r.tool('crm.lookup', () => ({ name: 'Jane', ssn: '123-45-6789' }));
  await r.agent('bot', async (_: { password: string }) => {
    await lookup();
    return 'ok'; // a rule covers its path only: the run's output would need a rule of its own
  })({ password: 'hunter2hunter2' });
  await r.shutdown();
  const stored = allStored(store);
  assert.equal(stored.includes('123-45-6789'), false);
  assert.equal(stored.includes('hunter2hunter2'), false);
  assert.ok(stored.includes('[REDACTED:password]'));
});
