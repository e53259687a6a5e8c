import { randomBytes } from 'node:crypto';
import {
  type Attributes,
  type BlobHash,
  type BlobRef,
  blobHashOf,
  type Label,
  type RewindEvent,
  type RunFinished,
  type RunStarted,
  type StepFinished,
  type StepKind,
  type StepStarted,
} from '@rewind/schema';

// Builders of valid event streams for the contract suite, the property tests and the benches.
// A StreamPlan describes runs abstractly; buildStream turns it into concrete events under a
// namespace, so the same plan can be replayed (by fast-check's shrinking, or into a second
// store) without colliding with ids already stored.

export interface StepPlan {
  /** Index of an earlier step of the run, or null for a top-level step. */
  parent: number | null;
  kind: StepKind;
  name: string;
  /** `running` means the step.finished event never comes. */
  status: 'ok' | 'error' | 'running';
  label: Label;
  usage: boolean;
  stream: boolean;
  /** The request payload is split into parts. */
  parts: boolean;
}

export interface RunPlan {
  agent: string;
  /** False: the run.started event never comes. */
  started: boolean;
  /** Null: the run.finished event never comes (the run is incomplete). */
  finish: 'ok' | 'error' | 'cancelled' | null;
  /** Seconds (fractions allowed) after the namespace's base time the run starts; equal offsets make ties. */
  startOffsetS: number;
  variant: 'plain' | 'replay' | 'fork';
  steps: StepPlan[];
}

export type StreamPlan = RunPlan[];

const PROCESS_NONCE = randomBytes(4).toString('hex');
let counter = 0;

/** A fresh eventId: a UUIDv7-shaped id unique in this process and very likely across processes. */
export function newEventId(): string {
  counter++;
  const hex = `${PROCESS_NONCE}${counter.toString(16).padStart(22, '0')}`;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7${hex.slice(12, 15)}-8${hex.slice(15, 18)}-${hex.slice(18, 30)}`;
}

let namespaces = 0;
/** A fresh namespace number for buildStream. */
export function newNamespace(): number {
  return ++namespaces;
}

/** The base time of a namespace: its runs start within a few minutes after it, one day apart. */
export function namespaceBaseTime(ns: number): number {
  return Date.UTC(2021, 0, 1) + ns * 86_400_000;
}

export function hashOf(text: string): BlobHash {
  return blobHashOf(text);
}

export function blobRef(text: string, parts?: string[]): BlobRef {
  const ref: BlobRef = { hash: hashOf(text), size: text.length };
  if (parts !== undefined) ref.parts = parts.map(hashOf);
  return ref;
}

/** ISO time; whole seconds are written without a fraction, to exercise time normalization. */
export function isoTime(ms: number): string {
  const iso = new Date(ms).toISOString();
  return iso.endsWith('.000Z') ? `${iso.slice(0, -5)}Z` : iso;
}

export function runIdOf(ns: number, run: number): string {
  return `run-${ns}-${run}`;
}

export function stepIdOf(ns: number, run: number, step: number): string {
  return `step-${ns}-${run}-${step}`;
}

export interface BuiltStream {
  /** All events, each run's in causal order (runs one after another). */
  events: RewindEvent[];
  runIds: string[];
  /** [since, until) covering every event time of the stream. */
  window: { since: string; until: string };
}

export function buildStream(plan: StreamPlan, ns: number): BuiltStream {
  const base = namespaceBaseTime(ns);
  const events: RewindEvent[] = [];
  const runIds: string[] = [];
  plan.forEach((run, r) => {
    const runId = runIdOf(ns, r);
    runIds.push(runId);
    events.push(...buildRun(run, ns, r, base + Math.round(run.startOffsetS * 1000)));
  });
  return {
    events,
    runIds,
    window: { since: new Date(base).toISOString(), until: new Date(base + 86_400_000).toISOString() },
  };
}

function buildRun(run: RunPlan, ns: number, r: number, t0: number): RewindEvent[] {
  const runId = runIdOf(ns, r);
  const timed: { at: number; order: number; event: RewindEvent }[] = [];
  let order = 0;
  const push = (at: number, event: RewindEvent) => timed.push({ at, order: order++, event });
  if (run.started) {
    const started: RunStarted = {
      schemaVersion: 1,
      eventId: newEventId(),
      type: 'run.started',
      runId,
      time: isoTime(t0),
      agent: run.agent,
      input: blobRef(`input ${r}`),
      attributes: { git: 'abc123', env: 'test', tags: ['contract', `run-${r}`] } satisfies Attributes,
      sdk: { name: '@rewind/sdk', version: '0.1.0' },
    };
    if (run.variant === 'replay') started.replayOf = { runId: `original-${r}`, mode: 'exact' };
    if (run.variant === 'fork')
      started.forkOf = {
        runId: `original-${r}`,
        atSeq: 1,
        edit: { set: [{ pointer: '/messages/0/content', value: 'edited' }], then: 'cached' },
      };
    push(t0, started);
  }
  // A step starts 10 ms after the previous one; it finishes after its children do.
  const startAt = run.steps.map((_, i) => t0 + 10 * (i + 1));
  const endAt = startAt.map((at) => at + 5);
  for (let i = run.steps.length - 1; i >= 0; i--) {
    const parent = run.steps[i]!.parent;
    if (parent !== null) endAt[parent] = Math.max(endAt[parent]!, endAt[i]! + 1);
  }
  run.steps.forEach((step, i) => {
    const stepId = stepIdOf(ns, r, i);
    const started: StepStarted = {
      schemaVersion: 1,
      eventId: newEventId(),
      type: 'step.started',
      runId,
      time: isoTime(startAt[i]!),
      stepId,
      seq: i + 1,
      parentStepId: step.parent === null ? null : stepIdOf(ns, r, step.parent),
      kind: step.kind,
      name: step.name,
      callKey: `/${step.kind}:${step.name}#${i}`,
      request: step.parts
        ? blobRef(`request ${r}.${i}`, [`part ${r}.${i}.a`, `part ${r}.${i}.b`])
        : blobRef(`request ${r}.${i}`),
      requestHash: hashOf(`request hash ${r}.${i}`),
    };
    if (i % 2 === 0) started.attributes = { 'gen_ai.system': 'openai', attempt: i };
    push(startAt[i]!, started);
    if (step.status === 'running') return;
    const common = {
      schemaVersion: 1 as const,
      eventId: newEventId(),
      type: 'step.finished' as const,
      runId,
      time: isoTime(endAt[i]!),
      stepId,
      label: step.label,
    };
    const finished: StepFinished =
      step.status === 'ok'
        ? {
            ...common,
            status: 'ok',
            response: blobRef(`response ${r}.${i}`),
            responseHash: hashOf(`response ${r}.${i}`),
          }
        : {
            ...common,
            status: 'error',
            error: { type: 'ToolError', message: `step ${i} failed`, status: 500 },
          };
    if (step.usage) finished.usage = { inputTokens: 10 + i, outputTokens: 3, cost: 0.0001 };
    if (step.stream) finished.stream = { chunks: 3, offsetsMs: [1, 2.5, 4] };
    push(endAt[i]!, finished);
  });
  if (run.finish !== null) {
    const at = Math.max(t0, ...endAt) + 1;
    const common = {
      schemaVersion: 1 as const,
      eventId: newEventId(),
      type: 'run.finished' as const,
      runId,
      time: isoTime(at),
      tape: blobRef(`tape ${r}`),
      counts: { steps: run.steps.length },
    };
    const finished: RunFinished =
      run.finish === 'ok'
        ? { ...common, status: 'ok', output: blobRef(`output ${r}`, [`output part ${r}`]) }
        : run.finish === 'error'
          ? { ...common, status: 'error', error: { type: 'AgentError', message: 'the agent gave up' } }
          : { ...common, status: 'cancelled' };
    push(at, finished);
  }
  timed.sort((a, b) => a.at - b.at || a.order - b.order);
  return timed.map((t) => t.event);
}

/** A plain, finished run plan with `steps` top-level steps, all ok. */
export function simpleRunPlan(steps: number, overrides: Partial<RunPlan> = {}): RunPlan {
  return {
    agent: 'support-bot',
    started: true,
    finish: 'ok',
    startOffsetS: 0,
    variant: 'plain',
    steps: Array.from({ length: steps }, () => ({
      parent: null,
      kind: 'tool' as const,
      name: 'search',
      status: 'ok' as const,
      label: 'recorded' as const,
      usage: false,
      stream: false,
      parts: false,
    })),
    ...overrides,
  };
}
