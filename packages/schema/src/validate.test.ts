import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import fc from 'fast-check';
import { InvalidEventError, UnsupportedSchemaVersionError } from './errors.ts';
import { EVENT_TYPES, eventShape } from './events.ts';
import { traceJsonSchema } from './json-schema.ts';
import { type Issue, isPlainObject } from './shape.ts';
import { parseEvent, validateEvent, validateRequestPayload, validateResponsePayload } from './validate.ts';

const fixtures = new URL('../../../fixtures/events/', import.meta.url);
const valid = Object.fromEntries(
  readdirSync(new URL('valid/', fixtures)).map((file) => [
    file,
    JSON.parse(readFileSync(new URL(`valid/${file}`, fixtures), 'utf8')) as Record<string, unknown>,
  ]),
);
interface InvalidCase {
  name: string;
  base?: string;
  raw?: unknown;
  set?: Record<string, unknown>;
  delete?: string[];
  field: string;
}
const invalidCases = JSON.parse(
  readFileSync(new URL('invalid/cases.json', fixtures), 'utf8'),
) as InvalidCase[];

function build(testCase: InvalidCase): unknown {
  if (testCase.base === undefined) return testCase.raw;
  const event: Record<string, unknown> = { ...valid[testCase.base]!, ...testCase.set };
  for (const key of testCase.delete ?? []) delete event[key];
  return event;
}

const ajv = new Ajv2020({ allErrors: true, strict: false });
const jsonSchemaAccepts = ajv.compile(traceJsonSchema());

describe('valid fixtures', () => {
  test('cover every event type', () => {
    const types = new Set(Object.values(valid).map((event) => event.type));
    assert.deepEqual([...types].sort(), [...EVENT_TYPES].sort());
  });
  for (const [file, event] of Object.entries(valid)) {
    test(`${file} is accepted by the validator and by the generated JSON Schema`, () => {
      assert.deepEqual(validateEvent(event), { ok: true, value: event });
      assert.equal(parseEvent(event), event);
      assert.equal(jsonSchemaAccepts(event), true, JSON.stringify(jsonSchemaAccepts.errors));
    });
  }
});

describe('every required field', () => {
  for (const [file, event] of Object.entries(valid)) {
    for (const key of Object.keys(event)) {
      const without = { ...event };
      delete without[key];
      const result = validateEvent(without);
      const optional = result.ok;
      test(`${file} without ${key} is ${optional ? 'accepted (optional field)' : 'rejected naming the field'}`, () => {
        if (optional) {
          assert.equal(jsonSchemaAccepts(without), true, JSON.stringify(jsonSchemaAccepts.errors));
          return;
        }
        assert.equal(result.ok, false);
        if (!result.ok) {
          assert.equal(result.issues[0]!.path, key, JSON.stringify(result.issues));
          assert.match(result.issues[0]!.message, /required|expected/);
        }
        assert.equal(jsonSchemaAccepts(without), false, `JSON Schema accepted ${file} without ${key}`);
      });
    }
  }
});

describe('invalid fixtures', () => {
  for (const testCase of invalidCases) {
    test(`${testCase.name}: rejected, naming ${testCase.field || 'the event'}`, () => {
      const event = build(testCase);
      const result = validateEvent(event);
      assert.equal(result.ok, false);
      if (!result.ok) {
        assert.ok(
          result.issues.some((issue) => issue.path === testCase.field),
          `expected an issue at "${testCase.field}", got ${JSON.stringify(result.issues)}`,
        );
        for (const issue of result.issues) assert.ok(issue.message.length > 0);
      }
      assert.equal(jsonSchemaAccepts(event), false, 'the generated JSON Schema must reject it too');
    });
  }
});

test('parseEvent throws InvalidEventError carrying the field and the reason', () => {
  const event = { ...valid['step-started.json']!, seq: -3 };
  assert.throws(
    () => parseEvent(event),
    (error: unknown) => {
      assert.ok(InvalidEventError.isInstance(error));
      assert.equal(error.field, 'seq');
      assert.match(error.message, /seq must be ≥ 1, got -3/);
      return true;
    },
  );
});

test('an event from a newer schema version fails with what it needs', () => {
  const event = { ...valid['run-started.json']!, schemaVersion: 3, somethingNew: true };
  assert.throws(
    () => parseEvent(event),
    (error: unknown) => {
      assert.ok(UnsupportedSchemaVersionError.isInstance(error));
      assert.equal(error.found, 3);
      assert.match(error.message, /schemaVersion 3.*upgrade Rewind/);
      return true;
    },
  );
});

test('validation errors are bounded even for huge garbage', () => {
  const event = {
    ...valid['run-started.json']!,
    attributes: Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, { x: i }])),
  };
  const result = validateEvent(event);
  assert.equal(result.ok, false);
  if (!result.ok) assert.ok(result.issues.length <= 20);
});

describe('normalized payloads', () => {
  test('a model request and response', () => {
    const request = {
      provider: 'openai',
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: 'You are helpful.' },
        { role: 'user', content: [{ type: 'text', text: 'Weather in Paris?' }] },
        {
          role: 'assistant',
          content: null,
          toolCalls: [{ id: 'c1', name: 'weather', arguments: { city: 'Paris' } }],
        },
        { role: 'tool', content: '18°C', toolCallId: 'c1' },
      ],
      tools: [{ name: 'weather', parameters: { type: 'object' } }],
      params: { temperature: 0, maxTokens: 256, seed: 7, responseFormat: 'text' },
    };
    assert.deepEqual(validateRequestPayload('model', request), []);
    const response = {
      model: 'gpt-4o-mini-2024-07-18',
      message: { role: 'assistant', content: 'It is 18°C.' },
      finishReason: 'stop',
      usage: { inputTokens: 50, outputTokens: 6 },
    };
    assert.deepEqual(validateResponsePayload('model', response), []);
    const issues = validateRequestPayload('model', {
      ...request,
      messages: [{ role: 'robot', content: 'x' }],
    });
    assert.equal(issues[0]?.path, 'messages[0].role');
  });
  test('retriever, tool and chain payloads', () => {
    assert.deepEqual(validateRequestPayload('retriever', { query: 'refund policy', topK: 3 }), []);
    assert.deepEqual(
      validateResponsePayload('retriever', {
        documents: [{ id: 'd1', content: 'Refunds within 30 days', score: 0.92 }],
      }),
      [],
    );
    assert.equal(
      validateResponsePayload('retriever', { documents: [{ id: 'd1' }] })[0]?.path,
      'documents[0].content',
    );
    assert.deepEqual(validateRequestPayload('tool', { name: 'crm.lookup', arguments: { id: 7 } }), []);
    assert.deepEqual(validateResponsePayload('tool', { output: null }), []);
    assert.deepEqual(validateRequestPayload('chain', { input: ['a', 1] }), []);
    assert.ok(isPlainObject(traceJsonSchema().$defs));
  });
});

test('property: the fast path (test) and the reporting path (check) always agree', () => {
  const bases = Object.values(valid);
  const paths = (value: unknown, prefix: string[] = []): string[][] =>
    isPlainObject(value)
      ? Object.entries(value).flatMap(([key, item]) => [[...prefix, key], ...paths(item, [...prefix, key])])
      : [];
  fc.assert(
    fc.property(
      fc.nat(bases.length - 1),
      fc.nat(),
      fc.oneof(fc.jsonValue(), fc.constant(undefined), fc.constantFrom(-1, 0, 1.5, '', 'x', null, [], {})),
      fc.string({ maxLength: 8 }),
      (baseIndex, pathIndex, replacement, extraKey) => {
        const event = structuredClone(bases[baseIndex]!);
        const all = paths(event);
        const path = all[pathIndex % all.length]!;
        let target: Record<string, unknown> = event;
        for (const key of path.slice(0, -1)) target = target[key] as Record<string, unknown>;
        if (extraKey.length > 0 && pathIndex % 3 === 0) target[extraKey] = replacement;
        else target[path.at(-1)!] = replacement;
        const fast = eventShape.test(event);
        const issues: Issue[] = [];
        eventShape.check(event, '', issues);
        assert.equal(fast, issues.length === 0, `test()=${fast} but check() gave ${JSON.stringify(issues)}`);
      },
    ),
    { numRuns: 2000 },
  );
});
