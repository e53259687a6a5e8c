import type {
  Message,
  ModelRequest,
  ModelResponse,
  RetrievedDocument,
  RetrieverRequest,
  RetrieverResponse,
} from '@rewind/schema';
import { isPlainObject as isRecord } from '@rewind/schema';

// The payloads the generic wrappers record (SPEC §4 shapes). Framework adapters build their own.

/** The arguments of a call as one value: the single argument, or the array when there are several (null for none). */
export function argumentsValue(args: readonly unknown[]): unknown {
  if (args.length === 0) return null;
  const value = args.length === 1 ? args[0] : args;
  return value === undefined ? null : value;
}

export function toolRequest(name: string, args: readonly unknown[]): { name: string; arguments: unknown } {
  return { name, arguments: argumentsValue(args) };
}

export function outputResponse(result: unknown): { output: unknown } {
  return { output: result === undefined ? null : result };
}

export function chainRequest(args: readonly unknown[]): { input: unknown } {
  return { input: argumentsValue(args) };
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);

function asMessages(value: unknown): Message[] | undefined {
  if (!Array.isArray(value) || value.length === 0) return undefined;
  const messages: Message[] = [];
  for (const item of value) {
    if (!isRecord(item) || typeof item.role !== 'string' || !ROLES.has(item.role)) return undefined;
    messages.push(item as unknown as Message);
  }
  return messages;
}

/**
 * The generic model request: messages when the call's first argument is a prompt string, an
 * array of `{role, content}` messages, or an object with such a `messages` array; the call's
 * arguments are kept in `raw`. When no messages can be found the arguments go into `params`
 * instead, so that the request hash (which leaves `raw` out) still tells calls apart.
 */
export function genericModelRequest(name: string, args: readonly unknown[]): ModelRequest {
  const first = args[0];
  let messages: Message[] | undefined;
  if (typeof first === 'string') messages = [{ role: 'user', content: first }];
  else messages = asMessages(first) ?? (isRecord(first) ? asMessages(first.messages) : undefined);
  if (messages === undefined)
    return {
      provider: 'custom',
      model: name,
      messages: [],
      params: { arguments: argumentsValue(args) } as never,
    };
  return {
    provider: 'custom',
    model: name,
    messages,
    params: {},
    raw: { arguments: argumentsValue(args) as never },
  };
}

/** The generic model response: a string result is the assistant's text; anything else is kept in `raw`. */
export function genericModelResponse(name: string, result: unknown): ModelResponse {
  if (typeof result === 'string')
    return { model: name, message: { role: 'assistant', content: result }, finishReason: 'stop', usage: {} };
  return {
    model: name,
    message: { role: 'assistant', content: null },
    finishReason: 'unknown',
    usage: {},
    raw: { output: (result === undefined ? null : result) as never },
  };
}

function pickNumber(record: Record<string, unknown>, keys: readonly string[]): number | undefined {
  for (const key of keys) {
    const value = record[key];
    if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return value;
  }
  return undefined;
}

/** `{query, topK?, filters?}` from `(query, options?)` or `({query, …})`; other calls keep their arguments in `raw`. */
export function genericRetrieverRequest(args: readonly unknown[]): RetrieverRequest {
  const first = args[0];
  let query: string | undefined;
  let options: Record<string, unknown> | undefined;
  let understood = 1;
  if (typeof first === 'string') {
    query = first;
    if (isRecord(args[1])) options = args[1];
    else if (typeof args[1] === 'number') options = { topK: args[1] };
    if (options !== undefined) understood = 2;
  } else if (isRecord(first) && typeof first.query === 'string') {
    query = first.query;
    options = first;
  }
  if (query === undefined) return { query: '', raw: { arguments: argumentsValue(args) as never } };
  const request: RetrieverRequest = { query };
  if (options !== undefined) {
    const topK = pickNumber(options, ['topK', 'k', 'limit', 'top_k']);
    if (topK !== undefined) request.topK = topK;
    const filters = options.filters ?? options.filter;
    if (filters !== undefined) request.filters = filters as never;
  }
  if (args.length > understood) request.raw = { arguments: argumentsValue(args) as never };
  return request;
}

function contentOf(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined || value === null) return '';
  try {
    return JSON.stringify(value) ?? '';
  } catch {
    return String(value);
  }
}

function toDocument(item: unknown, index: number): RetrievedDocument {
  let score: number | undefined;
  if (Array.isArray(item) && item.length === 2 && typeof item[1] === 'number') {
    score = item[1];
    item = item[0];
  }
  if (!isRecord(item)) {
    const doc: RetrievedDocument = { id: String(index), content: contentOf(item) };
    if (score !== undefined) doc.score = score;
    return doc;
  }
  const metadata = isRecord(item.metadata) ? item.metadata : undefined;
  const id = item.id ?? metadata?.id;
  const doc: RetrievedDocument = {
    id: typeof id === 'string' || typeof id === 'number' ? String(id) : String(index),
    content: contentOf(item.content ?? item.pageContent ?? item.text ?? item.document),
  };
  const itemScore = item.score ?? item.similarity ?? item.relevanceScore;
  if (score !== undefined) doc.score = score;
  else if (typeof itemScore === 'number' && Number.isFinite(itemScore)) doc.score = itemScore;
  if (metadata !== undefined) doc.metadata = metadata as never;
  return doc;
}

function documentList(result: unknown): unknown[] | undefined {
  if (Array.isArray(result)) return result;
  if (!isRecord(result)) return undefined;
  for (const key of ['documents', 'docs', 'results', 'matches', 'items']) {
    if (Array.isArray(result[key])) return result[key] as unknown[];
  }
  return undefined;
}

/**
 * Documents normalized from common shapes: an array (or `{documents|docs|results|matches}`) of
 * strings, `{id, content|pageContent|text, score, metadata}` objects or `[document, score]`
 * pairs. The result itself is kept in `raw.output` (replay hands it back as it was).
 */
export function genericRetrieverResponse(result: unknown): RetrieverResponse {
  const list = documentList(result) ?? [];
  return {
    documents: list.map(toDocument),
    raw: { output: (result === undefined ? null : result) as never },
  };
}
