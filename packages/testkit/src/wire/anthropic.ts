// Anthropic messages wire format: POST /v1/messages, `message` objects, and named SSE events
// (`message_start`, `ping`, `content_block_start|delta|stop`, `message_delta`, `message_stop`).
import type { Answer, RenderContext, SseEvent } from './answer.ts';
import { splitFixed, splitText } from './answer.ts';

type Obj = Record<string, unknown>;

function stopReason(answer: Answer): string {
  if (answer.finish === 'length') return 'max_tokens';
  return answer.toolCalls.length > 0 ? 'tool_use' : 'end_turn';
}

function usage(answer: Answer, outputTokens: number) {
  return {
    input_tokens: answer.inputTokens,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
    cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 },
    output_tokens: outputTokens,
    service_tier: 'standard',
  };
}

function toolIds(answer: Answer, ctx: RenderContext): string[] {
  return answer.toolCalls.map((call) => call.id ?? ctx.ids.next('toolu_'));
}

export function message(answer: Answer, ctx: RenderContext): unknown {
  const id = ctx.ids.next('msg_');
  const ids = toolIds(answer, ctx);
  const content: Obj[] = [];
  if (answer.hasText && answer.text !== '') content.push({ type: 'text', text: answer.text });
  for (const [i, call] of answer.toolCalls.entries())
    content.push({ type: 'tool_use', id: ids[i], name: call.name, input: call.input });
  return {
    id,
    type: 'message',
    role: 'assistant',
    model: answer.model,
    content,
    stop_reason: stopReason(answer),
    stop_sequence: null,
    usage: usage(answer, answer.outputTokens),
  };
}

export function messageEvents(answer: Answer, ctx: RenderContext): SseEvent[] {
  const id = ctx.ids.next('msg_');
  const ids = toolIds(answer, ctx);
  const events: SseEvent[] = [];
  const emit = (type: string, fields: Obj) => events.push({ event: type, data: { type, ...fields } });

  emit('message_start', {
    message: {
      id,
      type: 'message',
      role: 'assistant',
      model: answer.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      // Like the real API, message_start reports a provisional output count; message_delta has the total.
      usage: usage(answer, Math.min(1, answer.outputTokens)),
    },
  });
  emit('ping', {});
  let index = 0;
  if (answer.hasText && answer.text !== '') {
    emit('content_block_start', { index, content_block: { type: 'text', text: '' } });
    for (const piece of splitText(answer.text))
      emit('content_block_delta', { index, delta: { type: 'text_delta', text: piece } });
    emit('content_block_stop', { index });
    index++;
  }
  for (const [i, call] of answer.toolCalls.entries()) {
    emit('content_block_start', {
      index,
      content_block: { type: 'tool_use', id: ids[i], name: call.name, input: {} },
    });
    emit('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: '' } });
    for (const piece of splitFixed(JSON.stringify(call.input), ctx.argumentChunkSize))
      emit('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: piece } });
    emit('content_block_stop', { index });
    index++;
  }
  emit('message_delta', {
    delta: { stop_reason: stopReason(answer), stop_sequence: null },
    usage: {
      input_tokens: answer.inputTokens,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
      output_tokens: answer.outputTokens,
    },
  });
  emit('message_stop', {});
  return events;
}

/** The in-stream `error` event (the official client raises an APIError for it). */
export function anthropicStreamError(message: string): SseEvent {
  return { event: 'error', data: { type: 'error', error: { type: 'overloaded_error', message } } };
}
