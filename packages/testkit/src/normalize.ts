// Maps a request body of any of the three wire APIs onto one Conversation view, so the
// same script can drive OpenAI chat, OpenAI Responses and Anthropic messages clients.
import type { Api, Conversation, ConversationMessage, ConversationToolResult } from './types.ts';

type Obj = Record<string, unknown>;

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function parseArgs(raw: unknown): unknown {
  if (typeof raw !== 'string') return raw ?? {};
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/** Text of a content value: a string, or an array of parts with `text` (or nested `content`). */
function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  const parts: string[] = [];
  for (const part of content) {
    if (typeof part === 'string') parts.push(part);
    else if (isObj(part)) {
      if (typeof part.text === 'string') parts.push(part.text);
      else if (typeof part.refusal === 'string') parts.push(part.refusal);
    }
  }
  return parts.join('\n');
}

function message(role: ConversationMessage['role'], text = ''): ConversationMessage {
  return { role, text, toolCalls: [], toolResults: [] };
}

function toolResultMessage(result: ConversationToolResult): ConversationMessage {
  return { role: 'tool', text: result.content, toolCalls: [], toolResults: [result] };
}

function normalizeChat(body: Obj): ConversationMessage[] {
  const out: ConversationMessage[] = [];
  const messages = Array.isArray(body.messages) ? body.messages : [];
  for (const m of messages) {
    if (!isObj(m)) continue;
    const role = str(m.role);
    if (role === 'system' || role === 'developer') out.push(message('system', contentText(m.content)));
    else if (role === 'user') out.push(message('user', contentText(m.content)));
    else if (role === 'assistant') {
      const msg = message('assistant', contentText(m.content));
      if (Array.isArray(m.tool_calls)) {
        for (const call of m.tool_calls) {
          if (!isObj(call)) continue;
          const fn = isObj(call.function) ? call.function : isObj(call.custom) ? call.custom : {};
          msg.toolCalls.push({
            id: str(call.id),
            name: str(fn.name),
            arguments: parseArgs(fn.arguments ?? fn.input),
          });
        }
      }
      out.push(msg);
    } else if (role === 'tool' || role === 'function') {
      out.push(
        toolResultMessage({
          toolCallId: str(m.tool_call_id),
          name: typeof m.name === 'string' ? m.name : undefined,
          content: contentText(m.content),
          isError: false,
        }),
      );
    }
  }
  return out;
}

function normalizeResponses(body: Obj, expandedInput: readonly unknown[] | undefined): ConversationMessage[] {
  const out: ConversationMessage[] = [];
  if (typeof body.instructions === 'string') out.push(message('system', body.instructions));
  else if (Array.isArray(body.instructions)) out.push(message('system', contentText(body.instructions)));
  const input = expandedInput ?? body.input;
  if (typeof input === 'string') {
    out.push(message('user', input));
    return out;
  }
  if (!Array.isArray(input)) return out;
  const lastAssistant = (): ConversationMessage => {
    const last = out.at(-1);
    if (last?.role === 'assistant') return last;
    const created = message('assistant');
    out.push(created);
    return created;
  };
  for (const item of input) {
    if (!isObj(item)) continue;
    const type = item.type ?? 'message';
    if (type === 'message') {
      const role = str(item.role);
      const text = contentText(item.content);
      if (role === 'system' || role === 'developer') out.push(message('system', text));
      else if (role === 'user') out.push(message('user', text));
      else if (role === 'assistant') {
        const msg = lastAssistant();
        msg.text = msg.text ? `${msg.text}\n${text}` : text;
      }
    } else if (type === 'function_call' || type === 'custom_tool_call') {
      lastAssistant().toolCalls.push({
        id: str(item.call_id),
        name: str(item.name),
        arguments: parseArgs(item.arguments ?? item.input),
      });
    } else if (type === 'function_call_output' || type === 'custom_tool_call_output') {
      out.push(
        toolResultMessage({
          toolCallId: str(item.call_id),
          name: undefined,
          content: contentText(item.output),
          isError: false,
        }),
      );
    }
  }
  return out;
}

function normalizeAnthropic(body: Obj): ConversationMessage[] {
  const out: ConversationMessage[] = [];
  if (body.system !== undefined) out.push(message('system', contentText(body.system)));
  const messages = Array.isArray(body.messages) ? body.messages : [];
  for (const m of messages) {
    if (!isObj(m)) continue;
    const role = str(m.role);
    const blocks = typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content;
    if (!Array.isArray(blocks)) continue;
    if (role === 'assistant') {
      const msg = message('assistant');
      const texts: string[] = [];
      for (const block of blocks) {
        if (!isObj(block)) continue;
        if (block.type === 'text' && typeof block.text === 'string') texts.push(block.text);
        else if (block.type === 'tool_use' || block.type === 'server_tool_use')
          msg.toolCalls.push({ id: str(block.id), name: str(block.name), arguments: block.input ?? {} });
      }
      msg.text = texts.join('\n');
      out.push(msg);
    } else if (role === 'user') {
      // Tool results first (the API requires them first in the message), then any text.
      const texts: string[] = [];
      for (const block of blocks) {
        if (!isObj(block)) continue;
        if (block.type === 'tool_result') {
          out.push(
            toolResultMessage({
              toolCallId: str(block.tool_use_id),
              name: undefined,
              content: contentText(block.content),
              isError: block.is_error === true,
            }),
          );
        } else if (block.type === 'text' && typeof block.text === 'string') texts.push(block.text);
      }
      if (texts.length > 0) out.push(message('user', texts.join('\n')));
    }
  }
  return out;
}

function toolNames(api: Api, body: Obj): string[] {
  if (!Array.isArray(body.tools)) return [];
  const names: string[] = [];
  for (const tool of body.tools) {
    if (!isObj(tool)) continue;
    if (api === 'openai.chat' && isObj(tool.function)) names.push(str(tool.function.name));
    else if (api === 'openai.chat' && isObj(tool.custom)) names.push(str(tool.custom.name));
    else if (typeof tool.name === 'string') names.push(tool.name);
  }
  return names;
}

/** Whether the body asks for a streamed answer. */
export function isStreaming(body: Obj): boolean {
  return body.stream === true;
}

export interface NormalizeOptions {
  /**
   * Responses API only: the input items to read instead of `body.input`, e.g. with the
   * items of `previous_response_id` in front and item references resolved.
   */
  responsesInput?: readonly unknown[];
}

/** The normalized conversation of a request body of the given API. */
export function normalizeRequest(
  api: Api,
  body: Record<string, unknown>,
  options: NormalizeOptions = {},
): Conversation {
  const messages =
    api === 'openai.chat'
      ? normalizeChat(body)
      : api === 'openai.responses'
        ? normalizeResponses(body, options.responsesInput)
        : normalizeAnthropic(body);

  // Resolve tool result names from the calls they answer.
  const callNames = new Map<string, string>();
  for (const m of messages) for (const call of m.toolCalls) callNames.set(call.id, call.name);
  for (const m of messages)
    for (const result of m.toolResults) result.name ??= callNames.get(result.toolCallId);

  const trailingToolResults: ConversationToolResult[] = [];
  for (let i = messages.length - 1; i >= 0 && messages[i]!.role === 'tool'; i--)
    trailingToolResults.unshift(...messages[i]!.toolResults);

  const lastUser = messages.findLast((m) => m.role === 'user' && m.text !== '');
  return {
    api,
    model: str(body.model),
    stream: isStreaming(body),
    system: messages
      .filter((m) => m.role === 'system')
      .map((m) => m.text)
      .join('\n'),
    messages,
    tools: toolNames(api, body),
    lastUserText: lastUser?.text,
    turn: messages.filter((m) => m.role === 'assistant').length,
    trailingToolResults,
    body,
  };
}

/** Whitespace-separated words: the provider's deterministic stand-in for tokens. */
export function countWords(text: string): number {
  let n = 0;
  for (const w of text.split(/\s+/)) if (w !== '') n++;
  return n;
}

function argsText(args: unknown): string {
  return typeof args === 'string' ? args : JSON.stringify(args ?? {});
}

/** Deterministic input token count of a conversation: words of every text, argument and result. */
export function countInputTokens(conversation: Conversation): number {
  let n = 0;
  for (const m of conversation.messages) {
    n += countWords(m.text);
    for (const call of m.toolCalls) n += 1 + countWords(argsText(call.arguments));
  }
  return n;
}
