import type { Issue } from './shape.ts';

// Errors carry a stable `name` and `code`, a message that says what to do, and the data a
// program needs. `isInstance` works across copies of the package (no instanceof).

const marker = Symbol.for('rewind.error');

export class RewindError extends Error {
  readonly [marker] = true;
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
  static isInstance(value: unknown): value is RewindError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[marker] === true;
  }
}

export class InvalidEventError extends RewindError {
  override readonly name = 'InvalidEventError';
  readonly issues: Issue[];
  constructor(issues: Issue[]) {
    super('invalid_event', `invalid event: ${formatIssues(issues)}`);
    this.issues = issues;
  }
  /** The first offending field, e.g. `seq`. */
  get field(): string {
    return this.issues[0]?.path ?? '';
  }
  static override isInstance(value: unknown): value is InvalidEventError {
    return RewindError.isInstance(value) && value.code === 'invalid_event';
  }
}

export class UnsupportedSchemaVersionError extends RewindError {
  override readonly name = 'UnsupportedSchemaVersionError';
  readonly found: number;
  readonly supported: number;
  constructor(found: number, supported: number) {
    super(
      'unsupported_schema_version',
      `this trace uses schemaVersion ${found}, but this Rewind reads versions up to ${supported}; upgrade Rewind (@rewind/schema ≥ the version that introduced schemaVersion ${found}) to read it`,
    );
    this.found = found;
    this.supported = supported;
  }
  static override isInstance(value: unknown): value is UnsupportedSchemaVersionError {
    return RewindError.isInstance(value) && value.code === 'unsupported_schema_version';
  }
}

export function formatIssues(issues: Issue[]): string {
  return issues
    .map((issue) => (issue.path === '' ? issue.message : `${issue.path} ${issue.message}`))
    .join('; ');
}
