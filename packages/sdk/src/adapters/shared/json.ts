// JSON-safe snapshots of provider objects. Payloads handed to the recorder must be plain JSON;
// provider SDKs hand us class instances, Dates, byte arrays, Errors, Headers and sometimes cycles.
// A snapshot is taken at the moment a request starts or a chunk arrives, so later mutation by
// the agent (appending to its message array, concatenating chunks) never changes the record.
import { isPlainObject as isRecord } from '@rewind/schema';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

const MAX_DEPTH = 64;

/**
 * Binary data is kept as `{"$bytes": "<base64>"}` so that a recorded payload can be turned back
 * into the original bytes (see {@link fromJsonBytes}).
 */
export interface JsonBytes {
  $bytes: string;
}

export function isJsonBytes(value: unknown): value is JsonBytes {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as JsonBytes).$bytes === 'string' &&
    Object.keys(value).length === 1
  );
}

export function fromJsonBytes(value: JsonBytes): Uint8Array {
  return new Uint8Array(Buffer.from(value.$bytes, 'base64'));
}

/**
 * A JSON copy of `value`: like `JSON.parse(JSON.stringify(value))` (toJSON honoured, undefined
 * and functions dropped from objects, non-finite numbers become null), plus bytes as
 * `{"$bytes"}`, Errors as `{name, message, …}`, Maps as objects, Sets as arrays, bigints as
 * strings, and cycles cut with `"[Circular]"`. Never throws.
 */
export function toJsonSafe(value: unknown): Json {
  try {
    return convert(value, new Set(), 0) ?? null;
  } catch {
    return null;
  }
}

function convert(value: unknown, seen: Set<object>, depth: number): Json | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : null;
    case 'bigint':
      return value.toString();
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
  }
  if (value === null) return null;
  const object = value as object;
  if (depth >= MAX_DEPTH) return '[MaxDepth]';
  if (seen.has(object)) return '[Circular]';
  if (object instanceof Uint8Array || object instanceof ArrayBuffer) {
    const bytes = object instanceof ArrayBuffer ? new Uint8Array(object) : object;
    return { $bytes: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64') };
  }
  if (ArrayBuffer.isView(object)) {
    return { $bytes: Buffer.from(object.buffer, object.byteOffset, object.byteLength).toString('base64') };
  }
  if (object instanceof Date) return Number.isNaN(object.getTime()) ? null : object.toISOString();
  seen.add(object);
  try {
    if (Array.isArray(object)) {
      return object.map((item) => convert(item, seen, depth + 1) ?? null);
    }
    if (object instanceof Error) return errorToJson(object, seen, depth);
    const toJSON = (object as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') {
      return convert(toJSON.call(object), seen, depth + 1);
    }
    if (object instanceof Map) {
      const out: JsonObject = {};
      for (const [key, item] of object) {
        const converted = convert(item, seen, depth + 1);
        if (converted !== undefined) out[String(key)] = converted;
      }
      return out;
    }
    if (object instanceof Set) return [...object].map((item) => convert(item, seen, depth + 1) ?? null);
    if (isHeadersLike(object)) {
      const out: JsonObject = {};
      for (const [key, item] of object.entries()) out[key] = item;
      return out;
    }
    const out: JsonObject = {};
    for (const key of Object.keys(object)) {
      const converted = convert((object as Record<string, unknown>)[key], seen, depth + 1);
      if (converted !== undefined) out[key] = converted;
    }
    return out;
  } finally {
    seen.delete(object);
  }
}

function errorToJson(error: Error, seen: Set<object>, depth: number): JsonObject {
  const out: JsonObject = { name: errorType(error), message: String(error.message) };
  for (const key of Object.keys(error)) {
    if (key === 'stack') continue;
    const converted = convert((error as unknown as Record<string, unknown>)[key], seen, depth + 1);
    if (converted !== undefined) out[key] = converted;
  }
  return out;
}

function isHeadersLike(value: object): value is { entries(): IterableIterator<[string, string]> } {
  return typeof Headers !== 'undefined' && value instanceof Headers;
}

/**
 * The most specific name of an error: its `name` unless that is the generic `Error` (the openai
 * client leaves `name` as `Error` on its subclasses), then its constructor's name.
 */
export function errorType(error: unknown): string {
  if (typeof error !== 'object' || error === null) return typeof error;
  const name = (error as { name?: unknown }).name;
  const ctor = (error as { constructor?: { name?: unknown } }).constructor?.name;
  if (typeof name === 'string' && name !== '' && name !== 'Error') return name;
  if (typeof ctor === 'string' && ctor !== '' && ctor !== 'Object') return ctor;
  return typeof name === 'string' && name !== '' ? name : 'Error';
}

/** Parses JSON tool arguments; a string that is not valid JSON is kept as the string. */
export function parseJsonArguments(value: unknown): Json {
  if (typeof value !== 'string') return toJsonSafe(value ?? {});
  if (value.trim() === '') return {};
  try {
    return toJsonSafe(JSON.parse(value));
  } catch {
    return value;
  }
}

/** The value when it is an array, else an empty one: provider bodies are read defensively. */
export function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

export function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export { isRecord };

/** `snake_case` → `camelCase`, for provider parameters kept in the normalized `params`. */
export function camelCase(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** The plain-object items of a list. */
export function records(list: readonly unknown[]): Record<string, unknown>[] {
  return list.filter(isRecord);
}
