import { AsyncLocalStorage } from 'node:async_hooks';
import type { StepKind } from '@rewind/schema';
import type { ReplayDirective } from './capture-api.ts';
import type { Payload } from './json.ts';
import type { Pipeline } from './pipeline.ts';
import type { Tape } from './tape.ts';

// The capture context that flows through AsyncLocalStorage: which run a call belongs to, and
// which step is its parent. One frame per run (its top level) and one per step that runs code
// (created lazily by ActiveStep.run).

export interface StepNode {
  readonly stepId: string;
  readonly callKey: string;
  readonly kind: StepKind;
  /** Ordinals of this step's children: call-key prefix (`kind:name#`) → next ordinal. */
  children(): Map<string, number>;
}

export interface OpenStep {
  /** Finishes a step the run is ending without (it never finished). */
  abandon(): void;
}

/** A step as the replay session sees it when it starts. */
export interface StepStart {
  readonly stepId: string;
  readonly seq: number;
  readonly callKey: string;
  readonly kind: StepKind;
  readonly name: string;
}

/** What a replay session (replay/session.ts) does at each step start of the run it replays. */
export interface ReplayHooks {
  /** The request to record and use: the agent's, or a fork's edited one. */
  requestFor(callKey: string, kind: string, request: unknown): unknown;
  /** How the call is answered (undefined: it runs live). */
  decide(step: StepStart, request: Payload): ReplayDirective | undefined;
  /** The run ended (recorded calls not made by now never will be). */
  ended(): void;
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
  /** Set when this run is a replay. */
  replay: ReplayHooks | undefined = undefined;
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
