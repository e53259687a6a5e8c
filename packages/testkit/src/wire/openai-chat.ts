// OpenAI chat completions wire format: POST /v1/chat/completions, `chat.completion` objects
// and `chat.completion.chunk` SSE streams (data-only events, ended by `data: [DONE]`).
import type { Answer, RenderContext, SseEvent } from './answer.ts';
import { splitFixed, splitText } from './answer.ts';

const FINGERPRINT = 'fp_scripted';

function finishReason(answer: Answer): string {
  if (answer.finish === 'length') return 'length';
  return answer.toolCalls.length > 0 ? 'tool_calls' : 'stop';
}

function usage(answer: Answer) {
  return {
    prompt_tokens: answer.inputTokens,
    completion_tokens: answer.outputTokens,
    total_tokens: answer.inputTokens + answer.outputTokens,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

export function chatCompletion(answer: Answer, ctx: RenderContext): unknown {
  const id = ctx.ids.next('chatcmpl-');
  const toolCalls = answer.toolCalls.map((call) => ({
    id: call.id ?? ctx.ids.next('call_'),
    type: 'function',
    function: { name: call.name, arguments: call.argumentsJson },
  }));
  return {
    id,
    object: 'chat.completion',
    created: ctx.created,
    model: answer.model,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: answer.hasText ? answer.text : null,
          refusal: null,
          annotations: [],
          ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
        },
        logprobs: null,
        finish_reason: finishReason(answer),
      },
    ],
    usage: usage(answer),
    service_tier: 'default',
    system_fingerprint: FINGERPRINT,
  };
}

export function chatCompletionEvents(answer: Answer, ctx: RenderContext): SseEvent[] {
  const id = ctx.ids.next('chatcmpl-');
  const streamOptions = ctx.body.stream_options as { include_usage?: unknown } | undefined;
  const includeUsage = streamOptions?.include_usage === true;
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}): SseEvent => ({
    data: {
      id,
      object: 'chat.completion.chunk',
      created: ctx.created,
      model: answer.model,
      service_tier: 'default',
      system_fingerprint: FINGERPRINT,
      choices,
      ...(includeUsage ? { usage: null } : {}),
      ...extra,
    },
  });
  const delta = (d: Record<string, unknown>, finish: string | null = null) => ({
    index: 0,
    delta: d,
    logprobs: null,
    finish_reason: finish,
  });

  const events: SseEvent[] = [];
  events.push(chunk([delta({ role: 'assistant', content: answer.hasText ? '' : null, refusal: null })]));
  if (answer.hasText)
    for (const piece of splitText(answer.text)) events.push(chunk([delta({ content: piece })]));
  for (const [index, call] of answer.toolCalls.entries()) {
    events.push(
      chunk([
        delta({
          tool_calls: [
            {
              index,
              id: call.id ?? ctx.ids.next('call_'),
              type: 'function',
              function: { name: call.name, arguments: '' },
            },
          ],
        }),
      ]),
    );
    for (const piece of splitFixed(call.argumentsJson, ctx.argumentChunkSize))
      events.push(chunk([delta({ tool_calls: [{ index, function: { arguments: piece } }] })]));
  }
  events.push(chunk([delta({}, finishReason(answer))]));
  if (includeUsage) events.push(chunk([], { usage: usage(answer) }));
  events.push({ data: '[DONE]' });
  return events;
}

/** The in-stream error event (the official client raises an APIError for `data: {"error": …}`). */
export function chatStreamError(message: string): SseEvent {
  return { data: { error: { message, type: 'server_error', param: null, code: null } } };
}
