import type { FieldDiff } from './errors.ts';

// The field-level difference of two JSON values, as JSON pointers: what a divergence report
// shows (SPEC §9: "a field-level diff of the two requests"). Arrays are compared by index.

const MAX_FIELDS = 100;

function escapeToken(token: string): string {
  return token.replaceAll('~', '~0').replaceAll('/', '~1');
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

export function diffJson(recorded: unknown, replayed: unknown): FieldDiff[] {
  const out: FieldDiff[] = [];
  walk(recorded, replayed, '', out);
  return out;
}

function walk(a: unknown, b: unknown, path: string, out: FieldDiff[]): void {
  if (out.length >= MAX_FIELDS) return;
  const ka = kindOf(a);
  const kb = kindOf(b);
  if (ka !== kb || (ka !== 'object' && ka !== 'array')) {
    if (ka === kb && a === b) return;
    const field: FieldDiff = { path };
    if (a !== undefined) field.recorded = a;
    if (b !== undefined) field.replayed = b;
    out.push(field);
    return;
  }
  if (ka === 'array') {
    const x = a as unknown[];
    const y = b as unknown[];
    for (let i = 0; i < Math.max(x.length, y.length); i++) walk(x[i], y[i], `${path}/${i}`, out);
    return;
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(x), ...Object.keys(y)])].sort();
  for (const key of keys) walk(x[key], y[key], `${path}/${escapeToken(key)}`, out);
}
