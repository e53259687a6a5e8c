import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatPath, matchesPattern, PathSyntaxError, parseLocation, parsePathPattern } from './paths.ts';

const matches = (pattern: string, at: string) => {
  const location = parseLocation(at);
  return matchesPattern(parsePathPattern(pattern), location, location.segments);
};

describe('paths', () => {
  it('step names may hold dots; the name ends at the part', () => {
    assert.deepEqual(parseLocation('tool:crm.lookup.response.output.email'), {
      scope: { kind: 'tool', name: 'crm.lookup' },
      segments: ['response', 'output', 'email'],
    });
    assert.ok(matches('tool:crm.lookup.response.output.email', 'tool:crm.lookup.response.output.email'));
    assert.ok(!matches('tool:crm.lookup.response.output.email', 'tool:crm.search.response.output.email'));
    assert.ok(
      matches('tool.response.output.email', 'tool:anything.response.output.email'),
      'no name: any step of the kind',
    );
    assert.ok(!matches('tool.response.output.email', 'model:x.response.output.email'));
  });

  it('wildcards: * and [*] one segment, ** any depth, globs in names, quoted keys and indices', () => {
    assert.ok(matches('model.request.messages[*].content', 'model:a.request.messages[3].content'));
    assert.ok(!matches('model.request.messages[*].content', 'model:a.request.messages[3].content.text'));
    assert.ok(matches('model.request.messages[0].content', 'model:a.request.messages[0].content'));
    assert.ok(!matches('model.request.messages[0].content', 'model:a.request.messages[1].content'));
    assert.ok(matches('retriever.response.**.email', 'retriever:kb.response.documents[2].metadata.email'));
    assert.ok(matches('retriever.response.**', 'retriever:kb.response'));
    assert.ok(matches('tool:crm.*.request', 'tool:crm.lookup.v2.request'));
    assert.ok(matches('run.input["a.b"]', 'run.input["a.b"]'));
    assert.ok(matches('run.input.*', 'run.input.x'));
  });

  it('formatPath writes identifiers with dots, indices and other keys in brackets', () => {
    const location = parseLocation('tool:crm.lookup.response');
    assert.equal(
      formatPath(location, [...location.segments, 'output', 0, 'a b', 'ok']),
      'tool:crm.lookup.response.output[0]["a b"].ok',
    );
    assert.equal(formatPath(parseLocation(''), ['messages', 1, 'content']), 'messages[1].content');
  });

  it('bad patterns say what is wrong', () => {
    for (const [pattern, message] of [
      ['', /non-empty/],
      ['steps.request', /must start with one of run, model, tool, retriever, chain/],
      ['run:x.input', /'run' takes no name/],
      ['run.body', /one of input, output, error, attributes/],
      ['run.input[', /never closed/],
      ['run.input.', /expected a key/],
    ] as const) {
      assert.throws(
        () => parsePathPattern(pattern),
        (error: unknown) => error instanceof PathSyntaxError && message.test(error.message),
        pattern,
      );
    }
    assert.throws(() => parseLocation('run.input[*]'), /only allowed in rule paths/);
  });
});
