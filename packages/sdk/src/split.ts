import { canonical, Part, type Payload, PieceList, type SplitPayload } from './json.ts';

// Splitting payloads into content-addressed parts (docs/sdk.md, "Payloads"). An agent resends
// its whole conversation on every model call; storing each request whole would take
// O(turns²) bytes. So each message of a model request is serialized on its own and stored as
// a blob of its own, and the request blob holds `{"$blob": "sha256:…"}` pointers to them:
// every distinct message is stored once, whatever the number of requests that carry it.
//
//   request.messages[i]      one part per message
//   request.tools            one part (the tool definitions rarely change within a run)
//   request.raw.messages[i], raw.input[i], raw.contents[i]   one part per item
//   request.raw.tools, raw.system, raw.instructions          one part each
//   response.message         one part (it comes back as a message of the next request)
//
// The request hash is taken of the canonical JSON of the whole request without `raw`, with the
// parts inlined: it does not depend on how (or whether) the request was split.

/** Parts smaller than this are inlined: a pointer (83 bytes) plus its `parts` entry cost more. */
export const MIN_PART_BYTES = 128;

const RAW_ITEM_ARRAYS = new Set(['messages', 'input', 'contents']);
const RAW_WHOLE_PARTS = new Set(['tools', 'system', 'instructions']);

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

function addPartOrText(list: PieceList, text: string): void {
  if (text.length >= MIN_PART_BYTES) list.part(new Part(text));
  else list.text(text);
}

function addItems(list: PieceList, items: readonly unknown[]): void {
  list.text('[');
  for (let i = 0; i < items.length; i++) {
    if (i > 0) list.text(',');
    const item = items[i];
    addPartOrText(list, isSkipped(item) ? 'null' : canonical(item));
  }
  list.text(']');
}

type Splitter = (list: PieceList, key: string, value: unknown) => void;

function sortedKeys(record: Record<string, unknown>): string[] {
  return Object.keys(record).sort();
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
  if (RAW_ITEM_ARRAYS.has(key) && Array.isArray(value)) addItems(list, value);
  else if (RAW_WHOLE_PARTS.has(key) && value !== null) addPartOrText(list, canonical(value));
  else list.text(canonical(value));
};

const splitModelRequest: Splitter = (list, key, value) => {
  if (key === 'messages' && Array.isArray(value)) addItems(list, value);
  else if (key === 'tools' && value !== null) addPartOrText(list, canonical(value));
  else if (key === 'raw' && isPlainRecord(value)) writeRecord(list, value, splitRaw);
  else list.text(canonical(value));
};

const plainValue: Splitter = (list, _key, value) => list.text(canonical(value));

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
  if (!isPlainRecord(value) || isSkipped(value.raw)) return canonical(value);
  try {
    return writeRequest(value, plainValue);
  } catch {
    return canonical(value);
  }
}

/** A response (or run input/output) that is not split: its canonical JSON. */
export function serializePlain(value: unknown): Payload {
  return canonical(value);
}

const splitModelResponse: Splitter = (list, key, value) => {
  if (key === 'message' && value !== null && typeof value === 'object') addPartOrText(list, canonical(value));
  else list.text(canonical(value));
};

/** A model response: its message becomes a part (it is resent as part of the next request). */
export function serializeModelResponse(response: unknown): Payload {
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
