import type { ContentPart, Message, ToolCall } from '@rewind/schema';
import type { AttributeMap, OtlpSpanEvent } from './parse.ts';

// Chat messages as the three conventions carry them, mapped onto the normalized Message:
//   - GenAI (current): gen_ai.input.messages / gen_ai.output.messages / gen_ai.system_instructions,
//     JSON arrays of {role, parts: [{type: text|tool_call|tool_call_response|…}], finish_reason}
//   - GenAI (older): gen_ai.prompt.N.* / gen_ai.completion.N.* flattened attributes, and the span
//     events gen_ai.{system,user,assistant,tool}.message and gen_ai.choice
//   - OpenInference: llm.input_messages.N.message.* / llm.output_messages.N.message.*

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);

export interface OutputMessage {
  message: Message;
  finishReason: string | undefined;
}

/** Parses a string attribute that holds JSON; anything else (or invalid JSON) comes back as it is. */
export function parseJsonish(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const trimmed = value.trim();
  if (!/^[[{"]|^-?\d|^(true|false|null)$/.test(trimmed)) return value;
  try {
    return JSON.parse(trimmed);
  } catch {
    return value;
  }
}

/**
 * Groups flattened attributes `<prefix>.<N>.<rest>` by N (ascending): `[{<rest>: value}, …]`.
 * Gaps in N are skipped.
 */
export function indexed(attributes: AttributeMap, prefix: string): Array<Record<string, unknown>> {
  const byIndex = new Map<number, Record<string, unknown>>();
  const head = `${prefix}.`;
  for (const [key, value] of Object.entries(attributes)) {
    if (!key.startsWith(head)) continue;
    const match = /^(\d+)\.(.+)$/.exec(key.slice(head.length));
    if (match === null) continue;
    const index = Number(match[1]);
    let entry = byIndex.get(index);
    if (entry === undefined) {
      entry = {};
      byIndex.set(index, entry);
    }
    entry[match[2]!] = value;
  }
  return [...byIndex.entries()].sort(([a], [b]) => a - b).map(([, entry]) => entry);
}

function role(value: unknown): Message['role'] {
  if (typeof value === 'string') {
    const lower = value.toLowerCase();
    if (ROLES.has(lower)) return lower as Message['role'];
    if (lower === 'human') return 'user';
    if (lower === 'ai' || lower === 'model' || lower === 'bot') return 'assistant';
    if (lower === 'function') return 'tool';
  }
  return 'user';
}

const text = (value: unknown): string | null =>
  value === undefined || value === null ? null : typeof value === 'string' ? value : JSON.stringify(value);

function toolCall(id: unknown, name: unknown, args: unknown): ToolCall | undefined {
  if (typeof name !== 'string' || name === '') return undefined;
  return {
    id: typeof id === 'string' ? id : '',
    name,
    arguments: (parseJsonish(args) ?? {}) as ToolCall['arguments'],
  };
}

/** One message of gen_ai.input.messages / gen_ai.output.messages (the parts form). */
function fromPartsMessage(raw: unknown): OutputMessage | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const record = raw as Record<string, unknown>;
  const parts = Array.isArray(record.parts) ? record.parts : undefined;
  let messageRole = role(record.role);
  const texts: string[] = [];
  const other: ContentPart[] = [];
  const toolCalls: ToolCall[] = [];
  let toolCallId: string | undefined;
  if (parts === undefined) {
    // Some instrumentations put {role, content} here, as the chat APIs do.
    const content = record.content;
    if (typeof content === 'string') texts.push(content);
    else if (content !== undefined && content !== null) texts.push(JSON.stringify(content));
  }
  for (const part of parts ?? []) {
    if (typeof part !== 'object' || part === null) continue;
    const p = part as Record<string, unknown>;
    switch (p.type) {
      case 'text':
        texts.push(text(p.content) ?? '');
        break;
      case 'tool_call': {
        const call = toolCall(p.id, p.name, p.arguments);
        if (call !== undefined) toolCalls.push(call);
        break;
      }
      case 'tool_call_response':
        messageRole = 'tool';
        if (typeof p.id === 'string') toolCallId = p.id;
        texts.push(text(p.response ?? p.result) ?? '');
        break;
      default:
        other.push({ ...p, type: typeof p.type === 'string' && p.type !== '' ? p.type : 'unknown' });
    }
  }
  const content: Message['content'] =
    other.length > 0
      ? [...texts.map((t) => ({ type: 'text', text: t })), ...other]
      : texts.length > 0
        ? texts.join('')
        : null;
  const message: Message = { role: messageRole, content };
  if (toolCalls.length > 0) message.toolCalls = toolCalls;
  if (toolCallId !== undefined) message.toolCallId = toolCallId;
  if (typeof record.name === 'string') message.name = record.name;
  const finish = record.finish_reason ?? record.finishReason;
  return { message, finishReason: typeof finish === 'string' ? finish : undefined };
}

function fromPartsArray(value: unknown): OutputMessage[] | undefined {
  const parsed = parseJsonish(value);
  if (!Array.isArray(parsed)) return undefined;
  return parsed.map(fromPartsMessage).filter((m): m is OutputMessage => m !== undefined);
}

/** gen_ai.system_instructions: parts (or a plain string) → one system message. */
function systemInstructions(value: unknown): Message | undefined {
  const parsed = parseJsonish(value);
  if (typeof parsed === 'string') return { role: 'system', content: parsed };
  if (!Array.isArray(parsed)) return undefined;
  const texts = parsed.map((part) =>
    typeof part === 'object' && part !== null
      ? (text((part as Record<string, unknown>).content) ?? '')
      : text(part),
  );
  return { role: 'system', content: texts.join('') };
}

/** gen_ai.prompt.N.* / gen_ai.completion.N.* (older GenAI flattened form). */
function fromFlattenedGenAi(attributes: AttributeMap, prefix: string): OutputMessage[] {
  return indexed(attributes, prefix).map((entry) => {
    const message: Message = {
      role: role(entry.role ?? (prefix.endsWith('completion') ? 'assistant' : 'user')),
      content: text(entry.content),
    };
    const calls = indexed(entry, 'tool_calls')
      .map((call) => toolCall(call.id, call.name, call.arguments))
      .filter((call): call is ToolCall => call !== undefined);
    if (calls.length > 0) message.toolCalls = calls;
    if (typeof entry.tool_call_id === 'string') message.toolCallId = entry.tool_call_id;
    const finish = entry.finish_reason;
    return { message, finishReason: typeof finish === 'string' ? finish : undefined };
  });
}

/** llm.input_messages.N.message.* / llm.output_messages.N.message.* (OpenInference). */
function fromOpenInference(attributes: AttributeMap, prefix: string): OutputMessage[] {
  return indexed(attributes, prefix).map((entry) => {
    let content: Message['content'] = text(entry['message.content']);
    const contents = indexed(entry, 'message.contents');
    if (content === null && contents.length > 0) {
      const parts: ContentPart[] = contents.map((part) => {
        const type = part['message_content.type'];
        if (type === 'image')
          return { type: 'image', url: part['message_content.image.image.url'] ?? null } as ContentPart;
        return { type: 'text', text: text(part['message_content.text']) ?? '' } as ContentPart;
      });
      content = parts.every((part) => part.type === 'text')
        ? parts.map((part) => (part as unknown as { text: string }).text).join('')
        : parts;
    }
    const message: Message = { role: role(entry['message.role']), content };
    const calls = indexed(entry, 'message.tool_calls')
      .map((call) =>
        toolCall(call['tool_call.id'], call['tool_call.function.name'], call['tool_call.function.arguments']),
      )
      .filter((call): call is ToolCall => call !== undefined);
    if (calls.length > 0) message.toolCalls = calls;
    if (typeof entry['message.tool_call_id'] === 'string') message.toolCallId = entry['message.tool_call_id'];
    if (typeof entry['message.name'] === 'string') message.name = entry['message.name'];
    return { message, finishReason: undefined };
  });
}

/** The span-event form (gen_ai.user.message, gen_ai.choice, …), deprecated but still emitted. */
function fromEvents(events: readonly OtlpSpanEvent[]): { input: Message[]; output: OutputMessage[] } {
  const input: Message[] = [];
  const output: OutputMessage[] = [];
  for (const event of events) {
    const a = event.attributes;
    const eventRole = /^gen_ai\.(system|user|assistant|tool)\.message$/.exec(event.name)?.[1];
    if (eventRole !== undefined) {
      const message: Message = { role: role(a.role ?? eventRole), content: text(a.content) };
      const calls = toolCallsOf(a.tool_calls);
      if (calls.length > 0) message.toolCalls = calls;
      if (typeof a.id === 'string' && eventRole === 'tool') message.toolCallId = a.id;
      input.push(message);
    } else if (event.name === 'gen_ai.choice') {
      const body = (typeof a.message === 'object' && a.message !== null ? a.message : a) as Record<
        string,
        unknown
      >;
      const message: Message = { role: role(body.role ?? 'assistant'), content: text(body.content) };
      const calls = toolCallsOf(body.tool_calls);
      if (calls.length > 0) message.toolCalls = calls;
      output.push({
        message,
        finishReason: typeof a.finish_reason === 'string' ? a.finish_reason : undefined,
      });
    }
  }
  return { input, output };
}

function toolCallsOf(value: unknown): ToolCall[] {
  const list = parseJsonish(value);
  if (!Array.isArray(list)) return [];
  return list
    .map((raw) => {
      if (typeof raw !== 'object' || raw === null) return undefined;
      const call = raw as Record<string, unknown>;
      const fn = (
        typeof call.function === 'object' && call.function !== null ? call.function : call
      ) as Record<string, unknown>;
      return toolCall(call.id, fn.name, fn.arguments);
    })
    .filter((call): call is ToolCall => call !== undefined);
}

/** The request messages of a model span, from whichever convention carries them (first wins). */
export function inputMessages(attributes: AttributeMap, events: readonly OtlpSpanEvent[]): Message[] {
  const system = systemInstructions(attributes['gen_ai.system_instructions']);
  const modern = fromPartsArray(attributes['gen_ai.input.messages']);
  if (modern !== undefined)
    return [...(system === undefined ? [] : [system]), ...modern.map((m) => m.message)];
  const flattened = fromFlattenedGenAi(attributes, 'gen_ai.prompt');
  if (flattened.length > 0) return flattened.map((m) => m.message);
  const openInference = fromOpenInference(attributes, 'llm.input_messages');
  if (openInference.length > 0) return openInference.map((m) => m.message);
  const fromSpanEvents = fromEvents(events).input;
  if (fromSpanEvents.length > 0) return fromSpanEvents;
  return system === undefined ? [] : [system];
}

/** The response messages of a model span (first wins, as for the input). */
export function outputMessages(attributes: AttributeMap, events: readonly OtlpSpanEvent[]): OutputMessage[] {
  const modern = fromPartsArray(attributes['gen_ai.output.messages']);
  if (modern !== undefined) return modern;
  const flattened = fromFlattenedGenAi(attributes, 'gen_ai.completion');
  if (flattened.length > 0) return flattened;
  const openInference = fromOpenInference(attributes, 'llm.output_messages');
  if (openInference.length > 0) return openInference;
  return fromEvents(events).output;
}
