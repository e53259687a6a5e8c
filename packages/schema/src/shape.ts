// A tiny schema language: the single source of truth from which the TypeScript types are
// inferred, events are validated (with the offending field named), and the published JSON
// Schema is generated. Zero dependencies on purpose (SPEC §3: schema depends on nothing).

export interface Issue {
  /** Where the problem is, e.g. `forkOf.edit.set[0].pointer`; `` for the value itself. */
  path: string;
  message: string;
}

type JsonSchema = Record<string, unknown>;

export abstract class Shape<T> {
  declare readonly _type: T;
  description: string | undefined;
  /** Appends issues for `value` at `path`; returns nothing so the hot path allocates little. */
  abstract check(value: unknown, path: string, issues: Issue[]): void;
  /** The fast path: true when `value` is valid, without building paths or issues. */
  abstract test(value: unknown): boolean;
  abstract toJsonSchema(refs: RefResolver): JsonSchema;
  describe(text: string): this {
    this.description = text;
    return this;
  }
}

export type Infer<S> = S extends Shape<infer T> ? T : never;

/** Named shapes become `$defs` entries in the generated JSON Schema. */
export interface RefResolver {
  ref(shape: Shape<unknown>): JsonSchema | undefined;
}

const MAX_ISSUES = 20;

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string')
    return value.length > 40 ? `a string of length ${value.length}` : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return typeof value === 'object' ? 'an object' : typeof value;
}

function push(issues: Issue[], path: string, message: string): void {
  if (issues.length < MAX_ISSUES) issues.push({ path, message });
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function withDescription(shape: Shape<unknown>, schema: JsonSchema): JsonSchema {
  return shape.description === undefined ? schema : { description: shape.description, ...schema };
}

class StringShape extends Shape<string> {
  readonly options: { minLength?: number; maxLength?: number; pattern?: RegExp; patternName?: string };
  constructor(
    options: { minLength?: number; maxLength?: number; pattern?: RegExp; patternName?: string } = {},
  ) {
    super();
    this.options = options;
  }
  check(value: unknown, path: string, issues: Issue[]): void {
    if (typeof value !== 'string')
      return push(issues, path, `expected a string, got ${describeValue(value)}`);
    const { minLength, maxLength, pattern, patternName } = this.options;
    if (minLength !== undefined && value.length < minLength)
      return push(
        issues,
        path,
        minLength === 1 ? 'must not be empty' : `must be at least ${minLength} characters`,
      );
    if (maxLength !== undefined && value.length > maxLength)
      return push(issues, path, `must be at most ${maxLength} characters, got ${value.length}`);
    if (pattern !== undefined && !pattern.test(value))
      push(
        issues,
        path,
        `expected ${patternName ?? `a string matching ${pattern.source}`}, got ${describeValue(value)}`,
      );
  }
  test(value: unknown): boolean {
    if (typeof value !== 'string') return false;
    const { minLength, maxLength, pattern } = this.options;
    return (
      (minLength === undefined || value.length >= minLength) &&
      (maxLength === undefined || value.length <= maxLength) &&
      (pattern === undefined || pattern.test(value))
    );
  }
  toJsonSchema(): JsonSchema {
    const { minLength, maxLength, pattern } = this.options;
    return withDescription(this, {
      type: 'string',
      ...(minLength !== undefined && { minLength }),
      ...(maxLength !== undefined && { maxLength }),
      ...(pattern !== undefined && { pattern: pattern.source }),
    });
  }
}

class NumberShape extends Shape<number> {
  readonly options: { integer?: boolean; minimum?: number };
  constructor(options: { integer?: boolean; minimum?: number } = {}) {
    super();
    this.options = options;
  }
  check(value: unknown, path: string, issues: Issue[]): void {
    const { integer, minimum } = this.options;
    if (typeof value !== 'number' || !Number.isFinite(value))
      return push(
        issues,
        path,
        `expected ${integer ? 'an integer' : 'a finite number'}, got ${describeValue(value)}`,
      );
    if (integer && !Number.isSafeInteger(value))
      return push(issues, path, `expected an integer, got ${value}`);
    if (minimum !== undefined && value < minimum) push(issues, path, `must be ≥ ${minimum}, got ${value}`);
  }
  test(value: unknown): boolean {
    if (typeof value !== 'number') return false;
    const { integer, minimum } = this.options;
    return (
      (integer ? Number.isSafeInteger(value) : Number.isFinite(value)) &&
      (minimum === undefined || value >= minimum)
    );
  }
  toJsonSchema(): JsonSchema {
    return withDescription(this, {
      type: this.options.integer ? 'integer' : 'number',
      ...(this.options.minimum !== undefined && { minimum: this.options.minimum }),
    });
  }
}

class BooleanShape extends Shape<boolean> {
  check(value: unknown, path: string, issues: Issue[]): void {
    if (typeof value !== 'boolean') push(issues, path, `expected true or false, got ${describeValue(value)}`);
  }
  test(value: unknown): boolean {
    return typeof value === 'boolean';
  }
  toJsonSchema(): JsonSchema {
    return withDescription(this, { type: 'boolean' });
  }
}

class EnumShape<T extends string | number> extends Shape<T> {
  readonly values: readonly T[];
  constructor(values: readonly T[]) {
    super();
    this.values = values;
  }
  check(value: unknown, path: string, issues: Issue[]): void {
    if (!this.values.includes(value as T)) {
      const allowed = this.values.map((v) => JSON.stringify(v)).join(', ');
      push(
        issues,
        path,
        `expected ${this.values.length === 1 ? allowed : `one of ${allowed}`}, got ${describeValue(value)}`,
      );
    }
  }
  test(value: unknown): boolean {
    return this.values.includes(value as T);
  }
  toJsonSchema(): JsonSchema {
    return withDescription(
      this,
      this.values.length === 1 ? { const: this.values[0] } : { enum: [...this.values] },
    );
  }
}

/** Any JSON value (payload bodies whose structure belongs to someone else, e.g. raw provider bodies). */
class JsonShape extends Shape<unknown> {
  check(): void {}
  test(): boolean {
    return true;
  }
  toJsonSchema(): JsonSchema {
    return withDescription(this, {});
  }
}

class ArrayShape<T> extends Shape<T[]> {
  readonly items: Shape<T>;
  readonly options: { maxItems?: number };
  constructor(items: Shape<T>, options: { maxItems?: number } = {}) {
    super();
    this.items = items;
    this.options = options;
  }
  check(value: unknown, path: string, issues: Issue[]): void {
    if (!Array.isArray(value)) return push(issues, path, `expected an array, got ${describeValue(value)}`);
    if (this.options.maxItems !== undefined && value.length > this.options.maxItems)
      return push(issues, path, `must have at most ${this.options.maxItems} items, got ${value.length}`);
    for (let i = 0; i < value.length && issues.length < MAX_ISSUES; i++)
      this.items.check(value[i], `${path}[${i}]`, issues);
  }
  test(value: unknown): boolean {
    if (!Array.isArray(value)) return false;
    if (this.options.maxItems !== undefined && value.length > this.options.maxItems) return false;
    for (let i = 0; i < value.length; i++) if (!this.items.test(value[i])) return false;
    return true;
  }
  toJsonSchema(refs: RefResolver): JsonSchema {
    return withDescription(this, {
      type: 'array',
      items: schemaOf(this.items, refs),
      ...(this.options.maxItems !== undefined && { maxItems: this.options.maxItems }),
    });
  }
}

class RecordShape<T> extends Shape<Record<string, T>> {
  readonly values: Shape<T>;
  constructor(values: Shape<T>) {
    super();
    this.values = values;
  }
  check(value: unknown, path: string, issues: Issue[]): void {
    if (!isPlainObject(value)) return push(issues, path, `expected an object, got ${describeValue(value)}`);
    for (const key in value) this.values.check(value[key], join(path, key), issues);
  }
  test(value: unknown): boolean {
    if (!isPlainObject(value)) return false;
    for (const key in value) if (!this.values.test(value[key])) return false;
    return true;
  }
  toJsonSchema(refs: RefResolver): JsonSchema {
    return withDescription(this, { type: 'object', additionalProperties: schemaOf(this.values, refs) });
  }
}

export class OptionalShape<T> extends Shape<T | undefined> {
  readonly inner: Shape<T>;
  constructor(inner: Shape<T>) {
    super();
    this.inner = inner;
  }
  check(value: unknown, path: string, issues: Issue[]): void {
    if (value !== undefined) this.inner.check(value, path, issues);
  }
  test(value: unknown): boolean {
    return value === undefined || this.inner.test(value);
  }
  toJsonSchema(refs: RefResolver): JsonSchema {
    return schemaOf(this.inner, refs);
  }
}

class NullableShape<T> extends Shape<T | null> {
  readonly inner: Shape<T>;
  constructor(inner: Shape<T>) {
    super();
    this.inner = inner;
  }
  check(value: unknown, path: string, issues: Issue[]): void {
    if (value !== null) this.inner.check(value, path, issues);
  }
  test(value: unknown): boolean {
    return value === null || this.inner.test(value);
  }
  toJsonSchema(refs: RefResolver): JsonSchema {
    return withDescription(this, { anyOf: [schemaOf(this.inner, refs), { type: 'null' }] });
  }
}

type Props = Record<string, Shape<unknown>>;
type OptionalKeys<P extends Props> = {
  [K in keyof P]: P[K] extends OptionalShape<unknown> ? K : never;
}[keyof P];
type RequiredKeys<P extends Props> = Exclude<keyof P, OptionalKeys<P>>;
type Prettify<T> = { [K in keyof T]: T[K] } & {};
export type InferObject<P extends Props> = Prettify<
  { [K in RequiredKeys<P>]: Infer<P[K]> } & {
    [K in OptionalKeys<P>]?: P[K] extends OptionalShape<infer U> ? U : never;
  }
>;

export class ObjectShape<P extends Props> extends Shape<InferObject<P>> {
  readonly keys: string[];
  readonly shapes: Shape<unknown>[];
  readonly required: boolean[];
  readonly props: P;
  readonly options: { open?: boolean; name?: string };
  constructor(props: P, options: { open?: boolean; name?: string } = {}) {
    super();
    this.props = props;
    this.options = options;
    this.keys = Object.keys(props);
    this.shapes = this.keys.map((key) => props[key]!);
    this.required = this.shapes.map((shape) => !(shape instanceof OptionalShape));
  }
  check(value: unknown, path: string, issues: Issue[]): void {
    if (!isPlainObject(value)) return push(issues, path, `expected an object, got ${describeValue(value)}`);
    for (const key of this.keys) {
      const shape = this.props[key]!;
      const field = value[key];
      if (field === undefined && !(shape instanceof OptionalShape)) {
        push(issues, join(path, key), 'is required but missing');
        continue;
      }
      shape.check(field, join(path, key), issues);
    }
    if (!this.options.open) {
      for (const key in value) {
        if (!Object.hasOwn(this.props, key))
          push(issues, join(path, key), 'is not a known field (check the spelling)');
      }
    }
  }
  test(value: unknown): boolean {
    if (!isPlainObject(value)) return false;
    const { keys, shapes, required } = this;
    let present = 0;
    for (let i = 0; i < keys.length; i++) {
      const field = value[keys[i]!];
      if (field === undefined) {
        if (required[i]) return false;
        continue;
      }
      present++;
      if (!shapes[i]!.test(field)) return false;
    }
    if (this.options.open) return true;
    // Every own key is known when the count of defined known fields equals the count of keys.
    let own = 0;
    for (const key in value) {
      if (value[key] !== undefined || !Object.hasOwn(this.props, key)) own++;
    }
    return own === present;
  }
  toJsonSchema(refs: RefResolver): JsonSchema {
    const properties: Record<string, JsonSchema> = {};
    const required: string[] = [];
    for (const key of this.keys) {
      const shape = this.props[key]!;
      properties[key] = schemaOf(shape, refs);
      if (!(shape instanceof OptionalShape)) required.push(key);
    }
    return withDescription(this, {
      type: 'object',
      properties,
      ...(required.length > 0 && { required }),
      additionalProperties: this.options.open === true,
    });
  }
  /** A copy with more properties (for variants that share a common part). */
  extend<Q extends Props>(more: Q, options: { open?: boolean } = {}): ObjectShape<P & Q> {
    return new ObjectShape({ ...this.props, ...more } as P & Q, { ...this.options, ...options });
  }
}

/** A union told apart by one literal-valued key, e.g. `type` or `status`. */
export class DiscriminatedShape<K extends string, V extends Record<string, Shape<unknown>>> extends Shape<
  { [T in keyof V]: Infer<V[T]> }[keyof V]
> {
  readonly key: K;
  readonly variants: V;
  constructor(key: K, variants: V) {
    super();
    this.key = key;
    this.variants = variants;
  }
  check(value: unknown, path: string, issues: Issue[]): void {
    if (!isPlainObject(value)) return push(issues, path, `expected an object, got ${describeValue(value)}`);
    const tag = value[this.key];
    const variant = typeof tag === 'string' ? this.variants[tag] : undefined;
    if (variant === undefined) {
      const allowed = Object.keys(this.variants)
        .map((v) => JSON.stringify(v))
        .join(', ');
      return push(issues, join(path, this.key), `expected one of ${allowed}, got ${describeValue(tag)}`);
    }
    variant.check(value, path, issues);
  }
  test(value: unknown): boolean {
    if (!isPlainObject(value)) return false;
    const tag = value[this.key];
    const variant = typeof tag === 'string' ? this.variants[tag] : undefined;
    return variant?.test(value) === true;
  }
  toJsonSchema(refs: RefResolver): JsonSchema {
    const tags = Object.keys(this.variants);
    return withDescription(this, {
      type: 'object',
      required: [this.key],
      properties: { [this.key]: { enum: tags } },
      allOf: tags.map((tag) => ({
        if: { properties: { [this.key]: { const: tag } } },
        then: schemaOf(this.variants[tag]!, refs),
      })),
    });
  }
}

/** A union of shapes tried in order; the issues of the variant that got furthest are reported. */
class UnionShape<T> extends Shape<T> {
  readonly variants: Shape<unknown>[];
  constructor(variants: Shape<unknown>[]) {
    super();
    this.variants = variants;
  }
  check(value: unknown, path: string, issues: Issue[]): void {
    let best: Issue[] | undefined;
    for (const variant of this.variants) {
      const attempt: Issue[] = [];
      variant.check(value, path, attempt);
      if (attempt.length === 0) return;
      if (best === undefined || attempt.length < best.length) best = attempt;
    }
    for (const issue of best ?? []) push(issues, issue.path, issue.message);
  }
  test(value: unknown): boolean {
    for (const variant of this.variants) if (variant.test(value)) return true;
    return false;
  }
  toJsonSchema(refs: RefResolver): JsonSchema {
    return withDescription(this, { anyOf: this.variants.map((v) => schemaOf(v, refs)) });
  }
}

function schemaOf(shape: Shape<unknown>, refs: RefResolver): JsonSchema {
  return refs.ref(shape) ?? shape.toJsonSchema(refs);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export const s = {
  string: (options?: ConstructorParameters<typeof StringShape>[0]) => new StringShape(options),
  number: () => new NumberShape(),
  integer: (minimum?: number) =>
    new NumberShape(minimum === undefined ? { integer: true } : { integer: true, minimum }),
  nonNegative: () => new NumberShape({ minimum: 0 }),
  boolean: () => new BooleanShape(),
  literal: <const T extends string | number>(value: T) => new EnumShape<T>([value]),
  enum: <const T extends string>(values: readonly T[]) => new EnumShape<T>(values),
  json: () => new JsonShape(),
  array: <T>(items: Shape<T>, options?: { maxItems?: number }) => new ArrayShape(items, options),
  record: <T>(values: Shape<T>) => new RecordShape(values),
  optional: <T>(inner: Shape<T>) => new OptionalShape(inner),
  nullable: <T>(inner: Shape<T>) => new NullableShape(inner),
  object: <P extends Props>(props: P, options?: { open?: boolean }) => new ObjectShape(props, options),
  discriminated: <K extends string, V extends Record<string, Shape<unknown>>>(key: K, variants: V) =>
    new DiscriminatedShape(key, variants),
  union: <V extends Shape<unknown>[]>(...variants: V) => new UnionShape<Infer<V[number]>>(variants),
};

/** Runs a shape over a value; every issue names its field. */
export function checkShape(shape: Shape<unknown>, value: unknown): Issue[] {
  if (shape.test(value)) return [];
  const issues: Issue[] = [];
  shape.check(value, '', issues);
  return issues;
}

/** Generates a JSON Schema (draft 2020-12) with the named shapes as `$defs`. */
export function generateJsonSchema(
  root: Shape<unknown>,
  named: Record<string, Shape<unknown>>,
  meta: { id: string; title: string; description: string },
): JsonSchema {
  const names = new Map<Shape<unknown>, string>();
  for (const [name, shape] of Object.entries(named)) names.set(shape, name);
  const resolver = (skip?: Shape<unknown>): RefResolver => ({
    ref: (shape) => {
      const name = shape === skip ? undefined : names.get(shape);
      return name === undefined ? undefined : { $ref: `#/$defs/${name}` };
    },
  });
  const defs: Record<string, JsonSchema> = {};
  for (const [name, shape] of Object.entries(named)) defs[name] = shape.toJsonSchema(resolver(shape));
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: meta.id,
    title: meta.title,
    description: meta.description,
    ...root.toJsonSchema(resolver(root)),
    $defs: defs,
  };
}
