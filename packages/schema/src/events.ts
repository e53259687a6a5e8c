// Trace schema v1 (SPEC §4): the four event types. These shapes are the source of truth: the
// TypeScript types below are inferred from them, `validateEvent` runs them, and
// `trace-v1.schema.json` is generated from them (`npm run gen`, checked in CI).
import { stepKindShape, usageShape } from './payloads.ts';
import { type Infer, s } from './shape.ts';
import { SCHEMA_VERSION } from './version.ts';

const ULID = '[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}';
const UUID = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}';

export const eventIdShape = s
  .string({ pattern: new RegExp(`^(?:${ULID}|${UUID})$`), patternName: 'a ULID or a UUID (v7 recommended)' })
  .describe('Unique id of the event; duplicates are ignored (ingest is idempotent by eventId).');

/** Run and step ids travel in URLs and file names, so they are kept to a safe alphabet. */
export const idShape = s.string({
  pattern: /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/,
  patternName: 'an id of 1–128 characters from A–Z a–z 0–9 . _ : - (a UUIDv7 or ULID is recommended)',
});

export const timeShape = s
  .string({
    pattern: /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$/,
    patternName: 'an ISO 8601 UTC timestamp such as 2026-11-25T10:00:00.000Z',
  })
  .describe('When the event happened, ISO 8601 in UTC.');

export const blobHashShape = s.string({
  pattern: /^sha256:[0-9a-f]{64}$/,
  patternName: '"sha256:" followed by 64 lowercase hex digits',
});
export type BlobHash = `sha256:${string}`;

export const blobRefShape = s
  .object({
    hash: blobHashShape,
    size: s.integer(0),
    /** Blobs this payload points to with `{"$blob": …}` (split parts), so references are known without reading it. */
    parts: s.optional(s.array(blobHashShape)),
  })
  .describe('A payload stored once in the content-addressed blob store, named by the sha256 of its bytes.');
export interface BlobRef {
  hash: BlobHash;
  /** Size in bytes of the stored payload (uncompressed). */
  size: number;
  parts?: BlobHash[];
}

export const labelShape = s
  .enum(['recorded', 'replayed', 'cached', 'live', 'overridden', 'diverged', 'redacted'] as const)
  .describe("A step's determinism status.");
export type Label = Infer<typeof labelShape>;
export const LABELS: readonly Label[] = labelShape.values;

const attributeScalar = s.union(s.string(), s.number(), s.boolean(), s.nullable(s.string()));
export const attributesShape = s
  .record(s.union(attributeScalar, s.array(s.union(s.string(), s.number(), s.boolean()))))
  .describe('Flat key/value attributes: git sha, code version, environment, tags, …');
export type AttributeValue = string | number | boolean | null | Array<string | number | boolean>;
export type Attributes = Record<string, AttributeValue>;

export const errorInfoShape = s.object({
  type: s.string({ minLength: 1 }),
  message: s.string(),
  stack: s.optional(s.string()),
  /** A provider's HTTP status, when the error came from one. */
  status: s.optional(s.integer()),
});
export type ErrorInfo = Infer<typeof errorInfoShape>;

export const replayModeShape = s.enum(['exact', 'cached'] as const);
export type ReplayMode = Infer<typeof replayModeShape>;

export const forkEditShape = s.object({
  /** JSON-pointer sets applied to the request at the fork step. */
  set: s.optional(s.array(s.object({ pointer: s.string(), value: s.json() }))),
  /** A replacement response served at the fork step. */
  response: s.optional(s.json()),
  /** A replacement error thrown at the fork step. */
  error: s.optional(errorInfoShape),
  /** How the run continues after the fork step. */
  then: s.optional(s.enum(['cached', 'live'] as const)),
});
export type ForkEdit = Infer<typeof forkEditShape>;

const base = {
  schemaVersion: s.literal(SCHEMA_VERSION),
  eventId: eventIdShape,
  runId: idShape,
  time: timeShape,
};

export const runStartedShape = s.object({
  ...base,
  type: s.literal('run.started'),
  agent: s.string({ minLength: 1, maxLength: 200 }),
  input: blobRefShape,
  attributes: s.optional(attributesShape),
  sdk: s.optional(s.object({ name: s.string(), version: s.string() })),
  replayOf: s.optional(s.object({ runId: idShape, mode: replayModeShape })),
  forkOf: s.optional(s.object({ runId: idShape, atSeq: s.integer(1), edit: forkEditShape })),
});

export const stepStartedShape = s.object({
  ...base,
  type: s.literal('step.started'),
  stepId: idShape,
  seq: s.integer(1),
  parentStepId: s.nullable(idShape),
  kind: stepKindShape,
  name: s.string({ minLength: 1, maxLength: 200 }),
  callKey: s.string({ minLength: 1, maxLength: 4096 }),
  request: blobRefShape,
  requestHash: blobHashShape,
  attributes: s.optional(attributesShape),
});

const streamShape = s
  .object({
    chunks: s.integer(0),
    /** Milliseconds from the step's start to each chunk's arrival. */
    offsetsMs: s.array(s.nonNegative()),
  })
  .describe('Present when the response was streamed.');

const stepFinishedBase = s.object({
  ...base,
  type: s.literal('step.finished'),
  stepId: idShape,
  label: labelShape,
  responseHash: s.optional(blobHashShape),
  usage: s.optional(usageShape),
  stream: s.optional(streamShape),
});

export const stepFinishedShape = s.discriminated('status', {
  ok: stepFinishedBase.extend({ status: s.literal('ok'), response: blobRefShape }),
  error: stepFinishedBase.extend({
    status: s.literal('error'),
    error: errorInfoShape,
    /** An error may still carry a body (e.g. a provider's 400 response), served back on replay. */
    response: s.optional(blobRefShape),
  }),
});

const countsShape = s.object({ steps: s.integer(0), errors: s.optional(s.integer(0)) });

const runFinishedBase = s.object({
  ...base,
  type: s.literal('run.finished'),
  tape: s.optional(blobRefShape),
  counts: s.optional(countsShape),
});

export const runFinishedShape = s.discriminated('status', {
  ok: runFinishedBase.extend({ status: s.literal('ok'), output: blobRefShape }),
  error: runFinishedBase.extend({ status: s.literal('error'), error: errorInfoShape }),
  cancelled: runFinishedBase.extend({ status: s.literal('cancelled'), error: s.optional(errorInfoShape) }),
});

export const eventShape = s.discriminated('type', {
  'run.started': runStartedShape,
  'step.started': stepStartedShape,
  'step.finished': stepFinishedShape,
  'run.finished': runFinishedShape,
});

type WithBlobHashes<T> = T extends object
  ? { [K in keyof T]: K extends 'hash' | 'requestHash' | 'responseHash' ? BlobHash : WithBlobHashes<T[K]> }
  : T;

export type RunStarted = WithBlobHashes<Infer<typeof runStartedShape>>;
export type StepStarted = WithBlobHashes<Infer<typeof stepStartedShape>>;
export type StepFinished = WithBlobHashes<Infer<typeof stepFinishedShape>>;
export type RunFinished = WithBlobHashes<Infer<typeof runFinishedShape>>;
export type RewindEvent = RunStarted | StepStarted | StepFinished | RunFinished;
export type EventType = RewindEvent['type'];
export const EVENT_TYPES: readonly EventType[] = [
  'run.started',
  'step.started',
  'step.finished',
  'run.finished',
];

export type RunStatus = RunFinished['status'];
export type StepStatus = StepFinished['status'];
