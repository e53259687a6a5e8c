// Fault injection, retries, aborts, latency, concurrency and cross-API scripts, through the
// real `openai` and `@anthropic-ai/sdk` clients over HTTP.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import Anthropic, { type APIError as AnthropicAPIError } from '@anthropic-ai/sdk';
import OpenAI, { type APIError as OpenAIAPIError } from 'openai';
import {
  type Api,
  type Rule,
  type ScriptedProvider,
  scriptedReplies,
  startScriptedProvider,
} from './index.ts';

type Clients = { openai: OpenAI; anthropic: Anthropic };

function clients(provider: ScriptedProvider, maxRetries: number, timeout?: number): Clients {
  const common = { apiKey: 'test', maxRetries, ...(timeout === undefined ? {} : { timeout }) };
  return {
    openai: new OpenAI({ baseURL: provider.openaiBaseURL, ...common }),
    anthropic: new Anthropic({ baseURL: provider.anthropicBaseURL, ...common }),
  };
}

/** One plain (non-streaming) call of `api` asking `question`; resolves to the answer text. */
async function ask(c: Clients, api: Api, question: string, signal?: AbortSignal): Promise<string> {
  const opts = signal ? { signal } : {};
  if (api === 'openai.chat') {
    const r = await c.openai.chat.completions.create(
      { model: 'gpt-test', messages: [{ role: 'user', content: question }] },
      opts,
    );
    return r.choices[0]!.message.content ?? '';
  }
  if (api === 'openai.responses') {
    const r = await c.openai.responses.create({ model: 'gpt-test', input: question }, opts);
    return r.output_text;
  }
  const r = await c.anthropic.messages.create(
    { model: 'claude-test', max_tokens: 64, messages: [{ role: 'user', content: question }] },
    opts,
  );
  return r.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
}

/** One streamed call of `api`; resolves to the accumulated answer text. */
async function askStreaming(c: Clients, api: Api, question: string): Promise<string> {
  if (api === 'openai.chat') {
    const final = await c.openai.chat.completions
      .stream({ model: 'gpt-test', messages: [{ role: 'user', content: question }] })
      .finalChatCompletion();
    return final.choices[0]!.message.content ?? '';
  }
  if (api === 'openai.responses')
    return (await c.openai.responses.stream({ model: 'gpt-test', input: question }).finalResponse())
      .output_text;
  const final = await c.anthropic.messages
    .stream({ model: 'claude-test', max_tokens: 64, messages: [{ role: 'user', content: question }] })
    .finalMessage();
  return final.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
}

const APIS: Api[] = ['openai.chat', 'openai.responses', 'anthropic.messages'];

describe('scripted provider', () => {
  let provider: ScriptedProvider;

  before(async () => {
    provider = await startScriptedProvider();
  });
  after(() => provider.close());
  beforeEach(() => provider.reset());

  describe('injected errors surface as the clients’ typed errors', () => {
    type ErrorClass<T> = new (...args: never[]) => T;
    const cases: [number, string, ErrorClass<OpenAIAPIError>, ErrorClass<AnthropicAPIError>, string][] = [
      [400, 'bad things', OpenAI.BadRequestError, Anthropic.BadRequestError, 'invalid_request_error'],
      [401, 'who are you', OpenAI.AuthenticationError, Anthropic.AuthenticationError, 'authentication_error'],
      [429, 'slow down', OpenAI.RateLimitError, Anthropic.RateLimitError, 'rate_limit_error'],
      [500, 'kaboom', OpenAI.InternalServerError, Anthropic.InternalServerError, 'api_error'],
      [529, 'overloaded', OpenAI.InternalServerError, Anthropic.InternalServerError, 'overloaded_error'],
    ];
    for (const [status, message, openaiClass, anthropicClass, anthropicType] of cases) {
      it(`${status}`, async () => {
        provider.script([{ reply: { error: { status, message } } }]);
        const c = clients(provider, 0);
        for (const api of ['openai.chat', 'openai.responses'] as const) {
          await assert.rejects(ask(c, api, 'q'), (err: unknown) => {
            assert.ok(err instanceof openaiClass, `${api}: ${String(err)}`);
            assert.equal(err.status, status);
            assert.equal(err.message, `${status} ${message}`);
            assert.equal((err.error as { message?: string }).message, message);
            return true;
          });
        }
        await assert.rejects(ask(c, 'anthropic.messages', 'q'), (err: unknown) => {
          assert.ok(err instanceof anthropicClass, String(err));
          assert.equal(err.status, status);
          assert.equal(err.type, anthropicType);
          assert.equal(err.apiMessage, message);
          assert.match(err.requestID ?? '', /^req_\d+$/);
          return true;
        });
        assert.deepEqual(
          provider.requests.map((r) => [r.status, r.outcome]),
          APIS.map(() => [status, 'error']),
        );
      });
    }

    it('sets the OpenAI error type and code', async () => {
      provider.script([
        { reply: { error: { status: 429, message: 'quota', type: 'insufficient_quota', code: 'q' } } },
      ]);
      await assert.rejects(ask(clients(provider, 0), 'openai.chat', 'q'), (err: unknown) => {
        assert.ok(err instanceof OpenAI.RateLimitError);
        assert.equal(err.type, 'insufficient_quota');
        assert.equal(err.code, 'q');
        return true;
      });
    });
  });

  describe('retries', () => {
    for (const api of APIS) {
      it(`${api}: 429 then 503 then success succeeds with maxRetries 2, honouring Retry-After`, async () => {
        provider.script(
          scriptedReplies([
            { error: { status: 429, message: 'slow down', retryAfterMs: 5 } },
            { error: { status: 503, message: 'busy', retryAfter: 0.01 } },
            { text: 'finally' },
          ]),
        );
        const started = Date.now();
        assert.equal(await ask(clients(provider, 2), api, 'q'), 'finally');
        assert.ok(Date.now() - started < 400, 'Retry-After was honoured instead of the default backoff');
        assert.deepEqual(
          provider.requests.map((r) => [r.status, r.headers['x-stainless-retry-count']]),
          [
            [429, '0'],
            [503, '1'],
            [200, '2'],
          ],
        );
        assert.deepEqual(provider.ruleUses(), [1, 1, 1]);
      });
    }

    it('gives up after maxRetries with the last error', async () => {
      provider.script([{ reply: { error: { status: 429, message: 'no', retryAfterMs: 1 } } }]);
      await assert.rejects(ask(clients(provider, 2), 'anthropic.messages', 'q'), Anthropic.RateLimitError);
      assert.equal(provider.requests.length, 3);
    });

    it('x-should-retry: false stops the clients from retrying a 503', async () => {
      provider.script([{ reply: { error: { status: 503, message: 'down', shouldRetry: false } } }]);
      const c = clients(provider, 2);
      await assert.rejects(ask(c, 'openai.chat', 'q'), OpenAI.InternalServerError);
      await assert.rejects(ask(c, 'anthropic.messages', 'q'), Anthropic.InternalServerError);
      assert.equal(provider.requests.length, 2);
    });
  });

  describe('dropped connections', () => {
    it('surface as connection errors without retries', async () => {
      provider.script([{ reply: { drop: true } }]);
      const c = clients(provider, 0);
      await assert.rejects(ask(c, 'openai.chat', 'q'), OpenAI.APIConnectionError);
      await assert.rejects(ask(c, 'openai.responses', 'q'), OpenAI.APIConnectionError);
      await assert.rejects(ask(c, 'anthropic.messages', 'q'), Anthropic.APIConnectionError);
      await provider.settled();
      assert.deepEqual(
        provider.requests.map((r) => [r.outcome, r.aborted, r.status]),
        APIS.map(() => ['dropped', false, undefined]),
      );
    });

    it('are retried by the clients', async () => {
      // Connection errors get the clients' default backoff (~0.5 s), so the three run in parallel.
      provider.script(
        APIS.flatMap((api) => scriptedReplies([{ drop: true }, { text: `${api} recovered` }], { api })),
      );
      const c = clients(provider, 1);
      assert.deepEqual(
        await Promise.all(APIS.map((api) => ask(c, api, 'q'))),
        APIS.map((api) => `${api} recovered`),
      );
    });
  });

  describe('mid-stream interruptions', () => {
    for (const api of APIS) {
      it(`${api}: an injected stream error event raises the client's APIError`, async () => {
        provider.script([
          {
            reply: {
              text: 'one two three four',
              interrupt: { afterEvents: 3, with: 'error', message: 'melted' },
            },
          },
        ]);
        await assert.rejects(askStreaming(clients(provider, 0), api, 'q'), (err: unknown) => {
          assert.ok(err instanceof OpenAI.APIError || err instanceof Anthropic.APIError, String(err));
          assert.match(err.message, /melted/);
          return true;
        });
        assert.equal(provider.requests[0]?.outcome, 'interrupted');
        assert.equal(provider.requests[0]?.eventsSent, 4);
      });

      it(`${api}: a connection dropped mid-stream rejects the stream`, async () => {
        provider.script([
          { reply: { text: 'one two three four', interrupt: { afterEvents: 3, with: 'drop' } } },
        ]);
        // undici reports the cut body as "terminated"; the clients wrap it in their base error class.
        await assert.rejects(askStreaming(clients(provider, 0), api, 'q'), (err: unknown) => {
          assert.ok(
            err instanceof OpenAI.OpenAIError || err instanceof Anthropic.AnthropicError,
            String(err),
          );
          assert.match(String(err), /terminated/);
          return true;
        });
        await provider.settled();
        assert.equal(provider.requests[0]?.outcome, 'interrupted');
        assert.equal(provider.requests[0]?.eventsSent, 3);
      });
    }
  });

  describe('client aborts', () => {
    const long = Array.from({ length: 30 }, (_, i) => `w${i}`).join(' ');

    it('openai chat: abort mid-stream via AbortController', async () => {
      provider.script([{ reply: { text: long, chunkDelayMs: 15 } }]);
      const controller = new AbortController();
      const stream = await clients(provider, 0).openai.chat.completions.create(
        { model: 'gpt-test', messages: [{ role: 'user', content: 'q' }], stream: true },
        { signal: controller.signal },
      );
      let received = 0;
      // A raw stream (create with stream: true) just ends when its signal aborts; it does not throw.
      for await (const _chunk of stream) {
        received++;
        if (received === 3) controller.abort();
      }
      assert.equal(received, 3);
      await provider.settled();
      const [request] = provider.requests;
      assert.equal(request?.aborted, true);
      assert.equal(request?.outcome, 'aborted');
      assert.ok(request!.eventsSent < 30, `sent ${request?.eventsSent} events before noticing`);
    });

    it('anthropic: abort mid-stream via AbortController', async () => {
      provider.script([{ reply: { text: long, chunkDelayMs: 15 } }]);
      const controller = new AbortController();
      const stream = clients(provider, 0).anthropic.messages.stream(
        { model: 'claude-test', max_tokens: 64, messages: [{ role: 'user', content: 'q' }] },
        { signal: controller.signal },
      );
      let texts = 0;
      stream.on('text', () => {
        if (++texts === 2) controller.abort();
      });
      await assert.rejects(stream.finalMessage(), Anthropic.APIUserAbortError);
      await provider.settled();
      assert.equal(provider.requests[0]?.aborted, true);
      assert.ok(provider.requests[0]!.eventsSent < 30);
    });

    it('a client that goes away halfway through its request body', async () => {
      provider.script([{ reply: { text: 'x' } }]);
      const socket = connect(provider.port, '127.0.0.1');
      await once(socket, 'connect');
      socket.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"model":');
      await new Promise((resolve) => setTimeout(resolve, 20));
      socket.destroy();
      await provider.settled();
      assert.deepEqual(
        provider.requests.map((r) => [r.outcome, r.aborted]),
        [['aborted', true]],
      );
    });

    it('openai responses: abort while the provider is still waiting (latency)', async () => {
      provider.script([{ reply: { text: 'late', latencyMs: 2000 } }]);
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 30);
      const started = Date.now();
      await assert.rejects(
        ask(clients(provider, 0), 'openai.responses', 'q', controller.signal),
        OpenAI.APIUserAbortError,
      );
      await provider.settled();
      assert.ok(Date.now() - started < 1000, 'the provider stopped waiting when the client went away');
      assert.equal(provider.requests[0]?.aborted, true);
      assert.equal(provider.requests[0]?.status, undefined);
    });
  });

  describe('latency', () => {
    it('delays the answer by latencyMs', async () => {
      provider.script([{ reply: { text: 'slow', latencyMs: 120 } }]);
      const started = Date.now();
      assert.equal(await ask(clients(provider, 0), 'anthropic.messages', 'q'), 'slow');
      assert.ok(Date.now() - started >= 115);
    });

    it('spaces streamed events by chunkDelayMs', async () => {
      provider.script([{ reply: { text: 'a b c d e', chunkDelayMs: 20 } }]);
      const c = clients(provider, 0);
      const stamps: number[] = [];
      const stream = c.openai.chat.completions.stream({
        model: 'm',
        messages: [{ role: 'user', content: 'q' }],
      });
      stream.on('content', () => stamps.push(Date.now()));
      await stream.finalChatCompletion();
      assert.equal(stamps.length, 5);
      assert.ok(stamps.at(-1)! - stamps[0]! >= 70, 'deltas arrive spread over time');
    });

    it('makes a client timeout fire', async () => {
      provider.script([{ reply: { text: 'too late', latencyMs: 1000 } }]);
      await assert.rejects(
        ask(clients(provider, 0, 50), 'openai.chat', 'q'),
        OpenAI.APIConnectionTimeoutError,
      );
      await assert.rejects(
        ask(clients(provider, 0, 50), 'anthropic.messages', 'q'),
        Anthropic.APIConnectionTimeoutError,
      );
      await provider.settled();
      assert.ok(provider.requests.every((r) => r.aborted));
    });

    it('applies the provider-wide defaultLatencyMs', async () => {
      const slow = await startScriptedProvider({ defaultLatencyMs: 80, rules: [{ reply: { text: 'x' } }] });
      try {
        const started = Date.now();
        await ask(clients(slow, 0), 'openai.chat', 'q');
        assert.ok(Date.now() - started >= 75);
      } finally {
        await slow.close();
      }
    });
  });

  describe('no matching rule', () => {
    it('answers 400 with a message naming the request and why each rule failed', async () => {
      provider.script([
        { name: 'weather', when: { lastUserText: 'weather' }, reply: { text: 'x' } },
        { name: 'once', reply: { text: 'y' }, times: 1 },
      ]);
      const c = clients(provider, 2);
      assert.equal(await ask(c, 'openai.chat', 'hello'), 'y');
      await assert.rejects(ask(c, 'openai.chat', 'hello again'), (err: unknown) => {
        assert.ok(err instanceof OpenAI.BadRequestError);
        assert.match(
          err.message,
          /request #2 openai\.chat, model "gpt-test", turn 0, last user text "hello again"/,
        );
        assert.match(err.message, /matched no rule/);
        assert.match(
          err.message,
          /rule 0 \(weather\): last user text "hello again" does not match "weather"/,
        );
        assert.match(err.message, /rule 1 \(once\): used up \(1 of 1 times\)/);
        return true;
      });
      await assert.rejects(ask(c, 'anthropic.messages', 'hi'), (err: unknown) => {
        assert.ok(err instanceof Anthropic.BadRequestError);
        assert.match(err.apiMessage ?? '', /request #3 anthropic\.messages.*matched no rule/);
        return true;
      });
      assert.equal(provider.requests.length, 3, 'not retried');
      assert.equal(provider.requests[1]?.outcome, 'unmatched');
    });

    it('answers 404 for unknown routes and 400 for bodies that are not JSON objects', async () => {
      const missing = await fetch(`${provider.url}/v1/embeddings`, { method: 'POST', body: '{}' });
      assert.equal(missing.status, 404);
      assert.match(((await missing.json()) as { error: { message: string } }).error.message, /no route/);
      const bad = await fetch(`${provider.openaiBaseURL}/chat/completions`, { method: 'POST', body: '[1' });
      assert.equal(bad.status, 400);
      const badAnthropic = await fetch(`${provider.url}/v1/messages`, { method: 'POST', body: 'nope' });
      assert.deepEqual(await badAnthropic.json(), {
        type: 'error',
        error: {
          type: 'invalid_request_error',
          message: 'scripted provider: the request body is not a JSON object',
        },
        request_id: 'req_3',
      });
    });

    it('reports a throwing reply function as a 500 that is not retried', async () => {
      provider.script([
        {
          reply: () => {
            throw new Error('oops');
          },
        },
      ]);
      await assert.rejects(
        ask(clients(provider, 2), 'openai.chat', 'q'),
        /reply function of rule 0 threw: oops/,
      );
      assert.equal(provider.requests.length, 1);
    });
  });

  it('answers 20 concurrent calls over all three APIs, each with its own answer', async () => {
    const rules: Rule[] = Array.from({ length: 20 }, (_, i) => ({
      when: { lastUserText: new RegExp(`^question ${i}$`) },
      reply: { text: `answer number ${i}`, latencyMs: (i * 7) % 25, chunkDelayMs: i % 3 },
      times: 1,
    }));
    provider.script(rules);
    const c = clients(provider, 0);
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => {
        const api = APIS[i % 3]!;
        return i % 2 === 0 ? ask(c, api, `question ${i}`) : askStreaming(c, api, `question ${i}`);
      }),
    );
    assert.deepEqual(
      answers,
      Array.from({ length: 20 }, (_, i) => `answer number ${i}`),
    );
    assert.deepEqual(
      provider.ruleUses(),
      rules.map(() => 1),
    );
    assert.ok(provider.requests.every((r) => r.outcome === 'ok'));
  });

  it('drives the same agent script through every client', async () => {
    provider.script([
      {
        when: { turn: 0 },
        reply: { toolCalls: [{ name: 'search', arguments: { query: 'rewind' } }] },
      },
      {
        when: { hasToolResult: 'search', predicate: (c) => c.trailingToolResults[0]?.content === 'found it' },
        reply: (c) => ({ text: `Done: ${c.lastUserText}` }),
      },
    ]);
    const c = clients(provider, 0);
    const tools = {
      name: 'search',
      description: 'search',
      schema: { type: 'object' as const, properties: {} },
    };

    // OpenAI chat completions
    const chatMessages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'find rewind' }];
    const chat1 = await c.openai.chat.completions.create({
      model: 'gpt-test',
      messages: chatMessages,
      tools: [{ type: 'function', function: { name: tools.name, parameters: tools.schema } }],
    });
    const chatCall = chat1.choices[0]!.message.tool_calls![0]!;
    chatMessages.push(chat1.choices[0]!.message, {
      role: 'tool',
      tool_call_id: chatCall.id,
      content: 'found it',
    });
    const chat2 = await c.openai.chat.completions.create({ model: 'gpt-test', messages: chatMessages });
    assert.equal(chat2.choices[0]!.message.content, 'Done: find rewind');

    // OpenAI responses
    const input: OpenAI.Responses.ResponseInputItem[] = [{ role: 'user', content: 'find rewind' }];
    const resp1 = await c.openai.responses.create({ model: 'gpt-test', input });
    const fnCall = resp1.output.find((item) => item.type === 'function_call')!;
    input.push(fnCall, { type: 'function_call_output', call_id: fnCall.call_id, output: 'found it' });
    const resp2 = await c.openai.responses.create({ model: 'gpt-test', input });
    assert.equal(resp2.output_text, 'Done: find rewind');

    // Anthropic messages
    const messages: Anthropic.MessageParam[] = [{ role: 'user', content: 'find rewind' }];
    const msg1 = await c.anthropic.messages.create({ model: 'claude-test', max_tokens: 64, messages });
    const use = msg1.content.find((b) => b.type === 'tool_use')!;
    messages.push(
      { role: 'assistant', content: msg1.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'found it' }] },
    );
    const msg2 = await c.anthropic.messages.create({ model: 'claude-test', max_tokens: 64, messages });
    assert.deepEqual(msg2.content, [{ type: 'text', text: 'Done: find rewind' }]);

    assert.deepEqual(
      provider.requests.map((r) => [r.api, r.rule]),
      [
        ['openai.chat', 0],
        ['openai.chat', 1],
        ['openai.responses', 0],
        ['openai.responses', 1],
        ['anthropic.messages', 0],
        ['anthropic.messages', 1],
      ],
    );
  });

  it('reset() restarts ids and the request log; script() replaces rules', async () => {
    provider.script([{ reply: { text: 'a' } }]);
    const c = clients(provider, 0);
    const first = await c.openai.chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: 'q' }],
    });
    const second = await c.openai.chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: 'q' }],
    });
    assert.deepEqual([first.id, second.id], ['chatcmpl-1', 'chatcmpl-2']);
    provider.reset();
    assert.equal(provider.requests.length, 0);
    provider.script([{ reply: { text: 'b', usage: { inputTokens: 100, outputTokens: 7 } } }]);
    const third = await c.openai.chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: 'q' }],
    });
    assert.equal(third.id, 'chatcmpl-1');
    assert.equal(third.choices[0]!.message.content, 'b');
    assert.equal(third.usage?.prompt_tokens, 100);
    assert.equal(third.usage?.completion_tokens, 7);
    assert.equal(provider.requests[0]?.seq, 1);
  });
});
