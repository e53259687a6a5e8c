// Canonical JSON per RFC 8785 (JCS): object keys sorted by UTF-16 code units, no whitespace,
// numbers in ECMAScript shortest form, strings escaped as JSON.stringify does. The request
// hash of every step is taken over this form, so it must not depend on key order.

export class CanonicalJsonError extends Error {
  override readonly name = 'CanonicalJsonError';
  readonly code = 'not_json';
  readonly path: string;
  constructor(path: string, what: string) {
    super(
      `${path === '' ? 'value' : path}: ${what} cannot be represented in JSON; convert it to a string, number or plain object first`,
    );
    this.path = path;
  }
}

function write(value: unknown, path: string, out: string[]): void {
  switch (typeof value) {
    case 'string':
      out.push(JSON.stringify(value));
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new CanonicalJsonError(path, String(value));
      out.push(Object.is(value, -0) ? '0' : String(value));
      return;
    case 'boolean':
      out.push(value ? 'true' : 'false');
      return;
    case 'object': {
      if (value === null) {
        out.push('null');
        return;
      }
      const withToJson = value as { toJSON?: () => unknown };
      if (typeof withToJson.toJSON === 'function') {
        write(withToJson.toJSON(), path, out);
        return;
      }
      if (Array.isArray(value)) {
        out.push('[');
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out.push(',');
          const item = value[i];
          // Like JSON.stringify: holes, undefined and functions inside arrays become null.
          if (item === undefined || typeof item === 'function' || typeof item === 'symbol') out.push('null');
          else write(item, `${path}[${i}]`, out);
        }
        out.push(']');
        return;
      }
      if (ArrayBuffer.isView(value)) throw new CanonicalJsonError(path, 'binary data');
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record).sort();
      out.push('{');
      let first = true;
      for (const key of keys) {
        const item = record[key];
        if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
        if (!first) out.push(',');
        first = false;
        out.push(JSON.stringify(key), ':');
        write(item, path === '' ? key : `${path}.${key}`, out);
      }
      out.push('}');
      return;
    }
    case 'bigint':
      throw new CanonicalJsonError(path, 'a bigint');
    default:
      throw new CanonicalJsonError(path, `a ${typeof value}`);
  }
}

/** Serializes `value` as RFC 8785 canonical JSON. Throws `CanonicalJsonError` for non-JSON values. */
export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  write(value, '', out);
  return out.join('');
}
