// End to end: the capture SDK records a realistic agent into a real local store, and the real
// `rewind` binary (spawned as `process.execPath packages/cli/src/bin.ts`) shows it. Also the
// acceptance checks of the SDK issue: stable call keys under concurrency, payload dedup over a
// 200-turn conversation, a failing store leaving the agent alone, and flush/shutdown deadlines.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { canonicalJson, type Message, type RunFinished, type StepStarted } from '@rewind/schema';
import { currentRunId, Recorder, type RecorderOptions, type RewindCaptureError } from '@rewind/sdk';
import { openStore, readPayload } from '@rewind/store';
import { fullDiskStore, hangingStore } from '../packages/sdk/src/testing.ts';
import { runRewind as rewind } from './rewind-cli.ts';

const scratch: string[] = [];
after(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-capture-'));
  scratch.push(dir);
  return dir;
}

function recorder(options: RecorderOptions): Recorder {
  return new Recorder({ cwd: tempDir(), env: {}, ...options });
}

// ---------------------------------------------------------------------------------------------
// The scenario: a support agent with a retriever, a tool-call loop (the first turn calls two
// tools at once, run with Promise.all), a tool that throws and is caught, and a nested
// sub-agent. Every wrapped call waits a random delay first.

type Delay = () => Promise<void>;
const randomDelay: Delay = () => sleep(Math.floor(Math.random() * 4));

interface ScenarioOutput {
  answer: string;
  refundError: string | undefined;
  summary: string;
  documents: number;
  runId: string | undefined;
}

function scripted(messages: readonly Message[]): Message {
  const toolResults = messages.filter((m) => m.role === 'tool').length;
  if (toolResults === 0)
    return {
      role: 'assistant',
      content: null,
      toolCalls: [
        { id: 'call-1', name: 'lookup_order', arguments: { orderId: 'A-1' } },
        { id: 'call-2', name: 'check_inventory', arguments: { sku: 'SKU-9' } },
      ],
    };
  if (toolResults === 2)
    return {
      role: 'assistant',
      content: null,
      toolCalls: [{ id: 'call-3', name: 'lookup_order', arguments: { orderId: 'A-2' } }],
    };
  return { role: 'assistant', content: 'Order A-1 shipped; SKU-9 is in stock (3).' };
}

function supportAgent(r: Recorder, delay: Delay = randomDelay, options: { failAtEnd?: boolean } = {}) {
  const search = r.retriever('kb.search', async (query: string, opts: { topK: number }) => {
    await delay();
    return [
      {
        id: 'doc-1',
        pageContent: `Refunds for "${query}" take 5 days.`,
        metadata: { source: 'policy.md' },
        score: 0.92,
      },
      { id: 'doc-2', pageContent: 'Orders ship from Berlin.', metadata: { source: 'faq.md' }, score: 0.71 },
      { id: 'doc-3', pageContent: 'Unrelated.', score: 0.1 },
    ].slice(0, opts.topK);
  });
  const lookupOrder = r.tool('lookup_order', async (args: { orderId: string }) => {
    await delay();
    return { orderId: args.orderId, status: 'shipped', sku: 'SKU-9' };
  });
  const checkInventory = r.tool('check_inventory', async (args: { sku: string }) => {
    await delay();
    return { sku: args.sku, inStock: 3 };
  });
  const issueRefund = r.tool('issue_refund', async (args: { orderId: string; amount: number }) => {
    await delay();
    throw new Error(`refunds of ${args.amount} for ${args.orderId} need approval`);
  });
  const planner = r.model(
    'planner',
    async (messages: Message[]) => {
      await delay();
      return scripted(messages);
    },
    {
      request: (messages) => ({
        provider: 'scripted',
        model: 'planner-1',
        messages,
        params: { temperature: 0 },
      }),
      response: (message) => ({
        model: 'planner-1',
        message,
        finishReason: message.toolCalls === undefined ? 'stop' : 'tool_calls',
        usage: { inputTokens: 100, outputTokens: 10 },
      }),
    },
  );
  const summarizerModel = r.model('summarizer-llm', async (text: string) => {
    await delay();
    return `Summary: ${text.slice(0, 14)}`;
  });
  const summarize = r.agent('summarizer', async (text: string) => ({ summary: await summarizerModel(text) }));
  const tools: Record<string, (args: never) => Promise<unknown>> = {
    lookup_order: lookupOrder,
    check_inventory: checkInventory,
  };

  return r.agent('support-bot', async (question: string): Promise<ScenarioOutput> => {
    const documents = await search(question, { topK: 2 });
    const messages: Message[] = [
      { role: 'system', content: 'You are a support agent. Use the tools.' },
      { role: 'user', content: question },
    ];
    let answer = '';
    for (let turn = 0; turn < 5; turn++) {
      const reply = await planner(messages);
      messages.push(reply);
      const calls = reply.toolCalls ?? [];
      if (calls.length === 0) {
        answer = String(reply.content);
        break;
      }
      const outputs = await Promise.all(calls.map((call) => tools[call.name]!(call.arguments as never)));
      for (const [i, call] of calls.entries())
        messages.push({ role: 'tool', toolCallId: call.id, content: JSON.stringify(outputs[i]) });
    }
    let refundError: string | undefined;
    try {
      await issueRefund({ orderId: 'A-1', amount: 500 });
    } catch (error) {
      refundError = (error as Error).message;
    }
    const { summary } = await summarize(answer);
    if (options.failAtEnd === true) throw new RangeError(`gave up after: ${summary}`);
    return { answer, refundError, summary, documents: documents.length, runId: currentRunId() };
  });
}

const EXPECTED_TIMELINE = [
  // seq, kind, name, callKey, parent seq, status
  [1, 'retriever', 'kb.search', 'retriever:kb.search#0', null, 'ok'],
  [2, 'model', 'planner', 'model:planner#0', null, 'ok'],
  [3, 'tool', 'lookup_order', 'tool:lookup_order#0', null, 'ok'],
  [4, 'tool', 'check_inventory', 'tool:check_inventory#0', null, 'ok'],
  [5, 'model', 'planner', 'model:planner#1', null, 'ok'],
  [6, 'tool', 'lookup_order', 'tool:lookup_order#1', null, 'ok'],
  [7, 'model', 'planner', 'model:planner#2', null, 'ok'],
  [8, 'tool', 'issue_refund', 'tool:issue_refund#0', null, 'error'],
  [9, 'chain', 'summarizer', 'chain:summarizer#0', null, 'ok'],
  [10, 'model', 'summarizer-llm', 'chain:summarizer#0/model:summarizer-llm#0', 9, 'ok'],
] as const;

const EXPECTED_OUTPUT = {
  answer: 'Order A-1 shipped; SKU-9 is in stock (3).',
  refundError: 'refunds of 500 for A-1 need approval',
  summary: 'Summary: Order A-1 ship',
  documents: 2,
};

interface ShowStep {
  seq: number;
  stepId: string;
  parentStepId: string | null;
  kind: string;
  name: string;
  callKey: string;
  status: string;
  label: string | null;
  request: unknown;
  response: unknown;
  error?: { type: string; message: string };
  startedAt: string;
  endedAt: string | null;
}

function timelineOf(steps: readonly ShowStep[]): unknown[] {
  const seqOf = new Map(steps.map((step) => [step.stepId, step.seq]));
  return steps.map((step) => [
    step.seq,
    step.kind,
    step.name,
    step.callKey,
    step.parentStepId === null ? null : (seqOf.get(step.parentStepId) ?? 'unknown'),
    step.status,
  ]);
}

describe('capture into a local store, shown by `rewind show --json`', () => {
  it('records kinds, names, parents, seq order, call keys, statuses and payloads', async () => {
    const dir = tempDir();
    const r = recorder({ store: dir });
    const output = await supportAgent(r)('Where is my order A-1?');
    const { runId, ...rest } = output;
    assert.deepEqual(rest, EXPECTED_OUTPUT);
    assert.ok(runId !== undefined);
    const shut = await r.shutdown();
    assert.deepEqual(
      { done: shut.done, dropped: shut.dropped, pending: shut.pending, delivered: shut.delivered },
      { done: true, dropped: 0, pending: 0, delivered: 2 + 2 * 10 },
    );

    const shown = await rewind(['show', runId, '--json', '--store', dir]);
    assert.equal(shown.code, 0, shown.stderr);
    const show = JSON.parse(shown.stdout) as {
      run: { id: string; agent: string; status: string; input: unknown; output: unknown };
      steps: ShowStep[];
    };
    assert.deepEqual(
      { id: show.run.id, agent: show.run.agent, status: show.run.status, input: show.run.input },
      { id: runId, agent: 'support-bot', status: 'ok', input: 'Where is my order A-1?' },
    );
    assert.deepEqual(show.run.output, { ...EXPECTED_OUTPUT, runId });
    assert.deepEqual(timelineOf(show.steps), EXPECTED_TIMELINE);
    for (const step of show.steps) {
      assert.equal(step.label, 'recorded');
      assert.ok(step.endedAt !== null && step.endedAt >= step.startedAt, `step ${step.seq} times`);
    }
    const [retrieve, plan0, lookup0, inventory, plan1, , plan2, refund, sub, subModel] = show.steps as [
      ShowStep,
      ...ShowStep[],
    ] as ShowStep[];
    // the parallel tools started in call order, while the first started
    assert.ok(inventory!.startedAt < lookup0!.endedAt! || inventory!.startedAt >= lookup0!.startedAt);

    assert.deepEqual(retrieve!.request, { query: 'Where is my order A-1?', topK: 2 });
    const retrieved = retrieve!.response as { documents: unknown[]; raw: { output: unknown[] } };
    assert.deepEqual(retrieved.documents, [
      {
        id: 'doc-1',
        content: 'Refunds for "Where is my order A-1?" take 5 days.',
        score: 0.92,
        metadata: { source: 'policy.md' },
      },
      { id: 'doc-2', content: 'Orders ship from Berlin.', score: 0.71, metadata: { source: 'faq.md' } },
    ]);
    assert.equal(retrieved.raw.output.length, 2);

    assert.deepEqual(plan0!.request, {
      provider: 'scripted',
      model: 'planner-1',
      messages: [
        { role: 'system', content: 'You are a support agent. Use the tools.' },
        { role: 'user', content: 'Where is my order A-1?' },
      ],
      params: { temperature: 0 },
    });
    const plan0Response = plan0!.response as { message: Message; finishReason: string; usage: unknown };
    assert.equal(plan0Response.finishReason, 'tool_calls');
    assert.deepEqual(
      plan0Response.message.toolCalls?.map((call) => call.name),
      ['lookup_order', 'check_inventory'],
    );
    // the request was serialized when the call started, not after the agent appended to it
    assert.equal((plan1!.request as { messages: unknown[] }).messages.length, 5);
    assert.equal((plan2!.request as { messages: unknown[] }).messages.length, 7);
    assert.deepEqual((plan2!.response as { message: Message }).message, {
      role: 'assistant',
      content: EXPECTED_OUTPUT.answer,
    });

    assert.deepEqual(lookup0!.request, { name: 'lookup_order', arguments: { orderId: 'A-1' } });
    assert.deepEqual(lookup0!.response, { output: { orderId: 'A-1', status: 'shipped', sku: 'SKU-9' } });
    assert.deepEqual(inventory!.request, { name: 'check_inventory', arguments: { sku: 'SKU-9' } });
    assert.deepEqual(inventory!.response, { output: { sku: 'SKU-9', inStock: 3 } });

    assert.deepEqual(refund!.request, { name: 'issue_refund', arguments: { orderId: 'A-1', amount: 500 } });
    assert.equal(refund!.response, null);
    assert.deepEqual(
      { type: refund!.error?.type, message: refund!.error?.message },
      { type: 'Error', message: EXPECTED_OUTPUT.refundError },
    );

    assert.deepEqual(sub!.request, { input: EXPECTED_OUTPUT.answer });
    assert.deepEqual(sub!.response, { output: { summary: EXPECTED_OUTPUT.summary } });
    assert.deepEqual((subModel!.request as { messages: unknown }).messages, [
      { role: 'user', content: EXPECTED_OUTPUT.answer },
    ]);
    assert.deepEqual((subModel!.response as { message: unknown }).message, {
      role: 'assistant',
      content: EXPECTED_OUTPUT.summary,
    });

    // the store's own view agrees: the run finished last, with its counts and a tape
    const store = await openStore(dir);
    try {
      const events = await store.readEvents(runId);
      const finished = events.at(-1) as RunFinished;
      assert.equal(finished.type, 'run.finished');
      assert.deepEqual(finished.counts, { steps: 10, errors: 1 });
      assert.ok(finished.tape !== undefined);
      const starts = events.filter((e): e is StepStarted => e.type === 'step.started');
      for (const start of starts) assert.match(start.requestHash, /^sha256:[0-9a-f]{64}$/);
    } finally {
      await store.close();
    }
  });

  it('20 runs with random delays yield identical call keys, kinds, parents and seq order', async () => {
    const dir = tempDir();
    const r = recorder({ store: dir });
    const agent = supportAgent(r, () => sleep(Math.floor(Math.random() * 6)));
    const outputs = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        await sleep(Math.floor(Math.random() * 10));
        return agent(`question ${i}`);
      }),
    );
    await r.shutdown();
    const store = await openStore(dir);
    try {
      for (const output of outputs) {
        const page = await store.readTimeline(output.runId!);
        const steps: ShowStep[] = page.items.map((item) => ({
          ...item,
          request: null,
          response: null,
          startedAt: item.startedAt,
          endedAt: item.endedAt,
          error: item.error ?? undefined,
        })) as ShowStep[];
        assert.deepEqual(timelineOf(steps), EXPECTED_TIMELINE);
      }
      assert.equal(new Set(outputs.map((o) => o.runId)).size, 20);
    } finally {
      await store.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------

function blobBytesOnDisk(dir: string): { bytes: number; count: number } {
  let bytes = 0;
  let count = 0;
  const walk = (path: string): void => {
    for (const entry of readdirSync(path)) {
      const child = join(path, entry);
      const info = statSync(child);
      if (info.isDirectory()) walk(child);
      else {
        bytes += info.size;
        count++;
      }
    }
  };
  // Everything under blobs/: loose files (sha256/) and packs (packs/) alike.
  walk(join(dir, 'blobs'));
  return { bytes, count };
}

/** Deterministic text of about `length` characters, different for every `seed`. */
function prose(seed: number, length: number): string {
  const words = [
    'order',
    'shipment',
    'refund',
    'customer',
    'invoice',
    'warehouse',
    'tracking',
    'policy',
    'delivered',
    'account',
    'status',
    'carrier',
    'address',
    'payment',
    'return',
    'label',
  ];
  let state = seed * 2654435761;
  let out = `#${seed}:`;
  while (out.length < length) {
    state = (state * 1103515245 + 12345) >>> 0;
    out += ` ${words[state % words.length]}${state % 97}`;
  }
  return out.slice(0, length);
}

describe('payload dedup: a conversation resent on every call is stored once', () => {
  for (const { title, replyLength, toolOutputLength } of [
    {
      title: 'a 200-turn tool-using conversation',
      replyLength: (turn: number) => 400 + ((turn * 37) % 900),
      toolOutputLength: (turn: number): number | undefined => 3000 + ((turn * 131) % 4000),
    },
    {
      title: 'a 200-turn chat of short (~600 B) messages',
      replyLength: (turn: number) => 450 + ((turn * 37) % 300),
      toolOutputLength: (): number | undefined => undefined,
    },
  ])
    it(`${title} stores at most 2x the bytes of its distinct messages`, async () => {
      const dir = tempDir();
      const r = recorder({ store: dir });
      type ChatMessage = {
        role: 'system' | 'user' | 'assistant' | 'tool';
        content: string;
        tool_call_id?: string;
      };
      const model = r.model(
        'openai.chat.completions',
        async (body: { model: string; messages: ChatMessage[] }) => {
          await sleep(0);
          const turn = body.messages.length;
          return { role: 'assistant' as const, content: prose(turn, replyLength(turn)) };
        },
        {
          request: (body) => ({
            provider: 'openai',
            model: body.model,
            messages: body.messages.map((m) =>
              m.tool_call_id === undefined
                ? { role: m.role, content: m.content }
                : { role: m.role, content: m.content, toolCallId: m.tool_call_id },
            ),
            params: { temperature: 0 },
            raw: body as never,
          }),
          response: (message) => ({ model: 'gpt-4o', message, finishReason: 'stop', usage: {} }),
        },
      );
      const search = r.tool('search_orders', async (turn: number) =>
        prose(10_000 + turn, toolOutputLength(turn) ?? 0),
      );
      const TURNS = 200;
      const messages = await r.agent('long-chat', async () => {
        const conversation: ChatMessage[] = [{ role: 'system', content: prose(0, 3000) }];
        conversation.push({ role: 'user', content: prose(1, 300) });
        for (let turn = 0; turn < TURNS; turn++) {
          const reply = await model({ model: 'gpt-4o', messages: conversation });
          conversation.push(reply);
          if (toolOutputLength(turn) === undefined)
            conversation.push({ role: 'user', content: prose(20_000 + turn, 600) });
          else conversation.push({ role: 'tool', tool_call_id: `call-${turn}`, content: await search(turn) });
        }
        return conversation;
      })();
      const shut = await r.shutdown({ timeoutMs: 60_000 });
      assert.equal(shut.dropped, 0);
      assert.equal(shut.pending, 0);

      const distinct = new Set(
        messages.map((m) =>
          canonicalJson(
            m.tool_call_id === undefined
              ? m
              : { role: m.role, content: m.content, toolCallId: m.tool_call_id },
          ),
        ),
      );
      const distinctBytes = [...distinct].reduce((sum, text) => sum + Buffer.byteLength(text), 0);
      const naiveBytes = Array.from({ length: TURNS }, (_, turn) =>
        messages.slice(0, 2 + 2 * turn).reduce((sum, m) => sum + Buffer.byteLength(canonicalJson(m)), 0),
      ).reduce((a, b) => a + b, 0);
      const stored = blobBytesOnDisk(dir);
      const ratio = stored.bytes / distinctBytes;
      console.log(
        `# 200 turns: ${distinct.size} distinct messages, ${distinctBytes} bytes; blobs on disk ${stored.bytes} bytes in ${stored.count} files (${ratio.toFixed(2)}x); unsplit requests would be ${naiveBytes} bytes`,
      );
      assert.ok(stored.bytes > 0 && stored.count > 0, 'the blobs were found on disk');
      assert.ok(
        ratio <= 2,
        `stored ${stored.bytes} bytes for ${distinctBytes} bytes of distinct messages (${ratio.toFixed(2)}x)`,
      );
      assert.ok(stored.bytes * 20 < naiveBytes, 'far below what whole requests would take');

      // and every request still reads back whole
      const store = await openStore(dir);
      try {
        const runs = await store.listRuns();
        const timeline = await store.readTimeline(runs.items[0]!.id, { limit: 10_000 });
        const last = timeline.items.filter((step) => step.kind === 'model').at(-1)!;
        const request = (await readPayload(store.blobs, last.request)) as {
          messages: unknown[];
          raw: { messages: unknown[] };
        };
        assert.equal(request.messages.length, 2 + 2 * (TURNS - 1));
        assert.equal(request.raw.messages.length, request.messages.length);
        assert.ok((last.request.parts?.length ?? 0) > TURNS, 'the request lists its parts');
      } finally {
        await store.close();
      }
    });
});

// ---------------------------------------------------------------------------------------------

describe('a failing store never changes what the agent does', () => {
  async function baseline(question: string, failAtEnd: boolean): Promise<{ ok?: unknown; error?: unknown }> {
    const off = new Recorder({ enabled: false, cwd: tempDir(), env: {} });
    try {
      return { ok: await supportAgent(off, async () => {}, { failAtEnd })(question) };
    } catch (error) {
      return { error };
    }
  }

  async function outcome(
    r: Recorder,
    question: string,
    failAtEnd: boolean,
  ): Promise<{ ok?: unknown; error?: unknown }> {
    try {
      return { ok: await supportAgent(r, async () => {}, { failAtEnd })(question) };
    } catch (error) {
      return { error };
    }
  }

  function sameOutcome(
    actual: { ok?: unknown; error?: unknown },
    expected: { ok?: unknown; error?: unknown },
  ): void {
    if (expected.error !== undefined) {
      assert.ok(actual.error instanceof RangeError);
      assert.equal((actual.error as Error).message, (expected.error as Error).message);
      return;
    }
    const { runId: _a, ...got } = actual.ok as ScenarioOutput;
    const { runId: _b, ...want } = expected.ok as ScenarioOutput;
    assert.deepEqual(got, want);
  }

  const cases: Array<[string, () => { store: RecorderOptions['store']; dir?: string }]> = [
    ['a full disk (ENOSPC on every write)', () => ({ store: fullDiskStore() })],
    [
      'a store directory that cannot be created',
      () => {
        const file = join(tempDir(), 'file');
        writeFileSync(file, 'x');
        return { store: join(file, 'store') };
      },
    ],
  ];
  for (const [name, make] of cases) {
    it(`${name}: same outputs and errors, reported once, counted`, async () => {
      const errors: RewindCaptureError[] = [];
      const r = recorder({ store: make().store, onError: (error) => errors.push(error) });
      for (const failAtEnd of [false, true, false]) {
        sameOutcome(await outcome(r, 'Where is A-1?', failAtEnd), await baseline('Where is A-1?', failAtEnd));
      }
      const result = await r.flush({ timeoutMs: 5000 });
      assert.equal(result.done, true);
      assert.equal(result.delivered, 0);
      assert.equal(result.dropped, result.produced);
      assert.equal(result.produced, 3 * 22);
      assert.equal(errors.length, 1, errors.map((e) => e.message).join('; '));
      assert.equal(errors[0]!.code, 'store_failed');
      await r.shutdown();
    });
  }

  it('a blob directory that breaks mid-run: the agent goes on, the loss is counted and reported once', async () => {
    const dir = tempDir();
    const errors: RewindCaptureError[] = [];
    const r = recorder({ store: dir, onError: (error) => errors.push(error) });
    const agent = supportAgent(r, async () => {});
    await agent('first');
    assert.equal((await r.flush()).dropped, 0);
    // the disk under the blob store goes away: its shard directories become a file
    rmSync(join(dir, 'blobs', 'sha256'), { recursive: true });
    writeFileSync(join(dir, 'blobs', 'sha256'), 'not a directory');
    const expected = await baseline('second', false);
    sameOutcome(await outcome(r, 'second', false), expected);
    const result = await r.flush();
    assert.ok(result.dropped > 0);
    assert.equal(result.produced, result.delivered + result.dropped);
    assert.deepEqual(
      errors.map((e) => e.code),
      ['store_failed'],
    );
    await r.shutdown();
  });
});

describe('flush and shutdown deadlines', () => {
  it('meet their deadlines when the store hangs, and report what is still pending', async () => {
    const errors: RewindCaptureError[] = [];
    const r = recorder({ store: hangingStore(), onError: (error) => errors.push(error) });
    const output = await supportAgent(r, async () => {})('Where is A-1?');
    assert.equal(output.answer, EXPECTED_OUTPUT.answer);

    let started = performance.now();
    const flushed = await r.flush({ timeoutMs: 200 });
    let elapsed = performance.now() - started;
    assert.ok(elapsed >= 195 && elapsed < 1200, `flush took ${elapsed.toFixed(0)} ms`);
    assert.equal(flushed.timedOut, true);
    assert.equal(flushed.pending, 22);

    started = performance.now();
    const shut = await r.shutdown({ timeoutMs: 200 });
    elapsed = performance.now() - started;
    assert.ok(elapsed >= 195 && elapsed < 1200, `shutdown took ${elapsed.toFixed(0)} ms`);
    assert.equal(shut.timedOut, true);
    assert.equal(shut.pending, 22);
    assert.deepEqual(r.stats(), { produced: 22, delivered: 0, spooled: 0, dropped: 22, pending: 0 });
    assert.ok(errors.every((e) => e.code === 'deadline'));
    assert.ok(errors.some((e) => /22 event\(s\) still pending/.test(e.message)));
  });

  it('a hanging store does not keep the agent waiting: calls return at full speed', async () => {
    const r = recorder({ store: hangingStore(undefined, { blobs: true }) });
    const tool = r.tool('t', (x: number) => x + 1);
    const started = performance.now();
    const total = await r.agent('fast', () => {
      let sum = 0;
      for (let i = 0; i < 2000; i++) sum += tool(i);
      return sum;
    })();
    assert.equal(total, 2001000);
    assert.ok(performance.now() - started < 2000);
    await r.shutdown({ timeoutMs: 10 });
  });
});
