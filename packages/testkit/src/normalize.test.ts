import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { explainNoMatch, findRule, mismatch, scriptedReplies } from './match.ts';
import { countInputTokens, countWords, normalizeRequest } from './normalize.ts';
import type { Conversation } from './types.ts';
import { splitFixed, splitText } from './wire/answer.ts';

// The same two-turn agent conversation (question, tool call, tool result) in each wire format.
const chatBody = {
  model: 'gpt-test',
  messages: [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: [{ type: 'text', text: 'Weather in Paris?' }] },
    {
      role: 'assistant',
      content: null,
      tool_calls: [
        { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
      ],
    },
    { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
  ],
  tools: [{ type: 'function', function: { name: 'get_weather', parameters: {} } }],
};

const responsesBody = {
  model: 'gpt-test',
  instructions: 'You are terse.',
  input: [
    { role: 'user', content: [{ type: 'input_text', text: 'Weather in Paris?' }] },
    { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
    { type: 'function_call_output', call_id: 'call_1', output: 'sunny' },
  ],
  tools: [{ type: 'function', name: 'get_weather', parameters: {} }],
};

const anthropicBody = {
  model: 'claude-test',
  max_tokens: 100,
  system: [{ type: 'text', text: 'You are terse.' }],
  messages: [
    { role: 'user', content: 'Weather in Paris?' },
    {
      role: 'assistant',
      content: [{ type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Paris' } }],
    },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_1', content: 'sunny' }] },
  ],
  tools: [{ name: 'get_weather', input_schema: { type: 'object' } }],
};

describe('normalizeRequest', () => {
  const views: Conversation[] = [
    normalizeRequest('openai.chat', chatBody),
    normalizeRequest('openai.responses', responsesBody),
    normalizeRequest('anthropic.messages', anthropicBody),
  ];

  it('maps the three wire formats onto the same conversation', () => {
    const strip = (c: Conversation) => ({
      system: c.system,
      messages: c.messages,
      tools: c.tools,
      lastUserText: c.lastUserText,
      turn: c.turn,
      trailing: c.trailingToolResults,
    });
    const [chat, responses, anthropic] = views.map(strip);
    assert.deepEqual(responses, chat);
    assert.deepEqual(anthropic, chat);
    assert.deepEqual(chat, {
      system: 'You are terse.',
      messages: [
        { role: 'system', text: 'You are terse.', toolCalls: [], toolResults: [] },
        { role: 'user', text: 'Weather in Paris?', toolCalls: [], toolResults: [] },
        {
          role: 'assistant',
          text: '',
          toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: { city: 'Paris' } }],
          toolResults: [],
        },
        {
          role: 'tool',
          text: 'sunny',
          toolCalls: [],
          toolResults: [{ toolCallId: 'call_1', name: 'get_weather', content: 'sunny', isError: false }],
        },
      ],
      tools: ['get_weather'],
      lastUserText: 'Weather in Paris?',
      turn: 1,
      trailing: [{ toolCallId: 'call_1', name: 'get_weather', content: 'sunny', isError: false }],
    });
  });

  it('counts the same input tokens whatever the API', () => {
    assert.deepEqual(
      views.map((c) => countInputTokens(c)),
      [9, 9, 9],
    );
  });

  it('reads a plain string Responses input and a plain string Anthropic content', () => {
    const r = normalizeRequest('openai.responses', { model: 'm', input: 'hello', stream: true });
    assert.equal(r.stream, true);
    assert.equal(r.lastUserText, 'hello');
    assert.equal(r.turn, 0);
    const a = normalizeRequest('anthropic.messages', {
      model: 'm',
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.equal(a.lastUserText, 'hi');
    assert.equal(a.system, '');
  });

  it('splits an Anthropic user message holding tool results and text', () => {
    const c = normalizeRequest('anthropic.messages', {
      model: 'm',
      messages: [
        { role: 'user', content: 'q' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'a', input: {} }] },
        {
          role: 'user',
          content: [
            {
              type: 'tool_result',
              tool_use_id: 't1',
              content: [{ type: 'text', text: 'boom' }],
              is_error: true,
            },
            { type: 'text', text: 'and now?' },
          ],
        },
      ],
    });
    assert.deepEqual(
      c.messages.map((m) => m.role),
      ['user', 'assistant', 'tool', 'user'],
    );
    assert.equal(c.messages[2]!.toolResults[0]!.isError, true);
    assert.equal(c.messages[2]!.toolResults[0]!.name, 'a');
    assert.equal(c.lastUserText, 'and now?');
    assert.deepEqual(c.trailingToolResults, []);
  });
});

describe('matching', () => {
  const c = normalizeRequest('openai.chat', chatBody);

  it('checks every matcher field', () => {
    assert.equal(mismatch(undefined, c), undefined);
    assert.equal(
      mismatch({ api: 'openai.chat', model: 'gpt-test', turn: 1, hasToolResult: 'get_weather' }, c),
      undefined,
    );
    assert.equal(mismatch({ lastUserText: /paris/i, systemText: 'terse', stream: false }, c), undefined);
    assert.match(mismatch({ api: 'anthropic.messages' }, c)!, /api is openai\.chat/);
    assert.match(mismatch({ model: /^claude/ }, c)!, /model is "gpt-test"/);
    assert.match(mismatch({ turn: 0 }, c)!, /turn is 1, wanted 0/);
    assert.match(mismatch({ hasToolResult: false }, c)!, /ends with tool results/);
    assert.match(mismatch({ hasToolResult: 'search' }, c)!, /result of tool "search"/);
    assert.match(mismatch({ lastUserText: 'London' }, c)!, /does not match "London"/);
    assert.match(mismatch({ predicate: () => false }, c)!, /predicate/);
  });

  it('picks the first rule with uses left and explains a miss', () => {
    const states = scriptedReplies([{ text: 'one' }, { text: 'two' }], { api: 'openai.chat' }).map(
      (rule) => ({
        rule,
        used: 0,
      }),
    );
    assert.equal(findRule(states, c)?.index, 0);
    states[0]!.used = 1;
    assert.equal(findRule(states, c)?.index, 1);
    states[1]!.used = 1;
    assert.equal(findRule(states, c), undefined);
    const text = explainNoMatch(
      7,
      [...states, { rule: { name: 'x', when: { turn: 3 }, reply: {} }, used: 0 }],
      c,
    );
    assert.match(text, /request #7 openai\.chat, model "gpt-test", turn 1/);
    assert.match(text, /rule 0 \(reply 1 of 2\): used up \(1 of 1 times\)/);
    assert.match(text, /rule 2 \(x\): turn is 1, wanted 3/);
  });
});

describe('chunking', () => {
  it('splits text into words that join back exactly', () => {
    for (const text of ['Hello there world', '  lead and trail  ', 'one', '', 'a\n\nb\tc ', 'émoji 🎉 ok'])
      assert.equal(splitText(text).join(''), text);
    assert.deepEqual(splitText('Hello there world'), ['Hello', ' there', ' world']);
  });

  it('splits arguments into fixed pieces without breaking surrogate pairs', () => {
    assert.deepEqual(splitFixed('abcdefg', 3), ['abc', 'def', 'g']);
    assert.equal(splitFixed('🎉🎉🎉', 2).join(''), '🎉🎉🎉');
    assert.deepEqual(splitFixed('🎉🎉🎉', 2), ['🎉🎉', '🎉']);
  });

  it('counts words', () => {
    assert.equal(countWords(''), 0);
    assert.equal(countWords('  a b\n c '), 3);
  });
});
