import type {
  Attributes,
  AttributeValue,
  ChainRequest,
  ChainResponse,
  ErrorInfo,
  ModelParams,
  ModelRequest,
  ModelResponse,
  RetrievedDocument,
  RetrieverRequest,
  RetrieverResponse,
  StepKind,
  ToolDefinition,
  ToolRequest,
  ToolResponse,
  Usage,
} from '@rewind/schema';
import { indexed, inputMessages, outputMessages, parseJsonish } from './messages.ts';
import type { AttributeMap, OtlpSpan } from './parse.ts';

// One span → the kind, name and normalized payloads of a Rewind step (SPEC §4), from the
// OpenTelemetry GenAI conventions (gen_ai.*) or OpenInference (openinference.span.kind, llm.*,
// input.value …). Spans that follow neither become `chain` steps (docs/otlp.md).

/** Which convention the span was recognized by. */
export type SpanConvention = 'gen_ai' | 'openinference' | 'none';

export interface MappedSpan {
  kind: StepKind;
  /** The step's name: part of its call key, so stable across runs (model, tool or span name). */
  name: string;
  convention: SpanConvention;
  /** True for agent spans (invoke_agent, create_agent, AGENT): the run's own span when at the root. */
  agent: boolean;
  request: ModelRequest | RetrieverRequest | ToolRequest | ChainRequest;
  /** Undefined when the span carries no response and failed. */
  response: ModelResponse | RetrieverResponse | ToolResponse | ChainResponse | undefined;
  usage: Usage | undefined;
  error: ErrorInfo | undefined;
  /** The span's input and output as a whole (the run's input and output when this is the root). */
  input: unknown;
  output: unknown;
  attributes: Attributes;
}

const MODEL_OPERATIONS = new Set(['chat', 'text_completion', 'generate_content', 'embeddings']);
const AGENT_OPERATIONS = new Set(['invoke_agent', 'create_agent']);
const MAX_NAME = 200;
/** Attributes carried by the payloads (often large): not copied into the step's attributes. */
const PAYLOAD_ATTRIBUTE = new RegExp(
  [
    '^gen_ai\\.(input|output)\\.messages$',
    '^gen_ai\\.system_instructions$',
    '^gen_ai\\.(prompt|completion)\\.',
    '^gen_ai\\.tool\\.call\\.(arguments|result)$',
    '^gen_ai\\.tool\\.definitions$',
    '^llm\\.(input|output)_messages\\.',
    '^llm\\.tools\\.',
    '^llm\\.invocation_parameters$',
    '^(input|output)\\.value$',
    '^retrieval\\.documents\\.',
    '^reranker\\.(input|output)_documents\\.',
  ].join('|'),
);

const str = (value: unknown): string | undefined =>
  typeof value === 'string' && value !== '' ? value : undefined;
const num = (value: unknown): number | undefined =>
  typeof value === 'number' && Number.isFinite(value)
    ? value
    : typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))
      ? Number(value)
      : undefined;
const int = (value: unknown): number | undefined => {
  const n = num(value);
  return n !== undefined && Number.isSafeInteger(n) ? n : undefined;
};
const count = (value: unknown): number | undefined => {
  const n = int(value);
  return n !== undefined && n >= 0 ? n : undefined;
};

function clip(name: string): string {
  return name.length > MAX_NAME ? name.slice(0, MAX_NAME) : name;
}

export function classify(span: OtlpSpan): { kind: StepKind; convention: SpanConvention; agent: boolean } {
  const a = span.attributes;
  const operation = str(a['gen_ai.operation.name'])?.toLowerCase();
  if (operation !== undefined) {
    if (MODEL_OPERATIONS.has(operation)) return { kind: 'model', convention: 'gen_ai', agent: false };
    if (operation === 'execute_tool') return { kind: 'tool', convention: 'gen_ai', agent: false };
    if (AGENT_OPERATIONS.has(operation)) return { kind: 'chain', convention: 'gen_ai', agent: true };
    return { kind: 'chain', convention: 'gen_ai', agent: false };
  }
  const openInference = str(a['openinference.span.kind'])?.toUpperCase();
  if (openInference !== undefined) {
    switch (openInference) {
      case 'LLM':
      case 'EMBEDDING':
        return { kind: 'model', convention: 'openinference', agent: false };
      case 'TOOL':
        return { kind: 'tool', convention: 'openinference', agent: false };
      case 'RETRIEVER':
      case 'RERANKER':
        return { kind: 'retriever', convention: 'openinference', agent: false };
      case 'AGENT':
        return { kind: 'chain', convention: 'openinference', agent: true };
      default:
        return { kind: 'chain', convention: 'openinference', agent: false };
    }
  }
  // Instrumentations that set the model attributes without gen_ai.operation.name (older ones).
  if (str(a['gen_ai.request.model']) !== undefined || str(a['gen_ai.system']) !== undefined)
    return { kind: 'model', convention: 'gen_ai', agent: false };
  if (str(a['gen_ai.tool.name']) !== undefined) return { kind: 'tool', convention: 'gen_ai', agent: false };
  return { kind: 'chain', convention: 'none', agent: false };
}

export function mapSpan(span: OtlpSpan): MappedSpan {
  const { kind, convention, agent } = classify(span);
  const a = span.attributes;
  const input = spanInput(span);
  const output = spanOutput(span);
  const error = errorOf(span);
  let name: string;
  let request: MappedSpan['request'];
  let response: MappedSpan['response'];
  let usage: Usage | undefined;
  switch (kind) {
    case 'model': {
      const built = modelPayloads(span);
      request = built.request;
      response = built.response;
      usage = built.usage;
      name = span.name;
      break;
    }
    case 'tool': {
      name = str(a['gen_ai.tool.name']) ?? str(a['tool.name']) ?? span.name;
      const args = a['gen_ai.tool.call.arguments'] ?? a['tool.parameters'] ?? a['input.value'];
      request = { name: clip(name), arguments: (parseJsonish(args) ?? {}) as ToolRequest['arguments'] };
      const result = a['gen_ai.tool.call.result'] ?? a['output.value'];
      response = { output: (parseJsonish(result) ?? null) as ToolResponse['output'] };
      break;
    }
    case 'retriever': {
      name = span.name;
      const built = retrieverPayloads(span);
      request = built.request;
      response = built.response;
      break;
    }
    default: {
      name = (agent ? str(a['gen_ai.agent.name']) : undefined) ?? span.name;
      request = { input: (input ?? null) as ChainRequest['input'] };
      response = { output: (output ?? null) as ChainResponse['output'] };
    }
  }
  if (error !== undefined && kind !== 'model' && output === undefined) response = undefined;
  return {
    kind,
    name: clip(name),
    convention,
    agent,
    request,
    response,
    usage,
    error,
    input,
    output,
    attributes: stepAttributes(span),
  };
}

/** The span's input as a whole: input.value, else the GenAI input messages, else tool arguments. */
function spanInput(span: OtlpSpan): unknown {
  const a = span.attributes;
  if (a['input.value'] !== undefined) return parseJsonish(a['input.value']);
  if (a['gen_ai.input.messages'] !== undefined) return parseJsonish(a['gen_ai.input.messages']);
  if (a['gen_ai.tool.call.arguments'] !== undefined) return parseJsonish(a['gen_ai.tool.call.arguments']);
  return undefined;
}

function spanOutput(span: OtlpSpan): unknown {
  const a = span.attributes;
  if (a['output.value'] !== undefined) return parseJsonish(a['output.value']);
  if (a['gen_ai.output.messages'] !== undefined) return parseJsonish(a['gen_ai.output.messages']);
  if (a['gen_ai.tool.call.result'] !== undefined) return parseJsonish(a['gen_ai.tool.call.result']);
  return undefined;
}

function errorOf(span: OtlpSpan): ErrorInfo | undefined {
  const a = span.attributes;
  const exception = span.events.find((event) => event.name === 'exception')?.attributes;
  const type = str(a['error.type']) ?? str(exception?.['exception.type']);
  if (span.statusCode !== 2 && type === undefined) return undefined;
  // error.type without an error status still means the operation failed (GenAI conventions).
  return {
    type: type ?? 'Error',
    message: span.statusMessage || str(exception?.['exception.message']) || '',
    ...(str(exception?.['exception.stacktrace']) === undefined
      ? {}
      : { stack: str(exception?.['exception.stacktrace'])! }),
  };
}

function modelPayloads(span: OtlpSpan): {
  request: ModelRequest;
  response: ModelResponse;
  usage: Usage | undefined;
} {
  const a = span.attributes;
  const invocation = parseJsonish(a['llm.invocation_parameters']);
  const inv = (typeof invocation === 'object' && invocation !== null ? invocation : {}) as Record<
    string,
    unknown
  >;
  const params: ModelParams = {};
  const set = (key: string, value: unknown) => {
    if (value !== undefined) params[key] = value;
  };
  set('temperature', num(a['gen_ai.request.temperature']) ?? num(inv.temperature));
  set('topP', num(a['gen_ai.request.top_p']) ?? num(inv.top_p));
  set('topK', num(a['gen_ai.request.top_k']) ?? num(inv.top_k));
  set(
    'maxTokens',
    count(a['gen_ai.request.max_tokens']) ?? count(inv.max_tokens) ?? count(inv.max_completion_tokens),
  );
  set('seed', int(a['gen_ai.request.seed']) ?? int(inv.seed));
  set('frequencyPenalty', num(a['gen_ai.request.frequency_penalty']) ?? num(inv.frequency_penalty));
  set('presencePenalty', num(a['gen_ai.request.presence_penalty']) ?? num(inv.presence_penalty));
  const stop = a['gen_ai.request.stop_sequences'] ?? inv.stop;
  if (Array.isArray(stop) && stop.every((s) => typeof s === 'string')) params.stop = stop as string[];
  else if (typeof stop === 'string') params.stop = [stop];

  const provider =
    str(a['gen_ai.provider.name']) ??
    str(a['gen_ai.system']) ??
    str(a['llm.provider']) ??
    str(a['llm.system']) ??
    'unknown';
  const requestModel =
    str(a['gen_ai.request.model']) ?? str(a['llm.model_name']) ?? str(a['embedding.model_name']) ?? '';
  const request: ModelRequest = {
    provider,
    model: requestModel,
    messages: inputMessages(a, span.events),
    params,
  };
  const tools = toolDefinitions(a);
  if (tools.length > 0) request.tools = tools;

  const outputs = outputMessages(a, span.events);
  const first = outputs[0];
  const finishReasons = a['gen_ai.response.finish_reasons'];
  const finishReason =
    (Array.isArray(finishReasons) ? str(finishReasons[0]) : str(finishReasons)) ?? first?.finishReason ?? '';
  const usage: Usage = {};
  const inputTokens =
    count(a['gen_ai.usage.input_tokens']) ??
    count(a['gen_ai.usage.prompt_tokens']) ??
    count(a['llm.token_count.prompt']);
  const outputTokens =
    count(a['gen_ai.usage.output_tokens']) ??
    count(a['gen_ai.usage.completion_tokens']) ??
    count(a['llm.token_count.completion']);
  const totalTokens =
    count(a['llm.token_count.total']) ??
    (inputTokens !== undefined && outputTokens !== undefined ? inputTokens + outputTokens : undefined);
  if (inputTokens !== undefined) usage.inputTokens = inputTokens;
  if (outputTokens !== undefined) usage.outputTokens = outputTokens;
  if (totalTokens !== undefined) usage.totalTokens = totalTokens;
  const response: ModelResponse = {
    model: str(a['gen_ai.response.model']) ?? str(a['llm.model_name']) ?? requestModel,
    message: first?.message ?? { role: 'assistant', content: null },
    finishReason,
    usage,
  };
  return { request, response, usage: Object.keys(usage).length > 0 ? usage : undefined };
}

function toolDefinitions(a: AttributeMap): ToolDefinition[] {
  const out: ToolDefinition[] = [];
  const definitions = parseJsonish(a['gen_ai.tool.definitions']);
  const sources: unknown[] = Array.isArray(definitions) ? definitions : [];
  for (const entry of indexed(a, 'llm.tools')) sources.push(parseJsonish(entry['tool.json_schema']));
  for (const raw of sources) {
    if (typeof raw !== 'object' || raw === null) continue;
    const record = raw as Record<string, unknown>;
    const fn = (
      typeof record.function === 'object' && record.function !== null ? record.function : record
    ) as Record<string, unknown>;
    const name = str(fn.name);
    if (name === undefined) continue;
    const definition: ToolDefinition = { name };
    if (typeof fn.description === 'string') definition.description = fn.description;
    if (fn.parameters !== undefined) definition.parameters = fn.parameters as ToolDefinition['parameters'];
    out.push(definition);
  }
  return out;
}

function retrieverPayloads(span: OtlpSpan): { request: RetrieverRequest; response: RetrieverResponse } {
  const a = span.attributes;
  const reranker = str(a['openinference.span.kind'])?.toUpperCase() === 'RERANKER';
  const rawQuery = reranker ? a['reranker.query'] : a['input.value'];
  const parsedQuery = parseJsonish(rawQuery);
  const query =
    typeof parsedQuery === 'string'
      ? parsedQuery
      : typeof parsedQuery === 'object' &&
          parsedQuery !== null &&
          typeof (parsedQuery as { query?: unknown }).query === 'string'
        ? (parsedQuery as { query: string }).query
        : parsedQuery === undefined
          ? ''
          : JSON.stringify(parsedQuery);
  const request: RetrieverRequest = { query };
  const topK = count(reranker ? a['reranker.top_k'] : a['retrieval.top_k']);
  if (topK !== undefined) request.topK = topK;
  const documents: RetrievedDocument[] = indexed(
    a,
    reranker ? 'reranker.output_documents' : 'retrieval.documents',
  ).map((entry, index) => {
    const document: RetrievedDocument = {
      id: entry['document.id'] === undefined ? String(index) : String(entry['document.id']),
      content:
        typeof entry['document.content'] === 'string'
          ? entry['document.content']
          : JSON.stringify(entry['document.content'] ?? ''),
    };
    const score = num(entry['document.score']);
    if (score !== undefined) document.score = score;
    const metadata = parseJsonish(entry['document.metadata']);
    if (typeof metadata === 'object' && metadata !== null && !Array.isArray(metadata))
      document.metadata = metadata as RetrievedDocument['metadata'];
    return document;
  });
  return { request, response: { documents } };
}

/** Scalar attributes of the span (payload-carrying ones left out), plus where it came from. */
function stepAttributes(span: OtlpSpan): Attributes {
  const out: Attributes = {
    'otel.trace_id': span.traceId,
    'otel.span_id': span.spanId,
    'otel.span_name': span.name,
  };
  const service = str(span.resource['service.name']);
  if (service !== undefined) out['service.name'] = service;
  if (span.scope.name !== '') out['otel.scope.name'] = span.scope.name;
  for (const [key, value] of Object.entries(span.attributes)) {
    if (PAYLOAD_ATTRIBUTE.test(key)) continue;
    const scalar = attributeValue(value);
    if (scalar !== undefined) out[key] = scalar;
  }
  return out;
}

function attributeValue(value: unknown): AttributeValue | undefined {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (Array.isArray(value) && value.every((v) => ['string', 'number', 'boolean'].includes(typeof v)))
    return value as Array<string | number | boolean>;
  return value === undefined ? undefined : JSON.stringify(value);
}
