import type { IncomingMessage } from 'node:http';
import { readBody, requireMediaType } from './body.ts';
import { badRequest } from './http-error.ts';

// JSON request bodies: media type, size, nesting depth (checked on the text before parsing, in a
// loop without recursion, so a body of a million `[` costs one pass and no stack), then parsing.

/** The characters that matter for depth: brackets, and quotes (strings are skipped whole). */
const STRUCTURAL = /[[\]{}"]/g;

/** True when `text` (JSON) nests objects/arrays deeper than `max`. Brackets inside strings do not count. */
export function jsonDepthExceeds(text: string, max: number): boolean {
  // The regex finds the next structural character natively (≈ 2× faster than a loop over every
  // character); a string is skipped with indexOf to its closing quote, one not escaped by an odd
  // number of backslashes.
  let depth = 0;
  STRUCTURAL.lastIndex = 0;
  for (let match = STRUCTURAL.exec(text); match !== null; match = STRUCTURAL.exec(text)) {
    const at = match.index;
    const c = text.charCodeAt(at);
    if (c === 0x22) {
      let end = at;
      for (;;) {
        end = text.indexOf('"', end + 1);
        if (end === -1) return false; // unterminated string: JSON.parse reports it
        let slashes = 0;
        while (text.charCodeAt(end - 1 - slashes) === 0x5c) slashes++;
        if (slashes % 2 === 0) break;
      }
      STRUCTURAL.lastIndex = end + 1;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else {
      depth--;
    }
  }
  return false;
}

export function parseJson(bytes: Buffer, maxDepth: number, what: string): unknown {
  const text = bytes.toString('utf8');
  if (jsonDepthExceeds(text, maxDepth)) {
    throw badRequest(
      'too_deep',
      `${what} nests JSON objects and arrays deeper than ${maxDepth} levels: flatten the payload (large values belong in blobs)`,
      { limit: maxDepth },
    );
  }
  try {
    return JSON.parse(text);
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

export { isPlainObject } from '@rewind/schema';
