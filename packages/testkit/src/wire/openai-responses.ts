// OpenAI Responses wire format: POST /v1/responses, `response` objects, and named SSE events
// (`response.created` … `response.completed`, each with a `sequence_number`). Unlike chat
// completions, the stream is not ended by `data: [DONE]`.
import type { Answer, RenderContext, SseEvent } from './answer.ts';
import { splitFixed, splitText } from './answer.ts';

type Obj = Record<string, unknown>;

interface Ids {
  response: string;
  message: string | undefined;
  calls: { item: string; callId: string }[];
}

function allocate(answer: Answer, ctx: RenderContext): Ids {
  return {
    response: ctx.ids.next('resp_'),
    message: answer.hasText ? ctx.ids.next('msg_') : undefined,
    calls: answer.toolCalls.map((call) => ({
      item: ctx.ids.next('fc_'),
      callId: call.id ?? ctx.ids.next('call_'),
    })),
  };
}

function usage(answer: Answer) {
  return {
    input_tokens: answer.inputTokens,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: answer.outputTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: answer.inputTokens + answer.outputTokens,
  };
}

function outputText(text: string) {
  return { type: 'output_text', annotations: [], logprobs: [], text };
}

function messageItem(id: string, text: string, status: string) {
  return {
    id,
    type: 'message',
    status,
    content: status === 'in_progress' ? [] : [outputText(text)],
    role: 'assistant',
  };
}

function callItem(ids: { item: string; callId: string }, name: string, args: string, status: string) {
  return { id: ids.item, type: 'function_call', status, arguments: args, call_id: ids.callId, name };
}

function finalOutput(answer: Answer, ids: Ids, status: string): Obj[] {
  const out: Obj[] = [];
  if (ids.message !== undefined) out.push(messageItem(ids.message, answer.text, status));
  for (const [i, call] of answer.toolCalls.entries())
    out.push(callItem(ids.calls[i]!, call.name, call.argumentsJson, status));
  return out;
}

function responseObject(answer: Answer, ids: Ids, ctx: RenderContext, phase: 'in_progress' | 'done'): Obj {
  const body = ctx.body;
  const incomplete = answer.finish === 'length';
  const done = phase === 'done';
  return {
    id: ids.response,
    object: 'response',
    created_at: ctx.created,
    status: done ? (incomplete ? 'incomplete' : 'completed') : 'in_progress',
    background: false,
    completed_at: done && !incomplete ? ctx.created : null,
    error: null,
    incomplete_details: done && incomplete ? { reason: 'max_output_tokens' } : null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    max_tool_calls: body.max_tool_calls ?? null,
    model: answer.model,
    output: done ? finalOutput(answer, ids, incomplete ? 'incomplete' : 'completed') : [],
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: body.previous_response_id ?? null,
    prompt_cache_key: body.prompt_cache_key ?? null,
    reasoning: { effort: null, summary: null },
    safety_identifier: body.safety_identifier ?? null,
    service_tier: 'default',
    store: body.store ?? true,
    temperature: body.temperature ?? 1,
    text: body.text ?? { format: { type: 'text' }, verbosity: 'medium' },
    tool_choice: body.tool_choice ?? 'auto',
    tools: Array.isArray(body.tools) ? body.tools : [],
    top_logprobs: body.top_logprobs ?? 0,
    top_p: body.top_p ?? 1,
    truncation: body.truncation ?? 'disabled',
    usage: done ? usage(answer) : null,
    user: body.user ?? null,
    metadata: body.metadata ?? {},
  };
}

export function response(answer: Answer, ctx: RenderContext): unknown {
  return responseObject(answer, allocate(answer, ctx), ctx, 'done');
}

export function responseEvents(answer: Answer, ctx: RenderContext): SseEvent[] {
  const ids = allocate(answer, ctx);
  const events: SseEvent[] = [];
  const emit = (type: string, fields: Obj) =>
    events.push({ event: type, data: { type, sequence_number: events.length, ...fields } });
  const itemStatus = answer.finish === 'length' ? 'incomplete' : 'completed';

  emit('response.created', { response: responseObject(answer, ids, ctx, 'in_progress') });
  emit('response.in_progress', { response: responseObject(answer, ids, ctx, 'in_progress') });
  let outputIndex = 0;
  if (ids.message !== undefined) {
    const itemId = ids.message;
    const at = { item_id: itemId, output_index: outputIndex };
    emit('response.output_item.added', {
      output_index: outputIndex,
      item: messageItem(itemId, '', 'in_progress'),
    });
    emit('response.content_part.added', { ...at, content_index: 0, part: outputText('') });
    for (const piece of splitText(answer.text))
      emit('response.output_text.delta', { ...at, content_index: 0, delta: piece, logprobs: [] });
    emit('response.output_text.done', { ...at, content_index: 0, text: answer.text, logprobs: [] });
    emit('response.content_part.done', { ...at, content_index: 0, part: outputText(answer.text) });
    emit('response.output_item.done', {
      output_index: outputIndex,
      item: messageItem(itemId, answer.text, itemStatus),
    });
    outputIndex++;
  }
  for (const [i, call] of answer.toolCalls.entries()) {
    const callIds = ids.calls[i]!;
    const at = { item_id: callIds.item, output_index: outputIndex };
    emit('response.output_item.added', {
      output_index: outputIndex,
      item: callItem(callIds, call.name, '', 'in_progress'),
    });
    for (const piece of splitFixed(call.argumentsJson, ctx.argumentChunkSize))
      emit('response.function_call_arguments.delta', { ...at, delta: piece });
    emit('response.function_call_arguments.done', { ...at, arguments: call.argumentsJson });
    emit('response.output_item.done', {
      output_index: outputIndex,
      item: callItem(callIds, call.name, call.argumentsJson, itemStatus),
    });
    outputIndex++;
  }
  const last = answer.finish === 'length' ? 'response.incomplete' : 'response.completed';
  emit(last, { response: responseObject(answer, ids, ctx, 'done') });
  return events;
}

/** The in-stream `error` event (the official client raises an APIError for it). */
export function responsesStreamError(message: string, sequenceNumber: number): SseEvent {
  return {
    event: 'error',
    data: { type: 'error', code: 'server_error', message, param: null, sequence_number: sequenceNumber },
  };
}
