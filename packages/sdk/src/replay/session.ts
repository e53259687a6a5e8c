import { hash } from 'node:crypto';
import type { ForkEdit, Label, StepKind } from '@rewind/schema';
import type { ReplayDirective, ServedOutcome } from '../capture-api.ts';
import type { ReplayHooks, StepStart } from '../context.ts';
import { inlineText, type Payload } from '../json.ts';
import { holdsRedaction, type Redactor, redactPayload, requestSerializer, stepAt } from '../redaction.ts';
import { diffJson } from './diff.ts';
import { type Divergence, type DivergenceReason, type FieldDiff, ReplayDivergenceError } from './errors.ts';
import { Gate } from './gate.ts';
import { setPointer } from './pointer.ts';
import type { RecordedStep, Recording } from './recording.ts';

// One replay of one recorded run (docs/replay.md): how every call of the new run is answered.
//
// exact   the call is matched by call key; the same request hash serves the recorded outcome
//         (`replayed`), anything else is a divergence thrown into the agent (`diverged`).
//         Served calls complete in their recorded completion order (gate.ts).
// cached  the call is served when kind, name and request hash match a recorded call not yet
//         used (`cached`, repeats in order); otherwise it runs (`live`).
// fork    exact before the fork step; at it the edit (`overridden`, or an edited request run
//         cached or live); after it, cached or live.
//
// Chains (sub-agents, groupings) always run their code: their children are the calls.

export type ReplayModeName = 'exact' | 'cached';

export interface ForkSpec {
  /** The seq (in the recorded run) of the step to edit. */
  atSeq: number;
  edit: ForkEdit;
}

export interface SessionOptions {
  mode: ReplayModeName;
  fork?: ForkSpec | undefined;
  /** How long served calls wait for an earlier recorded call that does not come (ms). */
  stallMs: number;
  onDivergence?: ((error: ReplayDivergenceError) => void) | undefined;
}

type Phase = 'exact' | 'fork' | 'cached' | 'live';

/** sha256 of a request payload as the pipeline hashes it: canonical JSON without raw, parts inlined. */
export function requestHashOf(payload: Payload): string {
  const text = typeof payload === 'string' ? payload : inlineText(payload.hashBody ?? payload.body);
  return `sha256:${hash('sha256', text, 'hex')}`;
}

function requestValueOf(payload: Payload): unknown {
  const text = typeof payload === 'string' ? payload : inlineText(payload.hashBody ?? payload.body);
  return JSON.parse(text);
}

function withoutRaw(request: unknown): unknown {
  if (typeof request !== 'object' || request === null || Array.isArray(request)) return request;
  const { raw: _raw, ...rest } = request as Record<string, unknown>;
  return rest;
}

function contentKey(kind: string, name: string, requestHash: string): string {
  return `${kind}\u0000${name}\u0000${requestHash}`;
}

export class ReplaySession implements ReplayHooks {
  readonly recording: Recording;
  readonly mode: ReplayModeName;
  readonly fork: ForkSpec | undefined;
  /** Labels of the new run's steps, by step id. */
  readonly labels = new Map<string, Label>();
  /** Every divergence, in the order found. */
  readonly divergences: ReplayDivergenceError[] = [];
  /** The new run's id, once it started. */
  runId: string | undefined;
  /**
   * The replaying recorder's redaction policy: live requests are redacted with it before they are
   * hashed and diffed, as the recording's were (docs/redaction.md, "Replay"); with the project key
   * sealed values of served responses are opened.
   */
  redactor: Redactor | undefined = undefined;
  readonly #options: SessionOptions;
  readonly #used = new Set<RecordedStep>();
  readonly #byContent = new Map<string, RecordedStep[]>();
  readonly #forkStep: RecordedStep | undefined;
  #forkReached = false;
  readonly #gate: Gate;
  readonly #pending: Promise<void>[] = [];

  constructor(recording: Recording, options: SessionOptions) {
    this.recording = recording;
    this.mode = options.mode;
    this.fork = options.fork;
    this.#options = options;
    for (const step of recording.steps) {
      const key = contentKey(step.kind, step.name, step.requestHash);
      const list = this.#byContent.get(key);
      if (list === undefined) this.#byContent.set(key, [step]);
      else list.push(step);
    }
    const fork = options.fork;
    if (fork !== undefined) this.#forkStep = recording.steps.find((step) => step.seq === fork.atSeq);
    const exactUntil = fork === undefined ? Number.POSITIVE_INFINITY : fork.atSeq;
    this.#gate = new Gate(
      recording.steps.filter(
        (step) => step.kind !== 'chain' && step.finishOrder >= 0 && step.seq < exactUntil,
      ),
      options.stallMs,
      (step) => this.#diverge('missing', step.seq, step.callKey, step.kind, step.name, []),
    );
  }

  /** The recorded step the fork edits (undefined without a fork). */
  get forkStep(): RecordedStep | undefined {
    return this.#forkStep;
  }

  requestFor(callKey: string, _kind: string, request: unknown): unknown {
    const fork = this.fork;
    const sets = fork?.edit.set;
    if (sets === undefined || sets.length === 0 || this.#forkReached || callKey !== this.#forkStep?.callKey)
      return request;
    let edited = request;
    for (const { pointer, value } of sets) edited = setPointer(edited, pointer, value);
    return edited;
  }

  #phase(step: StepStart): Phase {
    if (this.fork === undefined) return this.mode;
    if (this.#forkReached) return this.fork.edit.then ?? 'cached';
    if (step.callKey === this.#forkStep?.callKey) {
      this.#forkReached = true;
      return 'fork';
    }
    return 'exact';
  }

  decide(step: StepStart, request: Payload): ReplayDirective | undefined {
    switch (this.#phase(step)) {
      case 'exact':
        return this.#exact(step, request);
      case 'fork':
        return this.#forkAt(step, request);
      case 'cached':
        return this.#cached(step, request, this.fork === undefined);
      case 'live':
        this.labels.set(step.stepId, 'live');
        return undefined;
    }
  }

  #use(recorded: RecordedStep): void {
    this.#used.add(recorded);
  }

  #exact(step: StepStart, request: Payload): ReplayDirective | undefined {
    const recorded = this.recording.byKey.get(step.callKey);
    if (recorded === undefined || this.#used.has(recorded)) {
      const error = this.#diverge('extra', step.seq, step.callKey, step.kind, step.name, []);
      this.labels.set(step.stepId, 'diverged');
      return { action: 'throw', error };
    }
    this.#use(recorded);
    const matchable = this.#matchable(step, request);
    if (requestHashOf(matchable) !== recorded.requestHash) {
      const diff = this.#diffWith(recorded, matchable);
      const error = this.#diverge('request', recorded.seq, recorded.callKey, step.kind, step.name, diff);
      this.labels.set(step.stepId, 'diverged');
      this.#gate.skip(recorded);
      return { action: 'throw', error, ready: diff.then(() => undefined) };
    }
    this.labels.set(step.stepId, 'replayed');
    if (recorded.kind === 'chain') return undefined;
    return this.#serve(recorded, true, step.stepId);
  }

  #cached(step: StepStart, request: Payload, countDivergence: boolean): ReplayDirective | undefined {
    const matchable = this.#matchable(step, request);
    const requestHash = requestHashOf(matchable);
    const queue = this.#byContent.get(contentKey(step.kind, step.name, requestHash));
    let recorded: RecordedStep | undefined;
    while (queue !== undefined && queue.length > 0) {
      const candidate = queue.shift()!;
      if (!this.#used.has(candidate) && candidate.status !== 'running') {
        recorded = candidate;
        break;
      }
    }
    if (recorded === undefined) {
      this.labels.set(step.stepId, 'live');
      if (countDivergence) {
        const same = this.recording.byKey.get(step.callKey);
        if (same === undefined) this.#diverge('extra', step.seq, step.callKey, step.kind, step.name, []);
        else
          this.#diverge(
            'request',
            same.seq,
            same.callKey,
            step.kind,
            step.name,
            this.#diffWith(same, matchable),
          );
      }
      return undefined;
    }
    this.#use(recorded);
    this.labels.set(step.stepId, 'cached');
    if (recorded.kind === 'chain') return undefined;
    return this.#serve(recorded, false, step.stepId);
  }

  #forkAt(step: StepStart, request: Payload): ReplayDirective | undefined {
    const recorded = this.#forkStep!;
    this.#use(recorded);
    const edit = this.fork!.edit;
    if (edit.response !== undefined || edit.error !== undefined) {
      this.labels.set(step.stepId, 'overridden');
      const outcome: ServedOutcome =
        edit.error !== undefined
          ? { status: 'error', response: undefined, error: edit.error }
          : { status: 'ok', response: edit.response };
      return { action: 'serve', outcome, async: recorded.interleaved, due: () => Promise.resolve() };
    }
    const sets = edit.set ?? [];
    const then = edit.then ?? 'cached';
    if (then === 'cached') {
      const served = this.#cached(step, request, false);
      if (served !== undefined || this.labels.get(step.stepId) === 'cached') return served;
    }
    this.labels.set(step.stepId, 'live');
    if (sets.length === 0) return undefined;
    return { action: 'edit', request: requestValueOf(request), sets };
  }

  /** The live request as the recorder would store it: redacted with the same policy, so hashes compare. */
  #matchable(step: StepStart, request: Payload): Payload {
    const redactor = this.redactor;
    if (redactor === undefined) return request;
    const serialize = requestSerializer(step.kind);
    return redactPayload(redactor, request, stepAt(step.kind, step.name, 'request'), serialize).payload;
  }

  #serve(recorded: RecordedStep, gated: boolean, stepId: string): ReplayDirective {
    const redactor = this.redactor;
    // sealed values open where the key is; what stays masked, hashed, dropped or sealed is labelled
    const open = (value: unknown): unknown => (redactor?.hasKey === true ? redactor.unseal(value) : value);
    const outcome: ServedOutcome = {
      status: recorded.status === 'ok' ? 'ok' : 'error',
      response: open(recorded.response),
    };
    if (recorded.error !== undefined) outcome.error = open(recorded.error) as typeof recorded.error;
    if (holdsRedaction(outcome.response) || (outcome.error !== undefined && holdsRedaction(outcome.error)))
      this.labels.set(stepId, 'redacted');
    if (recorded.usage !== undefined) outcome.usage = recorded.usage;
    if (recorded.stream !== undefined) outcome.stream = recorded.stream;
    const gate = this.#gate;
    return {
      action: 'serve',
      outcome,
      async: recorded.interleaved,
      due: gated ? () => gate.wait(recorded) : () => Promise.resolve(),
    };
  }

  /** The field diff against a recorded request, read on demand (never rejects). */
  #diffWith(recorded: RecordedStep, request: Payload): Promise<FieldDiff[]> {
    const replayed = withoutRaw(requestValueOf(request));
    return this.recording.requestOf(recorded).then(
      (value) => diffJson(withoutRaw(value), replayed),
      () => [{ path: '', replayed }],
    );
  }

  #diverge(
    reason: DivergenceReason,
    seq: number,
    callKey: string,
    kind: StepKind | string,
    name: string,
    diff: FieldDiff[] | Promise<FieldDiff[]>,
  ): ReplayDivergenceError {
    const error = new ReplayDivergenceError({
      reason,
      seq,
      callKey,
      kind,
      name,
      diff: Array.isArray(diff) ? diff : [],
    });
    this.divergences.push(error);
    const notify = (): void => {
      try {
        this.#options.onDivergence?.(error);
      } catch {
        // a throwing handler must not break the replay
      }
    };
    if (Array.isArray(diff)) notify();
    else
      this.#pending.push(
        diff.then((fields) => {
          error.setDiff(fields);
          notify();
        }),
      );
    return error;
  }

  /** Resolves when every divergence is complete (diffs read). */
  async settled(): Promise<void> {
    await Promise.all(this.#pending);
  }

  /** Called when the run ended: recorded calls that were never made are divergences. */
  ended(): void {
    this.#gate.close();
    const until = this.fork === undefined ? Number.POSITIVE_INFINITY : this.fork.atSeq;
    for (const step of this.recording.steps) {
      if (step.seq > until || this.#used.has(step) || this.#gate.wasMissing(step)) continue;
      if (this.fork !== undefined && step.seq === until && this.#forkReached) continue;
      this.#diverge('missing', step.seq, step.callKey, step.kind, step.name, []);
    }
  }

  /** Adds the run's result as a divergence when everything else matched but it differs. */
  outputDiffers(diff: FieldDiff[]): void {
    this.#diverge('output', this.recording.steps.length + 1, '', 'run', this.recording.agent, diff);
  }

  /** The earliest divergence (lowest seq; the first found among equals), or undefined. */
  firstDivergence(): Divergence | undefined {
    let first: ReplayDivergenceError | undefined;
    for (const d of this.divergences) if (first === undefined || d.seq < first.seq) first = d;
    return first?.toJSON();
  }
}
