// The adapters' shared conformance suite (SPEC §5): every adapter, through the real client
// library, against the scripted provider over real HTTP, through the same cases: plain call,
// tool calls, streaming (text and tool calls), provider errors (HTTP 400/429/500), abort
// (before the response and mid-stream), and concurrent calls.
//
// Each case runs the scenario twice: once through the bare client (the baseline) and once
// through the adapter inside `recorder.agent(…)`; the agent must see exactly the same thing.
// The recorded run is then read back from the store (timeline + `readPayload`) and checked:
// kinds, names, statuses, labels, normalized payloads (validated with the schema), raw
// payloads, usage, stream offsets, error info with the HTTP status, call keys.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  type ModelRequest,
  type ModelResponse,
  validateRequestPayload,
  validateResponsePayload,
} from '@rewind/schema';
import { type ScriptedProvider, startScriptedProvider } from '@rewind/testkit';
import { isRecord } from '../shared/json.ts';
import { type Driver, describeError, drivers, type Session, type ToolFn } from './drivers.ts';
import { ConformanceRecorder, type RecordedRun, type RecordedStep } from './harness.ts';
import {
  ECHO_PROMPTS,
  ERROR_MESSAGE,
  ERROR_STATUSES,
  errorPrompt,
  PLAIN_PROMPT,
  PLAIN_REPLY,
  rules,
  SLOW_CALL_PROMPT,
  SLOW_STREAM_PROMPT,
  TOOL_OUTPUT,
  WEATHER_ANSWER,
  WEATHER_CALL_TEXT,
  WEATHER_PROMPT,
} from './script.ts';

let provider: ScriptedProvider;
let conformance: ConformanceRecorder;

before(async () => {
  provider = await startScriptedProvider({ rules });
  conformance = await ConformanceRecorder.open();
});

after(async () => {
  await conformance?.close();
  await provider?.close();
});

const weatherTool: ToolFn = async ({ city }) => {
  assert.equal(city, 'Paris');
  return TOOL_OUTPUT;
};

interface Compared<T> {
  baseline: T;
  observed: T;
  recorded: RecordedRun;
}

/**
 * Runs `scenario` through the bare client, then through the adapter as a recorded run, and
 * checks the agent saw the same thing both times (ids restart: the provider is reset).
 */
async function compare<T>(
  driver: Driver,
  label: string,
  scenario: (session: Session) => Promise<T>,
): Promise<Compared<T>> {
  const tool = driver.recordsTools ? weatherTool : conformance.recorder.tool('get_weather', weatherTool);
  provider.reset();
  const baseline = await scenario(driver.session(provider, false, tool));
  await provider.settled();
  provider.reset();
  const session = driver.session(provider, true, tool);
  const { result, recorded } = await conformance.record(`${driver.adapter}-${label}`, () =>
    scenario(session),
  );
  await provider.settled();
  assert.deepStrictEqual(result, baseline, 'the agent saw exactly what it sees without the adapter');
  return { baseline, observed: result, recorded };
}

const ARRIVAL_ORDER_ID = /^(msg_|chatcmpl-|resp_|req_|call_|toolu_)\d+$/;

function withoutArrivalOrderIds(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value), (_key, item: unknown) =>
    typeof item === 'string' && ARRIVAL_ORDER_ID.test(item) ? '<id>' : item,
  );
}

function request(step: RecordedStep): ModelRequest {
  return step.requestPayload as ModelRequest;
}

function response(step: RecordedStep): ModelResponse {
  return step.responsePayload as ModelResponse;
}

/** What every model step must satisfy, whatever the case. */
function checkModelStep(driver: Driver, step: RecordedStep, status: 'ok' | 'error'): void {
  assert.equal(step.kind, 'model');
  assert.equal(step.name, driver.stepName);
  assert.equal(step.status, status, `step ${step.seq} status (error: ${JSON.stringify(step.error)})`);
  assert.equal(step.label, 'recorded');
  assert.deepEqual(validateRequestPayload('model', step.requestPayload), [], 'normalized request is valid');
  const req = request(step);
  assert.equal(req.provider, driver.provider);
  assert.equal(req.model, driver.model);
  assert.notEqual(req.raw, undefined, 'the raw provider request is kept');
  if (status === 'ok') {
    assert.deepEqual(
      validateResponsePayload('model', step.responsePayload),
      [],
      'normalized response is valid',
    );
    assert.notEqual(response(step).raw, undefined, 'the raw provider response is kept');
    assert.equal(response(step).message.role, 'assistant');
  }
}

function lastUser(req: ModelRequest): unknown {
  return req.messages.findLast((message) => message.role === 'user')?.content;
}

function checkOffsets(step: RecordedStep, count: number): void {
  assert.notEqual(step.stream, null, 'a streamed step records its chunk timing');
  const offsets = step.stream!.offsetsMs;
  assert.equal(offsets.length, count, 'one offset per chunk');
  assert.equal(step.stream!.chunks, count);
  for (let i = 0; i < offsets.length; i++) {
    assert.ok(offsets[i]! >= 0, 'offsets are from the step start');
    if (i > 0) assert.ok(offsets[i]! >= offsets[i - 1]!, 'offsets never go back');
  }
}

function rawChunks(payload: unknown): unknown[] {
  assert.ok(isRecord(payload) && Array.isArray(payload.chunks), 'a streamed response keeps the raw chunks');
  return payload.chunks as unknown[];
}

for (const driver of drivers) {
  describe(`conformance: ${driver.id}`, () => {
    it('plain call', async () => {
      const { observed, recorded } = await compare(driver, 'plain', (session) => session.call(PLAIN_PROMPT));
      assert.equal(recorded.run.status, 'ok');
      assert.equal(recorded.steps.length, 1);
      const [step] = recorded.steps as [RecordedStep];
      checkModelStep(driver, step, 'ok');
      assert.equal(step.callKey, `model:${driver.stepName}#0`);
      assert.equal(step.parentStepId, null);
      assert.equal(lastUser(request(step)), PLAIN_PROMPT);
      assert.equal(request(step).stream, false);
      const res = response(step);
      assert.equal(res.model, driver.model);
      assert.equal(res.message.content, PLAIN_REPLY);
      assert.equal(res.message.toolCalls, undefined);
      assert.equal(res.finishReason, 'stop');
      assert.deepEqual(res.usage, { inputTokens: 1, outputTokens: 3, totalTokens: 4 });
      assert.deepEqual(step.usage, res.usage, 'the step event carries the usage');
      assert.equal(step.stream, null);
      if (driver.rebuild !== undefined) {
        assert.deepStrictEqual(
          driver.rebuild(res.raw),
          observed,
          'fromRecorded(raw) rebuilds what the client returned',
        );
      }
    });

    it('tool calls', async () => {
      const { recorded } = await compare(driver, 'tools', (session) => session.toolLoop(WEATHER_PROMPT));
      assert.equal(recorded.run.status, 'ok');
      assert.deepEqual(
        recorded.steps.map((step) => [step.kind, step.name, step.status]),
        [
          ['model', driver.stepName, 'ok'],
          ['tool', 'get_weather', 'ok'],
          ['model', driver.stepName, 'ok'],
        ],
      );
      const [first, toolStep, second] = recorded.steps as [RecordedStep, RecordedStep, RecordedStep];
      checkModelStep(driver, first, 'ok');
      checkModelStep(driver, second, 'ok');
      assert.deepEqual(
        request(first).tools?.map((tool) => tool.name),
        ['get_weather'],
      );
      assert.ok(isRecord(request(first).tools?.[0]?.parameters), 'the tool schema is kept');
      const call = response(first);
      assert.equal(call.finishReason, 'tool_calls');
      assert.equal(call.message.content, WEATHER_CALL_TEXT);
      assert.equal(call.message.toolCalls?.length, 1);
      const toolCall = call.message.toolCalls![0]!;
      assert.equal(toolCall.name, 'get_weather');
      assert.deepEqual(toolCall.arguments, { city: 'Paris' });
      assert.ok(toolCall.id.length > 0);

      assert.deepEqual(toolStep.requestPayload, { name: 'get_weather', arguments: { city: 'Paris' } });
      assert.deepEqual(toolStep.responsePayload, { output: TOOL_OUTPUT });
      assert.equal(toolStep.label, 'recorded');

      const history = request(second).messages;
      const assistant = history.find((message) => message.role === 'assistant');
      assert.equal(assistant?.toolCalls?.[0]?.id, toolCall.id, 'the history carries the tool call');
      assert.deepEqual(assistant?.toolCalls?.[0]?.arguments, { city: 'Paris' });
      const result = history.find((message) => message.role === 'tool');
      assert.equal(result?.toolCallId, toolCall.id);
      assert.equal(result?.name, 'get_weather');
      assert.equal(result?.content, TOOL_OUTPUT);
      assert.equal(response(second).message.content, WEATHER_ANSWER);
      assert.equal(response(second).finishReason, 'stop');
      assert.deepEqual(
        recorded.steps.map((step) => step.callKey),
        [`model:${driver.stepName}#0`, 'tool:get_weather#0', `model:${driver.stepName}#1`],
      );
    });

    it('streaming', async () => {
      const { observed, recorded } = await compare(driver, 'stream', (session) =>
        session.stream(PLAIN_PROMPT),
      );
      assert.equal(observed.error, undefined, JSON.stringify(observed.error));
      assert.equal(recorded.steps.length, 1);
      const [step] = recorded.steps as [RecordedStep];
      checkModelStep(driver, step, 'ok');
      if (driver.adapter !== 'langchain') assert.equal(request(step).stream, true);
      const res = response(step);
      assert.equal(res.message.content, PLAIN_REPLY);
      assert.equal(res.finishReason, 'stop');
      const outputTokens = driver.streamedOutputTokens ?? 3;
      assert.deepEqual(res.usage, { inputTokens: 1, outputTokens, totalTokens: 1 + outputTokens });
      assert.deepEqual(step.usage, res.usage);
      const chunks = rawChunks(res.raw);
      assert.ok(chunks.length >= 3, 'every chunk is kept');
      checkOffsets(step, chunks.length);
      assert.ok(
        step.stream!.offsetsMs.at(-1)! > step.stream!.offsetsMs[0]!,
        'the offsets show the chunks arriving over time',
      );
      if (driver.rawChunksAreObserved) {
        assert.deepStrictEqual(
          chunks,
          observed.chunks,
          'the recorded chunks are the ones the agent iterated',
        );
      }
      if (driver.rebuildChunks !== undefined) {
        assert.deepStrictEqual(
          await driver.rebuildChunks(res.raw),
          observed.chunks,
          'fromRecorded(raw) replays the stream',
        );
      }
    });

    it('streaming tool calls', async () => {
      const { observed, recorded } = await compare(driver, 'stream-tools', (session) =>
        session.stream(WEATHER_PROMPT, { tools: true }),
      );
      assert.equal(observed.error, undefined, JSON.stringify(observed.error));
      const [step] = recorded.steps as [RecordedStep];
      checkModelStep(driver, step, 'ok');
      const res = response(step);
      assert.equal(res.finishReason, 'tool_calls');
      assert.equal(res.message.content, WEATHER_CALL_TEXT);
      assert.equal(res.message.toolCalls?.length, 1);
      assert.equal(res.message.toolCalls![0]!.name, 'get_weather');
      assert.deepEqual(
        res.message.toolCalls![0]!.arguments,
        { city: 'Paris' },
        'streamed arguments are reassembled',
      );
      checkOffsets(step, rawChunks(res.raw).length);
    });

    for (const status of ERROR_STATUSES) {
      it(`provider error: HTTP ${status}`, async () => {
        const { observed, recorded } = await compare(driver, `error-${status}`, async (session) => {
          try {
            return { ok: await session.call(errorPrompt(status)) };
          } catch (error) {
            return { error: describeError(error) };
          }
        });
        assert.ok('error' in observed, 'the agent saw the error');
        assert.equal(recorded.run.status, 'ok', 'the agent caught it');
        assert.equal(recorded.steps.length, 1);
        const [step] = recorded.steps as [RecordedStep];
        checkModelStep(driver, step, 'error');
        assert.equal(lastUser(request(step)), errorPrompt(status));
        assert.ok(step.error !== null);
        assert.equal(step.error.status, status, 'the HTTP status is kept');
        assert.ok(
          step.error.type.length > 0 && step.error.type !== 'Error',
          `a specific error type (${step.error.type})`,
        );
        assert.match(step.error.message, new RegExp(ERROR_MESSAGE));
        assert.match(
          JSON.stringify(step.responsePayload),
          new RegExp(ERROR_MESSAGE),
          'the error body is kept',
        );
      });
    }

    it('abort before the response', async () => {
      const { observed, recorded } = await compare(driver, 'abort-call', async (session) => {
        const controller = new AbortController();
        const timer = setTimeout(() => controller.abort(), 50);
        try {
          return { ok: await session.call(SLOW_CALL_PROMPT, controller.signal) };
        } catch (error) {
          return { error: describeError(error) };
        } finally {
          clearTimeout(timer);
        }
      });
      assert.ok('error' in observed, 'the agent saw the abort');
      const [step] = recorded.steps as [RecordedStep];
      checkModelStep(driver, step, 'error');
      assert.match(step.error?.type ?? '', /Abort/i);
    });

    it('abort mid-stream', async () => {
      const { observed, recorded } = await compare(driver, 'abort-stream', (session) =>
        session.stream(SLOW_STREAM_PROMPT, { abortAfter: 3 }),
      );
      assert.ok(observed.chunks.length >= 3);
      const [step] = recorded.steps as [RecordedStep];
      checkModelStep(driver, step, 'error');
      assert.match(step.error?.type ?? '', /Abort/i);
      const chunks = rawChunks(step.responsePayload);
      assert.ok(chunks.length >= 1, 'the chunks received before the abort are kept');
      if (driver.rawChunksAreObserved)
        assert.deepStrictEqual(chunks, observed.chunks.slice(0, chunks.length));
    });

    it('concurrent calls', async () => {
      // The scripted provider numbers its ids (msg_2, chatcmpl-3…) in the order requests arrive,
      // which concurrent calls do not fix, with or without the adapter: compare without them.
      const scenario = async (session: Session) =>
        withoutArrivalOrderIds(await Promise.all(ECHO_PROMPTS.map((prompt) => session.call(prompt))));
      const { recorded } = await compare(driver, 'concurrent', scenario);
      provider.reset();
      const session = driver.session(provider, true, weatherTool);
      const again = await conformance.record(`${driver.adapter}-concurrent-again`, () => scenario(session));
      const keyed = (run: RecordedRun) =>
        new Map(
          run.steps.map((step) => [
            step.callKey,
            { prompt: lastUser(request(step)), reply: response(step).message.content },
          ]),
        );
      for (const run of [recorded, again.recorded]) {
        assert.equal(run.steps.length, ECHO_PROMPTS.length);
        for (const step of run.steps) checkModelStep(driver, step, 'ok');
        const byKey = keyed(run);
        assert.equal(byKey.size, ECHO_PROMPTS.length, 'call keys are distinct');
        for (const { prompt, reply } of byKey.values()) {
          assert.equal(
            reply,
            `echo:${String(prompt).slice('echo '.length)}`,
            'each response is recorded on its own request',
          );
        }
      }
      assert.deepStrictEqual(keyed(again.recorded), keyed(recorded), 'call keys are stable from run to run');
    });
  });
}
