import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { SpanStatusCode } from '@opentelemetry/api';
import type {
  ModelRequest,
  ModelResponse,
  RetrieverResponse,
  ToolRequest,
  ToolResponse,
} from '@rewind/schema';
import { openStore, readPayload, type StepRecord, type Store } from '@rewind/store';
import { ingestOtlp, otlpResponse } from './ingest.ts';
import { captureOtlp } from './testing/capture-otlp.ts';

// OTLP in, end to end: spans made by @opentelemetry/sdk-trace-base, sent by the OTLP/HTTP JSON
// exporter to a loopback server that keeps the bodies, ingested into a real SQLite store and read
// back through the Store API.

const scratch = await mkdtemp(join(tmpdir(), 'rewind-otlp-'));
const opened: Store[] = [];
after(async () => {
  for (const store of opened) await store.close();
  await rm(scratch, { recursive: true, force: true });
});
let stores = 0;
async function freshStore(dir = join(scratch, `store-${stores++}`)): Promise<Store> {
  const store = await openStore(dir);
  opened.push(store);
  return store;
}

async function timeline(store: Store, runId: string): Promise<StepRecord[]> {
  return (await store.readTimeline(runId)).items;
}

const json = (value: unknown) => JSON.stringify(value);
/** Real work takes time: spans started a little apart, so start order is not a tie. */
const tick = () => new Promise((resolve) => setTimeout(resolve, 2));

/** A GenAI-instrumented agent: invoke_agent → chat (asks for a tool) → execute_tool → chat (answers). */
async function genAiAgentTrace(processor: 'batch' | 'simple') {
  return captureOtlp({ processor, serviceName: 'weather-service' }, async (tracer, { within }) => {
    await tick();
    const agent = tracer.startSpan('invoke_agent weather-agent', {
      attributes: {
        'gen_ai.operation.name': 'invoke_agent',
        'gen_ai.agent.name': 'weather-agent',
        'gen_ai.provider.name': 'openai',
        'gen_ai.input.messages': json([
          { role: 'user', parts: [{ type: 'text', content: 'Weather in Paris?' }] },
        ]),
      },
    });
    const inAgent = within(agent);
    await tick();
    const chat1 = tracer.startSpan(
      'chat gpt-4o',
      {
        attributes: {
          'gen_ai.operation.name': 'chat',
          'gen_ai.provider.name': 'openai',
          'gen_ai.request.model': 'gpt-4o',
          'gen_ai.request.temperature': 0.2,
          'gen_ai.request.max_tokens': 256,
          'gen_ai.request.seed': 7,
          'gen_ai.system_instructions': json([{ type: 'text', content: 'You are a weather bot.' }]),
          'gen_ai.input.messages': json([
            { role: 'user', parts: [{ type: 'text', content: 'Weather in Paris?' }] },
          ]),
          'gen_ai.output.messages': json([
            {
              role: 'assistant',
              parts: [{ type: 'tool_call', id: 'call_1', name: 'get_weather', arguments: { city: 'Paris' } }],
              finish_reason: 'tool_call',
            },
          ]),
          'gen_ai.response.model': 'gpt-4o-2024-08-06',
          'gen_ai.response.finish_reasons': ['tool_call'],
          'gen_ai.usage.input_tokens': 31,
          'gen_ai.usage.output_tokens': 12,
        },
      },
      inAgent,
    );
    chat1.end();
    await tick();
    const tool = tracer.startSpan(
      'execute_tool get_weather',
      {
        attributes: {
          'gen_ai.operation.name': 'execute_tool',
          'gen_ai.tool.name': 'get_weather',
          'gen_ai.tool.call.id': 'call_1',
          'gen_ai.tool.call.arguments': json({ city: 'Paris' }),
          'gen_ai.tool.call.result': json({ tempC: 18, sky: 'clear' }),
        },
      },
      inAgent,
    );
    tool.end();
    await tick();
    const chat2 = tracer.startSpan(
      'chat gpt-4o',
      {
        attributes: {
          'gen_ai.operation.name': 'chat',
          'gen_ai.provider.name': 'openai',
          'gen_ai.request.model': 'gpt-4o',
          'gen_ai.input.messages': json([
            { role: 'user', parts: [{ type: 'text', content: 'Weather in Paris?' }] },
            {
              role: 'assistant',
              parts: [{ type: 'tool_call', id: 'call_1', name: 'get_weather', arguments: { city: 'Paris' } }],
            },
            { role: 'tool', parts: [{ type: 'tool_call_response', id: 'call_1', response: { tempC: 18 } }] },
          ]),
          'gen_ai.output.messages': json([
            { role: 'assistant', parts: [{ type: 'text', content: 'Sunny, 18 °C.' }], finish_reason: 'stop' },
          ]),
          'gen_ai.usage.input_tokens': 60,
          'gen_ai.usage.output_tokens': 8,
        },
      },
      inAgent,
    );
    chat2.end();
    agent.setAttribute(
      'gen_ai.output.messages',
      json([{ role: 'assistant', parts: [{ type: 'text', content: 'Sunny, 18 °C.' }] }]),
    );
    agent.end();
  });
}

const firstSpanOf = (body: unknown): { traceId: string; spanId: string } =>
  (body as { resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: string; spanId: string }] }] }] })
    .resourceSpans[0].scopeSpans[0].spans[0];
const traceIdOf = (bodies: unknown[]): string => firstSpanOf(bodies[0]).traceId;

describe('OpenTelemetry GenAI spans', () => {
  test('a trace sent in one request becomes a run with its steps in start order', async () => {
    const store = await freshStore();
    const bodies = await genAiAgentTrace('batch');
    assert.equal(bodies.length, 1, 'the batch processor sends the trace in one request');
    const result = await ingestOtlp(store, bodies[0]);
    const runId = traceIdOf(bodies);
    assert.deepEqual(result, { spans: 4, accepted: 4, duplicates: 0, rejected: [], runIds: [runId] });
    assert.deepEqual(otlpResponse(result), {});

    const run = await store.getRun(runId);
    assert.equal(run?.agent, 'weather-agent');
    assert.equal(run?.status, 'ok');
    assert.equal(run?.stepCount, 4);
    assert.equal(run?.attributes['service.name'], 'weather-service');
    assert.equal(run?.attributes['rewind.source'], 'otlp');
    assert.deepEqual(run?.sdk, { name: 'opentelemetry', version: run?.sdk?.version });
    assert.deepEqual(await readPayload(store.blobs, run!.input!), [
      { role: 'user', parts: [{ type: 'text', content: 'Weather in Paris?' }] },
    ]);
    assert.deepEqual(await readPayload(store.blobs, run!.output!), [
      { role: 'assistant', parts: [{ type: 'text', content: 'Sunny, 18 °C.' }] },
    ]);

    const steps = await timeline(store, runId);
    assert.deepEqual(
      steps.map((step) => [step.seq, step.kind, step.name, step.callKey, step.status, step.label]),
      [
        [1, 'chain', 'weather-agent', 'chain:weather-agent#0', 'ok', 'recorded'],
        [2, 'model', 'chat gpt-4o', 'chain:weather-agent#0/model:chat gpt-4o#0', 'ok', 'recorded'],
        [3, 'tool', 'get_weather', 'chain:weather-agent#0/tool:get_weather#0', 'ok', 'recorded'],
        [4, 'model', 'chat gpt-4o', 'chain:weather-agent#0/model:chat gpt-4o#1', 'ok', 'recorded'],
      ],
    );
    const [agent, chat1, tool, chat2] = steps as [StepRecord, StepRecord, StepRecord, StepRecord];
    assert.equal(agent.parentStepId, null);
    for (const child of [chat1, tool, chat2]) assert.equal(child.parentStepId, agent.stepId);
    assert.equal(chat1.attributes['otel.span_id'], chat1.stepId);
    assert.equal(chat1.attributes['gen_ai.request.model'], 'gpt-4o');
    assert.equal(
      chat1.attributes['gen_ai.input.messages'],
      undefined,
      'payload attributes stay in the payloads',
    );

    const request1 = (await readPayload(store.blobs, chat1.request)) as ModelRequest;
    assert.deepEqual(request1, {
      provider: 'openai',
      model: 'gpt-4o',
      messages: [
        { role: 'system', content: 'You are a weather bot.' },
        { role: 'user', content: 'Weather in Paris?' },
      ],
      params: { temperature: 0.2, maxTokens: 256, seed: 7 },
    });
    assert.equal(chat1.requestHash, chat1.request.hash);
    const response1 = (await readPayload(store.blobs, chat1.response!)) as ModelResponse;
    assert.deepEqual(response1, {
      model: 'gpt-4o-2024-08-06',
      message: {
        role: 'assistant',
        content: null,
        toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: { city: 'Paris' } }],
      },
      finishReason: 'tool_call',
      usage: { inputTokens: 31, outputTokens: 12, totalTokens: 43 },
    });
    assert.deepEqual(chat1.usage, { inputTokens: 31, outputTokens: 12, totalTokens: 43 });

    assert.deepEqual((await readPayload(store.blobs, tool.request)) as ToolRequest, {
      name: 'get_weather',
      arguments: { city: 'Paris' },
    });
    assert.deepEqual((await readPayload(store.blobs, tool.response!)) as ToolResponse, {
      output: { tempC: 18, sky: 'clear' },
    });
    const request2 = (await readPayload(store.blobs, chat2.request)) as ModelRequest;
    assert.deepEqual(request2.messages[2], { role: 'tool', content: '{"tempC":18}', toolCallId: 'call_1' });
    assert.equal(
      ((await readPayload(store.blobs, chat2.response!)) as ModelResponse).message.content,
      'Sunny, 18 °C.',
    );
    // Times are the spans' own, to the nanosecond.
    assert.match(chat1.startedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
  });

  test('spans sent one request each, children before parents, arrive as one run; re-sending changes nothing', async () => {
    const store = await freshStore();
    const bodies = await genAiAgentTrace('simple');
    assert.equal(bodies.length, 4, 'one request per span');
    const runId = traceIdOf(bodies);
    for (const body of bodies) assert.equal((await ingestOtlp(store, body)).accepted, 1);
    const run = await store.getRun(runId);
    assert.equal(run?.status, 'ok');
    assert.equal(run?.agent, 'weather-agent');
    const steps = await timeline(store, runId);
    // Numbered in the order the requests were ingested (the exporter's requests race one another,
    // but the agent span ends, and is usually sent, last).
    const arrival = bodies.map((body) => firstSpanOf(body).spanId);
    assert.deepEqual(
      steps.map((step) => step.stepId),
      arrival,
    );
    assert.deepEqual(
      steps.map((step) => step.seq),
      [1, 2, 3, 4],
    );
    const agent = steps.find((step) => step.kind === 'chain')!;
    assert.equal(agent.callKey, 'chain:weather-agent#0');
    for (const child of steps.filter((step) => step !== agent)) {
      assert.equal(child.parentStepId, agent.stepId);
      // A child stored before its parent arrived has the parent's span id standing in for its call key.
      const parentKey = child.seq < agent.seq ? `chain:${agent.stepId}#0` : 'chain:weather-agent#0';
      assert.ok(child.callKey.startsWith(`${parentKey}/`), child.callKey);
    }
    assert.deepEqual(
      steps.filter((step) => step.kind !== 'chain').map((step) => step.callKey.split('/')[1]),
      arrival
        .map((spanId) => steps.find((step) => step.stepId === spanId)!)
        .filter((step) => step.kind !== 'chain')
        .map((step, i, all) =>
          step.kind === 'tool'
            ? 'tool:get_weather#0'
            : `model:chat gpt-4o#${all.slice(0, i).filter((s) => s.kind === 'model').length}`,
        ),
    );
    const before = await store.readEvents(runId);
    // Exporters retry: every body again, in another order, and all of them in one request.
    for (const body of [...bodies].reverse()) {
      const again = await ingestOtlp(store, body);
      assert.deepEqual([again.accepted, again.duplicates, again.rejected], [0, 1, []]);
    }
    const merged = {
      resourceSpans: bodies.flatMap((body) => (body as { resourceSpans: unknown[] }).resourceSpans),
    };
    assert.deepEqual((await ingestOtlp(store, merged)).duplicates, 4);
    assert.deepEqual(await store.readEvents(runId), before);
  });

  test('the older prompt/completion attributes and the span-event form map to the same messages', async () => {
    const store = await freshStore();
    const [body] = await captureOtlp({ processor: 'batch' }, async (tracer, { within }) => {
      await tick();
      const root = tracer.startSpan('handle request');
      await tick();
      const flattened = tracer.startSpan(
        'chat claude',
        {
          attributes: {
            'gen_ai.system': 'anthropic',
            'gen_ai.request.model': 'claude-sonnet-4',
            'gen_ai.prompt.0.role': 'system',
            'gen_ai.prompt.0.content': 'Be brief.',
            'gen_ai.prompt.1.role': 'user',
            'gen_ai.prompt.1.content': 'Hi',
            'gen_ai.completion.0.role': 'assistant',
            'gen_ai.completion.0.content': 'Hello!',
            'gen_ai.completion.0.finish_reason': 'end_turn',
            'gen_ai.usage.prompt_tokens': 9,
            'gen_ai.usage.completion_tokens': 2,
          },
        },
        within(root),
      );
      flattened.end();
      await tick();
      const evented = tracer.startSpan(
        'chat gpt-4o-mini',
        {
          attributes: {
            'gen_ai.operation.name': 'chat',
            'gen_ai.system': 'openai',
            'gen_ai.request.model': 'gpt-4o-mini',
          },
        },
        within(root),
      );
      evented.addEvent('gen_ai.system.message', { content: 'Be brief.' });
      evented.addEvent('gen_ai.user.message', { content: 'Hi' });
      evented.addEvent('gen_ai.choice', { index: 0, finish_reason: 'stop', 'message.content': 'ignored' });
      evented.end();
      root.end();
    });
    const result = await ingestOtlp(store, body);
    assert.equal(result.accepted, 3);
    const steps = await timeline(store, result.runIds[0]!);
    assert.deepEqual(
      steps.map((step) => [step.kind, step.name, step.callKey]),
      [
        ['chain', 'handle request', 'chain:handle request#0'],
        ['model', 'chat claude', 'chain:handle request#0/model:chat claude#0'],
        ['model', 'chat gpt-4o-mini', 'chain:handle request#0/model:chat gpt-4o-mini#0'],
      ],
    );
    const flatRequest = (await readPayload(store.blobs, steps[1]!.request)) as ModelRequest;
    assert.equal(flatRequest.provider, 'anthropic');
    assert.deepEqual(flatRequest.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
    ]);
    const flatResponse = (await readPayload(store.blobs, steps[1]!.response!)) as ModelResponse;
    assert.deepEqual(
      [flatResponse.message, flatResponse.finishReason, flatResponse.usage],
      [
        { role: 'assistant', content: 'Hello!' },
        'end_turn',
        { inputTokens: 9, outputTokens: 2, totalTokens: 11 },
      ],
    );
    const eventRequest = (await readPayload(store.blobs, steps[2]!.request)) as ModelRequest;
    assert.deepEqual(eventRequest.messages, flatRequest.messages);
    const eventResponse = (await readPayload(store.blobs, steps[2]!.response!)) as ModelResponse;
    assert.equal(eventResponse.finishReason, 'stop');
    assert.equal(eventResponse.message.role, 'assistant');
  });

  test('a failed span is an error step; a failed root span fails the run', async () => {
    const store = await freshStore();
    const [body] = await captureOtlp({ processor: 'batch' }, async (tracer, { within }) => {
      await tick();
      const agent = tracer.startSpan('invoke_agent', {
        attributes: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'flaky' },
      });
      await tick();
      const chat = tracer.startSpan(
        'chat gpt-4o',
        {
          attributes: {
            'gen_ai.operation.name': 'chat',
            'gen_ai.request.model': 'gpt-4o',
            'error.type': 'RateLimitError',
          },
        },
        within(agent),
      );
      chat.setStatus({ code: SpanStatusCode.ERROR, message: '429 Too Many Requests' });
      chat.end();
      agent.recordException(new TypeError('cannot read properties of undefined'));
      agent.setStatus({ code: SpanStatusCode.ERROR, message: 'agent crashed' });
      agent.end();
    });
    const result = await ingestOtlp(store, body);
    assert.equal(result.accepted, 2);
    const run = await store.getRun(result.runIds[0]!);
    assert.equal(run?.status, 'error');
    assert.equal(run?.error?.type, 'TypeError');
    assert.equal(run?.error?.message, 'agent crashed');
    assert.match(run?.error?.stack ?? '', /TypeError: cannot read properties of undefined/);
    const chat = (await timeline(store, run!.id))[1]!;
    assert.equal(chat.status, 'error');
    assert.deepEqual(chat.error, { type: 'RateLimitError', message: '429 Too Many Requests' });
  });
});

describe('OpenInference spans', () => {
  test('AGENT, LLM, RETRIEVER, RERANKER, TOOL, EMBEDDING and CHAIN spans map to their kinds and payloads', async () => {
    const store = await freshStore();
    const [body] = await captureOtlp({ processor: 'batch' }, async (tracer, { within }) => {
      await tick();
      const agent = tracer.startSpan('support-agent', {
        attributes: {
          'openinference.span.kind': 'AGENT',
          'input.value': json({ question: 'How do I reset my password?' }),
          'input.mime_type': 'application/json',
          'output.value': 'Use the reset link.',
        },
      });
      const inAgent = within(agent);
      await tick();
      const retriever = tracer.startSpan(
        'retrieve',
        {
          attributes: {
            'openinference.span.kind': 'RETRIEVER',
            'input.value': 'reset password',
            'retrieval.documents.0.document.id': 'kb-12',
            'retrieval.documents.0.document.content': 'Click "Forgot password".',
            'retrieval.documents.0.document.score': 0.91,
            'retrieval.documents.0.document.metadata': json({ source: 'kb' }),
            'retrieval.documents.1.document.id': 'kb-40',
            'retrieval.documents.1.document.content': 'Passwords expire yearly.',
            'retrieval.documents.1.document.score': 0.42,
          },
        },
        inAgent,
      );
      retriever.end();
      await tick();
      const reranker = tracer.startSpan(
        'rerank',
        {
          attributes: {
            'openinference.span.kind': 'RERANKER',
            'reranker.query': 'reset password',
            'reranker.top_k': 1,
            'reranker.output_documents.0.document.id': 'kb-12',
            'reranker.output_documents.0.document.content': 'Click "Forgot password".',
            'reranker.output_documents.0.document.score': 0.99,
          },
        },
        inAgent,
      );
      reranker.end();
      await tick();
      const embedding = tracer.startSpan(
        'embed',
        {
          attributes: {
            'openinference.span.kind': 'EMBEDDING',
            'embedding.model_name': 'text-embedding-3-small',
          },
        },
        inAgent,
      );
      embedding.end();
      await tick();
      const llm = tracer.startSpan(
        'ChatOpenAI',
        {
          attributes: {
            'openinference.span.kind': 'LLM',
            'llm.provider': 'openai',
            'llm.model_name': 'gpt-4o-mini',
            'llm.invocation_parameters': json({ temperature: 0, max_tokens: 100 }),
            'llm.input_messages.0.message.role': 'system',
            'llm.input_messages.0.message.content': 'Answer from the docs.',
            'llm.input_messages.1.message.role': 'user',
            'llm.input_messages.1.message.content': 'How do I reset my password?',
            'llm.output_messages.0.message.role': 'assistant',
            'llm.output_messages.0.message.tool_calls.0.tool_call.id': 'call_9',
            'llm.output_messages.0.message.tool_calls.0.tool_call.function.name': 'send_reset_link',
            'llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments': json({ user: 'u1' }),
            'llm.token_count.prompt': 120,
            'llm.token_count.completion': 15,
            'llm.token_count.total': 135,
          },
        },
        inAgent,
      );
      llm.end();
      await tick();
      const tool = tracer.startSpan(
        'send_reset_link',
        {
          attributes: {
            'openinference.span.kind': 'TOOL',
            'tool.name': 'send_reset_link',
            'input.value': json({ user: 'u1' }),
            'output.value': 'sent',
          },
        },
        inAgent,
      );
      tool.end();
      await tick();
      const chain = tracer.startSpan(
        'format-answer',
        {
          attributes: {
            'openinference.span.kind': 'CHAIN',
            'input.value': 'sent',
            'output.value': 'Use the reset link.',
          },
        },
        inAgent,
      );
      chain.end();
      agent.end();
    });
    const result = await ingestOtlp(store, body);
    assert.deepEqual([result.accepted, result.rejected], [7, []]);
    const run = await store.getRun(result.runIds[0]!);
    assert.equal(run?.agent, 'support-agent');
    assert.deepEqual(await readPayload(store.blobs, run!.input!), {
      question: 'How do I reset my password?',
    });
    assert.equal(await readPayload(store.blobs, run!.output!), 'Use the reset link.');
    const steps = await timeline(store, run!.id);
    assert.deepEqual(
      steps.map((step) => [step.kind, step.name]),
      [
        ['chain', 'support-agent'],
        ['retriever', 'retrieve'],
        ['retriever', 'rerank'],
        ['model', 'embed'],
        ['model', 'ChatOpenAI'],
        ['tool', 'send_reset_link'],
        ['chain', 'format-answer'],
      ],
    );
    const [, retriever, reranker, embedding, llm, tool, chain] = steps as StepRecord[];
    assert.deepEqual(await readPayload(store.blobs, retriever!.request), { query: 'reset password' });
    assert.deepEqual((await readPayload(store.blobs, retriever!.response!)) as RetrieverResponse, {
      documents: [
        { id: 'kb-12', content: 'Click "Forgot password".', score: 0.91, metadata: { source: 'kb' } },
        { id: 'kb-40', content: 'Passwords expire yearly.', score: 0.42 },
      ],
    });
    assert.deepEqual(await readPayload(store.blobs, reranker!.request), { query: 'reset password', topK: 1 });
    assert.equal(
      ((await readPayload(store.blobs, reranker!.response!)) as RetrieverResponse).documents[0]?.score,
      0.99,
    );
    assert.equal(
      ((await readPayload(store.blobs, embedding!.request)) as ModelRequest).model,
      'text-embedding-3-small',
    );
    const llmRequest = (await readPayload(store.blobs, llm!.request)) as ModelRequest;
    assert.deepEqual(llmRequest, {
      provider: 'openai',
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: 'Answer from the docs.' },
        { role: 'user', content: 'How do I reset my password?' },
      ],
      params: { temperature: 0, maxTokens: 100 },
    });
    const llmResponse = (await readPayload(store.blobs, llm!.response!)) as ModelResponse;
    assert.deepEqual(llmResponse.message.toolCalls, [
      { id: 'call_9', name: 'send_reset_link', arguments: { user: 'u1' } },
    ]);
    assert.deepEqual(llm!.usage, { inputTokens: 120, outputTokens: 15, totalTokens: 135 });
    assert.deepEqual(await readPayload(store.blobs, tool!.request), {
      name: 'send_reset_link',
      arguments: { user: 'u1' },
    });
    assert.deepEqual(await readPayload(store.blobs, tool!.response!), { output: 'sent' });
    assert.deepEqual(await readPayload(store.blobs, chain!.request), { input: 'sent' });
  });

  test('spans of neither convention are chain steps, so the tree keeps its shape', async () => {
    const store = await freshStore();
    const [body] = await captureOtlp({ processor: 'batch' }, async (tracer, { within }) => {
      await tick();
      const http = tracer.startSpan('POST /ask', { attributes: { 'http.request.method': 'POST' } });
      await tick();
      const llm = tracer.startSpan(
        'llm',
        { attributes: { 'openinference.span.kind': 'LLM', 'llm.model_name': 'm' } },
        within(http),
      );
      llm.end();
      http.end();
    });
    const result = await ingestOtlp(store, body);
    const steps = await timeline(store, result.runIds[0]!);
    assert.deepEqual(
      steps.map((step) => [step.kind, step.name, step.parentStepId === null]),
      [
        ['chain', 'POST /ask', true],
        ['model', 'llm', false],
      ],
    );
    assert.equal(steps[0]!.attributes['http.request.method'], 'POST');
    assert.equal((await store.getRun(result.runIds[0]!))?.agent, 'POST /ask');
  });
});

describe('malformed OTLP input', () => {
  const good = (spanId: string, extra: Record<string, unknown> = {}) => ({
    traceId: '5b8efff798038103d269b633813fc60c',
    spanId,
    name: 'chat',
    startTimeUnixNano: '1795576539691000000',
    endTimeUnixNano: '1795576539791000000',
    attributes: [{ key: 'gen_ai.operation.name', value: { stringValue: 'chat' } }],
    ...extra,
  });
  const wrap = (spans: unknown[]) => ({
    resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ spans }] }],
  });

  test('whole-body problems are one rejection each, never a throw', async () => {
    const store = await freshStore();
    const cases: [unknown, RegExp][] = [
      [null, /must be a JSON object/],
      ['spans', /must be a JSON object/],
      [[1, 2], /must be a JSON object/],
      [{ resourceSpans: 'nope' }, /"resourceSpans" must be an array/],
      [{ resourceSpans: [42] }, /resourceSpans\[0\] must be an object/],
      [{ resourceSpans: [{ scopeSpans: {} }] }, /scopeSpans must be an array/],
      [{ resourceSpans: [{ scopeSpans: [{ spans: 'x' }] }] }, /"spans" is an array/],
      [
        {
          resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 7 } }] } }],
        },
        /resource\.attributes\["service\.name"\]\.stringValue must be a string/,
      ],
    ];
    for (const [body, reason] of cases) {
      const result = await ingestOtlp(store, body);
      assert.equal(result.accepted, 0);
      assert.equal(result.rejected.length, 1, json(body));
      assert.match(result.rejected[0]!.reason, reason);
      assert.equal(result.rejected[0]!.spanId, null);
    }
    assert.deepEqual(await ingestOtlp(store, {}), {
      spans: 0,
      accepted: 0,
      duplicates: 0,
      rejected: [],
      runIds: [],
    });
  });

  test('each bad span is rejected with a reason naming the field; the good ones are stored', async () => {
    const store = await freshStore();
    const spans = [
      good('1111111111111111'),
      good('2222222222222222', { traceId: 'xyz' }),
      good('3333333333333333', { name: '' }),
      good('4444444444444444', { startTimeUnixNano: 'yesterday' }),
      good('5555555555555555', { endTimeUnixNano: '1' }),
      good('6666666666666666', { attributes: [{ key: 'a', value: { intValue: 'many' } }] }),
      good('7777777777777777', { attributes: { 'gen_ai.operation.name': 'chat' } }),
      good('8888888888888888', { parentSpanId: 'not-hex' }),
      good('9999999999999999', { status: { code: 9 } }),
      good('aaaaaaaaaaaaaaaa', { attributes: [{ key: 'x', value: { mystery: 1 } }] }),
      good('0000000000000000'),
      'a string',
      good('bbbbbbbbbbbbbbbb', { events: [{ attributes: [] }] }),
      good('cccccccccccccccc'),
    ];
    const result = await ingestOtlp(store, wrap(spans));
    assert.equal(result.spans, 14);
    assert.equal(result.accepted, 2);
    const reasons = new Map(result.rejected.map((r) => [r.spanId, r.reason]));
    assert.match(reasons.get('2222222222222222') ?? '', /spans\[1\]\.traceId must be 32 hex digits/);
    assert.match(reasons.get('3333333333333333') ?? '', /spans\[2\]\.name must be a non-empty string/);
    assert.match(reasons.get('4444444444444444') ?? '', /startTimeUnixNano must be a positive integer/);
    assert.match(reasons.get('5555555555555555') ?? '', /ends \(endTimeUnixNano\) before it starts/);
    assert.match(reasons.get('6666666666666666') ?? '', /attributes\["a"\]\.intValue must be an integer/);
    assert.match(reasons.get('7777777777777777') ?? '', /attributes must be an array of \{key, value\}/);
    assert.match(reasons.get('8888888888888888') ?? '', /parentSpanId must be 16 hex digits/);
    assert.match(
      reasons.get('9999999999999999') ?? '',
      /status\.code must be 0 \(unset\), 1 \(ok\) or 2 \(error\)/,
    );
    assert.match(reasons.get('aaaaaaaaaaaaaaaa') ?? '', /has none of stringValue/);
    assert.match(
      reasons.get('0000000000000000') ?? '',
      /spanId must be 16 hex digits \(8 bytes, not all zero\)/,
    );
    assert.match(reasons.get('bbbbbbbbbbbbbbbb') ?? '', /events\[0\] must be an object with a string "name"/);
    assert.match(reasons.get(null) ?? '', /spans\[11\] must be an object/);
    assert.equal(result.rejected.length, 12);
    // Two root spans: the first is the run's; the other is only a step.
    const run = await store.getRun('5b8efff798038103d269b633813fc60c');
    assert.equal(run?.attributes['otel.root_span_id'], '1111111111111111');
    const response = otlpResponse(result);
    assert.equal(response.partialSuccess?.rejectedSpans, 11);
    assert.match(response.partialSuccess?.errorMessage ?? '', /and 7 more/);
    const steps = await timeline(store, '5b8efff798038103d269b633813fc60c');
    assert.deepEqual(
      steps.map((step) => step.stepId),
      ['1111111111111111', 'cccccccccccccccc'],
    );
  });

  test('deeply nested attribute values are refused, not recursed into', async () => {
    const store = await freshStore();
    let value: unknown = { stringValue: 'leaf' };
    for (let i = 0; i < 100; i++) value = { arrayValue: { values: [value] } };
    const result = await ingestOtlp(
      store,
      wrap([good('1212121212121212', { attributes: [{ key: 'deep', value }] })]),
    );
    assert.equal(result.accepted, 0);
    assert.match(result.rejected[0]!.reason, /nests deeper than 32 levels/);
  });
});

describe('concurrency', () => {
  test('a request whose seqs another writer took between its read and its append renumbers, losing nothing', async () => {
    const dir = join(scratch, 'racing');
    const [mine, other] = [await freshStore(dir), await freshStore(dir)];
    const bodies = await genAiAgentTrace('simple');
    let interfered = false;
    // The real store, except that another process's request lands right before its first append.
    const racing: Store = {
      location: mine.location,
      blobs: mine.blobs,
      async append(events) {
        if (!interfered) {
          interfered = true;
          assert.equal((await ingestOtlp(other, bodies[1])).accepted, 1);
        }
        return mine.append(events);
      },
      listRuns: (query) => mine.listRuns(query),
      getRun: (runId) => mine.getRun(runId),
      readTimeline: (runId, query) => mine.readTimeline(runId, query),
      getStep: (runId, seq) => mine.getStep(runId, seq),
      readEvents: (runId) => mine.readEvents(runId),
      referencedBlobs: () => mine.referencedBlobs(),
      close: () => mine.close(),
    };
    const result = await ingestOtlp(racing, bodies[0]);
    assert.ok(interfered);
    assert.deepEqual([result.accepted, result.rejected], [1, []]);
    const steps = await timeline(mine, traceIdOf(bodies));
    assert.deepEqual(
      steps.map((step) => [step.seq, step.stepId]),
      [
        [1, firstSpanOf(bodies[1]).spanId],
        [2, firstSpanOf(bodies[0]).spanId],
      ],
    );
  });

  test('requests for one trace ingested at once, through two store instances, get distinct seqs', async () => {
    const dir = join(scratch, 'shared');
    const [a, b] = [await freshStore(dir), await freshStore(dir)];
    const bodies = await genAiAgentTrace('simple');
    const results = await Promise.all(bodies.map((body, i) => ingestOtlp(i % 2 === 0 ? a : b, body)));
    assert.equal(
      results.reduce((sum, result) => sum + result.accepted, 0),
      4,
      json(results.map((result) => result.rejected)),
    );
    const steps = await timeline(a, traceIdOf(bodies));
    assert.deepEqual(
      steps.map((step) => step.seq),
      [1, 2, 3, 4],
    );
  });
});
