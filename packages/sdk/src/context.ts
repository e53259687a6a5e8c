import { AsyncLocalStorage } from 'node:async_hooks';
import type { Pipeline } from './pipeline.ts';
import type { Tape } from './tape.ts';

// The capture context that flows through AsyncLocalStorage: which run a call belongs to, and
// which step is its parent. One frame per run (its top level) and one per step that runs code
// (created lazily by ActiveStep.run).

export interface StepNode {
  readonly stepId: string;
  readonly callKey: string;
  /** Ordinals of this step's children: call-key prefix (`kind:name#`) → next ordinal. */
  children(): Map<string, number>;
}

export interface OpenStep {
  /** Finishes a step the run is ending without (it never finished). */
  abandon(): void;
}

export class RunState {
  readonly runId: string;
  readonly pipeline: Pipeline;
  /** The run's tape (record mode when capturing; serve mode when replaying); undefined when off. */
  readonly tape: Tape | undefined;
  /** Ordinals of the run's top-level steps. */
  readonly children = new Map<string, number>();
  /** Steps started and not finished, so a run never ends with a step left running. */
  readonly open = new Set<OpenStep>();
  seq = 0;
  errors = 0;
  ended = false;

  constructor(runId: string, pipeline: Pipeline, tape: Tape | undefined) {
    this.runId = runId;
    this.pipeline = pipeline;
    this.tape = tape;
  }
}

export interface Frame {
  readonly run: RunState;
  /** The innermost step; undefined at the run's top level. */
  readonly step: StepNode | undefined;
}

export const als = new AsyncLocalStorage<Frame>();

/** The current frame when it belongs to a run still capturing. */
export function activeFrame(): Frame | undefined {
  const frame = als.getStore();
  return frame === undefined || frame.run.ended ? undefined : frame;
}

/** Runs `fn` outside any run (the SDK's own background work must never be captured or taped). */
export function outsideRuns<T>(fn: () => T): T {
  return als.exit(fn);
}
