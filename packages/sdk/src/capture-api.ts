import type { Attributes, StepKind, Usage } from '@rewind/schema';

// The contract between the recorder core and everything that captures calls: the generic
// wrappers (`recorder.tool(name, fn)`, …) and the framework adapters (openai, anthropic,
// ai-sdk, langchain). Adapters only use this module's functions, never recorder internals.
// The replay runtime (a later milestone) plugs in behind the same contract: an ActiveStep may
// then carry a recorded outcome to serve instead of calling the provider.

export interface StepOptions {
  kind: StepKind;
  /** The step's name: a tool's name, `openai.chat.completions`, a retriever's name, … */
  name: string;
  /**
   * The normalized request payload (SPEC §4), including `raw` where the adapter keeps the
   * provider's own request. It is serialized synchronously inside `startStep`, so the caller
   * may mutate its objects afterwards (agents append to their message arrays).
   */
  request: unknown;
  attributes?: Attributes;
}

export interface FinishExtras {
  usage?: Usage;
  /** For streamed responses: ms from the step's start to each chunk's arrival. */
  stream?: { offsetsMs: number[] };
}

export interface FailExtras {
  /** A body that came with the error (e.g. a provider's 400 response), served back on replay. */
  response?: unknown;
}

export interface ActiveStep {
  readonly stepId: string;
  readonly seq: number;
  readonly callKey: string;
  /** Runs `fn` with this step as the parent of any step started inside it (sync or async). */
  run<T>(fn: () => T): T;
  /** Records success with the normalized response payload (serialized synchronously). Idempotent: only the first finish/fail counts. */
  finish(response: unknown, extras?: FinishExtras): void;
  /** Records failure; the error becomes `{type, message, status?, stack?}`. Idempotent like finish. */
  fail(error: unknown, extras?: FailExtras): void;
  /** Milliseconds since the step started, from the real (untaped) monotonic clock: for chunk offsets. */
  elapsedMs(): number;
  /**
   * Set during a replay (docs/replay.md) when the call must not run as the agent made it: serve
   * a recorded (or overriding) outcome, throw a divergence, or run with an edited request.
   * Undefined when the call runs live, as in a recorded run.
   */
  readonly replay?: ReplayDirective | undefined;
}

/** A recorded or overriding outcome that a replay serves instead of making the call. */
export interface ServedOutcome {
  status: 'ok' | 'error';
  /** The normalized response to finish the step with (ok), or the error body recorded with the error. */
  response: unknown;
  error?: { type: string; message: string; status?: number };
  usage?: FinishExtras['usage'];
  stream?: FinishExtras['stream'];
}

export type ReplayDirective =
  | {
      readonly action: 'serve';
      readonly outcome: ServedOutcome;
      /** Whether the recorded call returned a promise (adapters always serve one). */
      readonly async: boolean;
      /** Resolves when the call may complete: concurrent calls complete in their recorded order. */
      due(): Promise<void>;
    }
  /** Exact replay found a divergence: the call fails with this ReplayDivergenceError. */
  | {
      readonly action: 'throw';
      readonly error: Error;
      /** Resolves when the error is complete (its diff needs the recorded request, read on demand). */
      readonly ready?: Promise<void>;
    }
  /** A fork edited the request: the call runs live with it (the edited normalized request). */
  | {
      readonly action: 'edit';
      readonly request: unknown;
      readonly sets: readonly { pointer: string; value: unknown }[];
    };

export interface CaptureRuntime {
  /** Starts a step under the current step or run; undefined outside a run or when recording is off. Never throws. */
  startStep(options: StepOptions): ActiveStep | undefined;
  /** True inside a run that is being recorded. */
  isRecording(): boolean;
}
