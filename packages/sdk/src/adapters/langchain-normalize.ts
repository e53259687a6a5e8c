// Pure normalizers for LangChain.js: chat-model runs (messages as BaseMessage instances or their
// `{lc: 1, type: 'constructor', id, kwargs}` JSON, invocation params, LLMResult), retriever runs
// (query, Documents) and tool runs (input string, output). No LangChain import here: messages
// are read by duck typing, so these work on live objects and on recorded JSON alike.
import type {
  ContentPart,
  Message,
  ModelRequest,
  ModelResponse,
  RetrievedDocument,
  RetrieverResponse,
  ToolDefinition,
} from '@rewind/schema';
import {
  asArray,
  isRecord,
  type Json,
  type JsonObject,
  parseJsonArguments,
  toJsonSafe,
} from './shared/json.ts';
import {
  collapseParts,
  contentPart,
  mergeText,
  normalizeFinishReason,
  normalizeParams,
  normalizeRole,
  resolveToolNames,
  toolCall,
  toolDefinition,
  usage,
} from './shared/normalize.ts';

type Rec = Record<string, unknown>;

/** A message's fields and LangChain type (`human`, `ai`, `system`, `tool`, …), live or serialized. */
export function messageFields(message: unknown): { type: string; fields: Rec } {
  if (!isRecord(message)) return { type: 'human', fields: { content: message } };
  if (message.lc === 1 && isRecord(message.kwargs) && Array.isArray(message.id)) {
    const cls = String(message.id.at(-1) ?? '');
    return { type: typeOfClass(cls, message.kwargs), fields: message.kwargs };
  }
  const getType = (message as { _getType?: unknown })._getType;
  let type: unknown;
  try {
    type = typeof getType === 'function' ? getType.call(message) : message.type;
  } catch {
    type = message.type;
  }
  if (typeof type !== 'string' && typeof message.role === 'string') type = message.role;
  return { type: typeof type === 'string' ? type : 'human', fields: message };
}

function typeOfClass(cls: string, kwargs: Rec): string {
  if (cls.startsWith('AIMessage')) return 'ai';
  if (cls.startsWith('HumanMessage')) return 'human';
  if (cls.startsWith('SystemMessage')) return 'system';
  if (cls.startsWith('ToolMessage')) return 'tool';
  if (cls.startsWith('FunctionMessage')) return 'function';
  if (cls.startsWith('ChatMessage')) return typeof kwargs.role === 'string' ? kwargs.role : 'generic';
  return typeof kwargs.type === 'string' ? kwargs.type : 'human';
}

function roleOf(type: string, fields: Rec): Message['role'] {
  switch (type) {
    case 'human':
      return 'user';
    case 'ai':
      return 'assistant';
    case 'system':
      return 'system';
    case 'developer':
      return 'developer';
    case 'tool':
    case 'function':
      return 'tool';
    case 'generic':
      return normalizeRole(fields.role);
    default:
      return normalizeRole(type);
  }
}

function part(value: unknown): ContentPart {
  if (isRecord(value) && value.type === 'text' && typeof value.text === 'string')
    return { type: 'text', text: value.text };
  return contentPart(value);
}

/** Tool-call blocks repeat `tool_calls` inside the content of some providers' AI messages. */
const TOOL_CALL_BLOCKS = new Set([
  'tool_use',
  'tool_call',
  'function_call',
  'tool_call_chunk',
  'input_json_delta',
]);

function contentOf(content: unknown, dropToolBlocks: boolean): Message['content'] {
  if (typeof content === 'string') return content;
  if (content === undefined || content === null) return null;
  const parts = asArray(content)
    .filter((item) => !(dropToolBlocks && isRecord(item) && TOOL_CALL_BLOCKS.has(String(item.type))))
    .map(part);
  return collapseParts(mergeText(parts.filter((p) => !(p.type === 'text' && p.text === ''))));
}

function toolCallsOf(fields: Rec): Message['toolCalls'] {
  const calls = asArray(fields.tool_calls)
    .filter(isRecord)
    .map((call) => toolCall(call.id, call.name, toJsonSafe(call.args ?? {})));
  return calls.length > 0 ? calls : undefined;
}

/** One LangChain message → a normalized message. */
export function normalizeLangChainMessage(message: unknown): Message {
  const { type, fields } = messageFields(message);
  const role = roleOf(type, fields);
  const calls = role === 'assistant' ? toolCallsOf(fields) : undefined;
  const normalized: Message = { role, content: contentOf(fields.content, calls !== undefined) };
  if (calls !== undefined) normalized.toolCalls = calls;
  if (typeof fields.tool_call_id === 'string') normalized.toolCallId = fields.tool_call_id;
  if (typeof fields.name === 'string' && fields.name !== '') normalized.name = fields.name;
  return normalized;
}

const PARAMS = {
  typed: {
    temperature: 'temperature',
    top_p: 'topP',
    topP: 'topP',
    top_k: 'topK',
    topK: 'topK',
    max_tokens: 'maxTokens',
    max_completion_tokens: 'maxTokens',
    max_output_tokens: 'maxTokens',
    maxTokens: 'maxTokens',
    maxOutputTokens: 'maxTokens',
    seed: 'seed',
    stop: 'stop',
    stop_sequences: 'stop',
    stopSequences: 'stop',
  },
  skip: new Set([
    'model',
    'model_name',
    'modelName',
    'tools',
    'functions',
    'stream',
    'messages',
    'signal',
    'callbacks',
  ]),
} as const;

function toolsOf(params: Rec): ToolDefinition[] | undefined {
  const list = asArray(params.tools)
    .filter(isRecord)
    .map((tool) => {
      const spec = isRecord(tool.function) ? tool.function : tool;
      return toolDefinition(
        spec.name ?? tool.type,
        spec.description,
        spec.parameters ?? spec.input_schema ?? spec.schema,
      );
    });
  return list.length > 0 ? list : undefined;
}

export interface ChatModelStart {
  /** `llm.id` of the serialized model, e.g. `['langchain', 'chat_models', 'openai', 'ChatOpenAI']`. */
  className: string;
  /** The prompts of the run (one list per prompt; LangChain batches several in one run). */
  messages: readonly unknown[][];
  /** `extraParams.invocation_params`. */
  invocationParams: unknown;
  /** The run's metadata (`ls_provider`, `ls_model_name`, …). */
  metadata: unknown;
}

/** A chat-model run's start → the normalized model request (the first prompt; all are in `raw`). */
export function normalizeChatModelStart(start: ChatModelStart): ModelRequest {
  const params = isRecord(start.invocationParams) ? start.invocationParams : {};
  const metadata = isRecord(start.metadata) ? start.metadata : {};
  const provider =
    typeof metadata.ls_provider === 'string' && metadata.ls_provider !== ''
      ? metadata.ls_provider
      : start.className.replace(/^Chat/, '').toLowerCase() || 'langchain';
  const model = [metadata.ls_model_name, params.model, params.model_name, params.modelName].find(
    (value): value is string => typeof value === 'string',
  );
  const request: ModelRequest = {
    provider,
    model: model ?? '',
    messages: resolveToolNames((start.messages[0] ?? []).map(normalizeLangChainMessage)),
    params: normalizeParams(params, PARAMS),
    stream: params.stream === true,
    raw: { messages: toJsonSafe(start.messages), invocationParams: toJsonSafe(params) },
  };
  const tools = toolsOf(params);
  if (tools !== undefined) request.tools = tools;
  return request;
}

function firstGeneration(output: unknown): Rec {
  if (!isRecord(output)) return {};
  const first = asArray(asArray(output.generations)[0])[0];
  return isRecord(first) ? first : {};
}

/**
 * A chat-model run's `LLMResult` → the normalized response. `raw` is `{generations, llmOutput}`
 * as JSON, plus `chunks` (the streamed generation chunks) when the run streamed.
 */
export function normalizeChatModelEnd(
  output: unknown,
  requestModel: string,
  extra: JsonObject = {},
): ModelResponse {
  const generation = firstGeneration(output);
  const { fields } = messageFields(generation.message ?? { type: 'ai', content: generation.text ?? '' });
  const message = normalizeLangChainMessage(
    generation.message ?? { type: 'ai', content: generation.text ?? '' },
  );
  message.role = 'assistant';
  const metadata = isRecord(fields.response_metadata) ? fields.response_metadata : {};
  // Streamed ChatAnthropic chunks carry the model and stop reason in additional_kwargs.
  const extraKwargs = isRecord(fields.additional_kwargs) ? fields.additional_kwargs : {};
  const info = isRecord(generation.generationInfo) ? generation.generationInfo : {};
  const usageMetadata = isRecord(fields.usage_metadata) ? fields.usage_metadata : undefined;
  const llmOutput = isRecord(output) && isRecord(output.llmOutput) ? output.llmOutput : {};
  const tokenUsage = isRecord(llmOutput.tokenUsage) ? llmOutput.tokenUsage : {};
  const model = [metadata.model_name, metadata.model, info.model_name, extraKwargs.model].find(
    (value): value is string => typeof value === 'string' && value !== '',
  );
  const finish =
    metadata.finish_reason ??
    metadata.stop_reason ??
    info.finish_reason ??
    info.stop_reason ??
    extraKwargs.finish_reason ??
    extraKwargs.stop_reason;
  return {
    model: model ?? requestModel,
    message,
    finishReason:
      finish === undefined && (message.toolCalls?.length ?? 0) > 0
        ? 'tool_calls'
        : normalizeFinishReason(finish),
    usage:
      usageMetadata !== undefined
        ? usage(usageMetadata.input_tokens, usageMetadata.output_tokens, usageMetadata.total_tokens)
        : usage(tokenUsage.promptTokens, tokenUsage.completionTokens, tokenUsage.totalTokens),
    raw: {
      ...extra,
      generations: toJsonSafe(isRecord(output) ? output.generations : []),
      llmOutput: toJsonSafe(isRecord(output) ? (output.llmOutput ?? null) : null),
    },
  };
}

/** A streamed chunk (`fields.chunk` of handleLLMNewToken: a ChatGenerationChunk) as recorded. */
export function chunkRecord(token: string, chunk: unknown): Json {
  if (!isRecord(chunk)) return { text: token };
  const out: JsonObject = { text: typeof chunk.text === 'string' ? chunk.text : token };
  if (chunk.message !== undefined) out.message = toJsonSafe(chunk.message);
  if (chunk.generationInfo !== undefined) out.generationInfo = toJsonSafe(chunk.generationInfo);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Retrievers and tools

export function normalizeRetrieverStart(query: unknown): { query: string } {
  return { query: typeof query === 'string' ? query : JSON.stringify(toJsonSafe(query)) };
}

/** Documents → `{documents}`; the score is taken from metadata (`score`, `_score`, `relevance_score`). */
export function normalizeRetrieverEnd(documents: unknown): RetrieverResponse {
  const list: RetrievedDocument[] = asArray(documents).map((doc, index) => {
    const rec = isRecord(doc) ? doc : { pageContent: String(doc) };
    const metadata = isRecord(rec.metadata) ? (toJsonSafe(rec.metadata) as JsonObject) : undefined;
    const normalized: RetrievedDocument = {
      id: typeof rec.id === 'string' && rec.id !== '' ? rec.id : String(index),
      content: typeof rec.pageContent === 'string' ? rec.pageContent : String(rec.pageContent ?? ''),
    };
    const score = [metadata?.score, metadata?._score, metadata?.relevance_score].find(
      (value): value is number => typeof value === 'number' && Number.isFinite(value),
    );
    if (score !== undefined) normalized.score = score;
    if (metadata !== undefined) normalized.metadata = metadata;
    return normalized;
  });
  return { documents: list };
}

/** A tool run's input string → `{name, arguments}` (JSON input parsed). */
export function normalizeToolStart(name: string, input: unknown): { name: string; arguments: Json } {
  return {
    name,
    arguments: typeof input === 'string' ? parseJsonArguments(input) : toJsonSafe(input ?? null),
  };
}

/**
 * A tool run's output → `{output}`. A ToolMessage (what a tool returns when called with a tool
 * call) is recorded by its content (plus `artifact` when it has one): the tool's own result.
 */
export function normalizeToolEnd(output: unknown): { output: Json } {
  const { type, fields } = messageFields(output);
  if (isRecord(output) && type === 'tool' && 'content' in fields) {
    const content = toJsonSafe(fields.content);
    if (fields.artifact === undefined) return { output: content };
    return { output: { content, artifact: toJsonSafe(fields.artifact) } };
  }
  return { output: toJsonSafe(output ?? null) };
}

/** The body a provider error carries (`error.error` of the openai / anthropic clients), if any. */
export function langchainErrorBody(error: unknown): Json | undefined {
  if (!isRecord(error) || error.error === undefined || error.error === null) return undefined;
  return toJsonSafe(error.error);
}
