// OTLP/HTTP JSON (ExportTraceServiceRequest) in, plain spans out: resourceSpans → scopeSpans →
// spans, AnyValue attributes decoded to JSON values, ids as lowercase hex, times as bigint
// nanoseconds. Never throws: a malformed span is rejected with a reason naming the field, and
// the other spans go on (docs/otlp.md).

export type AttributeMap = Record<string, unknown>;

export interface OtlpSpanEvent {
  name: string;
  timeUnixNano: bigint;
  attributes: AttributeMap;
}

export interface OtlpSpan {
  traceId: string;
  spanId: string;
  /** Undefined for a root span. */
  parentSpanId: string | undefined;
  name: string;
  /** OTLP SpanKind (0 unspecified … 5 consumer). */
  spanKind: number;
  startTimeUnixNano: bigint;
  /** Undefined while the span has not ended (OTLP exporters only send ended spans). */
  endTimeUnixNano: bigint | undefined;
  attributes: AttributeMap;
  events: OtlpSpanEvent[];
  /** 0 unset, 1 ok, 2 error. */
  statusCode: number;
  statusMessage: string;
  resource: AttributeMap;
  scope: { name: string; version: string };
}

export interface OtlpRejection {
  /** Hex ids when the span had readable ones; null for problems above the span level. */
  traceId: string | null;
  spanId: string | null;
  reason: string;
}

export interface ParsedOtlp {
  /** Span entries found in the body, well-formed or not. */
  total: number;
  spans: OtlpSpan[];
  rejected: OtlpRejection[];
}

const HEX_TRACE = /^[0-9a-f]{32}$/;
const HEX_SPAN = /^[0-9a-f]{16}$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const UNSIGNED = /^\d{1,20}$/;
/** Nesting bound for AnyValue (arrays and kvlists inside each other). */
const MAX_VALUE_DEPTH = 32;

class SpanProblem extends Error {}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Parses an ExportTraceServiceRequest (already JSON-decoded). */
export function parseOtlpTraces(body: unknown): ParsedOtlp {
  const spans: OtlpSpan[] = [];
  const rejected: OtlpRejection[] = [];
  let total = 0;
  const whole = (reason: string): ParsedOtlp => ({
    total,
    spans,
    rejected: [...rejected, { traceId: null, spanId: null, reason }],
  });
  if (!isRecord(body))
    return whole('the body must be a JSON object (an OTLP ExportTraceServiceRequest with "resourceSpans")');
  const resourceSpans = body.resourceSpans ?? body.resource_spans;
  if (resourceSpans === undefined) return { total, spans, rejected };
  if (!Array.isArray(resourceSpans)) return whole('"resourceSpans" must be an array');
  for (const [r, group] of resourceSpans.entries()) {
    const where = `resourceSpans[${r}]`;
    if (!isRecord(group)) {
      rejected.push({ traceId: null, spanId: null, reason: `${where} must be an object` });
      continue;
    }
    let resource: AttributeMap;
    try {
      resource = isRecord(group.resource)
        ? decodeAttributes(group.resource.attributes, `${where}.resource`)
        : {};
    } catch (error) {
      rejected.push({ traceId: null, spanId: null, reason: (error as Error).message });
      continue;
    }
    const scopeSpans = group.scopeSpans ?? group.scope_spans ?? [];
    if (!Array.isArray(scopeSpans)) {
      rejected.push({ traceId: null, spanId: null, reason: `${where}.scopeSpans must be an array` });
      continue;
    }
    for (const [s, scopeGroup] of scopeSpans.entries()) {
      const scopeWhere = `${where}.scopeSpans[${s}]`;
      if (!isRecord(scopeGroup) || (scopeGroup.spans !== undefined && !Array.isArray(scopeGroup.spans))) {
        rejected.push({
          traceId: null,
          spanId: null,
          reason: `${scopeWhere} must be an object whose "spans" is an array`,
        });
        continue;
      }
      const scopeRecord = isRecord(scopeGroup.scope) ? scopeGroup.scope : {};
      const scope = {
        name: typeof scopeRecord.name === 'string' ? scopeRecord.name : '',
        version: typeof scopeRecord.version === 'string' ? scopeRecord.version : '',
      };
      for (const [i, raw] of ((scopeGroup.spans as unknown[] | undefined) ?? []).entries()) {
        total++;
        const spanWhere = `${scopeWhere}.spans[${i}]`;
        const ids = readableIds(raw);
        try {
          spans.push(parseSpan(raw, spanWhere, resource, scope));
        } catch (error) {
          if (!(error instanceof SpanProblem)) throw error;
          rejected.push({ ...ids, reason: error.message });
        }
      }
    }
  }
  return { total, spans, rejected };
}

function parseSpan(
  raw: unknown,
  where: string,
  resource: AttributeMap,
  scope: { name: string; version: string },
): OtlpSpan {
  if (!isRecord(raw)) throw new SpanProblem(`${where} must be an object`);
  const traceId = decodeId(raw.traceId ?? raw.trace_id, 16);
  if (traceId === undefined || /^0+$/.test(traceId))
    throw new SpanProblem(`${where}.traceId must be 32 hex digits (16 bytes, not all zero)`);
  const spanId = decodeId(raw.spanId ?? raw.span_id, 8);
  if (spanId === undefined || /^0+$/.test(spanId))
    throw new SpanProblem(`${where}.spanId must be 16 hex digits (8 bytes, not all zero)`);
  const parentRaw = raw.parentSpanId ?? raw.parent_span_id;
  let parentSpanId: string | undefined;
  if (parentRaw !== undefined && parentRaw !== null && parentRaw !== '') {
    parentSpanId = decodeId(parentRaw, 8);
    if (parentSpanId === undefined)
      throw new SpanProblem(`${where}.parentSpanId must be 16 hex digits, or empty for a root span`);
    if (/^0+$/.test(parentSpanId)) parentSpanId = undefined;
    else if (parentSpanId === spanId) throw new SpanProblem(`${where}.parentSpanId is the span's own id`);
  }
  const name = raw.name;
  if (typeof name !== 'string' || name.trim() === '')
    throw new SpanProblem(`${where}.name must be a non-empty string`);
  const start = decodeNanos(raw.startTimeUnixNano ?? raw.start_time_unix_nano);
  if (start === undefined || start === 0n)
    throw new SpanProblem(
      `${where}.startTimeUnixNano must be a positive integer (unix time in nanoseconds, as a string)`,
    );
  const endRaw = raw.endTimeUnixNano ?? raw.end_time_unix_nano;
  let end: bigint | undefined;
  if (endRaw !== undefined && endRaw !== null) {
    end = decodeNanos(endRaw);
    if (end === undefined)
      throw new SpanProblem(
        `${where}.endTimeUnixNano must be an integer (unix time in nanoseconds, as a string)`,
      );
    if (end === 0n) end = undefined;
    else if (end < start) throw new SpanProblem(`${where} ends (endTimeUnixNano) before it starts`);
  }
  const attributes = decodeAttributes(raw.attributes, where);
  const events: OtlpSpanEvent[] = [];
  if (raw.events !== undefined && raw.events !== null) {
    if (!Array.isArray(raw.events)) throw new SpanProblem(`${where}.events must be an array`);
    for (const [e, event] of raw.events.entries()) {
      const eventWhere = `${where}.events[${e}]`;
      if (!isRecord(event) || typeof event.name !== 'string')
        throw new SpanProblem(`${eventWhere} must be an object with a string "name"`);
      events.push({
        name: event.name,
        timeUnixNano: decodeNanos(event.timeUnixNano ?? event.time_unix_nano) ?? start,
        attributes: decodeAttributes(event.attributes, eventWhere),
      });
    }
  }
  const status = isRecord(raw.status) ? raw.status : {};
  const statusCode = decodeStatusCode(status.code);
  if (statusCode === undefined)
    throw new SpanProblem(`${where}.status.code must be 0 (unset), 1 (ok) or 2 (error)`);
  const spanKind = typeof raw.kind === 'number' && Number.isInteger(raw.kind) ? raw.kind : 0;
  return {
    traceId,
    spanId,
    parentSpanId,
    name,
    spanKind,
    startTimeUnixNano: start,
    endTimeUnixNano: end,
    attributes,
    events,
    statusCode,
    statusMessage: typeof status.message === 'string' ? status.message : '',
    resource,
    scope,
  };
}

/** The span's ids for a rejection, when they can be read at all. */
function readableIds(raw: unknown): { traceId: string | null; spanId: string | null } {
  if (!isRecord(raw)) return { traceId: null, spanId: null };
  return {
    traceId: decodeId(raw.traceId ?? raw.trace_id, 16) ?? null,
    spanId: decodeId(raw.spanId ?? raw.span_id, 8) ?? null,
  };
}

/** OTLP/HTTP JSON sends ids as hex; some older exporters used protobuf JSON's base64: accept both. */
function decodeId(value: unknown, bytes: number): string | undefined {
  if (typeof value !== 'string') return undefined;
  const lower = value.toLowerCase();
  if ((bytes === 16 ? HEX_TRACE : HEX_SPAN).test(lower)) return lower;
  if (BASE64.test(value)) {
    const decoded = Buffer.from(value, 'base64');
    if (decoded.length === bytes) return decoded.toString('hex');
  }
  return undefined;
}

function decodeNanos(value: unknown): bigint | undefined {
  if (typeof value === 'string' && UNSIGNED.test(value)) {
    const nanos = BigInt(value);
    return nanos <= 0xffffffffffffffffn ? nanos : undefined;
  }
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  // A JSON number above 2^53 arrives rounded; still the right time to well under a microsecond.
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return BigInt(Math.round(value));
  return undefined;
}

function decodeStatusCode(value: unknown): number | undefined {
  if (value === undefined || value === null) return 0;
  if (value === 0 || value === 1 || value === 2) return value;
  const names: Record<string, number> = { STATUS_CODE_UNSET: 0, STATUS_CODE_OK: 1, STATUS_CODE_ERROR: 2 };
  return typeof value === 'string' ? names[value] : undefined;
}

function decodeAttributes(value: unknown, where: string): AttributeMap {
  const out: AttributeMap = {};
  if (value === undefined || value === null) return out;
  if (!Array.isArray(value)) throw new SpanProblem(`${where}.attributes must be an array of {key, value}`);
  for (const [index, entry] of value.entries()) {
    if (!isRecord(entry) || typeof entry.key !== 'string')
      throw new SpanProblem(`${where}.attributes[${index}] must be an object with a string "key"`);
    out[entry.key] = decodeAnyValue(entry.value, `${where}.attributes["${entry.key}"]`, 0);
  }
  return out;
}

/** An OTLP AnyValue as a JSON value (int64 beyond 2^53 stays a string; bytes become base64). */
function decodeAnyValue(value: unknown, where: string, depth: number): unknown {
  if (depth > MAX_VALUE_DEPTH) throw new SpanProblem(`${where} nests deeper than ${MAX_VALUE_DEPTH} levels`);
  if (value === undefined || value === null) return null;
  if (!isRecord(value))
    throw new SpanProblem(`${where} must be an OTLP AnyValue object such as {"stringValue": "…"}`);
  if ('stringValue' in value) {
    if (typeof value.stringValue !== 'string') throw new SpanProblem(`${where}.stringValue must be a string`);
    return value.stringValue;
  }
  if ('boolValue' in value) {
    if (typeof value.boolValue !== 'boolean') throw new SpanProblem(`${where}.boolValue must be a boolean`);
    return value.boolValue;
  }
  if ('intValue' in value) {
    const int = value.intValue;
    if (typeof int === 'number' && Number.isInteger(int)) return int;
    if (typeof int === 'string' && /^-?\d{1,20}$/.test(int)) {
      const number = Number(int);
      return Number.isSafeInteger(number) ? number : int;
    }
    throw new SpanProblem(`${where}.intValue must be an integer (or a string of digits)`);
  }
  if ('doubleValue' in value) {
    const double = value.doubleValue;
    if (typeof double === 'number') return double;
    if (typeof double === 'string' && double.trim() !== '' && Number.isFinite(Number(double)))
      return Number(double);
    if (double === 'NaN' || double === 'Infinity' || double === '-Infinity') return double;
    throw new SpanProblem(`${where}.doubleValue must be a number`);
  }
  if ('bytesValue' in value) {
    if (typeof value.bytesValue !== 'string')
      throw new SpanProblem(`${where}.bytesValue must be a base64 string`);
    return value.bytesValue;
  }
  if ('arrayValue' in value) {
    const values = isRecord(value.arrayValue) ? (value.arrayValue.values ?? []) : undefined;
    if (!Array.isArray(values)) throw new SpanProblem(`${where}.arrayValue must be {"values": [AnyValue…]}`);
    return values.map((item, index) => decodeAnyValue(item, `${where}[${index}]`, depth + 1));
  }
  if ('kvlistValue' in value) {
    const values = isRecord(value.kvlistValue) ? (value.kvlistValue.values ?? []) : undefined;
    if (!Array.isArray(values))
      throw new SpanProblem(`${where}.kvlistValue must be {"values": [{key, value}…]}`);
    const out: Record<string, unknown> = {};
    for (const [index, entry] of values.entries()) {
      if (!isRecord(entry) || typeof entry.key !== 'string')
        throw new SpanProblem(`${where}.kvlistValue.values[${index}] must be an object with a string "key"`);
      out[entry.key] = decodeAnyValue(entry.value, `${where}.${entry.key}`, depth + 1);
    }
    return out;
  }
  // An empty AnyValue is OTLP's way of saying "no value".
  if (Object.keys(value).length === 0) return null;
  throw new SpanProblem(
    `${where} has none of stringValue, boolValue, intValue, doubleValue, bytesValue, arrayValue, kvlistValue`,
  );
}
