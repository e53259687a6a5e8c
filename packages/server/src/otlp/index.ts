// OTLP in (SPEC §8 `POST /v1/otlp/traces`, docs/otlp.md): OpenTelemetry GenAI and OpenInference
// spans, as OTLP/HTTP JSON, mapped to Rewind runs and steps.
export { ingestOtlp, isoTime, type OtlpIngestResult, otlpResponse } from './ingest.ts';
export { classify, type MappedSpan, mapSpan, type SpanConvention } from './map-span.ts';
export {
  type AttributeMap,
  type OtlpRejection,
  type OtlpSpan,
  type OtlpSpanEvent,
  type ParsedOtlp,
  parseOtlpTraces,
} from './parse.ts';
