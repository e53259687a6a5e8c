// Pure normalizers for `@anthropic-ai/sdk` messages: request, response (whole or streamed), and
// the reverse direction for replay.
import type { ContentPart, Message, ModelRequest, ModelResponse, ToolDefinition } from '@rewind/schema';
import { asArray, isRecord, type Json, type JsonObject, records, toJsonSafe } from './shared/json.ts';
import {
  collapseParts,
  contentPart,
  mergeText,
  normalizeContent,
  normalizeFinishReason,
  normalizeParams,
  normalizeRole,
  resolveToolNames,
  toolCall,
  toolDefinition,
  usage,
} from './shared/normalize.ts';

type Rec = Record<string, unknown>;

const PARAMS = {
  typed: {
    temperature: 'temperature',
    top_p: 'topP',
    top_k: 'topK',
    max_tokens: 'maxTokens',
    stop_sequences: 'stop',
  },
  skip: new Set(['model', 'messages', 'system', 'tools', 'stream']),
} as const;

/** A content block as a normalized part: text blocks lose request-only hints like `cache_control`. */
function blockPart(block: unknown): ContentPart {
  if (isRecord(block) && block.type === 'text' && typeof block.text === 'string') {
    return { type: 'text', text: block.text };
  }
  return contentPart(block);
}

function messagesOf(raw: unknown): Message[] {
  if (!isRecord(raw)) return [{ role: 'user', content: normalizeContent(raw, blockPart) }];
  const role = normalizeRole(raw.role);
  if (!Array.isArray(raw.content)) return [{ role, content: normalizeContent(raw.content, blockPart) }];
  const out: Message[] = [];
  const parts: ContentPart[] = [];
  const calls: NonNullable<Message['toolCalls']> = [];
  for (const block of raw.content) {
    if (isRecord(block) && block.type === 'tool_result') {
      const result: Message = { role: 'tool', content: normalizeContent(block.content ?? '', blockPart) };
      if (typeof block.tool_use_id === 'string') result.toolCallId = block.tool_use_id;
      out.push(result);
    } else if (isRecord(block) && block.type === 'tool_use' && role === 'assistant') {
      calls.push(toolCall(block.id, block.name, toJsonSafe(block.input ?? {})));
    } else {
      parts.push(blockPart(block));
    }
  }
  // Tool results come first, as their own `tool` messages; text beside them follows.
  if (parts.length > 0 || calls.length > 0 || out.length === 0) {
    const message: Message = { role, content: collapseParts(mergeText(parts)) };
    if (calls.length > 0) message.toolCalls = calls;
    out.push(message);
  }
  return out;
}

function tools(body: Rec): ToolDefinition[] | undefined {
  const list = asArray(body.tools)
    .filter(isRecord)
    .map((tool) => toolDefinition(tool.name ?? tool.type, tool.description, tool.input_schema));
  return list.length > 0 ? list : undefined;
}

/** `messages.create(body)` / `messages.stream(body)` → the normalized model request. */
export function normalizeMessagesRequest(body: unknown): ModelRequest {
  const rec = isRecord(body) ? body : {};
  const messages: Message[] = [];
  if (typeof rec.system === 'string') messages.push({ role: 'system', content: rec.system });
  else if (Array.isArray(rec.system)) {
    messages.push({ role: 'system', content: collapseParts(mergeText(rec.system.map(blockPart))) });
  }
  for (const message of asArray(rec.messages)) messages.push(...messagesOf(message));
  const request: ModelRequest = {
    provider: 'anthropic',
    model: typeof rec.model === 'string' ? rec.model : '',
    messages: resolveToolNames(messages),
    params: normalizeParams(rec, PARAMS),
    stream: rec.stream === true,
    raw: toJsonSafe(body),
  };
  const list = tools(rec);
  if (list !== undefined) request.tools = list;
  return request;
}

/**
 * Anthropic's `input_tokens` leaves out cached tokens; the normalized `inputTokens` counts every
 * input token (like OpenAI's `prompt_tokens`): input + cache writes + cache reads.
 */
function anthropicUsage(u: Rec) {
  const parts = [u.input_tokens, u.cache_creation_input_tokens, u.cache_read_input_tokens];
  const input = parts.every((n) => n === undefined || n === null)
    ? undefined
    : parts.reduce<number>((sum, n) => sum + (typeof n === 'number' ? n : 0), 0);
  return usage(input, u.output_tokens);
}

/** A `message` object → the normalized model response. */
export function normalizeMessage(message: unknown, raw: Json = toJsonSafe(message)): ModelResponse {
  const rec = isRecord(message) ? message : {};
  const [normalized] = messagesOf({ role: 'assistant', content: asArray(rec.content) });
  return {
    model: typeof rec.model === 'string' ? rec.model : '',
    message: normalized ?? { role: 'assistant', content: null },
    finishReason: normalizeFinishReason(rec.stop_reason),
    usage: anthropicUsage(isRecord(rec.usage) ? rec.usage : {}),
    raw,
  };
}

/**
 * Streamed events → the `message` they add up to (what `MessageStream.finalMessage()` gives),
 * as far as they go.
 */
export function accumulateMessage(events: readonly Json[]): Rec {
  let message: Rec = { type: 'message', role: 'assistant', content: [], stop_reason: null };
  const content: Rec[] = [];
  const partialJson = new Map<number, string>();
  for (const event of records(events)) {
    switch (event.type) {
      case 'message_start':
        if (isRecord(event.message)) message = structuredClone(event.message);
        break;
      case 'content_block_start':
        if (typeof event.index === 'number' && isRecord(event.content_block)) {
          content[event.index] = structuredClone(event.content_block);
        }
        break;
      case 'content_block_delta': {
        const index = typeof event.index === 'number' ? event.index : -1;
        const block = content[index];
        const delta = isRecord(event.delta) ? event.delta : {};
        if (block === undefined) break;
        if (delta.type === 'text_delta') block.text = String(block.text ?? '') + String(delta.text ?? '');
        else if (delta.type === 'input_json_delta') {
          partialJson.set(index, (partialJson.get(index) ?? '') + String(delta.partial_json ?? ''));
        } else if (delta.type === 'thinking_delta') {
          block.thinking = String(block.thinking ?? '') + String(delta.thinking ?? '');
        } else if (delta.type === 'signature_delta') block.signature = delta.signature;
        else if (delta.type === 'citations_delta') {
          block.citations = [...asArray(block.citations), delta.citation];
        }
        break;
      }
      case 'message_delta': {
        if (isRecord(event.delta)) Object.assign(message, event.delta);
        if (isRecord(event.usage)) {
          const u = isRecord(message.usage) ? message.usage : {};
          for (const [key, value] of Object.entries(event.usage)) if (value !== null) u[key] = value;
          message.usage = u;
        }
        break;
      }
    }
  }
  for (const [index, json] of partialJson) {
    const block = content[index];
    if (block === undefined) continue;
    try {
      block.input = json.trim() === '' ? {} : JSON.parse(json);
    } catch {
      block.input = json;
    }
  }
  message.content = content.filter((block) => block !== undefined);
  return message;
}

/** Streamed events → the normalized response; `raw` is `{chunks}`. */
export function normalizeMessagesStream(events: readonly Json[], extra: JsonObject = {}): ModelResponse {
  const raw = { ...extra, chunks: [...events] };
  const message = accumulateMessage(events);
  const response = normalizeMessage(message, raw);
  if (
    !events.some((event) => isRecord(event) && event.type === 'message_stop') &&
    message.stop_reason === null
  ) {
    response.finishReason = 'incomplete';
  }
  return response;
}

/** A recorded `message` → what `messages.create()` resolves to. */
export function messageFromRecorded(raw: unknown): unknown {
  return structuredClone(raw);
}

/** Recorded events → the events the client's stream yields. */
export function messageEventsFromRecorded(raw: unknown): unknown[] {
  return isRecord(raw) ? asArray(raw.chunks).map((event) => structuredClone(event)) : [];
}

/** The body an Anthropic `APIError` carries (`{type: 'error', error, request_id}`), if any. */
export function anthropicErrorBody(error: unknown): Json | undefined {
  if (!isRecord(error) || error.error === undefined || error.error === null) return undefined;
  return toJsonSafe(error.error);
}
