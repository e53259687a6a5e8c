import { ReplayError } from './errors.ts';

// JSON Pointer (RFC 6901) sets, for fork edits: `/messages/0/content`, `/params/temperature`,
// `/arguments/city`. A set replaces the value at the pointer; its parent must exist (an object
// gains the key, an array index may be its length to append, `-` appends).

export function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/'))
    throw new ReplayError(
      'invalid_fork',
      `"${pointer}" is not a JSON pointer: it must be empty or start with "/" (e.g. /messages/0/content)`,
    );
  return pointer
    .slice(1)
    .split('/')
    .map((token) => {
      if (/~[^01]|~$/.test(token))
        throw new ReplayError(
          'invalid_fork',
          `"${pointer}" is not a JSON pointer: "~" must be followed by 0 or 1`,
        );
      return token.replaceAll('~1', '/').replaceAll('~0', '~');
    });
}

function clone<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

/** A copy of `document` with `value` set at `pointer`; a clear error when the pointer does not fit. */
export function setPointer(document: unknown, pointer: string, value: unknown): unknown {
  const tokens = parsePointer(pointer);
  if (tokens.length === 0) return clone(value);
  const root = clone(document);
  let node: unknown = root;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    const last = i === tokens.length - 1;
    const at = `/${tokens
      .slice(0, i)
      .map((t) => t.replaceAll('~', '~0').replaceAll('/', '~1'))
      .join('/')}`;
    if (Array.isArray(node)) {
      const index = token === '-' ? node.length : /^(0|[1-9]\d*)$/.test(token) ? Number(token) : -1;
      if (index < 0 || index > node.length || (!last && index >= node.length))
        throw new ReplayError(
          'invalid_fork',
          `the pointer ${pointer} does not fit the request: ${at === '/' ? 'the request' : at} is an array of ${node.length} item(s) and "${token}" is not an index in it`,
        );
      if (last) node[index] = clone(value);
      else node = node[index];
    } else if (typeof node === 'object' && node !== null) {
      const record = node as Record<string, unknown>;
      if (last) record[token] = clone(value);
      else if (!(token in record) || typeof record[token] !== 'object' || record[token] === null)
        throw new ReplayError(
          'invalid_fork',
          `the pointer ${pointer} does not fit the request: ${at === '/' ? '' : at}/${token} does not exist or is not an object or array`,
        );
      else node = record[token];
    } else {
      throw new ReplayError(
        'invalid_fork',
        `the pointer ${pointer} does not fit the request: ${at} is not an object or array`,
      );
    }
  }
  return root;
}
