import { readFileSync } from 'node:fs';
import type { Attributes, ModelRequest, ModelResponse, StepKind } from '@rewind/schema';
import {
  type CaptureConfig,
  openStore,
  openStoreOptions,
  resolveCaptureConfig,
  type Store,
} from '@rewind/store';
import { environmentAttributes } from './attributes.ts';
import { beginStep, invokeIn, type StepHandle } from './capture.ts';
import { epochMsOf, monotonicNow } from './clock.ts';
import { activeFrame, type Frame, RunState } from './context.ts';
import { type ErrorHandler, messageOf, Reporter } from './errors.ts';
import { type ExporterStats, HttpExporter, type HttpExporterOptions } from './export/exporter.ts';
import { uuidv7 } from './ids.ts';
import {
  argumentsValue,
  chainRequest,
  genericModelRequest,
  genericModelResponse,
  genericRetrieverRequest,
  genericRetrieverResponse,
  outputResponse,
  toolRequest,
} from './normalize.ts';
import { type CaptureStats, type FlushResult, Pipeline } from './pipeline.ts';
import { captureError } from './records.ts';
import { type Redactor, resolveRedactor } from './redaction.ts';
import { claimReplay, type PendingReplay } from './replay/claim.ts';
import { editedArguments, serveCall } from './replay/serve.ts';
import type { Sink } from './sink.ts';
import { serializePlain } from './split.ts';
import { installTape, Tape } from './tape.ts';

// The recorder (docs/sdk.md): `recorder.agent(name, fn)` makes each call of fn a run;
// `tool`, `model`, `retriever` and `chain` make each call inside a run a step. Outside a run
// the wrapped functions just run. The wrapped function's arguments, `this`, return value,
// thrown error and timing are never changed, and the SDK never throws into it.

export const SDK_NAME = '@rewind/sdk';
export const SDK_VERSION: string = (() => {
  try {
    const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version?: unknown;
    };
    return typeof manifest.version === 'string' ? manifest.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
})();

export interface RecorderOptions {
  /** A store directory, a postgres:// URL, or a Store instance (default: see docs/sdk.md, "Configuration"; `.rewind`). */
  store?: string | Store;
  /** The blob directory, when not the store's own. */
  blobs?: string;
  /** A Rewind server to send runs to (docs/sdk.md, "Export"); nothing is written locally but the spool. */
  endpoint?: string;
  apiKey?: string;
  /** With an endpoint: where undeliverable events wait (default `.rewind/spool`; $REWIND_SPOOL_DIR). */
  spoolDir?: string;
  /** With an endpoint: the exporter's tuning (retries, timeouts, request sizes, spool limit). */
  exporter?: Omit<HttpExporterOptions, 'endpoint' | 'apiKey' | 'spoolDir' | 'onError'>;
  /**
   * The redaction policy (docs/redaction.md): a path to a policy file, or the policy itself
   * (`{version: 1, detectors, rules}`). Default: `rewind.policy.json`, else `"policy"` in
   * `rewind.config.json`, else the built-in default (every secret detector masks). An invalid
   * policy or a missing key is reported (`invalid_policy`) and nothing is recorded.
   */
  policy?: string | Record<string, unknown>;
  /** The project key for `hash` and `seal` (32 bytes, or their base64). Default: $REWIND_PROJECT_KEY. */
  projectKey?: string | Uint8Array;
  /** Off: every wrapper just calls its function. Default: on, unless $REWIND_DISABLED=1 or the config says so. */
  enabled?: boolean;
  /** Record clock, random and uuid reads on the run's tape (default true). */
  tape?: boolean;
  /** Added to every run's attributes. */
  attributes?: Attributes;
  /** Called once per kind of capture problem (default: one `[rewind]` console.warn). Must not throw. */
  onError?: ErrorHandler;
  /** In-memory queue bounds: beyond them events are dropped and counted. */
  maxQueueSize?: number;
  maxQueueBytes?: number;
  /** For tests and embedding: where config is read from. */
  cwd?: string;
  env?: Record<string, string | undefined>;
}

export interface WrapOptions {
  /** Added to the step's (or, for agent, the run's) attributes. */
  attributes?: Attributes;
}

export interface ModelWrapOptions<A extends unknown[], R> extends WrapOptions {
  /** Builds the normalized request from the call's arguments (default: see normalize.ts). */
  request?: (...args: A) => ModelRequest;
  /** Builds the normalized response from the result (awaited when a promise). */
  response?: (result: Awaited<R>) => ModelResponse;
}

export interface DeadlineOptions {
  /** Default 10 000 ms. */
  timeoutMs?: number;
}

type Fn<T, A extends unknown[], R> = (this: T, ...args: A) => R;

const DEFAULT_TIMEOUT_MS = 10_000;

function describe(config: CaptureConfig): string {
  const d = config.destination;
  return d.kind === 'store' ? d.config.store : d.endpoint;
}

function keepName<F extends Function>(wrapper: F, fn: Function): F {
  try {
    Object.defineProperty(wrapper, 'name', { value: fn.name, configurable: true });
    Object.defineProperty(wrapper, 'length', { value: fn.length, configurable: true });
  } catch {
    // a frozen function: keep the wrapper's own name
  }
  return wrapper;
}

const AGENT = Symbol.for('rewind.sdk.agent');

function markAgent(wrapper: Function, name: string): void {
  try {
    Object.defineProperty(wrapper, AGENT, { value: name });
  } catch {
    // a frozen function: replay wraps it again
  }
}

/** The agent name of a `recorder.agent(name, fn)` wrapper, or undefined for any other function. */
export function agentNameOf(fn: unknown): string | undefined {
  const name = typeof fn === 'function' ? (fn as unknown as Record<symbol, unknown>)[AGENT] : undefined;
  return typeof name === 'string' ? name : undefined;
}

function runStatusOf(error: unknown): 'error' | 'cancelled' {
  const name = (error as { name?: unknown } | null)?.name;
  return name === 'AbortError' ? 'cancelled' : 'error';
}

export class Recorder {
  readonly #reporter: Reporter;
  readonly #pipeline: Pipeline | undefined;
  readonly #exporter: HttpExporter | undefined;
  readonly #tape: boolean;
  readonly #options: RecorderOptions;
  readonly #cwd: string;
  readonly #env: Record<string, string | undefined>;
  #baseAttributes: Attributes | undefined;
  #shutdown: Promise<FlushResult> | undefined;
  /** Where runs go, for messages: a directory, a postgres URL, or an endpoint. */
  readonly location: string;
  /** The redaction policy in force (undefined when nothing is recorded); replay hashes live requests with it (`requestHashFor`). */
  readonly redactor: Redactor | undefined = undefined;

  constructor(options: RecorderOptions = {}) {
    this.#options = options;
    this.#reporter = new Reporter(options.onError);
    this.#cwd = options.cwd ?? process.cwd();
    this.#env = options.env ?? process.env;
    this.#tape = options.tape !== false;
    const reporter = this.#reporter;

    let config: CaptureConfig | undefined;
    try {
      config = resolveCaptureConfig({
        store: typeof options.store === 'string' ? options.store : undefined,
        blobs: options.blobs,
        endpoint: options.endpoint,
        apiKey: options.apiKey,
        spoolDir: options.spoolDir,
        enabled: options.enabled,
        env: this.#env,
        cwd: this.#cwd,
      });
    } catch (error) {
      reporter.report('invalid_config', `${messageOf(error)}; nothing is recorded`, error);
    }
    this.location =
      config === undefined
        ? ''
        : typeof options.store === 'object'
          ? options.store.location
          : describe(config);
    this.#exporter = undefined;
    if (config === undefined || !config.enabled) {
      this.#pipeline = undefined;
      return;
    }
    let redactor: Redactor;
    try {
      redactor = resolveRedactor({
        policy: options.policy,
        key: options.projectKey,
        cwd: this.#cwd,
        env: this.#env,
      }).redactor;
    } catch (error) {
      // fail closed: recording without the policy asked for would store what it must not
      reporter.report('invalid_policy', `${messageOf(error)}; nothing is recorded`, error);
      this.#pipeline = undefined;
      return;
    }
    this.redactor = redactor;
    const destination = config.destination;
    let sink: Sink | undefined;
    let store: Store | (() => Promise<Store>) | undefined;
    if (typeof options.store === 'object') {
      store = options.store;
    } else if (destination.kind === 'store') {
      store = () => openStore(destination.config.store, openStoreOptions(destination.config));
    } else {
      try {
        this.#exporter = new HttpExporter(
          {
            ...options.exporter,
            endpoint: destination.endpoint,
            apiKey: destination.apiKey,
            spoolDir: destination.spoolDir,
          },
          reporter,
        );
      } catch (error) {
        reporter.report(
          'invalid_config',
          `the endpoint ${destination.endpoint} cannot be used (${messageOf(error)}); nothing is recorded`,
          error,
        );
        this.#pipeline = undefined;
        return;
      }
      sink = this.#exporter;
    }
    this.#pipeline = new Pipeline({
      ...(sink === undefined ? { store } : { sink }),
      reporter,
      sdk: { name: SDK_NAME, version: SDK_VERSION },
      redactor,
      ...(options.maxQueueSize === undefined ? {} : { maxQueueSize: options.maxQueueSize }),
      ...(options.maxQueueBytes === undefined ? {} : { maxQueueBytes: options.maxQueueBytes }),
    });
    if (this.#tape) installTape();
  }

  /** Whether this recorder records runs (false when disabled, misconfigured, or shut down). */
  get recording(): boolean {
    return this.#pipeline?.accepting === true;
  }

  /**
   * Events produced, delivered (to the store or server), spooled (waiting in the exporter's spool),
   * dropped (counted, reported), and pending: produced = delivered + spooled + dropped + pending.
   */
  stats(): CaptureStats {
    return this.#pipeline?.stats() ?? { produced: 0, delivered: 0, spooled: 0, dropped: 0, pending: 0 };
  }

  /** With an endpoint: requests, retries, and events recovered from earlier processes' spool files. */
  exportStats(): ExporterStats | undefined {
    return this.#exporter?.stats();
  }

  /**
   * Waits until everything captured so far is in the store or server (or dropped), or the
   * deadline passes; with an endpoint, also delivers what earlier processes spooled. Never rejects.
   */
  async flush(options: DeadlineOptions = {}): Promise<FlushResult> {
    const pipeline = this.#pipeline;
    if (pipeline === undefined) return { ...this.stats(), done: true, timedOut: false };
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const started = monotonicNow();
    const result = await pipeline.flush(timeoutMs);
    // with an endpoint, also what earlier processes left in the spool
    if (!result.timedOut && this.#exporter !== undefined)
      await this.#exporter.drainSpool(timeoutMs - (monotonicNow() - started));
    if (result.timedOut)
      this.#reporter.report(
        'deadline',
        `flush() reached its deadline with ${result.pending} event(s) still pending${result.spooled > 0 ? ` and ${result.spooled} spooled (delivered later)` : ''} (the store or server is slow or not answering)`,
      );
    return result;
  }

  /**
   * Stops recording (later calls just run), flushes with a deadline, and closes the store. What
   * is still pending at the deadline is counted as dropped and reported. Idempotent. Never rejects.
   */
  shutdown(options: DeadlineOptions = {}): Promise<FlushResult> {
    this.#shutdown ??= this.#doShutdown(options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    return this.#shutdown;
  }

  async #doShutdown(timeoutMs: number): Promise<FlushResult> {
    const pipeline = this.#pipeline;
    if (pipeline === undefined) return { ...this.stats(), done: true, timedOut: false };
    const deadline = monotonicNow() + timeoutMs;
    pipeline.stop();
    const flushed = await pipeline.flush(timeoutMs);
    let result: FlushResult = flushed;
    if (flushed.timedOut) {
      const abandoned = pipeline.abandon();
      const spooled =
        flushed.spooled > 0 ? `; ${flushed.spooled} event(s) wait in the spool for a later process` : '';
      this.#reporter.report(
        'deadline',
        abandoned > 0
          ? `shutdown() reached its deadline with ${abandoned} event(s) still pending: they are dropped (the store or server is slow or not answering)${spooled}`
          : `shutdown() reached its deadline${spooled}`,
      );
      result = { ...pipeline.stats(), pending: flushed.pending, done: false, timedOut: true };
    }
    const remaining = Math.max(0, deadline - monotonicNow());
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      pipeline.close().catch((error: unknown) => {
        this.#reporter.report('store_failed', `closing the Rewind store failed: ${messageOf(error)}`, error);
      }),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, remaining);
      }),
    ]);
    if (timer !== undefined) clearTimeout(timer);
    return result;
  }

  #attributes(extra: Attributes | undefined): Attributes {
    if (this.#baseAttributes === undefined) {
      let base: Attributes = {};
      try {
        base = environmentAttributes(this.#cwd, this.#env);
      } catch {
        // attributes are best effort
      }
      this.#baseAttributes = { ...base, ...this.#options.attributes };
    }
    return extra === undefined ? this.#baseAttributes : { ...this.#baseAttributes, ...extra };
  }

  /**
   * Wraps an agent entrypoint: each call is one run (input: the argument, or the array of
   * arguments; output: the result, awaited). Called inside another run, it is a `chain` step
   * of that run (a sub-agent).
   */
  agent<T, A extends unknown[], R>(name: string, fn: Fn<T, A, R>, options: WrapOptions = {}): Fn<T, A, R> {
    const recorder = this;
    const wrapper = keepName(function (this: T, ...args: A): R {
      const frame = activeFrame();
      // Inside a run (whichever recorder records it) a sub-agent is a chain step of that run.
      if (frame !== undefined)
        return recorder.#step(
          frame,
          'chain',
          name,
          fn,
          this,
          args,
          chainRequest,
          outputResponse,
          options.attributes,
        );
      // `replay()` calls the agent: this call is the replay's new run, recorded by its recorder.
      const replay = claimReplay();
      if (replay !== undefined)
        return replay.recorder.#replayRun(replay, name, fn, this, args, options.attributes);
      const pipeline = recorder.#pipeline;
      if (pipeline === undefined || !pipeline.accepting) return fn.apply(this, args);
      return recorder.#run(pipeline, name, fn, this, args, options.attributes);
    }, fn);
    markAgent(wrapper, name);
    return wrapper;
  }

  /** Each call inside a run is a `tool` step: request `{name, arguments}`, response `{output}`. */
  tool<T, A extends unknown[], R>(name: string, fn: Fn<T, A, R>, options: WrapOptions = {}): Fn<T, A, R> {
    return this.#wrap('tool', name, fn, (args) => toolRequest(name, args), outputResponse, options);
  }

  /** Each call inside a run is a `chain` step: request `{input}`, response `{output}`. */
  chain<T, A extends unknown[], R>(name: string, fn: Fn<T, A, R>, options: WrapOptions = {}): Fn<T, A, R> {
    return this.#wrap('chain', name, fn, chainRequest, outputResponse, options);
  }

  /** Each call inside a run is a `retriever` step: `{query, topK?, filters?}` → `{documents, raw}` (normalize.ts). */
  retriever<T, A extends unknown[], R>(
    name: string,
    fn: Fn<T, A, R>,
    options: WrapOptions = {},
  ): Fn<T, A, R> {
    return this.#wrap('retriever', name, fn, genericRetrieverRequest, genericRetrieverResponse, options);
  }

  /**
   * Each call inside a run is a `model` step. Without normalizers the request is
   * `{provider: 'custom', model: name, messages, params, raw: {arguments}}` and the response
   * `{model: name, message, finishReason, usage, raw: {output}}` (normalize.ts); pass
   * `request`/`response` to record the SPEC's normalized shapes from your own call.
   */
  model<T, A extends unknown[], R>(
    name: string,
    fn: Fn<T, A, R>,
    options: ModelWrapOptions<A, R> = {},
  ): Fn<T, A, R> {
    const reporter = this.#reporter;
    const toRequest = (args: unknown[]): unknown => {
      if (options.request !== undefined) {
        try {
          return options.request(...(args as A));
        } catch (error) {
          reporter.report(
            'normalizer_failed',
            `the request normalizer of model "${name}" threw: ${messageOf(error)}`,
            error,
          );
        }
      }
      return genericModelRequest(name, args);
    };
    const toResponse = (result: unknown): unknown => {
      if (options.response !== undefined) {
        try {
          return options.response(result as Awaited<R>);
        } catch (error) {
          reporter.report(
            'normalizer_failed',
            `the response normalizer of model "${name}" threw: ${messageOf(error)}`,
            error,
          );
        }
      }
      return genericModelResponse(name, result);
    };
    return this.#wrap('model', name, fn, toRequest, toResponse, options);
  }

  #wrap<T, A extends unknown[], R>(
    kind: StepKind,
    name: string,
    fn: Fn<T, A, R>,
    toRequest: (args: unknown[]) => unknown,
    toResponse: (result: unknown) => unknown,
    options: WrapOptions,
  ): Fn<T, A, R> {
    const recorder = this;
    return keepName(function (this: T, ...args: A): R {
      const frame = activeFrame();
      if (frame === undefined) return fn.apply(this, args);
      return recorder.#step(frame, kind, name, fn, this, args, toRequest, toResponse, options.attributes);
    }, fn);
  }

  #step<T, A extends unknown[], R>(
    frame: Frame,
    kind: StepKind,
    name: string,
    fn: Fn<T, A, R>,
    thisArg: T,
    args: A,
    toRequest: (args: unknown[]) => unknown,
    toResponse: (result: unknown) => unknown,
    attributes: Attributes | undefined,
  ): R {
    let step: StepHandle | undefined;
    try {
      step = beginStep(frame, kind, name, toRequest(args), attributes);
    } catch (error) {
      this.#reporter.report('internal', `capture failed: ${messageOf(error)}`, error);
    }
    if (step === undefined) return fn.apply(thisArg, args);
    const active = step;
    const directive = active.replay;
    let callArgs: unknown[] = args;
    if (directive !== undefined) {
      if (directive.action !== 'edit') return serveCall(active, directive, kind, fn) as R;
      callArgs = editedArguments(kind, directive.request, args);
    }
    return invokeIn(
      active.frame,
      fn as (...args: unknown[]) => R,
      thisArg,
      callArgs,
      (value) => {
        let response: unknown;
        try {
          response = toResponse(value);
        } catch (error) {
          this.#reporter.report('internal', `capture failed: ${messageOf(error)}`, error);
          response = outputResponse(value);
        }
        active.finish(response);
      },
      (error) => active.fail(error),
    );
  }

  /** A replay's new run: recorded by this (the replay's) recorder, with the recording's tape served. */
  #replayRun<T, A extends unknown[], R>(
    replay: PendingReplay,
    name: string,
    fn: Fn<T, A, R>,
    thisArg: T,
    args: A,
    attributes: Attributes | undefined,
  ): R {
    const pipeline = this.#pipeline;
    if (pipeline === undefined || !pipeline.accepting) {
      replay.fail(new Error('the replay recorder is not recording (its store could not be configured)'));
      return fn.apply(thisArg, args);
    }
    return this.#run(pipeline, name, fn, thisArg, args, attributes, replay);
  }

  #run<T, A extends unknown[], R>(
    pipeline: Pipeline,
    name: string,
    fn: Fn<T, A, R>,
    thisArg: T,
    args: A,
    attributes: Attributes | undefined,
    replay?: PendingReplay,
  ): R {
    let run: RunState;
    try {
      const mono = monotonicNow();
      const runId = uuidv7(epochMsOf(mono));
      const tape = replay !== undefined ? replay.tape() : this.#tape ? Tape.record() : undefined;
      run = new RunState(runId, pipeline, tape);
      if (replay !== undefined) run.replay = replay.started(runId);
      let runAttributes = this.#attributes(attributes);
      // How many arguments the agent took, when several: replay calls it the same way.
      if (args.length > 1) runAttributes = { ...runAttributes, 'rewind.arguments': args.length };
      pipeline.push({
        type: 'run.started',
        runId,
        mono,
        agent: name.slice(0, 200) || 'agent',
        input: serializePlain(argumentsValue(args)),
        attributes: runAttributes,
      });
    } catch (error) {
      this.#reporter.report('internal', `capture failed: ${messageOf(error)}`, error);
      return fn.apply(thisArg, args);
    }
    return invokeIn(
      { run, step: undefined },
      fn as (...args: unknown[]) => R,
      thisArg,
      args,
      (value) => this.#endRun(run, 'ok', value),
      (error) => this.#endRun(run, runStatusOf(error), error),
    );
  }

  #endRun(run: RunState, status: 'ok' | 'error' | 'cancelled', outcome: unknown): void {
    if (run.ended) return;
    run.ended = true;
    if (run.replay !== undefined) run.replay.ended();
    try {
      for (const step of run.open) step.abandon();
      run.open.clear();
      run.pipeline.push({
        type: 'run.finished',
        runId: run.runId,
        mono: monotonicNow(),
        status,
        output: status === 'ok' ? serializePlain(outcome === undefined ? null : outcome) : undefined,
        error: status === 'ok' ? undefined : captureError(outcome),
        tape: run.tape,
        steps: run.seq,
        errors: run.errors,
      });
    } catch (error) {
      this.#reporter.report('internal', `capture failed: ${messageOf(error)}`, error);
    }
  }
}
