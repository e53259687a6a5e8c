import { createHash } from 'node:crypto';
import type { Redactor } from '@rewind/redact';
import {
  type BlobHash,
  type BlobRef,
  canonicalJson,
  formatCallKey,
  type RewindEvent,
  SCHEMA_VERSION,
  type StepKind,
  validateRequestPayload,
  validateResponsePayload,
} from '@rewind/schema';
import type { AppendOutcome, Store } from '@rewind/store';
import { type MappedSpan, mapSpan } from './map-span.ts';
import { type OtlpRejection, type OtlpSpan, parseOtlpTraces } from './parse.ts';

// OTLP traces in, Rewind runs out (docs/otlp.md): a trace is a run (id = the trace id), every
// span a step (id = the span id), the root span also gives the run's start, input, output and
// status. Payload blobs are stored first, then the events, through the Store interface.
//
// Ids and payloads are derived from the span alone, and a span's seq and call key, once stored,
// are read back instead of recomputed: so a re-sent span yields byte-identical events, which the
// store answers as duplicates. New spans of a trace are numbered after the steps already stored
// (exporters send children before their parents, in several requests), in start order within one
// request.

export interface OtlpIngestResult {
  /** Span entries in the request (well-formed or not). */
  spans: number;
  /** Spans whose events were stored by this request. */
  accepted: number;
  /** Spans already stored (a re-sent span): nothing new. */
  duplicates: number;
  /** Spans not stored, each with the reason (malformed, or refused by the store). */
  rejected: OtlpRejection[];
  /** The runs (trace ids) this request touched, sorted. */
  runIds: string[];
}

interface StoredStep {
  seq: number;
  callKey: string;
  parentStepId: string | null;
  kind: StepKind;
  name: string;
}

interface Prepared {
  span: OtlpSpan;
  mapped: MappedSpan;
  blobs: Map<BlobHash, Uint8Array>;
  request: BlobRef;
  response: BlobRef | undefined;
  input: BlobRef | undefined;
  output: BlobRef | undefined;
}

/** Tries per trace when a concurrent request for the same trace took the seqs this one chose. */
const MAX_ATTEMPTS = 5;
const TIMELINE_PAGE = 10_000;
/** Run attribute naming the span that gave the run its start (see runSpanOf). */
const ROOT_SPAN_ATTRIBUTE = 'otel.root_span_id';

/** Per store, the traces being ingested right now: one at a time per trace within a process. */
const inFlight = new WeakMap<Store, Map<string, Promise<unknown>>>();

/**
 * Maps an OTLP/HTTP JSON ExportTraceServiceRequest (already JSON-decoded) to runs and steps and
 * stores them. Malformed input never throws: each bad span is in `rejected` with a reason, and
 * the good ones are stored. A failing store does throw (the caller answers 5xx; the exporter
 * retries, which is safe: ingest is idempotent).
 */
export async function ingestOtlp(
  store: Store,
  body: unknown,
  options: { redactor?: Redactor } = {},
): Promise<OtlpIngestResult> {
  const parsed = parseOtlpTraces(body);
  const result: OtlpIngestResult = {
    spans: parsed.total,
    accepted: 0,
    duplicates: 0,
    rejected: [...parsed.rejected],
    runIds: [],
  };
  const byTrace = new Map<string, Map<string, OtlpSpan>>();
  for (const span of parsed.spans) {
    let spans = byTrace.get(span.traceId);
    if (spans === undefined) {
      spans = new Map();
      byTrace.set(span.traceId, spans);
    }
    // The same span twice in one request: the first copy counts, the second is a duplicate.
    if (spans.has(span.spanId)) result.duplicates++;
    else spans.set(span.spanId, span);
  }
  const traces = new Map<string, Prepared[]>();
  const blobs = new Map<BlobHash, Uint8Array>();
  for (const [traceId, spans] of byTrace) {
    const prepared: Prepared[] = [];
    for (const span of spans.values()) {
      const ready = prepare(span, options.redactor);
      if (typeof ready === 'string') result.rejected.push({ traceId, spanId: span.spanId, reason: ready });
      else {
        prepared.push(ready);
        for (const [hash, bytes] of ready.blobs) blobs.set(hash, bytes);
      }
    }
    if (prepared.length > 0) traces.set(traceId, prepared);
  }
  if (traces.size === 0) return result;
  // Blobs first, all of the request's at once: an event is never stored before its payloads.
  await store.blobs.putMany([...blobs.values()], { hashes: [...blobs.keys()] });
  await serialized(store, [...traces.keys()].sort(), () => appendTraces(store, traces, result));
  result.runIds.push(...traces.keys());
  result.runIds.sort();
  return result;
}

/** The OTLP ExportTraceServiceResponse for a result: partialSuccess when spans were rejected. */
export function otlpResponse(result: OtlpIngestResult): {
  partialSuccess?: { rejectedSpans: number; errorMessage: string };
} {
  if (result.rejected.length === 0) return {};
  const shown = result.rejected
    .slice(0, 5)
    .map((r) => (r.spanId === null ? r.reason : `span ${r.spanId}: ${r.reason}`));
  const more =
    result.rejected.length > shown.length ? ` (and ${result.rejected.length - shown.length} more)` : '';
  return {
    partialSuccess: {
      rejectedSpans: result.rejected.filter((r) => r.spanId !== null).length,
      errorMessage: `${shown.join('; ')}${more}`,
    },
  };
}

/**
 * Runs `work` once no other call of this process holds any of `keys` (trace ids) of `store`.
 * Keys are taken in sorted order, so two requests sharing traces cannot wait on each other.
 */
async function serialized<T>(store: Store, keys: readonly string[], work: () => Promise<T>): Promise<T> {
  let running = inFlight.get(store);
  if (running === undefined) {
    running = new Map();
    inFlight.set(store, running);
  }
  const [key, ...rest] = keys;
  if (key === undefined) return work();
  const table = running;
  const before = table.get(key) ?? Promise.resolve();
  const mine = before.then(
    () => serialized(store, rest, work),
    () => serialized(store, rest, work),
  );
  const settled = mine.then(
    () => undefined,
    () => undefined,
  );
  table.set(key, settled);
  try {
    return await mine;
  } finally {
    if (table.get(key) === settled) table.delete(key);
  }
}

/**
 * Appends the events of every trace of the request in one call to the store (one transaction on
 * SQLite). A trace whose seqs another writer took meanwhile is read again and renumbered.
 */
async function appendTraces(
  store: Store,
  traces: ReadonlyMap<string, Prepared[]>,
  result: OtlpIngestResult,
): Promise<void> {
  let pending = [...traces.keys()];
  /** `<trace>/<span>` of spans with an event accepted by any attempt. */
  const acceptedOnce = new Set<string>();
  for (let attempt = 1; pending.length > 0; attempt++) {
    const events: RewindEvent[] = [];
    const owners: Array<{ traceId: string; spanId: string }> = [];
    for (const traceId of pending) {
      const prepared = traces.get(traceId)!;
      const stored = await storedSteps(store, traceId);
      const built = buildEvents(traceId, prepared, stored, await runSpanOf(store, traceId, prepared));
      events.push(...built.events);
      for (const spanId of built.owners) owners.push({ traceId, spanId });
    }
    const outcome = await store.append(events);
    const bySpan = new Map<string, AppendOutcome[]>();
    const seqTaken = new Set<string>();
    for (const [index, event] of outcome.outcomes.entries()) {
      const { traceId, spanId } = owners[index]!;
      const key = `${traceId}/${spanId}`;
      let list = bySpan.get(key);
      if (list === undefined) {
        list = [];
        bySpan.set(key, list);
      }
      list.push(event);
      if (event.status === 'accepted') acceptedOnce.add(key);
      if (event.status === 'rejected' && event.field === 'seq') seqTaken.add(traceId);
    }
    const retry: string[] = [];
    for (const traceId of pending) {
      // Another writer numbered steps of this run meanwhile: renumber (what was stored is kept).
      if (seqTaken.has(traceId) && attempt < MAX_ATTEMPTS) {
        retry.push(traceId);
        continue;
      }
      for (const item of traces.get(traceId)!) {
        const key = `${traceId}/${item.span.spanId}`;
        const list = bySpan.get(key) ?? [];
        const refused = list.find(
          (o): o is Extract<AppendOutcome, { status: 'rejected' }> => o.status === 'rejected',
        );
        if (refused !== undefined)
          result.rejected.push({
            traceId,
            spanId: item.span.spanId,
            reason: `the store refused its ${refused.field === undefined ? 'events' : `"${refused.field}"`}: ${refused.reason}`,
          });
        else if (acceptedOnce.has(key)) result.accepted++;
        else result.duplicates++;
      }
    }
    pending = retry;
  }
}

/** Maps one span and serializes its payloads; a string says why it cannot be stored. */
function prepare(span: OtlpSpan, redactor: Redactor | undefined): Prepared | string {
  let mapped: MappedSpan;
  try {
    mapped = mapSpan(span);
  } catch (error) {
    return `could not be mapped: ${(error as Error).message}`;
  }
  if (redactor !== undefined) {
    const redacted = redactSpan(redactor, mapped);
    if (typeof redacted === 'string') return redacted;
    mapped = redacted;
  }
  const requestIssues = validateRequestPayload(mapped.kind, mapped.request);
  if (requestIssues.length > 0)
    return `its ${mapped.kind} request does not fit the schema: ${requestIssues.map((i) => `${i.path} ${i.message}`).join('; ')}`;
  if (mapped.response !== undefined) {
    const responseIssues = validateResponsePayload(mapped.kind, mapped.response);
    if (responseIssues.length > 0)
      return `its ${mapped.kind} response does not fit the schema: ${responseIssues.map((i) => `${i.path} ${i.message}`).join('; ')}`;
  }
  const blobs = new Map<BlobHash, Uint8Array>();
  const refOf = (value: unknown): BlobRef => {
    const bytes = new TextEncoder().encode(canonicalJson(value));
    const hash: BlobHash = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    blobs.set(hash, bytes);
    return { hash, size: bytes.byteLength };
  };
  try {
    const root = span.parentSpanId === undefined;
    return {
      span,
      mapped,
      blobs,
      request: refOf(mapped.request),
      response: mapped.response === undefined ? undefined : refOf(mapped.response),
      input: root ? refOf(mapped.input ?? null) : undefined,
      output:
        root && span.endTimeUnixNano !== undefined && mapped.error === undefined
          ? refOf(mapped.output ?? null)
          : undefined,
    };
  } catch (error) {
    return `its payload is not JSON: ${(error as Error).message}`;
  }
}

async function storedSteps(store: Store, runId: string): Promise<Map<string, StoredStep>> {
  const steps = new Map<string, StoredStep>();
  let afterSeq = 0;
  for (;;) {
    const page = await store.readTimeline(runId, { afterSeq, limit: TIMELINE_PAGE });
    for (const step of page.items) {
      steps.set(step.stepId, {
        seq: step.seq,
        callKey: step.callKey,
        parentStepId: step.parentStepId,
        kind: step.kind,
        name: step.name,
      });
      afterSeq = step.seq;
    }
    if (page.nextCursor === undefined || page.items.length === 0) return steps;
  }
}

/**
 * The span that gives the run its start, input, output and status: the one recorded when the
 * run started, else this request's earliest root span. A trace with several root spans (a
 * partial trace, or one whose instrumentation lost a parent) keeps the first as the run's; the
 * others are only steps.
 */
async function runSpanOf(
  store: Store,
  runId: string,
  prepared: readonly Prepared[],
): Promise<string | undefined> {
  const run = await store.getRun(runId);
  if (run !== undefined && run.startedAt !== null) {
    const recorded = run.attributes[ROOT_SPAN_ATTRIBUTE];
    return typeof recorded === 'string' ? recorded : undefined;
  }
  const roots = prepared
    .filter((item) => item.span.parentSpanId === undefined)
    .sort(
      (a, b) =>
        compareBigint(a.span.startTimeUnixNano, b.span.startTimeUnixNano) ||
        (a.span.spanId < b.span.spanId ? -1 : 1),
    );
  return roots[0]?.span.spanId;
}

function buildEvents(
  runId: string,
  prepared: readonly Prepared[],
  stored: ReadonlyMap<string, StoredStep>,
  runSpanId: string | undefined,
): { events: RewindEvent[]; owners: string[] } {
  const inRequest = new Map(prepared.map((item) => [item.span.spanId, item]));
  // Parents first at equal start times (a parent starts no later than its child), then by id.
  const depth = new Map<string, number>();
  const depthOf = (spanId: string, seen: Set<string>): number => {
    const known = depth.get(spanId);
    if (known !== undefined) return known;
    const parent = inRequest.get(spanId)?.span.parentSpanId;
    const value =
      parent === undefined || !inRequest.has(parent) || seen.has(parent)
        ? 0
        : depthOf(parent, seen.add(spanId)) + 1;
    depth.set(spanId, value);
    return value;
  };
  const fresh = prepared
    .filter((item) => !stored.has(item.span.spanId))
    .sort(
      (a, b) =>
        compareBigint(a.span.startTimeUnixNano, b.span.startTimeUnixNano) ||
        depthOf(a.span.spanId, new Set()) - depthOf(b.span.spanId, new Set()) ||
        (a.span.spanId < b.span.spanId ? -1 : 1),
    );
  let maxSeq = 0;
  for (const step of stored.values()) maxSeq = Math.max(maxSeq, step.seq);
  const seqOf = new Map<string, number>();
  for (const item of fresh) seqOf.set(item.span.spanId, ++maxSeq);

  // Ordinals: siblings (same parent, kind and name) already stored come first, then this request's in seq order.
  const siblings = new Map<string, number>();
  const siblingKey = (parent: string | null, kind: StepKind, name: string) =>
    `${parent ?? ''}\u0000${kind}\u0000${name}`;
  for (const step of stored.values()) {
    const key = siblingKey(step.parentStepId, step.kind, step.name);
    siblings.set(key, (siblings.get(key) ?? 0) + 1);
  }
  const ordinalOf = new Map<string, number>();
  for (const item of fresh) {
    const key = siblingKey(item.span.parentSpanId ?? null, item.mapped.kind, item.mapped.name);
    const ordinal = siblings.get(key) ?? 0;
    siblings.set(key, ordinal + 1);
    ordinalOf.set(item.span.spanId, ordinal);
  }
  const callKeys = new Map<string, string>();
  const callKeyOf = (spanId: string, seen: Set<string>): string => {
    const known = stored.get(spanId)?.callKey ?? callKeys.get(spanId);
    if (known !== undefined) return known;
    const item = inRequest.get(spanId)!;
    const parent = item.span.parentSpanId;
    let parentKey: string | null = null;
    if (parent !== undefined) {
      if (stored.has(parent) || (inRequest.has(parent) && !seen.has(parent)))
        parentKey = callKeyOf(parent, seen.add(spanId));
      // The parent span has not arrived yet: its call key is unknown, so a stand-in segment
      // naming its span id takes its place (docs/otlp.md).
      else parentKey = `chain:${parent}#0`;
    }
    const key = formatCallKey(parentKey, item.mapped.kind, item.mapped.name, ordinalOf.get(spanId) ?? 0);
    callKeys.set(spanId, key);
    return key;
  };

  const events: RewindEvent[] = [];
  const owners: string[] = [];
  const push = (spanId: string, event: RewindEvent) => {
    events.push(event);
    owners.push(spanId);
  };
  for (const item of prepared) {
    const { span, mapped } = item;
    const existing = stored.get(span.spanId);
    const seq = existing?.seq ?? seqOf.get(span.spanId)!;
    const callKey = existing?.callKey ?? callKeyOf(span.spanId, new Set());
    const base = { schemaVersion: SCHEMA_VERSION, runId } as const;
    const isRun = span.spanId === runSpanId;
    if (isRun) {
      push(span.spanId, {
        ...base,
        type: 'run.started',
        eventId: eventId(span, 'run.started'),
        time: isoTime(span.startTimeUnixNano),
        agent: mapped.name,
        input: item.input!,
        attributes: runAttributes(span),
        sdk: {
          name: stringOr(span.resource['telemetry.sdk.name'], 'opentelemetry'),
          version: stringOr(span.resource['telemetry.sdk.version'], ''),
        },
      });
    }
    push(span.spanId, {
      ...base,
      type: 'step.started',
      eventId: eventId(span, 'step.started'),
      time: isoTime(span.startTimeUnixNano),
      stepId: span.spanId,
      seq,
      parentStepId: span.parentSpanId ?? null,
      kind: mapped.kind,
      name: mapped.name,
      callKey,
      request: item.request,
      requestHash: item.request.hash,
      attributes: mapped.attributes,
    });
    if (span.endTimeUnixNano === undefined) continue;
    const finished = {
      ...base,
      type: 'step.finished' as const,
      eventId: eventId(span, 'step.finished'),
      time: isoTime(span.endTimeUnixNano),
      stepId: span.spanId,
      label: 'recorded' as const,
      ...(item.response === undefined ? {} : { responseHash: item.response.hash }),
      ...(mapped.usage === undefined ? {} : { usage: mapped.usage }),
    };
    if (mapped.error !== undefined)
      push(span.spanId, {
        ...finished,
        status: 'error',
        error: mapped.error,
        ...(item.response === undefined ? {} : { response: item.response }),
      });
    else push(span.spanId, { ...finished, status: 'ok', response: item.response! });
    if (isRun) {
      const runFinished = {
        ...base,
        type: 'run.finished' as const,
        eventId: eventId(span, 'run.finished'),
        time: isoTime(span.endTimeUnixNano),
      };
      push(
        span.spanId,
        mapped.error === undefined
          ? { ...runFinished, status: 'ok', output: item.output! }
          : { ...runFinished, status: 'error', error: mapped.error },
      );
    }
  }
  return { events, owners };
}

function runAttributes(span: OtlpSpan): Record<string, string> {
  const attributes: Record<string, string> = {
    'rewind.source': 'otlp',
    'otel.trace_id': span.traceId,
    [ROOT_SPAN_ATTRIBUTE]: span.spanId,
  };
  for (const key of [
    'service.name',
    'service.version',
    'deployment.environment',
    'deployment.environment.name',
  ]) {
    const value = span.resource[key];
    if (typeof value === 'string' && value !== '') attributes[key] = value;
  }
  return attributes;
}

/** A UUID (version 8: derived, RFC 9562) from the span's ids and the event type: stable across re-sends. */
function eventId(span: OtlpSpan, type: RewindEvent['type']): string {
  const bytes = createHash('sha256')
    .update(`otlp\u0000${span.traceId}\u0000${span.spanId}\u0000${type}`)
    .digest();
  bytes[6] = (bytes[6]! & 0x0f) | 0x80;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Unix nanoseconds → ISO 8601 UTC with all nine fractional digits (the schema allows 1–9). */
export function isoTime(nanos: bigint): string {
  const seconds = new Date(Number(nanos / 1_000_000_000n) * 1000).toISOString().slice(0, 19);
  return `${seconds}.${(nanos % 1_000_000_000n).toString().padStart(9, '0')}Z`;
}

function compareBigint(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function stringOr(value: unknown, fallback: string): string {
  return typeof value === 'string' && value !== '' ? value : fallback;
}

/**
 * The mapped span through the redaction policy (docs/redaction.md, "On the server"): the server
 * builds these payloads itself, so it redacts them as the SDK would (rules included, at the
 * step's place); a value it cannot check rejects the span (fail closed).
 */
function redactSpan(redactor: Redactor, mapped: MappedSpan): MappedSpan | string {
  const scope = `${mapped.kind}:${mapped.name}`;
  const failures: string[] = [];
  const redact = <T>(value: T, at: string): T => {
    if (value === undefined) return value;
    let result: ReturnType<Redactor['redactValue']>;
    try {
      result = redactor.redactValue(value, at);
    } catch (error) {
      failures.push(`${at} (${(error as Error).message})`);
      return value;
    }
    const failure = result.findings.find((finding) => finding.detector === 'scan_failed');
    if (failure !== undefined) failures.push(`${at} (${failure.reason ?? 'scan failed'})`);
    return result.value as T;
  };
  const out: MappedSpan = {
    ...mapped,
    request: redact(mapped.request, `${scope}.request`),
    response: redact(mapped.response, `${scope}.response`),
    error: redact(mapped.error, `${scope}.error`),
    input: redact(mapped.input, 'run.input'),
    output: redact(mapped.output, 'run.output'),
    attributes: redact(mapped.attributes, `${scope}.attributes`),
  };
  if (failures.length > 0)
    return `redaction_failed: the redaction policy could not check ${failures.join(', ')}, so the span is not stored`;
  return out;
}
