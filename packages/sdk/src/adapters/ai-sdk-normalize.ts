// Pure normalizers for the Vercel AI SDK language-model interface (LanguageModelV4, and the
// V3/V2 shapes where they differ): call options → request, generate result / stream parts →
// response, and the reverse direction for replay. They work at the level the middleware sees,
// below `generateText`/`streamText` and above the provider's HTTP call.
import type { ContentPart, Message, ModelRequest, ModelResponse, ToolDefinition } from '@rewind/schema';
import {
  asArray,
  fromJsonBytes,
  isJsonBytes,
  isRecord,
  type Json,
  type JsonObject,
  parseJsonArguments,
  records,
  toJsonSafe,
} from './shared/json.ts';
import {
  collapseParts,
  contentPart,
  mergeText,
  normalizeFinishReason,
  normalizeParams,
  toolCall,
  toolDefinition,
  usage,
} from './shared/normalize.ts';

type Rec = Record<string, unknown>;

/** What the middleware knows about the model it wraps. */
export interface ModelInfo {
  /** The AI SDK provider id, e.g. `openai.chat`, `openai.responses`, `anthropic.messages`. */
  provider: string;
  modelId: string;
}

const PARAMS = {
  typed: {
    temperature: 'temperature',
    topP: 'topP',
    topK: 'topK',
    maxOutputTokens: 'maxTokens',
    maxTokens: 'maxTokens',
    seed: 'seed',
    stopSequences: 'stop',
  },
  // Transport fields are not request content: the signal is not data, headers may hold secrets.
  skip: new Set(['prompt', 'tools', 'abortSignal', 'headers', 'includeRawChunks', 'mode', 'inputFormat']),
} as const;

/** The call options without transport fields, as JSON: the request's `raw`. */
export function callOptionsRaw(options: unknown): Json {
  if (!isRecord(options)) return toJsonSafe(options);
  const { abortSignal: _signal, headers: _headers, ...rest } = options;
  return toJsonSafe(rest);
}

function part(value: unknown): ContentPart {
  if (isRecord(value) && value.type === 'text' && typeof value.text === 'string')
    return { type: 'text', text: value.text };
  return contentPart(value);
}

function toolOutputContent(output: unknown): Message['content'] {
  if (!isRecord(output))
    return typeof output === 'string' ? output : JSON.stringify(toJsonSafe(output ?? null));
  switch (output.type) {
    case 'text':
    case 'error-text':
      return String(output.value ?? '');
    case 'json':
    case 'error-json':
      return JSON.stringify(toJsonSafe(output.value ?? null));
    case 'content':
      return collapseParts(mergeText(asArray(output.value).map(part)));
    default:
      return [contentPart(output)];
  }
}

function promptMessages(prompt: unknown): Message[] {
  if (typeof prompt === 'string') return [{ role: 'user', content: prompt }];
  const out: Message[] = [];
  for (const message of asArray(prompt).filter(isRecord)) {
    switch (message.role) {
      case 'system':
        out.push({ role: 'system', content: typeof message.content === 'string' ? message.content : null });
        break;
      case 'user':
        out.push({
          role: 'user',
          content:
            typeof message.content === 'string'
              ? message.content
              : collapseParts(mergeText(asArray(message.content).map(part))),
        });
        break;
      case 'assistant': {
        const parts: ContentPart[] = [];
        const calls: NonNullable<Message['toolCalls']> = [];
        for (const item of asArray(message.content)) {
          if (isRecord(item) && item.type === 'tool-call' && item.providerExecuted !== true) {
            calls.push(toolCall(item.toolCallId, item.toolName, parseJsonArguments(item.input ?? item.args)));
          } else {
            parts.push(part(item));
          }
        }
        const assistant: Message = { role: 'assistant', content: collapseParts(mergeText(parts)) };
        if (calls.length > 0) assistant.toolCalls = calls;
        out.push(assistant);
        break;
      }
      case 'tool':
        for (const item of asArray(message.content).filter(isRecord)) {
          if (item.type === 'tool-result') {
            const result: Message = { role: 'tool', content: toolOutputContent(item.output ?? item.result) };
            if (typeof item.toolCallId === 'string') result.toolCallId = item.toolCallId;
            if (typeof item.toolName === 'string') result.name = item.toolName;
            out.push(result);
          } else {
            out.push({ role: 'tool', content: [contentPart(item)] });
          }
        }
        break;
      default:
        out.push({ role: 'user', content: [contentPart(message)] });
    }
  }
  return out;
}

function tools(options: Rec): ToolDefinition[] | undefined {
  const list = asArray(options.tools)
    .filter(isRecord)
    .map((tool) =>
      toolDefinition(
        tool.name,
        tool.description,
        tool.type === 'provider' ? undefined : (tool.inputSchema ?? tool.parameters),
      ),
    );
  return list.length > 0 ? list : undefined;
}

/** `doGenerate` / `doStream` call options → the normalized model request. */
export function normalizeCallOptions(options: unknown, model: ModelInfo, stream: boolean): ModelRequest {
  const rec = isRecord(options) ? options : {};
  const request: ModelRequest = {
    provider: model.provider.split('.')[0] || model.provider,
    model: model.modelId,
    messages: promptMessages(rec.prompt),
    params: normalizeParams(rec, PARAMS),
    stream,
    raw: callOptionsRaw(options),
  };
  const list = tools(rec);
  if (list !== undefined) request.tools = list;
  return request;
}

/** V4/V3 usage (`{inputTokens: {total}}`) or V2 usage (`{inputTokens: number}`). */
function normalizeUsage(value: unknown) {
  if (!isRecord(value)) return {};
  const total = (field: unknown) => (isRecord(field) ? field.total : field);
  return usage(total(value.inputTokens), total(value.outputTokens), value.totalTokens);
}

/** V4/V3 `{unified, raw}` or V2's plain string. */
function finishOf(value: unknown): string {
  return normalizeFinishReason(isRecord(value) ? value.unified : value);
}

/** Generated content → the assistant message (empty text parts, which providers emit freely, and provider `custom` parts dropped). */
function contentMessage(content: readonly unknown[]): Message {
  const parts: ContentPart[] = [];
  const calls: NonNullable<Message['toolCalls']> = [];
  for (const item of content) {
    if (isRecord(item) && (item.type === 'text' || item.type === 'reasoning') && item.text === '') continue;
    // Custom parts are provider bookkeeping (e.g. Anthropic's message_start metadata), not content.
    if (isRecord(item) && item.type === 'custom') continue;
    if (isRecord(item) && item.type === 'tool-call' && item.providerExecuted !== true) {
      calls.push(toolCall(item.toolCallId, item.toolName, parseJsonArguments(item.input ?? item.args)));
    } else {
      parts.push(part(item));
    }
  }
  const message: Message = { role: 'assistant', content: collapseParts(mergeText(parts)) };
  if (calls.length > 0) message.toolCalls = calls;
  return message;
}

/** A `doGenerate` result → the normalized response; `raw` is the whole result as JSON. */
export function normalizeGenerateResult(result: unknown, model: ModelInfo): ModelResponse {
  const rec = isRecord(result) ? result : {};
  const response = isRecord(rec.response) ? rec.response : {};
  return {
    model: typeof response.modelId === 'string' ? response.modelId : model.modelId,
    message: contentMessage(asArray(rec.content)),
    finishReason: finishOf(rec.finishReason),
    usage: normalizeUsage(rec.usage),
    raw: toJsonSafe(result),
  };
}

/**
 * Stream parts → the normalized response they add up to; `raw` is `{chunks, …extra}` (`extra`
 * carries the stream result's `request` and `response` metadata).
 */
export function normalizeStreamParts(
  parts: readonly Json[],
  model: ModelInfo,
  extra: JsonObject = {},
): ModelResponse {
  let modelId = model.modelId;
  let finish: unknown;
  let u: unknown;
  let sawError = false;
  const content: Rec[] = [];
  const open = new Map<string, Rec>();
  const inputs = new Map<string, Rec>();
  const called = new Set<string>();
  for (const chunk of records(parts)) {
    switch (chunk.type) {
      case 'response-metadata':
        if (typeof chunk.modelId === 'string') modelId = chunk.modelId;
        break;
      case 'text-start':
      case 'reasoning-start': {
        const item: Rec = { type: chunk.type === 'text-start' ? 'text' : 'reasoning', text: '' };
        open.set(`${item.type}:${String(chunk.id)}`, item);
        content.push(item);
        break;
      }
      case 'text-delta':
      case 'reasoning-delta': {
        const type = chunk.type === 'text-delta' ? 'text' : 'reasoning';
        const key = `${type}:${String(chunk.id)}`;
        let item = open.get(key);
        if (item === undefined) {
          item = { type, text: '' };
          open.set(key, item);
          content.push(item);
        }
        item.text = String(item.text) + String(chunk.delta ?? chunk.textDelta ?? '');
        break;
      }
      case 'tool-input-start':
        inputs.set(String(chunk.id), {
          type: 'tool-call',
          toolCallId: chunk.id,
          toolName: chunk.toolName,
          input: '',
        });
        break;
      case 'tool-input-delta': {
        const input = inputs.get(String(chunk.id));
        if (input !== undefined) input.input = String(input.input) + String(chunk.delta ?? '');
        break;
      }
      case 'tool-call':
        called.add(String(chunk.toolCallId));
        content.push(chunk);
        break;
      case 'finish':
        finish = chunk.finishReason;
        u = chunk.usage;
        break;
      case 'error':
        sawError = true;
        break;
      case 'stream-start':
      case 'text-end':
      case 'reasoning-end':
      case 'tool-input-end':
      case 'raw':
      case 'ping':
        break;
      default:
        content.push(chunk);
    }
  }
  // Tool inputs that never became a tool call (the stream was cut): keep what arrived.
  for (const [id, input] of inputs) if (!called.has(id)) content.push(input);
  const response: ModelResponse = {
    model: modelId,
    message: contentMessage(content),
    finishReason: finish === undefined ? (sawError ? 'error' : 'incomplete') : finishOf(finish),
    usage: normalizeUsage(u),
    raw: { ...extra, chunks: [...parts] },
  };
  return response;
}

/** The body that came with an AI SDK `APICallError` (its `responseBody`, parsed when JSON). */
export function aiSdkErrorBody(error: unknown): Json | undefined {
  if (!isRecord(error)) return undefined;
  const body = error.responseBody;
  if (typeof body !== 'string') return body === undefined ? undefined : toJsonSafe(body);
  try {
    return toJsonSafe(JSON.parse(body));
  } catch {
    return body;
  }
}

// ---------------------------------------------------------------------------------------------
// Replay direction

/** Turns `{"$bytes"}` back into bytes and the known timestamp fields back into Dates. */
function revive(value: unknown, path: readonly string[] = []): unknown {
  if (Array.isArray(value)) return value.map((item) => revive(item, path));
  if (!isRecord(value)) return value;
  if (isJsonBytes(value)) return fromJsonBytes(value);
  const out: Rec = {};
  for (const [key, item] of Object.entries(value)) {
    if (key === 'timestamp' && typeof item === 'string' && isTimestampOwner(value, path))
      out[key] = new Date(item);
    else out[key] = revive(item, [...path, key]);
  }
  return out;
}

function isTimestampOwner(value: Rec, path: readonly string[]): boolean {
  return path.at(-1) === 'response' || value.type === 'response-metadata';
}

function reviveError(part: unknown): unknown {
  if (!isRecord(part) || part.type !== 'error' || !isRecord(part.error)) return part;
  const { name, message, ...rest } = part.error;
  const error = Object.assign(new Error(typeof message === 'string' ? message : ''), rest);
  if (typeof name === 'string') error.name = name;
  return { ...part, error };
}

/** A recorded `doGenerate` result → the result object the middleware returned. */
export function generateResultFromRecorded(raw: unknown): unknown {
  return revive(structuredClone(raw));
}

/** A recorded stream → a `doStream` result whose `stream` yields the recorded parts. */
export function streamResultFromRecorded(raw: unknown): {
  stream: ReadableStream<unknown>;
  request?: unknown;
  response?: unknown;
} {
  const rec = isRecord(raw) ? raw : {};
  const parts = asArray(rec.chunks).map((chunk) => reviveError(revive(structuredClone(chunk))));
  let index = 0;
  const stream = new ReadableStream<unknown>(
    {
      pull(controller) {
        if (index < parts.length) controller.enqueue(parts[index++]);
        else controller.close();
      },
    },
    { highWaterMark: 0 },
  );
  const out: { stream: ReadableStream<unknown>; request?: unknown; response?: unknown } = { stream };
  if (rec.request !== undefined) out.request = revive(structuredClone(rec.request), ['request']);
  if (rec.response !== undefined) out.response = revive(structuredClone(rec.response), ['response']);
  return out;
}
