// Field paths (docs/redaction.md, "Paths"): where a value sits in a run, and the patterns of
// policy rules that pick fields out.
//
//   run.input   run.output   run.error.message   run.attributes.user
//   model.request.messages[*].content          any model step's request messages
//   tool:crm.lookup.response.output.email      one tool, by name (names may hold dots)
//   tool:crm.*.request.arguments.**            `*` one key or index, `**` any depth
//
// The first segment is the scope: `run`, or a step kind (`model`, `tool`, `retriever`,
// `chain`) with an optional `:name` (a glob: `*` matches any run of characters). A step name
// ends at the first `.request`, `.response`, `.error` or `.attributes`.

export const STEP_KINDS = ['model', 'tool', 'retriever', 'chain'] as const;
const STEP_PARTS = ['request', 'response', 'error', 'attributes'];
const RUN_PARTS = ['input', 'output', 'error', 'attributes'];

export type Segment = string | number;

/** A concrete place: the scope (`run`, `tool:crm.lookup`, or '' for none) and the keys below it. */
export interface Location {
  scope: { kind: string; name?: string | undefined } | undefined;
  segments: Segment[];
}

type PatternSegment = { key: string } | { index: number } | { any: true } | { deep: true };

export interface PathPattern {
  source: string;
  kind: string;
  name: RegExp | undefined;
  segments: PatternSegment[];
}

/** Why a path could not be parsed; the caller adds where it came from. */
export class PathSyntaxError extends Error {
  override readonly name = 'PathSyntaxError';
}

function splitScope(path: string): { kind: string; name: string | undefined; rest: string } {
  const colon = path.indexOf(':');
  const dot = path.search(/[.[]/);
  if (colon !== -1 && (dot === -1 || colon < dot)) {
    const kind = path.slice(0, colon);
    const after = path.slice(colon + 1);
    const end = after.search(new RegExp(`\\.(?:${STEP_PARTS.join('|')})(?=$|[.[])`));
    const name = end === -1 ? after : after.slice(0, end);
    return { kind, name, rest: end === -1 ? '' : after.slice(end) };
  }
  const end = dot === -1 ? path.length : dot;
  return { kind: path.slice(0, end), name: undefined, rest: path.slice(end) };
}

function parseSegments(rest: string, allowWildcards: boolean): PatternSegment[] {
  const segments: PatternSegment[] = [];
  let i = 0;
  while (i < rest.length) {
    const char = rest[i];
    if (char === '.') {
      const match = /^[^.[\]]+/.exec(rest.slice(i + 1));
      if (match === null) throw new PathSyntaxError(`expected a key after '.' at character ${i + 1}`);
      const key = match[0];
      if (key === '**' || key === '*') {
        if (!allowWildcards) throw new PathSyntaxError(`'${key}' is only allowed in rule paths`);
        segments.push(key === '**' ? { deep: true } : { any: true });
      } else segments.push({ key });
      i += 1 + key.length;
    } else if (char === '[') {
      const close = rest.indexOf(']', i);
      if (close === -1) throw new PathSyntaxError(`'[' at character ${i + 1} is never closed`);
      const inner = rest.slice(i + 1, close);
      if (inner === '*') {
        if (!allowWildcards) throw new PathSyntaxError(`'[*]' is only allowed in rule paths`);
        segments.push({ any: true });
      } else if (/^\d+$/.test(inner)) segments.push({ index: Number(inner) });
      else if (/^"(?:[^"\\]|\\.)*"$/.test(inner)) segments.push({ key: JSON.parse(inner) as string });
      else
        throw new PathSyntaxError(
          `'[${inner}]' must be [*], an index such as [0], or a quoted key such as ["a.b"]`,
        );
      i = close + 1;
    } else throw new PathSyntaxError(`unexpected '${char}' at character ${i + 1}`);
  }
  return segments;
}

function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`);
}

/** Parses a rule's path; throws PathSyntaxError saying what is wrong. */
export function parsePathPattern(source: string): PathPattern {
  if (source.trim() !== source || source === '')
    throw new PathSyntaxError('must be a non-empty path without spaces around it');
  const { kind, name, rest } = splitScope(source);
  const kinds = ['run', ...STEP_KINDS];
  if (!kinds.includes(kind)) {
    throw new PathSyntaxError(
      `must start with one of ${kinds.join(', ')} (or kind:name, e.g. tool:crm.lookup), not '${kind}'`,
    );
  }
  if (kind === 'run' && name !== undefined) throw new PathSyntaxError(`'run' takes no name`);
  if (name === '') throw new PathSyntaxError(`'${kind}:' needs a step name, e.g. ${kind}:my.${kind}`);
  const segments = parseSegments(rest, true);
  const first = segments[0];
  const parts = kind === 'run' ? RUN_PARTS : STEP_PARTS;
  if (first === undefined || !('key' in first) || !parts.includes(first.key)) {
    throw new PathSyntaxError(
      `must name a part of the ${kind === 'run' ? 'run' : 'step'} after '${kind}${name === undefined ? '' : `:${name}`}': one of ${parts.join(', ')}`,
    );
  }
  return { source, kind, name: name === undefined ? undefined : globToRegExp(name), segments };
}

/** Parses where a value sits (no wildcards): `run.input`, `tool:crm.lookup.response`, or '' for nowhere in particular. */
export function parseLocation(path: string): Location {
  if (path === '') return { scope: undefined, segments: [] };
  const { kind, name, rest } = splitScope(path);
  const segments = parseSegments(rest, false).map((segment) =>
    'key' in segment ? segment.key : 'index' in segment ? segment.index : '',
  );
  return { scope: name === undefined ? { kind } : { kind, name }, segments };
}

export function matchesPattern(
  pattern: PathPattern,
  location: Location,
  segments: readonly Segment[],
): boolean {
  const scope = location.scope;
  if (scope === undefined || scope.kind !== pattern.kind) return false;
  if (pattern.name !== undefined && (scope.name === undefined || !pattern.name.test(scope.name)))
    return false;
  return matchSegments(pattern.segments, 0, segments, 0);
}

function matchSegments(pattern: PatternSegment[], pi: number, path: readonly Segment[], ci: number): boolean {
  if (pi === pattern.length) return ci === path.length;
  const head = pattern[pi]!;
  if ('deep' in head) {
    for (let skip = ci; skip <= path.length; skip++)
      if (matchSegments(pattern, pi + 1, path, skip)) return true;
    return false;
  }
  if (ci === path.length) return false;
  const segment = path[ci]!;
  const ok =
    'any' in head ||
    ('key' in head &&
      (segment === head.key || (typeof segment === 'number' && String(segment) === head.key))) ||
    ('index' in head && segment === head.index);
  return ok && matchSegments(pattern, pi + 1, path, ci + 1);
}

/** A location and the keys below it as one path string, e.g. `model:openai.chat.request.messages[0].content`. */
export function formatPath(location: Location, segments: readonly Segment[]): string {
  let out =
    location.scope === undefined
      ? ''
      : location.scope.name === undefined
        ? location.scope.kind
        : `${location.scope.kind}:${location.scope.name}`;
  for (const segment of segments) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}
