import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RunRecord, StepRecord } from '@rewind/store';
import { createStyle, formatDuration, truncate } from './format.ts';
import { renderRunsTable, toRunListJson } from './render-runs.ts';
import { renderShow, stepPreview, timelineTree } from './render-show.ts';
import type { RunView, StepView } from './run-view.ts';

const HASH = `sha256:${'0'.repeat(64)}` as const;
const plain = createStyle(false);
const ANSI = /\u001b\[/;

function step(seq: number, overrides: Partial<StepRecord> = {}): StepRecord {
  return {
    runId: 'run-1',
    stepId: `s${seq}`,
    seq,
    parentStepId: null,
    kind: 'tool',
    name: `tool${seq}`,
    callKey: `tool:tool${seq}#0`,
    status: 'ok',
    label: 'recorded',
    request: { hash: HASH, size: 2 },
    requestHash: HASH,
    response: { hash: HASH, size: 2 },
    responseHash: HASH,
    error: null,
    usage: null,
    startedAt: `2026-11-25T10:00:0${seq}.000Z`,
    endedAt: `2026-11-25T10:00:0${seq}.250Z`,
    attributes: {},
    stream: null,
    ...overrides,
  };
}

function run(overrides: Partial<RunRecord> = {}): RunRecord {
  return {
    id: 'run-1',
    agent: 'support-bot',
    status: 'ok',
    startedAt: '2026-11-25T10:00:00.000Z',
    endedAt: '2026-11-25T10:00:09.500Z',
    stepCount: 0,
    errorCount: 0,
    input: { hash: HASH, size: 2 },
    output: { hash: HASH, size: 2 },
    error: null,
    tape: null,
    attributes: {},
    sdk: null,
    labels: { recorded: 3 },
    ...overrides,
  };
}

function view(steps: StepView[], runOverrides: Partial<RunRecord> = {}): RunView {
  return {
    run: run({ stepCount: steps.length, ...runOverrides }),
    input: { question: 'where is my order?' },
    output: { answer: 'on its way' },
    steps,
    missing: [],
  };
}

const toolView = (
  seq: number,
  overrides: Partial<StepRecord> = {},
  request: unknown = null,
  response: unknown = null,
) => ({
  record: step(seq, overrides),
  request: request ?? { name: `tool${seq}`, arguments: { n: seq } },
  response: response ?? { output: `result ${seq}` },
});

describe('timelineTree', () => {
  it('nests children under their parent in seq order, with tree glyphs', () => {
    const steps = [
      toolView(1, { kind: 'chain', name: 'agent' }),
      toolView(2, { parentStepId: 's1' }),
      toolView(4, { parentStepId: 's2' }),
      toolView(3, { parentStepId: 's1' }),
      toolView(5),
    ];
    const { lines, orphans } = timelineTree(steps);
    assert.equal(orphans, 0);
    assert.deepEqual(
      lines.map((line) => `${line.prefix}${line.step.record.seq}`),
      ['├─ 1', '│  ├─ 2', '│  │  └─ 4', '│  └─ 3', '└─ 5'],
    );
  });

  it('shows a step whose parent has not arrived at the top level, and counts it', () => {
    const { lines, orphans } = timelineTree([toolView(1), toolView(2, { parentStepId: 'never-arrived' })]);
    assert.equal(orphans, 1);
    assert.deepEqual(
      lines.map((line) => line.prefix),
      ['├─ ', '└─ '],
    );
  });

  it('survives a parent cycle in corrupt data, showing each step once', () => {
    const { lines } = timelineTree([
      toolView(1, { parentStepId: 's2' }),
      toolView(2, { parentStepId: 's1' }),
    ]);
    assert.equal(lines.length, 2);
  });
});

describe('stepPreview', () => {
  it('model: the response text, newlines collapsed', () => {
    const preview = stepPreview({
      record: step(1, { kind: 'model', name: 'openai.chat' }),
      request: { messages: [{ role: 'user', content: 'hi' }] },
      response: { message: { role: 'assistant', content: 'Hello\n\nthere   friend' } },
    });
    assert.equal(preview, '→ "Hello there friend"');
  });

  it('model: the tool calls it asked for', () => {
    const preview = stepPreview({
      record: step(1, { kind: 'model' }),
      request: { messages: [] },
      response: {
        message: {
          role: 'assistant',
          content: null,
          toolCalls: [{ id: 'c', name: 'f', arguments: { a: 1 } }],
        },
      },
    });
    assert.equal(preview, '→ f({"a":1})');
  });

  it('model still running: the last user message', () => {
    const preview = stepPreview({
      record: step(1, { kind: 'model', status: 'running', response: null, endedAt: null, label: null }),
      request: {
        messages: [
          { role: 'user', content: 'first' },
          { role: 'assistant', content: 'ok' },
          { role: 'user', content: [{ type: 'text', text: 'second question' }] },
        ],
      },
      response: null,
    });
    assert.equal(preview, 'user: "second question"');
  });

  it('model error: the error first', () => {
    const preview = stepPreview({
      record: step(1, {
        kind: 'model',
        status: 'error',
        error: { type: 'RateLimitError', message: 'slow down', status: 429 },
      }),
      request: { messages: [{ role: 'user', content: 'q' }] },
      response: null,
    });
    assert.equal(preview, '✗ RateLimitError 429: slow down (user: "q")');
  });

  it('tool: name(args) → output, or the error', () => {
    assert.equal(stepPreview(toolView(1)), 'tool1({"n":1}) → "result 1"');
    const failed = toolView(2, {
      status: 'error',
      error: { type: 'Boom', message: 'it broke' },
      response: null,
    });
    assert.equal(stepPreview({ ...failed, response: null }), 'tool2({"n":2}) ✗ Boom: it broke');
  });

  it('retriever: query → N docs', () => {
    const preview = stepPreview({
      record: step(1, { kind: 'retriever' }),
      request: { query: 'refund policy' },
      response: {
        documents: [
          { id: 'a', content: 'x' },
          { id: 'b', content: 'y' },
        ],
      },
    });
    assert.equal(preview, '"refund policy" → 2 docs');
  });

  it('a payload that could not be read says so', () => {
    assert.equal(stepPreview({ record: step(1), request: null, response: null }), '(payload missing)');
    assert.equal(stepPreview({ ...toolView(1), response: null }), 'tool1({"n":1}) → (payload missing)');
  });
});

describe('renderShow', () => {
  it('prints a header and one aligned line per step, without colour when asked', () => {
    const lines = renderShow(
      view(
        [
          toolView(1, { kind: 'retriever', name: 'kb' }, { query: 'q' }, { documents: [] }),
          toolView(2, { parentStepId: 's1', status: 'error', error: { type: 'E', message: 'm' } }),
        ],
        { errorCount: 1 },
      ),
      { style: plain },
    );
    const text = lines.join('\n');
    assert.doesNotMatch(text, ANSI);
    assert.match(lines[0]!, /^support-bot {2}ok {2}run run-1$/);
    assert.match(
      lines[1]!,
      /started 2026-11-25 10:00:00Z · duration 9\.50s · 2 steps · 1 error · labels: recorded 3/,
    );
    assert.match(text, /input {3}\{"question":"where is my order\?"\}/);
    const stepLines = lines.filter((line) => /^\s+\d+ {2}/.test(line));
    assert.equal(stepLines.length, 2);
    assert.match(stepLines[0]!, /^ {2}1 {2}└─ retriever kb\s+ok\s+recorded\s+250ms {2}"q" → 0 docs$/);
    assert.match(
      stepLines[1]!,
      /^ {2}2 {5}└─ tool tool2\s+error\s+recorded\s+250ms {2}tool2\(\{"n":2\}\) ✗ E: m$/,
    );
    // The status column starts at the same place on every line.
    assert.equal(stepLines[0]!.indexOf('ok'), stepLines[1]!.indexOf('error'));
  });

  it('marks an incomplete run and running steps', () => {
    const lines = renderShow(
      view([toolView(1, { status: 'running', endedAt: null, label: null, response: null })], {
        status: 'incomplete',
        endedAt: null,
        output: null,
      }),
      { style: plain },
    );
    const text = lines.join('\n');
    assert.match(text, /incomplete/);
    assert.match(text, /duration unfinished/);
    assert.match(text, /running\s+-\s+…/);
  });

  it('cuts previews to 100 characters off a terminal, and whole lines to the terminal width on one', () => {
    const long = toolView(1, {}, { name: 'tool1', arguments: { text: 'x'.repeat(500) } });
    const offTerminal = renderShow(view([long]), { style: plain }).at(-1)!;
    assert.ok(offTerminal.endsWith('…'));
    assert.ok(offTerminal.length < 200);
    const onTerminal = renderShow(view([long]), { style: plain, columns: 80 });
    for (const line of onTerminal) assert.ok(Array.from(line).length <= 80, `${line.length}: ${line}`);
  });

  it('colours when asked', () => {
    const text = renderShow(view([toolView(1)]), { style: createStyle(true) }).join('\n');
    assert.match(text, ANSI);
  });
});

describe('renderRunsTable', () => {
  it('prints one row per run with duration and steps', () => {
    const summary = run({ stepCount: 9, errorCount: 1 });
    const lines = renderRunsTable(
      [summary, run({ id: 'run-2', status: 'incomplete', endedAt: null })],
      plain,
    );
    assert.match(lines[0]!, /^id\s+agent\s+status\s+started\s+duration\s+steps$/);
    assert.match(lines[1]!, /^run-1\s+support-bot\s+ok\s+2026-11-25 10:00:00Z\s+9\.50s\s+9 \(1 err\)$/);
    assert.match(lines[2]!, /^run-2\s+support-bot\s+incomplete\s+2026-11-25 10:00:00Z\s+…\s+0$/);
  });

  it('JSON items keep exactly the public keys', () => {
    const item = toRunListJson(run({ replayOf: { runId: 'run-0', mode: 'exact' } }));
    assert.deepEqual(Object.keys(item), [
      'id',
      'agent',
      'status',
      'startedAt',
      'endedAt',
      'stepCount',
      'replayOf',
    ]);
  });
});

describe('format', () => {
  it('formats durations', () => {
    assert.deepEqual([5, 999, 1000, 4230, 12_345, 125_000, 3_720_000].map(formatDuration), [
      '5ms',
      '999ms',
      '1.00s',
      '4.23s',
      '12.3s',
      '2m05s',
      '1h02m',
    ]);
  });

  it('truncates with an ellipsis', () => {
    assert.equal(truncate('abcdef', 4), 'abc…');
    assert.equal(truncate('abc', 4), 'abc');
  });
});
