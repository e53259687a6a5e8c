// The API-independent form of one scripted answer, and helpers the wire renderers share.
import { countWords } from '../normalize.ts';
import type { MessageReply } from '../types.ts';

export interface AnswerToolCall {
  name: string;
  /** Arguments serialized as JSON text. */
  argumentsJson: string;
  /** Arguments as a value (Anthropic `input`): parsed `argumentsJson`, `{}` if that is not JSON. */
  input: unknown;
  id: string | undefined;
}

export interface Answer {
  model: string;
  text: string;
  /** Whether the answer has a text part (false for a tool-call-only answer). */
  hasText: boolean;
  toolCalls: AnswerToolCall[];
  finish: 'stop' | 'length';
  inputTokens: number;
  outputTokens: number;
}

/** Hands out deterministic ids: `chatcmpl-1`, `call_1`, `msg_1`, … counted per prefix. */
export class IdAllocator {
  #counters = new Map<string, number>();

  next(prefix: string): string {
    const n = (this.#counters.get(prefix) ?? 0) + 1;
    this.#counters.set(prefix, n);
    return `${prefix}${n}`;
  }

  reset(): void {
    this.#counters.clear();
  }
}

export interface RenderContext {
  ids: IdAllocator;
  /** Unix seconds reported as `created` / `created_at`. */
  created: number;
  /** Characters per streamed piece of tool-call arguments. */
  argumentChunkSize: number;
  /** The request body. */
  body: Record<string, unknown>;
}

/** One server-sent event; `data` is serialized as JSON unless it is the literal `[DONE]`. */
export interface SseEvent {
  event?: string;
  data: unknown;
}

export function serializeEvent(e: SseEvent): string {
  const data = e.data === '[DONE]' ? '[DONE]' : JSON.stringify(e.data);
  return `${e.event === undefined ? '' : `event: ${e.event}\n`}data: ${data}\n\n`;
}

/** Splits text into word pieces, each word with its leading whitespace; joining them gives the text back. */
export function splitText(text: string): string[] {
  return text.match(/\s*\S+|\s+$/g) ?? (text === '' ? [] : [text]);
}

/** Splits a string into pieces of `size` code points (never splitting a surrogate pair). */
export function splitFixed(text: string, size: number): string[] {
  const chars = Array.from(text);
  const out: string[] = [];
  for (let i = 0; i < chars.length; i += Math.max(1, size)) out.push(chars.slice(i, i + size).join(''));
  return out;
}

export function buildAnswer(reply: MessageReply, requestModel: string, inputTokens: number): Answer {
  const toolCalls = (reply.toolCalls ?? []).map((call): AnswerToolCall => {
    const argumentsJson =
      typeof call.arguments === 'string' ? call.arguments : JSON.stringify(call.arguments ?? {});
    let input: unknown = {};
    try {
      input = JSON.parse(argumentsJson);
    } catch {
      input = {};
    }
    return { name: call.name, argumentsJson, input, id: call.id };
  });
  const text = reply.text ?? '';
  const hasText = text !== '' || toolCalls.length === 0;
  let outputTokens = countWords(text);
  for (const call of toolCalls) outputTokens += 1 + countWords(call.argumentsJson);
  return {
    model: reply.model ?? requestModel,
    text,
    hasText,
    toolCalls,
    finish: reply.finish ?? 'stop',
    inputTokens: reply.usage?.inputTokens ?? inputTokens,
    outputTokens: reply.usage?.outputTokens ?? outputTokens,
  };
}
