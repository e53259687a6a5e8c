// Canonical JSON (RFC 8785, byte-identical to `canonicalJson` of @rewind/schema for every JSON
// value) built for the hot path: strings are concatenated instead of pushed and joined, key
// lists are only sorted when they are not sorted already, and it never throws. Values JSON
// cannot hold are recorded instead of failing the capture:
//
//   NaN, ±Infinity            null (as JSON.stringify does)
//   bigint                    its decimal string
//   Uint8Array, Buffer, …     {"base64": "…", "type": "bytes"}
//   a cycle                   "[Circular]"
//   nesting deeper than 512   "[Too deep]"
//   a getter or toJSON that throws   "[Unserializable: <message>]"
//
// Serialization is synchronous, so the caller may mutate the value afterwards.

/** A piece of a payload stored as a blob of its own and referenced with `{"$blob": …}`. */
export class Part {
  /** Canonical JSON of the part's value. */
  readonly text: string;
  /** `sha256:<hex>` of `text`, filled in off the hot path. */
  hash: string | undefined = undefined;
  /** Whether the capture queue already counts this part's bytes (an interned part is held once). */
  charged = false;
  constructor(text: string) {
    this.text = text;
  }
}

export type Piece = string | Part;

/**
 * A serialized payload: its canonical JSON text, or (when split) a list of texts and parts that
 * concatenate to it, each part replaced by its pointer in the stored blob.
 */
export type Payload = string | SplitPayload;

export interface SplitPayload {
  readonly body: string | Piece[];
  /** What the content hash is taken of when not the whole body (a request without `raw`). */
  readonly hashBody?: string | Piece[];
}

const MAX_DEPTH = 512;
/** Below this depth cycles cannot have formed yet, so ancestors are only searched deeper down. */
const CYCLE_CHECK_DEPTH = 24;

const stack: object[] = [];

// Long strings as parts (see canonicalWithParts). While `partMin` is finite, a string whose JSON
// is at least that long is not written out: it becomes a Part and the text gets a marker, NUL +
// index + NUL. Canonical JSON never holds a raw NUL (JSON.stringify escapes control characters in
// strings and keys), so the markers are unambiguous.
let partMin = Number.POSITIVE_INFINITY;
let partList: Part[] = [];
const newPart = (text: string): Part => new Part(text);
let makePart: (text: string) => Part = newPart;

// Responses, run inputs and outputs keep their keys in the order the code produced them
// (`withKeyOrder`): replay hands them back to the agent, which may depend on that order (it
// JSON.stringify's a tool's output into the next prompt). Requests stay canonical: their hash is
// defined over RFC 8785.
let keepOrder = false;

/** Runs `fn` with object keys written in their own order instead of sorted. */
export function withKeyOrder<T>(fn: () => T): T {
  const saved = keepOrder;
  keepOrder = true;
  try {
    return fn();
  } finally {
    keepOrder = saved;
  }
}

/** Whether keys are being written in their own order (inside withKeyOrder). */
export function keepingKeyOrder(): boolean {
  return keepOrder;
}

function isSorted(keys: string[]): boolean {
  for (let i = 1; i < keys.length; i++) if (keys[i - 1]! > keys[i]!) return false;
  return true;
}

function bytesJson(view: ArrayBufferView): string {
  const base64 = Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('base64');
  return `{"base64":"${base64}","type":"bytes"}`;
}

function writeValue(value: unknown, depth: number): string {
  switch (typeof value) {
    case 'string': {
      if (value.length * 6 + 2 < partMin) return JSON.stringify(value);
      const text = JSON.stringify(value);
      if (text.length < partMin) return text;
      partList.push(makePart(text));
      return `\u0000${partList.length - 1}\u0000`;
    }
    case 'number':
      return Number.isFinite(value) ? (value === 0 ? '0' : String(value)) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      return `"${value.toString()}"`;
    case 'object':
      return value === null ? 'null' : writeObject(value, depth);
    default:
      return 'null';
  }
}

function writeObject(value: object, depth: number): string {
  if (depth >= MAX_DEPTH) return '"[Too deep]"';
  if (depth >= CYCLE_CHECK_DEPTH && stack.includes(value)) return '"[Circular]"';
  if (ArrayBuffer.isView(value)) return bytesJson(value);
  if (value instanceof ArrayBuffer) return bytesJson(new Uint8Array(value));
  const withToJson = value as { toJSON?: (key?: string) => unknown };
  if (typeof withToJson.toJSON === 'function') {
    const replaced = withToJson.toJSON();
    return typeof replaced === 'object' && replaced === value ? '{}' : writeValue(replaced, depth + 1);
  }
  stack.push(value);
  try {
    if (Array.isArray(value)) {
      const length = value.length;
      if (length === 0) return '[]';
      let out = '[';
      for (let i = 0; i < length; i++) {
        if (i > 0) out += ',';
        const item: unknown = value[i];
        out +=
          item === undefined || typeof item === 'function' || typeof item === 'symbol'
            ? 'null'
            : writeValue(item, depth + 1);
      }
      return `${out}]`;
    }
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record);
    if (!keepOrder && !isSorted(keys)) keys.sort();
    let out = '{';
    let first = true;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const item = record[key];
      if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
      if (first) first = false;
      else out += ',';
      out += `${JSON.stringify(key)}:${writeValue(item, depth + 1)}`;
    }
    return `${out}}`;
  } finally {
    stack.pop();
  }
}

/** Canonical JSON of `value`; never throws (see the table at the top of this file). */
export function canonical(value: unknown): string {
  const depth = stack.length;
  try {
    return value === undefined ? 'null' : writeValue(value, 0);
  } catch (error) {
    stack.length = depth;
    return JSON.stringify(`[Unserializable: ${error instanceof Error ? error.message : String(error)}]`);
  }
}

/**
 * Canonical JSON of `value` in which every string whose JSON is `min` characters or more is a
 * Part (made by `make`, e.g. an interning lookup): a plain string when there is none.
 */
export function canonicalWithParts(
  value: unknown,
  min: number,
  make: (text: string) => Part = newPart,
): string | Piece[] {
  const savedMin = partMin;
  const savedList = partList;
  const savedMake = makePart;
  partMin = min;
  partList = [];
  makePart = make;
  let text: string;
  let parts: Part[];
  try {
    text = canonical(value);
    parts = partList;
  } finally {
    partMin = savedMin;
    partList = savedList;
    makePart = savedMake;
  }
  if (parts.length === 0 || text.indexOf('\u0000') < 0) return text;
  const pieces: Piece[] = [];
  let at = 0;
  for (;;) {
    const start = text.indexOf('\u0000', at);
    if (start < 0) break;
    const end = text.indexOf('\u0000', start + 1);
    if (start > at) pieces.push(text.slice(at, start));
    pieces.push(parts[Number(text.slice(start + 1, end))]!);
    at = end + 1;
  }
  if (at < text.length) pieces.push(text.slice(at));
  return pieces;
}

/** Builds a piece list, merging adjacent texts. */
export class PieceList {
  readonly pieces: Piece[] = [];
  #text = '';
  text(text: string): void {
    this.#text += text;
  }
  part(part: Part): void {
    if (this.#text !== '') this.pieces.push(this.#text);
    this.#text = '';
    this.pieces.push(part);
  }
  /** Appends a text or a piece list. */
  add(value: string | Piece[]): void {
    if (typeof value === 'string') {
      this.text(value);
      return;
    }
    for (const piece of value) {
      if (typeof piece === 'string') this.text(piece);
      else this.part(piece);
    }
  }
  /** The pieces, or a single string when there is no part. */
  done(): string | Piece[] {
    if (this.pieces.length === 0) return this.#text;
    if (this.#text !== '') this.pieces.push(this.#text);
    this.#text = '';
    return this.pieces;
  }
}

/** The full canonical JSON of a piece list (parts inlined). */
export function inlineText(body: string | Piece[]): string {
  if (typeof body === 'string') return body;
  let out = '';
  for (const piece of body) out += typeof piece === 'string' ? piece : piece.text;
  return out;
}
