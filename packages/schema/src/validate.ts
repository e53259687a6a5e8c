import { InvalidEventError, UnsupportedSchemaVersionError } from './errors.ts';
import { eventShape, type RewindEvent } from './events.ts';
import { requestShapeByKind, responseShapeByKind, type StepKind } from './payloads.ts';
import { checkShape, type Issue, isPlainObject } from './shape.ts';
import { SCHEMA_VERSION } from './version.ts';

export type ValidationResult<T> = { ok: true; value: T } | { ok: false; issues: Issue[] };

/** Checks one event of the current schema version; every issue names its field. */
export function validateEvent(value: unknown): ValidationResult<RewindEvent> {
  const issues = checkShape(eventShape, value);
  return issues.length === 0 ? { ok: true, value: value as RewindEvent } : { ok: false, issues };
}

/**
 * Reads an event of any known schema version, upgrading older ones step by step, and
 * validates it. A newer version than this reader knows fails with a message saying so.
 */
export function parseEvent(value: unknown): RewindEvent {
  if (
    isPlainObject(value) &&
    typeof value.schemaVersion === 'number' &&
    value.schemaVersion > SCHEMA_VERSION
  ) {
    throw new UnsupportedSchemaVersionError(value.schemaVersion, SCHEMA_VERSION);
  }
  // v1 is the first format: nothing to upgrade yet. Future versions add `upgrade-vN-to-vN+1.ts`
  // files here, frozen like Playwright's trace loaders, and chain them.
  const result = validateEvent(value);
  if (!result.ok) throw new InvalidEventError(result.issues);
  return result.value;
}

/** Checks a normalized request payload of a step kind (adapters' conformance uses this). */
export function validateRequestPayload(kind: StepKind, payload: unknown): Issue[] {
  return checkShape(requestShapeByKind[kind], payload);
}

export function validateResponsePayload(kind: StepKind, payload: unknown): Issue[] {
  return checkShape(responseShapeByKind[kind], payload);
}
