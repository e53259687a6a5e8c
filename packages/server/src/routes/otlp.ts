import type { Handler } from '../context.ts';
import { withStore } from '../context.ts';
import { readJson } from '../json-body.ts';
import { ingestOtlp, otlpResponse } from '../otlp/index.ts';

// POST /v1/otlp/traces: OTLP/HTTP JSON (ExportTraceServiceRequest) in, GenAI and OpenInference
// spans mapped to runs and steps (docs/otlp.md). Same body bounds as the events route.

export const postOtlpTraces: Handler = async (context, { req }) => {
  const body = await readJson(req, {
    maxBytes: context.limits.maxEventBytes,
    maxDepth: context.limits.maxDepth,
    what: 'the OTLP request',
  });
  const result = await withStore(context, () =>
    ingestOtlp(context.store, body, { redactor: context.redactor }),
  );
  return { status: 200, json: otlpResponse(result) };
};
