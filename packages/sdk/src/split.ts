import {
  canonical,
  canonicalWithParts,
  keepingKeyOrder,
  Part,
  type Payload,
  PieceList,
  type SplitPayload,
  withKeyOrder,
} from './json.ts';

// Splitting payloads into content-addressed parts (docs/sdk.md, "Payloads"). An agent resends
// its whole conversation on every model call; storing each request whole would take
// O(turns² × message size) bytes. So the text of the conversation is stored as parts: blobs of
// their own, referenced from the request blob with `{"$blob": "sha256:…"}`. Every distinct text
// is stored once, whatever the number of requests (and representations) that carry it.
//
//   request.messages[i], raw.messages[i], raw.input[i],    every string of MIN_PART_BYTES or more
//   raw.contents[i], raw.system, raw.instructions,         inside them is a part (a message's
//   response.message                                       content, a text block, a tool result)
//   request.tools, raw.tools                               one part each (the same on every call)
//
// Parts are strings rather than whole messages so that the same text shared by differently
// shaped objects is stored once: the normalized message and the provider's raw one (`toolCallId`
// vs `tool_call_id`), a model response's message and the same message resent in the next
// request, an OpenAI string content and an Anthropic text block. What remains inline per message
// is a small shell (role, ids, the pointer), which compresses well.
//
// The request hash is taken of the canonical JSON of the whole request without `raw`, with the
// parts inlined: it does not depend on how (or whether) the request was split.

/** In model payloads, strings shorter than this (as JSON) are inlined: a pointer (83 bytes) plus its `parts` entry cost more. */
export const MIN_PART_BYTES = 128;
/**
 * In every other payload (tool, retriever and chain requests and responses, run input and
 * output), strings of this size or more are parts: a tool's output is fed back to the model in
 * the next request, and is then stored once. Smaller ones are inlined (cheap to repeat, and each
 * part is one more blob write).
 */
export const MIN_PLAIN_PART_BYTES = 1024;

const RAW_CONTENT = new Set(['messages', 'input', 'contents', 'system', 'instructions']);

function isPlainRecord(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return (
    (proto === Object.prototype || proto === null) &&
    typeof (value as { toJSON?: unknown }).toJSON !== 'function'
  );
}

function isSkipped(value: unknown): boolean {
  return value === undefined || typeof value === 'function' || typeof value === 'symbol';
}

/**
 * Parts by text, so that a message resent on every call is one Part: hashed once, held in memory
 * once while queued. Bounded: past MAX_INTERNED_CHARS the table starts over (only a cache).
 */
const interned = new Map<string, Part>();
let internedChars = 0;
const MAX_INTERNED_CHARS = 16 * 1024 * 1024;

export function internPart(text: string): Part {
  let part = interned.get(text);
  if (part === undefined) {
    if (internedChars + text.length > MAX_INTERNED_CHARS) {
      interned.clear();
      internedChars = 0;
    }
    part = new Part(text);
    interned.set(text, part);
    internedChars += text.length;
  }
  return part;
}

function addPartOrText(list: PieceList, text: string): void {
  if (text.length < MIN_PART_BYTES) list.text(text);
  else list.part(internPart(text));
}

/** Model content: canonical JSON with strings of MIN_PART_BYTES or more as interned parts. */
function addContent(list: PieceList, value: unknown): void {
  list.add(canonicalWithParts(value, MIN_PART_BYTES, internPart));
}

/** A payload with its long strings as parts (MIN_PLAIN_PART_BYTES), or its canonical JSON. */
function withPlainParts(value: unknown): Payload {
  // A plain payload's long string (a tool output) rarely repeats verbatim in another plain
  // payload, so parts are not interned here (that would cost a hash-table lookup of the text).
  const pieces = canonicalWithParts(value, MIN_PLAIN_PART_BYTES);
  return typeof pieces === 'string' ? pieces : { body: pieces };
}

type Splitter = (list: PieceList, key: string, value: unknown) => void;

function sortedKeys(record: Record<string, unknown>): string[] {
  return keepingKeyOrder() ? Object.keys(record) : Object.keys(record).sort();
}

/** Writes an object key by key, letting `split` decide how each value is written. */
function writeRecord(list: PieceList, record: Record<string, unknown>, split: Splitter, skip?: string): void {
  list.text('{');
  let first = true;
  for (const key of sortedKeys(record)) {
    if (key === skip) continue;
    const value = record[key];
    if (isSkipped(value)) continue;
    list.text(`${first ? '' : ','}${JSON.stringify(key)}:`);
    first = false;
    split(list, key, value);
  }
  list.text('}');
}

const splitRaw: Splitter = (list, key, value) => {
  if (RAW_CONTENT.has(key)) addContent(list, value);
  else if (key === 'tools' && value !== null) addPartOrText(list, canonical(value));
  else list.text(canonical(value));
};

const splitModelRequest: Splitter = (list, key, value) => {
  if (key === 'messages') addContent(list, value);
  else if (key === 'tools' && value !== null) addPartOrText(list, canonical(value));
  else if (key === 'raw' && isPlainRecord(value)) writeRecord(list, value, splitRaw);
  else list.text(canonical(value));
};

const plainValue: Splitter = (list, _key, value) => list.add(canonicalWithParts(value, MIN_PLAIN_PART_BYTES));

/** Writes to two piece lists at once (the stored body and the hash body share their parts). */
class TeeList extends PieceList {
  readonly #a: PieceList;
  readonly #b: PieceList;
  constructor(a: PieceList, b: PieceList) {
    super();
    this.#a = a;
    this.#b = b;
  }
  override text(text: string): void {
    this.#a.text(text);
    this.#b.text(text);
  }
  override part(part: Part): void {
    this.#a.part(part);
    this.#b.part(part);
  }
}

/**
 * Writes a request's keys to two lists at once: the stored body (everything) and the hash body
 * (everything but `raw`), sharing their parts, so each value is serialized once.
 */
function writeRequest(request: Record<string, unknown>, split: Splitter): SplitPayload {
  const body = new PieceList();
  const hash = new PieceList();
  const both = new TeeList(body, hash);
  both.text('{');
  let firstInBody = true;
  let firstInHash = true;
  for (const key of sortedKeys(request)) {
    const value = request[key];
    if (isSkipped(value)) continue;
    const name = `${JSON.stringify(key)}:`;
    body.text(firstInBody ? name : `,${name}`);
    firstInBody = false;
    if (key === 'raw') {
      split(body, key, value);
    } else {
      hash.text(firstInHash ? name : `,${name}`);
      firstInHash = false;
      split(both, key, value);
    }
  }
  both.text('}');
  return { body: body.done(), hashBody: hash.done() };
}

/**
 * A model request: messages, tools and the big parts of `raw` become parts. When the request
 * has a `raw`, the hash body is the request without it.
 */
export function serializeModelRequest(request: unknown): Payload {
  if (!isPlainRecord(request)) return canonical(request);
  try {
    if (!isSkipped(request.raw)) return writeRequest(request, splitModelRequest);
    const body = new PieceList();
    writeRecord(body, request, splitModelRequest);
    const done = body.done();
    return typeof done === 'string' ? done : { body: done };
  } catch {
    return serializePlainRequest(request);
  }
}

/** A request that is not split; when it has a `raw` key the hash body leaves it out. */
export function serializePlainRequest(value: unknown): Payload {
  if (!isPlainRecord(value) || isSkipped(value.raw)) return withPlainParts(value);
  try {
    return writeRequest(value, plainValue);
  } catch {
    return canonical(value);
  }
}

/** A response (or run input/output): JSON with keys in their own order, long strings as parts. */
export function serializePlain(value: unknown): Payload {
  return withKeyOrder(() => withPlainParts(value));
}

const splitModelResponse: Splitter = (list, key, value) => {
  if (key === 'message') addContent(list, value);
  else list.text(canonical(value));
};

/** A model response (keys in their own order): its message's long strings become parts (they are resent in the next request). */
export function serializeModelResponse(response: unknown): Payload {
  return withKeyOrder(() => writeModelResponse(response));
}

function writeModelResponse(response: unknown): Payload {
  if (!isPlainRecord(response)) return canonical(response);
  try {
    const body = new PieceList();
    writeRecord(body, response, splitModelResponse);
    const done = body.done();
    return typeof done === 'string' ? done : { body: done };
  } catch {
    return canonical(response);
  }
}
