// Shared pieces of the normalized payloads (SPEC §4) that every adapter fills the same way.
import type { ContentPart, Message, ModelParams, ToolCall, ToolDefinition, Usage } from '@rewind/schema';
import { camelCase, type Json, type JsonObject, toJsonSafe } from './json.ts';

export type NormalizedRole = Message['role'];

const ROLES: ReadonlySet<string> = new Set(['system', 'developer', 'user', 'assistant', 'tool']);

export function normalizeRole(role: unknown): NormalizedRole {
  if (typeof role === 'string' && ROLES.has(role)) return role as NormalizedRole;
  if (role === 'function') return 'tool';
  if (role === 'human') return 'user';
  if (role === 'ai' || role === 'model') return 'assistant';
  return 'user';
}

/** A content part of `type` with more fields. */
export function makePart(type: string, fields: Record<string, unknown>): ContentPart {
  return { ...(toJsonSafe(fields) as JsonObject), type } as ContentPart;
}

/** A content part as JSON with a non-empty `type` (parts without one are wrapped). */
export function contentPart(part: unknown): ContentPart {
  const json = toJsonSafe(part);
  if (typeof json === 'string') return { type: 'text', text: json };
  if (json !== null && typeof json === 'object' && !Array.isArray(json)) {
    if (typeof json.type === 'string' && json.type !== '') return json as ContentPart;
    return { type: 'unknown', value: json };
  }
  return { type: 'unknown', value: json };
}

/**
 * Normalized content from parts that are left once tool calls and results are taken out:
 * no parts → `null`; exactly one text part → its text; anything else → the parts.
 */
export function collapseParts(parts: ContentPart[]): Message['content'] {
  if (parts.length === 0) return null;
  if (parts.length === 1) {
    const only = parts[0]!;
    if (only.type === 'text' && typeof only.text === 'string') return only.text;
  }
  return parts;
}

/** A provider's text-ish content: a string stays, an array becomes parts, anything else null. */
export function normalizeContent(content: unknown, mapPart: (part: unknown) => ContentPart = contentPart) {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return collapseParts(content.map(mapPart));
  if (content === null || content === undefined) return null;
  return collapseParts([mapPart(content)]);
}

export function toolCall(id: unknown, name: unknown, args: Json): ToolCall {
  return {
    id: typeof id === 'string' ? id : id === undefined || id === null ? '' : String(id),
    name: typeof name === 'string' && name !== '' ? name : 'unknown',
    arguments: args,
  };
}

/**
 * One finish-reason vocabulary for every provider (the provider's own value stays in `raw`):
 * `stop`, `length`, `tool_calls`, `content_filter`, `error`, `incomplete` (the stream ended
 * before the provider said why), or the provider's value when it has no equivalent.
 */
export function normalizeFinishReason(reason: unknown): string {
  if (typeof reason !== 'string' || reason === '') return 'incomplete';
  switch (reason) {
    case 'stop':
    case 'end_turn':
    case 'stop_sequence':
    case 'completed':
    case 'STOP':
      return 'stop';
    case 'length':
    case 'max_tokens':
    case 'max_output_tokens':
    case 'model_context_window_exceeded':
    case 'MAX_TOKENS':
      return 'length';
    case 'tool_calls':
    case 'tool-calls':
    case 'tool_use':
    case 'function_call':
      return 'tool_calls';
    case 'content_filter':
    case 'content-filter':
    case 'refusal':
    case 'SAFETY':
      return 'content_filter';
    case 'error':
    case 'failed':
      return 'error';
    case 'interrupted':
    case 'incomplete':
      return 'incomplete';
    default:
      return reason;
  }
}

function tokenCount(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined;
}

export function usage(input: unknown, output: unknown, total?: unknown): Usage {
  const out: Usage = {};
  const inputTokens = tokenCount(input);
  const outputTokens = tokenCount(output);
  const totalTokens = tokenCount(total);
  if (inputTokens !== undefined) out.inputTokens = inputTokens;
  if (outputTokens !== undefined) out.outputTokens = outputTokens;
  if (totalTokens !== undefined) out.totalTokens = totalTokens;
  else if (inputTokens !== undefined && outputTokens !== undefined)
    out.totalTokens = inputTokens + outputTokens;
  return out;
}

export interface ParamMapping {
  /** Provider key → normalized key for the typed fields (temperature, topP, maxTokens, seed, stop). */
  typed: Record<string, 'temperature' | 'topP' | 'maxTokens' | 'seed' | 'stop' | 'topK'>;
  /** Keys that are not params (model, messages, tools, stream, …). */
  skip: ReadonlySet<string>;
}

/**
 * Normalized params: the typed fields where their values have the right type, then every other
 * provider field (camelCased) that is not a message, tool or transport field.
 */
export function normalizeParams(body: Record<string, unknown>, mapping: ParamMapping): ModelParams {
  const params: ModelParams = {};
  const rest: JsonObject = {};
  for (const [key, value] of Object.entries(body)) {
    if (value === undefined || mapping.skip.has(key)) continue;
    const typed = mapping.typed[key];
    if (typed !== undefined) {
      if (params[typed] !== undefined) continue;
      const checked = typedParam(typed, value);
      if (checked !== undefined) {
        params[typed] = checked as never;
        continue;
      }
    }
    const json = toJsonSafe(value);
    rest[camelCase(key)] = json;
  }
  for (const [key, value] of Object.entries(rest)) if (!(key in params)) params[key] = value;
  return params;
}

function typedParam(kind: string, value: unknown): unknown {
  switch (kind) {
    case 'temperature':
    case 'topP':
      return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
    case 'maxTokens':
      return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined;
    case 'seed':
    case 'topK':
      return typeof value === 'number' && Number.isInteger(value) ? value : undefined;
    case 'stop':
      if (typeof value === 'string') return [value];
      if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return [...value];
      return undefined;
    default:
      return undefined;
  }
}

/** Fills each tool message's `name` from the assistant tool call with the same id, when missing. */
export function resolveToolNames(messages: Message[]): Message[] {
  const names = new Map<string, string>();
  for (const message of messages) {
    for (const call of message.toolCalls ?? []) names.set(call.id, call.name);
    if (message.role === 'tool' && message.name === undefined && message.toolCallId !== undefined) {
      const name = names.get(message.toolCallId);
      if (name !== undefined) message.name = name;
    }
  }
  return messages;
}

export function toolDefinition(name: unknown, description: unknown, parameters: unknown): ToolDefinition {
  const tool: ToolDefinition = { name: typeof name === 'string' && name !== '' ? name : 'unknown' };
  if (typeof description === 'string') tool.description = description;
  if (parameters !== undefined && parameters !== null) tool.parameters = toJsonSafe(parameters);
  return tool;
}

/** Adjacent text parts joined into one (providers split text into blocks freely). */
export function mergeText(parts: ContentPart[]): ContentPart[] {
  const out: ContentPart[] = [];
  for (const part of parts) {
    const last = out.at(-1);
    if (part.type === 'text' && last?.type === 'text' && typeof last.text === 'string') {
      out[out.length - 1] = { type: 'text', text: last.text + String(part.text) };
    } else {
      out.push(part);
    }
  }
  return out;
}
