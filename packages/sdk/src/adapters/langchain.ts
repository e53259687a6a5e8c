// `@rewind/sdk/langchain`: capture for LangChain.js through a callback handler.
//
//   import { rewindHandler, wrapChatModel, wrapTool } from '@rewind/sdk/langchain';
//   await agent.invoke(input, { callbacks: [rewindHandler()] });      // everything under it
//   const model = wrapChatModel(new ChatOpenAI({ … }));               // or per component
//   const search = wrapTool(tool(fn, { name: 'search', … }));
//
// The handler records chat-model runs as `model` steps, retriever runs as `retriever` steps and
// tool runs as `tool` steps (chain runs as `chain` steps with `{ chains: true }`).
//
// Nesting. A callback handler is told about runs, not called around them, so it cannot wrap a
// run in AsyncLocalStorage the way `recorder.tool(…)` does. Instead the handler keeps a map
// runId → { step, parentRunId } of the runs it has seen (chain runs included, recorded or not).
// When a run starts with a parentRunId, it walks up that map to the nearest ancestor that has a
// step and starts the new step inside `ancestor.run(…)`, so it becomes that step's child. A run
// with no recorded ancestor starts in the caller's async context: the handler sets
// `awaitHandlers`, so LangChain calls it inline from the code that started the run (not from its
// background queue), and the step lands under whatever run, step or chain is current there.
// Entries are removed when their run ends.
//
// Wrappers. `wrapChatModel(model)` and `wrapTool(tool)` attach the handler to the instance
// (`instance.callbacks`), so their calls are captured without passing callbacks, and mark the
// instance as the one the replay engine will serve: a wrapped model's `_generate` receives the
// run manager whose runId `handler.stepFor(runId)` maps to the step, and
// `chatResultFromRecorded(raw)` rebuilds the ChatResult to return from a recorded response.

import { BaseCallbackHandler } from '@langchain/core/callbacks/base';
import { AIMessage, AIMessageChunk } from '@langchain/core/messages';
import type { ActiveStep, StepOptions } from '../capture-api.ts';
import { errorOf } from '../replay/serve.ts';
import {
  chunkRecord,
  langchainErrorBody,
  messageFields,
  normalizeChatModelEnd,
  normalizeChatModelStart,
  normalizeLangChainMessage,
  normalizeRetrieverEnd,
  normalizeRetrieverStart,
  normalizeToolEnd,
  normalizeToolStart,
} from './langchain-normalize.ts';
import { errorType, isRecord, type Json, type JsonObject, toJsonSafe } from './shared/json.ts';
import { settleServed } from './shared/served.ts';
import { beginStep, failStep, guard } from './shared/step.ts';
import { StreamRecording } from './shared/stream.ts';

export {
  normalizeChatModelEnd,
  normalizeChatModelStart,
  normalizeLangChainMessage,
  normalizeRetrieverEnd,
  normalizeRetrieverStart,
  normalizeToolEnd,
  normalizeToolStart,
};

const ADAPTER = 'langchain';
const MAX_TRACKED_RUNS = 100_000;

export interface RewindHandlerOptions {
  /** Also record chain runs (RunnableSequence, agent executors, graph nodes) as `chain` steps. Default false. */
  chains?: boolean;
}

interface RunEntry {
  step: ActiveStep | undefined;
  parentRunId: string | undefined;
  /** The requested model, for a response that does not name one. */
  model?: string;
  recording?: StreamRecording;
  lastChunk?: unknown;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}

function serializedName(serialized: unknown): string {
  if (isRecord(serialized)) {
    if (Array.isArray(serialized.id) && serialized.id.length > 0) return String(serialized.id.at(-1));
    if (typeof serialized.name === 'string') return serialized.name;
  }
  return 'unknown';
}

export class RewindCallbackHandler extends BaseCallbackHandler {
  name = 'rewind_callback_handler';
  readonly #runs = new Map<string, RunEntry>();
  readonly #chains: boolean;

  constructor(options: RewindHandlerOptions = {}) {
    super({ _awaitHandler: true });
    // Inline, in the caller's async context (see the header): never LangChain's background queue.
    this.awaitHandlers = true;
    this.raiseError = false;
    this.#chains = options.chains === true;
  }

  /** Handlers carry per-run state that must be shared: a copy is this handler. */
  override copy(): this {
    return this;
  }

  /** The step recording the run `runId`, while it runs. */
  stepFor(runId: string): ActiveStep | undefined {
    return this.#runs.get(runId)?.step;
  }

  #parentStep(parentRunId: string | undefined): ActiveStep | undefined {
    let id = parentRunId;
    for (let hops = 0; id !== undefined && hops < 10_000; hops++) {
      const entry = this.#runs.get(id);
      if (entry === undefined) return undefined;
      if (entry.step !== undefined) return entry.step;
      id = entry.parentRunId;
    }
    return undefined;
  }

  /** Registers the run and starts its step (nested under its nearest recorded ancestor). */
  #start(
    runId: string,
    parentRunId: string | undefined,
    build: (() => StepOptions) | undefined,
    fallback?: () => StepOptions,
  ) {
    if (this.#runs.has(runId)) return undefined; // the same handler attached twice
    if (this.#runs.size >= MAX_TRACKED_RUNS) this.#runs.clear();
    const entry: RunEntry = { step: undefined, parentRunId };
    this.#runs.set(runId, entry);
    if (build === undefined) return entry;
    const begin = () => beginStep(ADAPTER, build, fallback ?? build);
    const parent = this.#parentStep(parentRunId);
    entry.step = parent === undefined ? begin() : parent.run(begin);
    return entry;
  }

  #end(runId: string): RunEntry | undefined {
    const entry = this.#runs.get(runId);
    this.#runs.delete(runId);
    return entry;
  }

  // -- chat models and LLMs ------------------------------------------------------------------

  override handleChatModelStart(
    llm: unknown,
    messages: unknown[][],
    runId: string,
    parentRunId?: string,
    extraParams?: Record<string, unknown>,
    _tags?: string[],
    metadata?: Record<string, unknown>,
    runName?: string,
  ): void {
    guard(ADAPTER, () => {
      const className = serializedName(llm);
      const name = runName ?? `langchain.${className}`;
      let model = '';
      const entry = this.#start(
        runId,
        parentRunId,
        () => {
          const request = normalizeChatModelStart({
            className,
            messages,
            invocationParams: extraParams?.invocation_params,
            metadata,
          });
          model = request.model;
          return {
            kind: 'model',
            name,
            request,
            attributes: { 'rewind.adapter': ADAPTER, 'rewind.class': className },
          };
        },
        () => ({
          kind: 'model',
          name,
          request: { provider: 'langchain', model: '', messages: [], params: {}, raw: toJsonSafe(messages) },
        }),
      );
      if (entry !== undefined) entry.model = model;
    });
  }

  override handleLLMStart(
    llm: unknown,
    prompts: string[],
    runId: string,
    parentRunId?: string,
    extraParams?: Record<string, unknown>,
    tags?: string[],
    metadata?: Record<string, unknown>,
    runName?: string,
  ): void {
    const messages = prompts.map((prompt) => [{ type: 'human', content: prompt }]);
    this.handleChatModelStart(llm, messages, runId, parentRunId, extraParams, tags, metadata, runName);
  }

  override handleLLMNewToken(
    token: string,
    _idx: unknown,
    runId: string,
    _parentRunId?: string,
    _tags?: string[],
    fields?: { chunk?: unknown },
  ): void {
    guard(ADAPTER, () => {
      const entry = this.#runs.get(runId);
      if (entry?.step === undefined) return;
      const chunk = fields?.chunk;
      if (chunk !== undefined && chunk === entry.lastChunk) return; // the same handler attached twice
      entry.lastChunk = chunk;
      entry.recording ??= new StreamRecording(entry.step);
      entry.recording.push(chunkRecord(token, chunk));
    });
  }

  override handleLLMEnd(output: unknown, runId: string): void {
    guard(ADAPTER, () => {
      const entry = this.#end(runId);
      const step = entry?.step;
      if (step === undefined) return;
      const recording = entry?.recording;
      const extra: JsonObject = recording === undefined ? {} : { chunks: [...recording.chunks] };
      const response = normalizeChatModelEnd(output, entry?.model ?? '', extra);
      step.finish(response, {
        usage: response.usage,
        ...(recording === undefined ? {} : { stream: { offsetsMs: [...recording.offsetsMs] } }),
      });
    });
  }

  override handleLLMError(error: unknown, runId: string): void {
    this.#fail(runId, error);
  }

  // -- retrievers ------------------------------------------------------------------------------

  override handleRetrieverStart(
    retriever: unknown,
    query: string,
    runId: string,
    parentRunId?: string,
    _tags?: string[],
    _metadata?: Record<string, unknown>,
    name?: string,
  ): void {
    guard(ADAPTER, () => {
      const stepName = name ?? serializedName(retriever);
      this.#start(runId, parentRunId, () => ({
        kind: 'retriever',
        name: stepName,
        request: normalizeRetrieverStart(query),
        attributes: { 'rewind.adapter': ADAPTER, 'rewind.class': serializedName(retriever) },
      }));
    });
  }

  override handleRetrieverEnd(documents: unknown[], runId: string): void {
    guard(ADAPTER, () => {
      const step = this.#end(runId)?.step;
      step?.finish(normalizeRetrieverEnd(documents));
    });
  }

  override handleRetrieverError(error: unknown, runId: string): void {
    this.#fail(runId, error);
  }

  // -- tools -----------------------------------------------------------------------------------

  override handleToolStart(
    tool: unknown,
    input: string,
    runId: string,
    parentRunId?: string,
    _tags?: string[],
    _metadata?: Record<string, unknown>,
    runName?: string,
    toolCallId?: string,
  ): void {
    guard(ADAPTER, () => {
      const name = runName ?? serializedName(tool);
      const attributes: Record<string, string> = { 'rewind.adapter': ADAPTER };
      if (typeof toolCallId === 'string') attributes['rewind.toolCallId'] = toolCallId;
      this.#start(runId, parentRunId, () => ({
        kind: 'tool',
        name,
        request: normalizeToolStart(name, input),
        attributes,
      }));
    });
  }

  override handleToolEnd(output: unknown, runId: string): void {
    guard(ADAPTER, () => {
      const step = this.#end(runId)?.step;
      step?.finish(normalizeToolEnd(output));
    });
  }

  override handleToolError(error: unknown, runId: string): void {
    this.#fail(runId, error);
  }

  // -- chains (ancestry always; steps only with `chains: true`) --------------------------------

  /**
   * @langchain/core 1.x declares `(chain, inputs, runId, runType, tags, metadata, runName,
   * parentRunId)` but calls `(chain, inputs, runId, parentRunId, tags, metadata, runType,
   * runName)`; both orders are accepted (a parent run id is a UUID, a run type or name is not).
   */
  override handleChainStart(
    chain: unknown,
    inputs: unknown,
    runId: string,
    fourth?: string,
    _tags?: string[],
    _metadata?: Record<string, unknown>,
    seventh?: string,
    eighth?: string,
  ): void {
    guard(ADAPTER, () => {
      const declaredOrder = isUuid(eighth) && !isUuid(fourth);
      const parentRunId = declaredOrder ? eighth : fourth;
      const runName = declaredOrder ? seventh : eighth;
      const name = runName ?? serializedName(chain);
      this.#start(
        runId,
        parentRunId,
        this.#chains
          ? () => ({
              kind: 'chain',
              name,
              request: { input: toJsonSafe(inputs) },
              attributes: { 'rewind.adapter': ADAPTER },
            })
          : undefined,
      );
    });
  }

  override handleChainEnd(outputs: unknown, runId: string): void {
    guard(ADAPTER, () => {
      const step = this.#end(runId)?.step;
      step?.finish({ output: toJsonSafe(outputs) });
    });
  }

  override handleChainError(error: unknown, runId: string): void {
    this.#fail(runId, error);
  }

  #fail(runId: string, error: unknown): void {
    guard(ADAPTER, () => {
      const entry = this.#end(runId);
      const step = entry?.step;
      if (step === undefined) return;
      const recording = entry?.recording;
      failStep(ADAPTER, step, abortAware(error), () => {
        const body = langchainErrorBody(error);
        if (recording === undefined) return body === undefined ? {} : { response: body };
        const response: JsonObject = { chunks: [...recording.chunks], offsetsMs: [...recording.offsetsMs] };
        if (body !== undefined) response.error = body;
        return { response };
      });
    });
  }
}

/**
 * LangChain reports an aborted stream to callbacks as `new Error('AbortError')` (while the
 * caller gets a DOMException `AbortError`): record it under the type it stands for.
 */
function abortAware(error: unknown): unknown {
  if (!(error instanceof Error) || errorType(error) !== 'Error') return error;
  if (!/^abort(error|ed)?\.?$/i.test(error.message.trim())) return error;
  return Object.create(error, { name: { value: 'AbortError', enumerable: false, configurable: true } });
}

let shared: RewindCallbackHandler | undefined;

/**
 * The process-wide handler the wrappers use. Using one handler everywhere lets it nest runs it
 * learns about from different places (a wrapped tool calling a wrapped model).
 */
export function rewindHandler(): RewindCallbackHandler {
  shared ??= new RewindCallbackHandler();
  return shared;
}

const WRAPPED = Symbol.for('rewind.sdk.langchain.wrapped');

function attach<T extends object>(target: T, handler: RewindCallbackHandler): T {
  const rec = target as Record<PropertyKey, unknown>;
  if (rec[WRAPPED] === handler) return target;
  const current = rec.callbacks;
  if (current === undefined || current === null) rec.callbacks = [handler];
  else if (Array.isArray(current)) {
    if (!current.includes(handler)) rec.callbacks = [...current, handler];
  } else if (isRecord(current) && typeof current.copy === 'function') {
    rec.callbacks = (current.copy as (handlers: unknown[], inherit: boolean) => unknown)([handler], true);
  }
  Object.defineProperty(rec, WRAPPED, { value: handler, configurable: true, enumerable: false });
  if (isChatModelLike(target)) serveInReplay(rec, handler);
  // Some integrations derive a new model instead of binding this one (@langchain/openai's
  // `ChatOpenAI.withConfig` returns `new ChatOpenAI(this.fields)`, so `bindTools` and
  // `withStructuredOutput` lose instance callbacks): derived models are wrapped too.
  const withConfig = rec.withConfig;
  if (typeof withConfig === 'function' && !Object.hasOwn(rec, 'withConfig')) {
    Object.defineProperty(rec, 'withConfig', {
      configurable: true,
      writable: true,
      enumerable: false,
      value: function withConfigWrapped(this: unknown, ...args: unknown[]) {
        const derived: unknown = withConfig.apply(this, args);
        if (
          typeof derived === 'object' &&
          derived !== null &&
          derived !== target &&
          isChatModelLike(derived)
        ) {
          attach(derived, handler);
        }
        return derived;
      },
    });
  }
  return target;
}

/**
 * Replay (docs/replay.md): the model's `_generate` answers a call the replay serves from the
 * recording — its run manager's runId leads to the step the handler started — instead of calling
 * the provider. The handler's own end/error callbacks then change nothing (the step is settled).
 */
function serveInReplay(model: Record<PropertyKey, unknown>, handler: RewindCallbackHandler): void {
  const generate = model._generate;
  if (typeof generate !== 'function' || Object.hasOwn(model, '_generate')) return;
  Object.defineProperty(model, '_generate', {
    configurable: true,
    writable: true,
    enumerable: false,
    value: function generateOrServe(
      this: unknown,
      messages: unknown,
      options: unknown,
      runManager?: unknown,
    ) {
      const runId =
        isRecord(runManager) && typeof runManager.runId === 'string' ? runManager.runId : undefined;
      const step = runId === undefined ? undefined : handler.stepFor(runId);
      const directive = step?.replay;
      if (step !== undefined && directive !== undefined && directive.action !== 'edit')
        return settleServed(step, directive, chatResultFromRecorded, errorOf);
      return generate.call(this, messages, options, runManager);
    },
  });
}

/** A model instance (not a RunnableBinding, which runs its bound model and so keeps its callbacks). */
function isChatModelLike(value: object): boolean {
  return typeof (value as { _generate?: unknown })._generate === 'function';
}

/**
 * Captures every call of this chat model (invoke, stream, batch, bound with tools) without
 * passing callbacks. Returns the same instance, with the handler added to its `callbacks`.
 */
export function wrapChatModel<M extends object>(
  model: M,
  handler: RewindCallbackHandler = rewindHandler(),
): M {
  return attach(model, handler);
}

/** Captures every call of this tool. Returns the same instance, with the handler added to its `callbacks`. */
export function wrapTool<T extends object>(tool: T, handler: RewindCallbackHandler = rewindHandler()): T {
  return attach(tool, handler);
}

/** Captures every call of this retriever. Returns the same instance. */
export function wrapRetriever<R extends object>(
  retriever: R,
  handler: RewindCallbackHandler = rewindHandler(),
): R {
  return attach(retriever, handler);
}

// -- replay direction ---------------------------------------------------------------------------

/** A recorded message (`{lc, type: 'constructor', id, kwargs}`) → an AIMessage / AIMessageChunk. */
export function aiMessageFromRecorded(raw: unknown): AIMessage {
  const { fields } = messageFields(raw);
  const chunk = isRecord(raw) && Array.isArray(raw.id) && raw.id.at(-1) === 'AIMessageChunk';
  const kwargs = structuredClone(fields) as ConstructorParameters<typeof AIMessage>[0] &
    Record<string, unknown>;
  return chunk
    ? new AIMessageChunk(kwargs as ConstructorParameters<typeof AIMessageChunk>[0])
    : new AIMessage(kwargs);
}

/** A recorded chat-model response `raw` → the ChatResult its `_generate` returned. */
export function chatResultFromRecorded(raw: unknown): {
  generations: { text: string; message: AIMessage; generationInfo?: Record<string, unknown> }[];
  llmOutput?: Record<string, unknown>;
} {
  const rec = isRecord(raw) ? raw : {};
  const first = Array.isArray(rec.generations) && Array.isArray(rec.generations[0]) ? rec.generations[0] : [];
  const generations = first.filter(isRecord).map((generation) => {
    const out: { text: string; message: AIMessage; generationInfo?: Record<string, unknown> } = {
      text: typeof generation.text === 'string' ? generation.text : '',
      message: aiMessageFromRecorded(generation.message),
    };
    if (isRecord(generation.generationInfo)) out.generationInfo = structuredClone(generation.generationInfo);
    return out;
  });
  const result: ReturnType<typeof chatResultFromRecorded> = { generations };
  if (isRecord(rec.llmOutput)) result.llmOutput = structuredClone(rec.llmOutput);
  return result;
}

/** Recorded stream chunks → the AIMessageChunks the model's stream yielded, in order. */
export function chunksFromRecorded(raw: unknown): AIMessageChunk[] {
  const chunks = isRecord(raw) && Array.isArray(raw.chunks) ? raw.chunks : [];
  return chunks
    .filter(isRecord)
    .map((chunk) =>
      aiMessageFromRecorded(
        chunk.message ?? {
          lc: 1,
          type: 'constructor',
          id: ['AIMessageChunk'],
          kwargs: { content: chunk.text ?? '' },
        },
      ),
    )
    .filter((message): message is AIMessageChunk => message instanceof AIMessageChunk);
}

/** The output a recorded tool step returned (its `{output}` response). */
export function toolOutputFromRecorded(response: unknown): Json {
  return isRecord(response) && 'output' in response ? (toJsonSafe(response.output) ?? null) : null;
}
