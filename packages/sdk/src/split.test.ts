import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalJson } from '@rewind/schema';
import fc from 'fast-check';
import { inlineText, Part, type Payload, type Piece } from './json.ts';
import {
  MIN_PART_BYTES,
  MIN_PLAIN_PART_BYTES,
  serializeModelRequest,
  serializeModelResponse,
  serializePlain,
  serializePlainRequest,
} from './split.ts';

function body(payload: Payload): string | Piece[] {
  return typeof payload === 'string' ? payload : payload.body;
}
function hashBody(payload: Payload): string | Piece[] {
  return typeof payload === 'string' ? payload : (payload.hashBody ?? payload.body);
}
function parts(payload: Payload): string[] {
  const b = body(payload);
  return typeof b === 'string'
    ? []
    : b.filter((piece): piece is Part => piece instanceof Part).map((p) => p.text);
}

const long = (text: string): string => `${text} ${'lorem ipsum '.repeat(20)}`;

const request = {
  provider: 'openai',
  model: 'gpt-4o',
  messages: [
    { role: 'system', content: long('You are a support agent.') },
    { role: 'user', content: 'hi' },
    {
      role: 'assistant',
      content: long('Hello! How can I help?'),
      toolCalls: [{ id: 'c1', name: 'lookup', arguments: { q: 1 } }],
    },
  ],
  tools: [{ name: 'lookup', description: long('Looks things up'), parameters: { type: 'object' } }],
  params: { temperature: 0.2 },
  raw: {
    model: 'gpt-4o',
    messages: [
      { role: 'system', content: long('You are a support agent.') },
      { role: 'user', content: 'hi' },
    ],
    tools: [{ type: 'function', function: { name: 'lookup', description: long('Looks things up') } }],
    temperature: 0.2,
  },
};

test('a model request inlines to exactly its canonical JSON, and hashes as canonical JSON without raw', () => {
  const payload = serializeModelRequest(request);
  assert.equal(inlineText(body(payload)), canonicalJson(request));
  const { raw: _raw, ...withoutRaw } = request;
  assert.equal(inlineText(hashBody(payload)), canonicalJson(withoutRaw));
});

test('long strings in messages, the tool definitions and raw tools become parts; short ones stay inline', () => {
  const texts = parts(serializeModelRequest(request));
  const system = JSON.stringify(request.messages[0]!.content);
  assert.ok(texts.includes(system));
  assert.ok(texts.includes(JSON.stringify(request.messages[2]!.content)));
  assert.ok(!texts.some((text) => text.includes('"hi"')), 'a short message is inlined');
  assert.ok(texts.includes(canonicalJson(request.tools)));
  assert.ok(texts.includes(canonicalJson(request.raw.tools)));
  for (const text of texts) assert.ok(text.length >= MIN_PART_BYTES);
  // the same text in messages and raw.messages is the same part (stored once)
  assert.equal(texts.filter((text) => text === system).length, 2);
});

test('parts are interned: the same text in two requests is the same Part (hashed once)', () => {
  const a = serializeModelRequest({ provider: 'p', model: 'm', messages: [request.messages[0]], params: {} });
  const b = serializeModelRequest({
    provider: 'p',
    model: 'm',
    messages: [{ ...request.messages[0]! }],
    params: {},
  });
  const partOf = (payload: Payload): Part =>
    (typeof payload === 'string' ? [] : (payload.body as Piece[])).find((p): p is Part => p instanceof Part)!;
  assert.equal(partOf(a), partOf(b));
});

test('other payloads split only long strings (MIN_PLAIN_PART_BYTES): a tool output fed back to the model is stored once', () => {
  const output = 'tool output '.repeat(100);
  assert.ok(JSON.stringify(output).length >= MIN_PLAIN_PART_BYTES);
  const response = serializePlain({ output });
  assert.deepEqual(parts(response), [JSON.stringify(output)]);
  assert.equal(inlineText(body(response)), canonicalJson({ output }));
  const message = serializeModelRequest({
    provider: 'p',
    model: 'm',
    messages: [{ role: 'tool', content: output }],
    params: {},
  });
  assert.deepEqual(parts(message), [JSON.stringify(output)]);
  // a medium string stays inline outside model payloads
  assert.equal(serializePlain({ output: long('medium') }), canonicalJson({ output: long('medium') }));
});

test('the body and hash body share Part objects (each message is serialized once)', () => {
  const payload = serializeModelRequest(request);
  assert.ok(typeof payload !== 'string' && payload.hashBody !== undefined);
  const inBody = (payload.body as Piece[]).filter((p) => p instanceof Part);
  const inHash = (payload.hashBody as Piece[]).filter((p) => p instanceof Part);
  for (const part of inHash) assert.ok(inBody.includes(part));
});

test('serialization is synchronous: mutating the request afterwards changes nothing', () => {
  const messages = [{ role: 'user', content: long('first') }];
  const payload = serializeModelRequest({ provider: 'x', model: 'm', messages, params: {} });
  const before = inlineText(body(payload));
  messages.push({ role: 'assistant', content: 'later' });
  messages[0]!.content = 'changed';
  assert.equal(inlineText(body(payload)), before);
});

test('split payloads equal the canonical JSON for arbitrary requests (property)', () => {
  const message = fc.record({
    role: fc.constantFrom('system', 'user', 'assistant', 'tool'),
    content: fc.oneof(fc.string({ maxLength: 300 }), fc.constant(null)),
    extra: fc.option(fc.jsonValue(), { nil: undefined }),
  });
  fc.assert(
    fc.property(
      fc.record(
        {
          provider: fc.string(),
          model: fc.string(),
          messages: fc.array(message, { maxLength: 6 }),
          tools: fc.jsonValue(),
          params: fc.dictionary(fc.string(), fc.jsonValue()),
          raw: fc.record({
            messages: fc.array(message, { maxLength: 4 }),
            input: fc.jsonValue(),
            system: fc.jsonValue(),
            other: fc.jsonValue(),
          }),
        },
        { requiredKeys: ['provider', 'model', 'messages', 'params'] },
      ),
      (value) => {
        const payload = serializeModelRequest(value);
        assert.equal(inlineText(body(payload)), canonicalJson(value));
        const { raw: _raw, ...withoutRaw } = value;
        assert.equal(inlineText(hashBody(payload)), canonicalJson(withoutRaw));
      },
    ),
    { numRuns: 500 },
  );
});

test('a model response stores its message text as a part (it is resent in the next request)', () => {
  const message = { role: 'assistant', content: long('The answer is 42.') };
  const response = { model: 'gpt-4o', message, finishReason: 'stop', usage: { inputTokens: 3 } };
  const payload = serializeModelResponse(response);
  // Responses keep their key order (replay hands them back as they were).
  assert.equal(inlineText(body(payload)), JSON.stringify(response));
  assert.deepEqual(parts(payload), [JSON.stringify(message.content)]);
  const next = serializeModelRequest({ provider: 'p', model: 'm', messages: [message], params: {} });
  assert.deepEqual(parts(next), parts(payload));
});

test('plain requests hash without raw and are canonical JSON; responses keep their key order', () => {
  const retriever = { query: 'q', topK: 3, raw: { arguments: ['q', { k: 3 }] } };
  const payload = serializePlainRequest(retriever);
  assert.equal(inlineText(body(payload)), canonicalJson(retriever));
  assert.equal(inlineText(hashBody(payload)), canonicalJson({ query: 'q', topK: 3 }));
  assert.equal(serializePlainRequest({ name: 't', arguments: [1] }), '{"arguments":[1],"name":"t"}');
  assert.equal(serializePlain({ output: { b: 1, a: 2 } }), '{"output":{"b":1,"a":2}}');
  assert.equal(serializePlainRequest({ arguments: { b: 1, a: 2 } }), '{"arguments":{"a":2,"b":1}}');
  assert.equal(serializeModelRequest('not an object'), '"not an object"');
});
