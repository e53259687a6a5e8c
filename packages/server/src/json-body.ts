import type { IncomingMessage } from 'node:http';
import { readBody, requireMediaType } from './body.ts';
import { badRequest } from './http-error.ts';

// JSON request bodies: media type, size, nesting depth (checked on the bytes before parsing, in a
// loop without recursion, so a body of a million `[` costs one pass and no stack), then parsing.

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** True when `bytes` (JSON text) nests objects/arrays deeper than `max`. Strings are skipped. */
export function jsonDepthExceeds(bytes: Uint8Array, max: number): boolean {
  let depth = 0;
  const length = bytes.length;
  for (let i = 0; i < length; i++) {
    const c = bytes[i]!;
    if (c === QUOTE) {
      // Jump to the closing quote: one not preceded by an odd number of backslashes.
      for (;;) {
        const end = bytes.indexOf(QUOTE, i + 1);
        if (end === -1) return false; // unterminated string: JSON.parse reports it
        let slashes = 0;
        while (bytes[end - 1 - slashes] === BACKSLASH) slashes++;
        i = end;
        if (slashes % 2 === 0) break;
      }
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return false;
}

export function parseJson(bytes: Buffer, maxDepth: number, what: string): unknown {
  if (jsonDepthExceeds(bytes, maxDepth)) {
    throw badRequest(
      'too_deep',
      `${what} nests JSON objects and arrays deeper than ${maxDepth} levels: flatten the payload (large values belong in blobs)`,
      { limit: maxDepth },
    );
  }
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw badRequest('invalid_json', `${what} is not valid JSON: ${(error as Error).message}`);
  }
}

export async function readJson(
  req: IncomingMessage,
  options: { maxBytes: number; maxDepth: number; what: string },
): Promise<unknown> {
  requireMediaType(req, 'application/json', options.what);
  const bytes = await readBody(req, options.maxBytes, options.what);
  return parseJson(bytes, options.maxDepth, options.what);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
