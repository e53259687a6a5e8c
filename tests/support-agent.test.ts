// End to end through a real model client: a support agent built on the official `openai`
// client (wrapped with @rewind/sdk/openai) talking HTTP to the scripted provider, with a
// retriever, a tool-call loop whose first turn runs two tools in Promise.all with random
// delays, a tool that throws and is caught, a nested sub-agent, and a streamed final answer.
// The real `rewind show --json` must show it right, and 20 runs must give the same call keys.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { currentRunId, Recorder } from '@rewind/sdk';
import { wrapOpenAI } from '@rewind/sdk/openai';
import { type ScriptedProvider, startScriptedProvider } from '@rewind/testkit';
import OpenAI from 'openai';
import { runRewind as rewind } from './rewind-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'rewind-support-agent-'));
let provider: ScriptedProvider;

before(async () => {
  provider = await startScriptedProvider({
    rules: [
      {
        name: 'first turn: look up the order and the stock at once',
        when: { api: 'openai.chat', hasToolResult: false, stream: false },
        reply: {
          toolCalls: [
            { name: 'lookup_order', arguments: { orderId: 'A-1' } },
            { name: 'check_inventory', arguments: { sku: 'SKU-9' } },
          ],
        },
      },
      {
        name: 'second turn: done with tools',
        when: { api: 'openai.chat', hasToolResult: true, stream: false },
        reply: { text: 'Order A-1 shipped and SKU-9 is in stock.' },
      },
      {
        name: 'final answer, streamed',
        when: { api: 'openai.chat', stream: true },
        reply: { text: 'Your order A-1 has shipped; the item is in stock if you need another.' },
      },
    ],
  });
});

after(async () => {
  await provider.close();
  rmSync(dir, { recursive: true, force: true });
});

function supportAgent(recorder: Recorder) {
  const openai = wrapOpenAI(new OpenAI({ baseURL: provider.openaiBaseURL, apiKey: 'test', maxRetries: 0 }));
  const jitter = () => sleep(Math.floor(Math.random() * 5));
  const search = recorder.retriever('kb.search', async (query: string) => {
    await jitter();
    return [{ id: 'policy', pageContent: `Shipping policy for: ${query}`, score: 0.9 }];
  });
  const tools: Record<string, (args: Record<string, string>) => Promise<unknown>> = {
    lookup_order: recorder.tool('lookup_order', async (args: Record<string, string>) => {
      await jitter();
      return { orderId: args.orderId, status: 'shipped' };
    }),
    check_inventory: recorder.tool('check_inventory', async (args: Record<string, string>) => {
      await jitter();
      return { sku: args.sku, inStock: 3 };
    }),
  };
  const escalate = recorder.tool('escalate', async () => {
    await jitter();
    throw new Error('no human agent is on duty');
  });
  const polish = recorder.agent('polisher', async (draft: string) => {
    const stream = await openai.chat.completions.create({
      model: 'gpt-test',
      stream: true,
      messages: [
        { role: 'system', content: 'Rewrite the draft for the customer.' },
        { role: 'user', content: draft },
      ],
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    return text;
  });

  return recorder.agent('support-bot', async (question: string) => {
    const documents = await search(question);
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
      { role: 'system', content: `Answer with the tools. Context: ${documents[0]?.pageContent}` },
      { role: 'user', content: question },
    ];
    let draft = '';
    for (let turn = 0; turn < 4; turn++) {
      const completion = await openai.chat.completions.create({
        model: 'gpt-test',
        messages,
        tools: Object.keys(tools).map((name) => ({
          type: 'function' as const,
          function: { name, parameters: { type: 'object', properties: {} } },
        })),
      });
      const message = completion.choices[0]!.message;
      messages.push(message);
      const calls = (message.tool_calls ?? []).filter((call) => call.type === 'function');
      if (calls.length === 0) {
        draft = message.content ?? '';
        break;
      }
      const outputs = await Promise.all(
        calls.map((call) => tools[call.function.name]!(JSON.parse(call.function.arguments))),
      );
      for (const [i, call] of calls.entries())
        messages.push({ role: 'tool', tool_call_id: call.id, content: JSON.stringify(outputs[i]) });
    }
    let escalation = 'escalated';
    try {
      await escalate();
    } catch (error) {
      escalation = `not escalated: ${(error as Error).message}`;
    }
    return { answer: await polish(draft), escalation, runId: currentRunId() };
  });
}

interface ShownStep {
  seq: number;
  stepId: string;
  parentStepId: string | null;
  kind: string;
  name: string;
  callKey: string;
  status: string;
  label: string;
  request: Record<string, unknown>;
  response: Record<string, unknown> | null;
  error?: { type: string; message: string };
}

const EXPECTED = [
  // seq, kind, name, call key, parent seq, status
  [1, 'retriever', 'kb.search', 'retriever:kb.search#0', null, 'ok'],
  [2, 'model', 'openai.chat.completions', 'model:openai.chat.completions#0', null, 'ok'],
  [3, 'tool', 'lookup_order', 'tool:lookup_order#0', null, 'ok'],
  [4, 'tool', 'check_inventory', 'tool:check_inventory#0', null, 'ok'],
  [5, 'model', 'openai.chat.completions', 'model:openai.chat.completions#1', null, 'ok'],
  [6, 'tool', 'escalate', 'tool:escalate#0', null, 'error'],
  [7, 'chain', 'polisher', 'chain:polisher#0', null, 'ok'],
  [8, 'model', 'openai.chat.completions', 'chain:polisher#0/model:openai.chat.completions#0', 7, 'ok'],
];

describe('a support agent on the real openai client', () => {
  it('is shown by `rewind show --json` with the right structure and normalized payloads', async () => {
    const recorder = new Recorder({ store: dir, env: {}, cwd: dir });
    const result = await supportAgent(recorder)('Where is order A-1?');
    assert.equal(result.answer, 'Your order A-1 has shipped; the item is in stock if you need another.');
    assert.equal(result.escalation, 'not escalated: no human agent is on duty');
    const stats = await recorder.shutdown();
    assert.equal(stats.dropped, 0);

    const shown = await rewind(['show', result.runId!, '--json', '--store', dir]);
    assert.equal(shown.code, 0, shown.stderr);
    const { run, steps } = JSON.parse(shown.stdout) as {
      run: { status: string; agent: string; output: unknown };
      steps: ShownStep[];
    };
    assert.equal(run.agent, 'support-bot');
    assert.equal(run.status, 'ok');
    assert.deepEqual((run.output as { answer: string }).answer, result.answer);
    const seqOf = new Map(steps.map((step) => [step.stepId, step.seq]));
    assert.deepEqual(
      steps.map((s) => [
        s.seq,
        s.kind,
        s.name,
        s.callKey,
        s.parentStepId === null ? null : seqOf.get(s.parentStepId),
        s.status,
      ]),
      EXPECTED,
    );
    for (const step of steps) assert.equal(step.label, 'recorded');

    const [, firstModel, lookup, , secondModel, escalate, , streamed] = steps;
    // the first model call: normalized messages and tools, and the raw request kept
    assert.equal(firstModel!.request.provider, 'openai');
    assert.equal(firstModel!.request.model, 'gpt-test');
    assert.deepEqual(
      (firstModel!.request.messages as { role: string }[]).map((m) => m.role),
      ['system', 'user'],
    );
    assert.deepEqual(
      (firstModel!.request.tools as { name: string }[]).map((t) => t.name),
      ['lookup_order', 'check_inventory'],
    );
    assert.ok(firstModel!.request.raw !== undefined, 'raw request kept');
    const firstResponse = firstModel!.response as {
      finishReason: string;
      message: { toolCalls: { name: string; arguments: unknown }[] };
      usage: { inputTokens: number; outputTokens: number };
      raw: unknown;
    };
    assert.equal(firstResponse.finishReason, 'tool_calls');
    assert.deepEqual(
      firstResponse.message.toolCalls.map((c) => [c.name, c.arguments]),
      [
        ['lookup_order', { orderId: 'A-1' }],
        ['check_inventory', { sku: 'SKU-9' }],
      ],
    );
    assert.ok(firstResponse.usage.inputTokens > 0 && firstResponse.raw !== undefined);
    // the second call saw the tool results, linked to their calls
    const secondMessages = secondModel!.request.messages as { role: string; toolCallId?: string }[];
    assert.deepEqual(
      secondMessages.map((m) => m.role),
      ['system', 'user', 'assistant', 'tool', 'tool'],
    );
    assert.ok(secondMessages[3]!.toolCallId !== undefined);
    assert.deepEqual(lookup!.request, { name: 'lookup_order', arguments: { orderId: 'A-1' } });
    assert.deepEqual(lookup!.response, { output: { orderId: 'A-1', status: 'shipped' } });
    assert.deepEqual(
      { type: escalate!.error?.type, message: escalate!.error?.message },
      { type: 'Error', message: 'no human agent is on duty' },
    );
    // the streamed answer: assembled message, the chunks kept for replay
    assert.equal(streamed!.request.stream, true);
    const streamedResponse = streamed!.response as {
      message: { content: string };
      finishReason: string;
      raw: { chunks: unknown[] };
    };
    assert.equal(streamedResponse.message.content, result.answer);
    assert.equal(streamedResponse.finishReason, 'stop');
    assert.ok(streamedResponse.raw.chunks.length > 3, 'several chunks recorded');
  });

  it('gives identical call keys over 20 runs with random tool delays', async () => {
    const recorder = new Recorder({ store: dir, env: {}, cwd: dir });
    const agent = supportAgent(recorder);
    const runIds: string[] = [];
    for (let i = 0; i < 20; i++) runIds.push((await agent('Where is order A-1?')).runId!);
    await recorder.shutdown();
    const { openStore } = await import('@rewind/store');
    const store = await openStore(dir);
    try {
      const keys = new Set<string>();
      for (const runId of runIds) {
        const page = await store.readTimeline(runId, { limit: 100 });
        keys.add(JSON.stringify(page.items.map((step) => [step.seq, step.callKey])));
      }
      assert.equal(keys.size, 1, `call keys differed between runs: ${[...keys].join('\n')}`);
      assert.deepEqual(
        JSON.parse([...keys][0]!),
        EXPECTED.map(([seq, , , callKey]) => [seq, callKey]),
      );
    } finally {
      await store.close();
    }
  });
});
