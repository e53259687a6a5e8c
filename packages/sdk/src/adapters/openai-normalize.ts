// Pure normalizers for the official `openai` client: chat completions and the Responses API,
// request and response (whole or streamed), and the reverse direction (`…FromRecorded`) that
// turns a recorded raw response back into what the client would have returned, for replay.
import type { ContentPart, Message, ModelRequest, ModelResponse, ToolDefinition } from '@rewind/schema';
import {
  asArray,
  asString,
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
  makePart,
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

// ---------------------------------------------------------------------------------------------
// Chat completions

const CHAT_PARAMS = {
  typed: {
    temperature: 'temperature',
    top_p: 'topP',
    max_completion_tokens: 'maxTokens',
    max_tokens: 'maxTokens',
    seed: 'seed',
    stop: 'stop',
  },
  skip: new Set(['model', 'messages', 'tools', 'functions', 'stream']),
} as const;

function chatToolCalls(message: Rec): Message['toolCalls'] {
  const calls = asArray(message.tool_calls).filter(isRecord);
  const out = calls.map((call) => {
    if (isRecord(call.custom))
      return toolCall(call.id, call.custom.name, toJsonSafe(call.custom.input ?? ''));
    const fn = isRecord(call.function) ? call.function : {};
    return toolCall(call.id, fn.name, parseJsonArguments(fn.arguments));
  });
  if (isRecord(message.function_call)) {
    out.push(toolCall('', message.function_call.name, parseJsonArguments(message.function_call.arguments)));
  }
  return out.length > 0 ? out : undefined;
}

function chatMessage(raw: unknown): Message {
  if (!isRecord(raw)) return { role: 'user', content: normalizeContent(raw) };
  const message: Message = { role: normalizeRole(raw.role), content: normalizeContent(raw.content) };
  if (raw.role === 'assistant') {
    const calls = chatToolCalls(raw);
    if (calls !== undefined) message.toolCalls = calls;
    if (message.content === null && typeof raw.refusal === 'string') {
      message.content = [makePart('refusal', { refusal: raw.refusal })];
    }
  }
  if (typeof raw.tool_call_id === 'string') message.toolCallId = raw.tool_call_id;
  if (typeof raw.name === 'string') message.name = raw.name;
  return message;
}

function chatTools(body: Rec): ToolDefinition[] | undefined {
  const tools: ToolDefinition[] = [];
  for (const tool of asArray(body.tools).filter(isRecord)) {
    const spec = isRecord(tool.function) ? tool.function : isRecord(tool.custom) ? tool.custom : tool;
    tools.push(toolDefinition(spec.name ?? tool.type, spec.description, spec.parameters));
  }
  for (const fn of asArray(body.functions).filter(isRecord)) {
    tools.push(toolDefinition(fn.name, fn.description, fn.parameters));
  }
  return tools.length > 0 ? tools : undefined;
}

/** `chat.completions.create(body)` → the normalized model request (the body is kept as `raw`). */
export function normalizeChatRequest(body: unknown): ModelRequest {
  const rec = isRecord(body) ? body : {};
  const request: ModelRequest = {
    provider: 'openai',
    model: asString(rec.model) ?? '',
    messages: resolveToolNames(asArray(rec.messages).map(chatMessage)),
    params: normalizeParams(rec, CHAT_PARAMS),
    stream: rec.stream === true,
    raw: toJsonSafe(body),
  };
  const tools = chatTools(rec);
  if (tools !== undefined) request.tools = tools;
  return request;
}

/** A `chat.completion` object → the normalized model response (choice 0; all choices stay in `raw`). */
export function normalizeChatResponse(
  completion: unknown,
  raw: Json = toJsonSafe(completion),
): ModelResponse {
  const rec = isRecord(completion) ? completion : {};
  const choice = asArray(rec.choices).filter(isRecord)[0] ?? {};
  const message = isRecord(choice.message) ? chatMessage({ ...choice.message, role: 'assistant' }) : null;
  const u = isRecord(rec.usage) ? rec.usage : {};
  return {
    model: asString(rec.model) ?? '',
    message: message ?? { role: 'assistant', content: null },
    finishReason: normalizeFinishReason(choice.finish_reason),
    usage: usage(u.prompt_tokens, u.completion_tokens, u.total_tokens),
    raw,
  };
}

interface CallAccumulator {
  id: string;
  name: string;
  args: string;
  custom: boolean;
}

/**
 * Streamed `chat.completion.chunk`s (choice 0) → the normalized response the same call would
 * have given unstreamed; `raw` is `{chunks}`.
 */
export function normalizeChatStream(chunks: readonly Json[], extra: JsonObject = {}): ModelResponse {
  let model = '';
  let content: string | null = null;
  let refusal: string | null = null;
  let finish: unknown;
  let u: Rec = {};
  const calls: CallAccumulator[] = [];
  for (const chunk of chunks) {
    if (!isRecord(chunk)) continue;
    if (typeof chunk.model === 'string' && chunk.model !== '') model = chunk.model;
    if (isRecord(chunk.usage)) u = chunk.usage;
    const choice = asArray(chunk.choices)
      .filter(isRecord)
      .find((c) => c.index === 0 || c.index === undefined);
    if (choice === undefined) continue;
    if (choice.finish_reason !== null && choice.finish_reason !== undefined) finish = choice.finish_reason;
    const delta = isRecord(choice.delta) ? choice.delta : {};
    if (typeof delta.content === 'string') content = (content ?? '') + delta.content;
    if (typeof delta.refusal === 'string') refusal = (refusal ?? '') + delta.refusal;
    for (const piece of asArray(delta.tool_calls).filter(isRecord)) {
      const index = typeof piece.index === 'number' ? piece.index : calls.length;
      calls[index] ??= { id: '', name: '', args: '', custom: false };
      const call = calls[index];
      if (typeof piece.id === 'string' && piece.id !== '') call.id = piece.id;
      const fn = isRecord(piece.function) ? piece.function : isRecord(piece.custom) ? piece.custom : {};
      if (isRecord(piece.custom)) call.custom = true;
      if (typeof fn.name === 'string' && fn.name !== '' && call.name === '') call.name = fn.name;
      if (typeof fn.arguments === 'string') call.args += fn.arguments;
      if (typeof fn.input === 'string') call.args += fn.input;
    }
  }
  const message: Message = { role: 'assistant', content };
  if (content === null && refusal !== null) message.content = [makePart('refusal', { refusal })];
  const toolCalls = calls
    .filter((call) => call !== undefined)
    .map((call) => toolCall(call.id, call.name, call.custom ? call.args : parseJsonArguments(call.args)));
  if (toolCalls.length > 0) message.toolCalls = toolCalls;
  return {
    model,
    message,
    finishReason: normalizeFinishReason(finish),
    usage: usage(u.prompt_tokens, u.completion_tokens, u.total_tokens),
    raw: { ...extra, chunks: [...chunks] },
  };
}

/** A recorded non-streamed chat completion → the object `create()` resolves to. */
export function chatCompletionFromRecorded(raw: unknown): unknown {
  return structuredClone(raw);
}

/**
 * Recorded chunks → the chunks the client's stream yields: the client fills a missing
 * `finish_reason` with null on every choice (openai ≥ 7).
 */
export function chatChunksFromRecorded(raw: unknown): unknown[] {
  const chunks = isRecord(raw) ? asArray(raw.chunks) : [];
  return chunks.map((chunk) => {
    const copy = structuredClone(chunk);
    if (!isRecord(copy) || !Array.isArray(copy.choices)) return copy;
    return {
      ...copy,
      choices: copy.choices.map((choice: unknown) =>
        isRecord(choice) ? { ...choice, finish_reason: choice.finish_reason ?? null } : choice,
      ),
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Responses API

const RESPONSES_PARAMS = {
  typed: { temperature: 'temperature', top_p: 'topP', max_output_tokens: 'maxTokens' },
  skip: new Set(['model', 'input', 'instructions', 'tools', 'stream']),
} as const;

function responsesPart(part: unknown): ContentPart {
  if (
    isRecord(part) &&
    (part.type === 'input_text' || part.type === 'output_text') &&
    typeof part.text === 'string'
  ) {
    return { type: 'text', text: part.text };
  }
  return contentPart(part);
}

function lastAssistant(messages: Message[]): Message {
  const last = messages.at(-1);
  if (last !== undefined && last.role === 'assistant') return last;
  const created: Message = { role: 'assistant', content: null };
  messages.push(created);
  return created;
}

function responsesItems(items: unknown[], messages: Message[]): void {
  for (const item of items) {
    if (typeof item === 'string') {
      messages.push({ role: 'user', content: item });
      continue;
    }
    if (!isRecord(item)) continue;
    const type = item.type;
    if (type === 'message' || (type === undefined && 'role' in item)) {
      messages.push({
        role: normalizeRole(item.role),
        content: normalizeContent(item.content, responsesPart),
      });
    } else if (type === 'function_call' || type === 'custom_tool_call') {
      const assistant = lastAssistant(messages);
      const args =
        type === 'function_call' ? parseJsonArguments(item.arguments) : toJsonSafe(item.input ?? '');
      assistant.toolCalls = [...(assistant.toolCalls ?? []), toolCall(item.call_id, item.name, args)];
    } else if (type === 'function_call_output' || type === 'custom_tool_call_output') {
      const message: Message = {
        role: 'tool',
        content: normalizeContent(item.output, responsesPart),
      };
      if (typeof item.call_id === 'string') message.toolCallId = item.call_id;
      messages.push(message);
    } else if (type === 'reasoning') {
      // Reasoning items are provider state, not conversation: they stay in `raw`.
    } else {
      messages.push({ role: 'user', content: [contentPart(item)] });
    }
  }
}

function responsesTools(body: Rec): ToolDefinition[] | undefined {
  const tools = asArray(body.tools)
    .filter(isRecord)
    .map((tool) =>
      toolDefinition(
        tool.name ?? tool.type,
        tool.description,
        tool.type === 'function' ? tool.parameters : undefined,
      ),
    );
  return tools.length > 0 ? tools : undefined;
}

/** `responses.create(body)` → the normalized model request. */
export function normalizeResponsesRequest(body: unknown): ModelRequest {
  const rec = isRecord(body) ? body : {};
  const messages: Message[] = [];
  if (typeof rec.instructions === 'string') messages.push({ role: 'system', content: rec.instructions });
  else if (Array.isArray(rec.instructions)) responsesItems(rec.instructions, messages);
  if (typeof rec.input === 'string') messages.push({ role: 'user', content: rec.input });
  else responsesItems(asArray(rec.input), messages);
  const request: ModelRequest = {
    provider: 'openai',
    model: asString(rec.model) ?? '',
    messages: resolveToolNames(messages),
    params: normalizeParams(rec, RESPONSES_PARAMS),
    stream: rec.stream === true,
    raw: toJsonSafe(body),
  };
  const tools = responsesTools(rec);
  if (tools !== undefined) request.tools = tools;
  return request;
}

function responsesMessage(output: unknown[]): Message {
  const parts: ContentPart[] = [];
  const calls: NonNullable<Message['toolCalls']> = [];
  for (const item of output.filter(isRecord)) {
    if (item.type === 'message') {
      for (const part of asArray(item.content)) parts.push(responsesPart(part));
    } else if (item.type === 'function_call') {
      calls.push(toolCall(item.call_id, item.name, parseJsonArguments(item.arguments)));
    } else if (item.type === 'custom_tool_call') {
      calls.push(toolCall(item.call_id, item.name, toJsonSafe(item.input ?? '')));
    }
  }
  const message: Message = { role: 'assistant', content: collapseParts(mergeText(parts)) };
  if (calls.length > 0) message.toolCalls = calls;
  return message;
}

function responsesFinish(response: Rec, hasCalls: boolean): string {
  switch (response.status) {
    case 'completed':
      return hasCalls ? 'tool_calls' : 'stop';
    case 'incomplete':
      return normalizeFinishReason(
        isRecord(response.incomplete_details) ? response.incomplete_details.reason : undefined,
      );
    case 'failed':
      return 'error';
    case 'in_progress':
    case 'queued':
      return 'incomplete';
    default:
      return normalizeFinishReason(response.status);
  }
}

/** Drops what the client adds on top of the wire object (`output_text`). */
export function responseRaw(response: unknown): Json {
  const json = toJsonSafe(response);
  if (isRecord(json) && json.object === 'response' && 'output_text' in json) {
    const { output_text: _derived, ...rest } = json;
    return rest;
  }
  return json;
}

/** A `response` object → the normalized model response. */
export function normalizeResponsesResponse(
  response: unknown,
  raw: Json = responseRaw(response),
): ModelResponse {
  const rec = isRecord(response) ? response : {};
  const message = responsesMessage(asArray(rec.output));
  const u = isRecord(rec.usage) ? rec.usage : {};
  return {
    model: asString(rec.model) ?? '',
    message,
    finishReason: responsesFinish(rec, (message.toolCalls?.length ?? 0) > 0),
    usage: usage(u.input_tokens, u.output_tokens, u.total_tokens),
    raw,
  };
}

const TERMINAL_EVENTS = new Set(['response.completed', 'response.incomplete', 'response.failed']);

/** Streamed Responses events → the normalized response (from the terminal event, else accumulated). */
export function normalizeResponsesStream(chunks: readonly Json[], extra: JsonObject = {}): ModelResponse {
  const raw = { ...extra, chunks: [...chunks] };
  const terminal = records(chunks).findLast((chunk) => TERMINAL_EVENTS.has(String(chunk.type)));
  if (terminal !== undefined && isRecord(terminal.response))
    return normalizeResponsesResponse(terminal.response, raw);
  let model = '';
  let text: string | null = null;
  const items = new Map<number, Rec>();
  const args = new Map<number, string>();
  for (const chunk of records(chunks)) {
    if (isRecord(chunk.response) && typeof chunk.response.model === 'string') model = chunk.response.model;
    const index = typeof chunk.output_index === 'number' ? chunk.output_index : -1;
    if (
      (chunk.type === 'response.output_item.added' || chunk.type === 'response.output_item.done') &&
      isRecord(chunk.item)
    ) {
      items.set(index, chunk.item);
    } else if (chunk.type === 'response.output_text.delta' && typeof chunk.delta === 'string') {
      text = (text ?? '') + chunk.delta;
    } else if (chunk.type === 'response.function_call_arguments.delta' && typeof chunk.delta === 'string') {
      args.set(index, (args.get(index) ?? '') + chunk.delta);
    }
  }
  const message: Message = { role: 'assistant', content: text };
  const calls = [...items.entries()]
    .sort(([a], [b]) => a - b)
    .filter(([, item]) => item.type === 'function_call')
    .map(([index, item]) =>
      toolCall(
        item.call_id,
        item.name,
        parseJsonArguments(
          item.status === 'completed' ? item.arguments : (args.get(index) ?? item.arguments),
        ),
      ),
    );
  if (calls.length > 0) message.toolCalls = calls;
  return { model, message, finishReason: 'incomplete', usage: {}, raw };
}

/** A recorded `response` → what `responses.create()` resolves to (with the client's `output_text`). */
export function responseFromRecorded(raw: unknown): unknown {
  const copy = structuredClone(raw);
  if (isRecord(copy) && copy.object === 'response') {
    const texts: string[] = [];
    for (const item of asArray(copy.output).filter(isRecord)) {
      if (item.type !== 'message') continue;
      for (const part of asArray(item.content).filter(isRecord)) {
        if (part.type === 'output_text') texts.push(String(part.text));
      }
    }
    copy.output_text = texts.join('');
  }
  return copy;
}

/** Recorded Responses events → the events the client's stream yields. */
export function responsesEventsFromRecorded(raw: unknown): unknown[] {
  return isRecord(raw) ? asArray(raw.chunks).map((chunk) => structuredClone(chunk)) : [];
}

// ---------------------------------------------------------------------------------------------
// Errors

/** The body that came with an `APIError` (`{error: {…}}` as the API sent it), if any. */
export function openaiErrorBody(error: unknown): Json | undefined {
  if (!isRecord(error) || error.error === undefined || error.error === null) return undefined;
  return { error: toJsonSafe(error.error) };
}
