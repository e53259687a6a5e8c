import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalJson } from '@rewind/schema';
import fc from 'fast-check';
import { inlineText, Part, type Payload, type Piece } from './json.ts';
import {
  MIN_PART_BYTES,
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

test('each long message, the tool definitions and raw messages/tools become parts; short ones stay inline', () => {
  const texts = parts(serializeModelRequest(request));
  assert.ok(texts.includes(canonicalJson(request.messages[0])));
  assert.ok(texts.includes(canonicalJson(request.messages[2])));
  assert.ok(!texts.includes(canonicalJson(request.messages[1])), 'a short message is inlined');
  assert.ok(texts.includes(canonicalJson(request.tools)));
  assert.ok(texts.includes(canonicalJson(request.raw.tools)));
  for (const text of texts) assert.ok(text.length >= MIN_PART_BYTES);
  // the same message in messages and raw.messages is the same part text (stored once)
  assert.equal(texts.filter((text) => text === canonicalJson(request.messages[0])).length, 2);
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

test('a model response stores its message as a part (it is resent in the next request)', () => {
  const message = { role: 'assistant', content: long('The answer is 42.') };
  const response = { model: 'gpt-4o', message, finishReason: 'stop', usage: { inputTokens: 3 } };
  const payload = serializeModelResponse(response);
  assert.equal(inlineText(body(payload)), canonicalJson(response));
  assert.deepEqual(parts(payload), [canonicalJson(message)]);
});

test('plain requests hash without raw; plain payloads are just canonical JSON', () => {
  const retriever = { query: 'q', topK: 3, raw: { arguments: ['q', { k: 3 }] } };
  const payload = serializePlainRequest(retriever);
  assert.equal(inlineText(body(payload)), canonicalJson(retriever));
  assert.equal(inlineText(hashBody(payload)), canonicalJson({ query: 'q', topK: 3 }));
  assert.equal(serializePlainRequest({ name: 't', arguments: [1] }), '{"arguments":[1],"name":"t"}');
  assert.equal(serializePlain({ output: { b: 1, a: 2 } }), '{"output":{"a":2,"b":1}}');
  assert.equal(serializeModelRequest('not an object'), '"not an object"');
});
