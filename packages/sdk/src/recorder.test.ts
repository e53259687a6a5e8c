import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RunFinished, RunStarted, StepFinished, StepStarted } from '@rewind/schema';
import { openStore } from '@rewind/store';
import { isRecording, startStep } from './capture.ts';
import type { RewindCaptureError } from './errors.ts';
import { Recorder, SDK_VERSION } from './recorder.ts';
import { MemoryStore } from './testing.ts';

const temp = mkdtempSync(join(tmpdir(), 'rewind-sdk-recorder-'));
after(() => rmSync(temp, { recursive: true, force: true }));

function memory(options: ConstructorParameters<typeof Recorder>[0] = {}): {
  r: Recorder;
  store: MemoryStore;
} {
  const store = new MemoryStore();
  return { r: new Recorder({ store, cwd: temp, env: {}, ...options }), store };
}

function collect(): { errors: RewindCaptureError[]; onError: (error: RewindCaptureError) => void } {
  const errors: RewindCaptureError[] = [];
  return { errors, onError: (error) => errors.push(error) };
}

test('outside a run wrapped functions just run: same this, arguments, result and error', () => {
  const { r, store } = memory();
  const self = { factor: 3 };
  const tool = r.tool('mul', function (this: typeof self, a: number, b: number) {
    return { value: this.factor * a * b };
  });
  assert.deepEqual(tool.call(self, 2, 5), { value: 30 });
  const boom = new Error('x');
  const thrower = r.model('m', () => {
    throw boom;
  });
  assert.throws(
    () => thrower(),
    (error: unknown) => error === boom,
  );
  assert.equal(isRecording(), false);
  assert.equal(startStep({ kind: 'tool', name: 't', request: {} }), undefined);
  assert.equal(store.events.length, 0);
  assert.equal(r.stats().produced, 0);
});

test('inside a run: return values, thrown errors, this and arguments are exactly the same', async () => {
  const { r } = memory();
  const result = { big: 'object' };
  const boom = new TypeError('boom');
  const self = { base: 10 };
  const add = r.tool('add', function (this: typeof self, a: number, b: number) {
    return this.base + a + b;
  });
  const same = r.tool('same', () => result);
  const sync = r.tool('throws', () => {
    throw boom;
  });
  const asyncOk = r.retriever('asyncOk', async () => result);
  const asyncFail = r.chain('asyncFail', async () => {
    throw boom;
  });
  await r.agent('a', async function (this: unknown) {
    assert.equal(add.call(self, 1, 2), 13);
    assert.equal(same(), result);
    assert.throws(
      () => sync(),
      (error: unknown) => error === boom,
    );
    const promise = asyncOk();
    assert.ok(promise instanceof Promise);
    assert.equal(await promise, result);
    await assert.rejects(asyncFail(), (error: unknown) => error === boom);
    assert.equal(add.name, '');
    return 'done';
  })();
  await r.shutdown();
});

test('a non-native thenable is returned as is (its extra methods stay) and observed', async () => {
  const { r, store } = memory();
  class ApiPromise<T> implements PromiseLike<T> {
    readonly #inner: Promise<T>;
    constructor(value: T) {
      this.#inner = sleep(2).then(() => value);
    }
    then<A = T, B = never>(
      ok?: ((value: T) => A | PromiseLike<A>) | null,
      fail?: ((e: unknown) => B | PromiseLike<B>) | null,
    ) {
      return this.#inner.then(ok, fail);
    }
    withResponse(): string {
      return 'extra';
    }
  }
  let returned: unknown;
  const original = new ApiPromise({ id: 1 });
  const call = r.model('llm', () => original);
  await r.agent('a', async () => {
    returned = call();
    assert.equal((returned as ApiPromise<unknown>).withResponse(), 'extra');
    return await (returned as ApiPromise<unknown>);
  })();
  assert.equal(returned, original);
  await r.flush();
  const finished = store.events.find((e): e is StepFinished => e.type === 'step.finished');
  assert.equal(finished?.status, 'ok');
  assert.deepEqual((store.payload(finished.response!.hash) as { raw: unknown }).raw, { output: { id: 1 } });
  await r.shutdown();
});

test('wrappers keep the name and length of the function', () => {
  const { r } = memory();
  function search(query: string, k: number): string {
    return `${query}${k}`;
  }
  const wrapped = r.retriever('search', search);
  assert.equal(wrapped.name, 'search');
  assert.equal(wrapped.length, 2);
});

test('nesting: steps inside steps, sub-agents as chain steps, call keys and seq', async () => {
  const { r, store } = memory();
  const leaf = r.tool('leaf', async (x: number) => {
    await sleep(x);
    return x;
  });
  const sub = r.agent('helper/agent', async (n: number) => leaf(n));
  const group = r.chain('group', async () => Promise.all([leaf(3), leaf(1), sub(2)]));
  await r.agent('main', async () => {
    await group();
    await leaf(0);
  })();
  await r.flush();
  const starts = store.events
    .filter((e): e is StepStarted => e.type === 'step.started')
    .sort((a, b) => a.seq - b.seq);
  const byId = new Map(starts.map((s) => [s.stepId, s]));
  assert.deepEqual(
    starts.map((s) => [
      s.seq,
      s.kind,
      s.name,
      s.callKey,
      s.parentStepId === null ? null : byId.get(s.parentStepId ?? '')?.seq,
    ]),
    [
      [1, 'chain', 'group', 'chain:group#0', null],
      [2, 'tool', 'leaf', 'chain:group#0/tool:leaf#0', 1],
      [3, 'tool', 'leaf', 'chain:group#0/tool:leaf#1', 1],
      [4, 'chain', 'helper/agent', 'chain:group#0/chain:helper%2Fagent#0', 1],
      [5, 'tool', 'leaf', 'chain:group#0/chain:helper%2Fagent#0/tool:leaf#0', 4],
      [6, 'tool', 'leaf', 'tool:leaf#0', null],
    ],
  );
  assert.equal(
    store.events.filter((e) => e.type === 'run.started').length,
    1,
    'a sub-agent is not a run of its own',
  );
  const subStart = starts[3]!;
  assert.deepEqual(store.payload(subStart.request.hash), { input: 2 });
  await r.shutdown();
});

test('startStep/isRecording: the contract adapters use', async () => {
  const { r, store } = memory();
  await r.agent('a', async () => {
    assert.equal(isRecording(), true);
    const step = startStep({
      kind: 'model',
      name: 'openai.chat',
      request: { provider: 'openai', model: 'm', messages: [], params: {} },
    });
    assert.ok(step !== undefined);
    assert.equal(step.seq, 1);
    assert.equal(step.callKey, 'model:openai.chat#0');
    const child = step.run(() =>
      startStep({ kind: 'tool', name: 'inner', request: { name: 'inner', arguments: 1 } }),
    );
    assert.equal(child?.callKey, 'model:openai.chat#0/tool:inner#0');
    child?.fail(Object.assign(new Error('rate limited'), { status: 429 }), {
      response: { error: 'slow down' },
    });
    await sleep(2);
    assert.ok(step.elapsedMs() >= 1);
    step.finish(
      {
        model: 'm',
        message: { role: 'assistant', content: 'hi' },
        finishReason: 'stop',
        usage: { inputTokens: 1 },
      },
      { usage: { inputTokens: 1, outputTokens: 2 }, stream: { offsetsMs: [0.5, 1.5] } },
    );
    step.finish({ ignored: true });
    step.fail(new Error('ignored'));
  })();
  await r.flush();
  const finishes = store.events.filter((e): e is StepFinished => e.type === 'step.finished');
  assert.equal(finishes.length, 2);
  const childFinish = finishes.find((e) => e.status === 'error')!;
  assert.equal(childFinish.status, 'error');
  assert.deepEqual(
    { type: childFinish.error.type, message: childFinish.error.message, status: childFinish.error.status },
    { type: 'Error', message: 'rate limited', status: 429 },
  );
  assert.deepEqual(store.payload(childFinish.response!.hash), { error: 'slow down' });
  const modelFinish = finishes.find((e) => e.status === 'ok')!;
  assert.deepEqual(modelFinish.usage, { inputTokens: 1, outputTokens: 2 });
  assert.deepEqual(modelFinish.stream, { chunks: 2, offsetsMs: [0.5, 1.5] });
  await r.shutdown();
});

test('a run ending with a step still running finishes that step first (run.finished is last)', async () => {
  const { r, store } = memory();
  const slow = r.tool('slow', () => sleep(20).then(() => 'late'));
  let dangling: Promise<string> | undefined;
  await r.agent('a', async () => {
    dangling = slow();
    return 'early';
  })();
  assert.equal(await dangling, 'late');
  await r.flush();
  const types = store.events.map((e) => e.type);
  assert.deepEqual(types.sort(), ['run.finished', 'run.started', 'step.finished', 'step.started']);
  const finish = store.events.find((e): e is StepFinished => e.type === 'step.finished')!;
  assert.equal(finish.status, 'error');
  assert.equal(finish.status === 'error' && finish.error.type, 'Unfinished');
  const run = store.events.find((e): e is RunFinished => e.type === 'run.finished')!;
  assert.deepEqual(run.counts, { steps: 1, errors: 1 });
  assert.ok(finish.time <= run.time);
  await r.shutdown();
});

test('run events: input, output, error, cancelled, attributes and sdk', async () => {
  const { r, store } = memory({ attributes: { team: 'support', tags: ['a', 'b'] } });
  await r.agent('ok', async (a: number, b: string) => ({ a, b }), { attributes: { variant: 2 } })(1, 'x');
  await assert.rejects(r.agent('fails', async () => Promise.reject(new SyntaxError('bad')))());
  const abort = Object.assign(new Error('stopped'), { name: 'AbortError' });
  await assert.rejects(r.agent('aborted', async () => Promise.reject(abort))());
  await r.flush();
  const started = store.events.filter((e): e is RunStarted => e.type === 'run.started');
  const finished = store.events.filter((e): e is RunFinished => e.type === 'run.finished');
  const ok = started.find((e) => e.agent === 'ok')!;
  assert.deepEqual(store.payload(ok.input.hash), [1, 'x']);
  assert.deepEqual(ok.sdk, { name: '@rewind/sdk', version: SDK_VERSION });
  assert.equal(SDK_VERSION, '0.1.0');
  assert.equal(ok.attributes?.team, 'support');
  assert.deepEqual(ok.attributes?.tags, ['a', 'b']);
  assert.equal(ok.attributes?.variant, 2);
  const okEnd = finished.find((e) => e.runId === ok.runId)!;
  assert.equal(okEnd.status, 'ok');
  assert.deepEqual(okEnd.status === 'ok' && store.payload(okEnd.output.hash), { a: 1, b: 'x' });
  const failEnd = finished.find((e) => e.runId === started.find((s) => s.agent === 'fails')!.runId)!;
  assert.equal(failEnd.status, 'error');
  assert.equal(failEnd.status === 'error' && failEnd.error.type, 'SyntaxError');
  assert.ok(failEnd.status === 'error' && failEnd.error.stack?.includes('SyntaxError: bad'));
  const abortEnd = finished.find((e) => e.runId === started.find((s) => s.agent === 'aborted')!.runId)!;
  assert.equal(abortEnd.status, 'cancelled');
  await r.shutdown();
});

test('run attributes: git sha, package name and version, NODE_ENV', async () => {
  const project = join(temp, 'project');
  mkdirSync(join(project, 'sub'), { recursive: true });
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'my-agent', version: '1.2.3' }));
  execFileSync('git', ['init', '-q', project]);
  execFileSync('git', [
    '-C',
    project,
    '-c',
    'user.email=a@b',
    '-c',
    'user.name=a',
    'commit',
    '-q',
    '--allow-empty',
    '-m',
    'x',
  ]);
  const sha = execFileSync('git', ['-C', project, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
  const store = new MemoryStore();
  const r = new Recorder({ store, cwd: join(project, 'sub'), env: { NODE_ENV: 'test' } });
  await r.agent('a', () => 1)();
  await r.flush();
  const started = store.events.find((e): e is RunStarted => e.type === 'run.started')!;
  assert.deepEqual(started.attributes, {
    'git.sha': sha,
    'package.name': 'my-agent',
    'package.version': '1.2.3',
    'node.env': 'test',
  });
  // packed refs are read too
  execFileSync('git', ['-C', project, 'pack-refs', '--all']);
  const r2 = new Recorder({ store, cwd: project, env: {} });
  await r2.agent('b', () => 1)();
  await r2.flush();
  const second = store.events.filter((e): e is RunStarted => e.type === 'run.started')[1]!;
  assert.equal(second.attributes?.['git.sha'], sha);
  await r.shutdown();
  await r2.shutdown();
});

test('REWIND_DISABLED=1 makes the recorder a no-op', async () => {
  const store = new MemoryStore();
  const r = new Recorder({ store, cwd: temp, env: { REWIND_DISABLED: '1' } });
  const tool = r.tool('t', (x: number) => x + 1);
  assert.equal(await r.agent('a', async () => tool(1))(), 2);
  assert.equal(r.recording, false);
  assert.deepEqual(r.stats(), { produced: 0, delivered: 0, spooled: 0, dropped: 0, pending: 0 });
  assert.deepEqual(await r.flush(), {
    produced: 0,
    delivered: 0,
    spooled: 0,
    dropped: 0,
    pending: 0,
    done: true,
    timedOut: false,
  });
  assert.equal(store.events.length, 0);
  const off = new Recorder({ store, cwd: temp, env: {}, enabled: false });
  assert.equal(off.agent('a', () => 5)(), 5);
  assert.equal(store.events.length, 0);
});

test('an invalid redaction policy, or one that needs a missing key, fails closed: nothing is recorded', () => {
  for (const policy of [
    { version: 1, detectors: { emial: 'mask' } },
    { version: 1, detectors: { email: 'hash' } },
  ]) {
    const { errors, onError } = collect();
    const r = new Recorder({ store: new MemoryStore(), cwd: temp, env: {}, onError, policy });
    assert.equal(r.agent('a', () => 'x')(), 'x');
    assert.equal(r.recording, false);
    assert.deepEqual(
      errors.map((e) => e.code),
      ['invalid_policy'],
    );
    assert.match(errors[0]!.message, /emial|REWIND_PROJECT_KEY/);
  }
});

test('with nothing configured the recorder writes to .rewind in the working directory', async () => {
  const dir = join(temp, 'default-cwd');
  mkdirSync(dir, { recursive: true });
  const r = new Recorder({ cwd: dir, env: {} });
  assert.equal(r.location, join(dir, '.rewind'));
  await r.agent('a', () => 'hello')();
  const result = await r.shutdown();
  assert.equal(result.delivered, 2);
  const store = await openStore(join(dir, '.rewind'));
  const runs = await store.listRuns();
  assert.equal(runs.items.length, 1);
  assert.equal(runs.items[0]!.status, 'ok');
  await store.close();
});

test('REWIND_STORE and rewind.config.json choose the store; a malformed config records nothing', async () => {
  const dir = join(temp, 'config-cwd');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'rewind.config.json'), JSON.stringify({ store: 'from-config' }));
  assert.equal(new Recorder({ cwd: dir, env: {} }).location, join(dir, 'from-config'));
  assert.equal(new Recorder({ cwd: dir, env: { REWIND_STORE: 'from-env' } }).location, join(dir, 'from-env'));
  assert.equal(new Recorder({ cwd: dir, env: {}, store: 'explicit' }).location, join(dir, 'explicit'));
  writeFileSync(join(dir, 'rewind.config.json'), '{ not json');
  const { errors, onError } = collect();
  const r = new Recorder({ cwd: dir, env: {}, onError });
  assert.equal(r.agent('a', () => 1)(), 1);
  assert.equal(r.recording, false);
  assert.equal(errors[0]?.code, 'invalid_config');
  assert.match(errors[0]!.message, /rewind\.config\.json: is not valid JSON/);
});

test('a store directory that cannot be created (a real failure) leaves the agent alone; reported once', async () => {
  const blocker = join(temp, 'not-a-directory');
  writeFileSync(blocker, 'a file where the store directory should be');
  const { errors, onError } = collect();
  const r = new Recorder({ store: join(blocker, 'store'), cwd: temp, env: {}, onError });
  const tool = r.tool('t', async (x: number) => x + 1);
  const agent = r.agent('a', async (x: number) => tool(x));
  for (let i = 0; i < 3; i++) assert.equal(await agent(i), i + 1);
  const result = await r.flush();
  assert.deepEqual(
    {
      produced: result.produced,
      delivered: result.delivered,
      dropped: result.dropped,
      pending: result.pending,
    },
    { produced: 12, delivered: 0, dropped: 12, pending: 0 },
  );
  assert.equal(errors.length, 1);
  assert.equal(errors[0]!.code, 'store_failed');
  await r.shutdown();
});

test('a read-only store directory (when not running as root) is a real failing store', {
  skip: process.getuid?.() === 0 && 'root ignores directory permissions',
}, async () => {
  const { chmodSync } = await import('node:fs');
  const dir = join(temp, 'read-only');
  mkdirSync(dir);
  chmodSync(dir, 0o555);
  const { errors, onError } = collect();
  const r = new Recorder({ store: dir, cwd: temp, env: {}, onError });
  assert.equal(await r.agent('a', async () => 'fine')(), 'fine');
  const result = await r.flush();
  assert.equal(result.dropped, 2);
  assert.equal(errors[0]?.code, 'store_failed');
  chmodSync(dir, 0o755);
});
