import { currentRunId } from '../../capture.ts';
import type { Recorder } from '../../recorder.ts';

// A realistic export workload for the end-to-end tests and the ingest benchmark: runs of
// alternating model and tool steps (a chat model asked with a shared system prompt, the question
// and the last tool result; a tool answering with a ~1.2 KB document), ~2 KB of payload per step,
// every text distinct, all decided by a seed. It produces exactly `events` events
// (2 per run + 2 per step).

export interface WorkloadRun {
  runId: string;
  steps: number;
}

export interface WorkloadOptions {
  /** Events to produce in all (even, ≥ 4). */
  events: number;
  seed: number;
  /** Steps per run are uniform in [minSteps, maxSteps] (the last run takes what is left). */
  minSteps?: number;
  maxSteps?: number;
  /**
   * Awaited after every run: the producer's pacing. Default: yield to the event loop once
   * (`setImmediate`), as an agent awaiting real model calls does far more often.
   */
  pace?: (run: WorkloadRun, producedSoFar: number) => Promise<void> | void;
  /** Called when a step's outcome is captured (right after the wrapped call returned). */
  onStepCaptured?: (runId: string, seq: number) => void;
}

/**
 * A pace of `rate` events per second on average: after each run, waits until the run's events are
 * due (and at least yields to the event loop once).
 */
export function pacedAt(rate: number): (run: WorkloadRun, producedSoFar: number) => Promise<void> {
  let started: number | undefined;
  return async (run, produced) => {
    started ??= performance.now() - ((2 + 2 * run.steps) / rate) * 1000;
    const wait = started + (produced / rate) * 1000 - performance.now();
    await new Promise((resolve) => (wait > 1 ? setTimeout(resolve, wait) : setImmediate(resolve)));
  };
}

/** A small seeded PRNG (LCG). */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

const WORDS =
  'the a retrieval invoice customer order refund shipping account policy model tool answer query latency region cache token window summary because therefore however which result status pending approved declined ticket escalation'.split(
    ' ',
  );

/** Step counts of the runs, summing to exactly `events` events. */
export function planRuns(options: WorkloadOptions): number[] {
  const { events, minSteps = 8, maxSteps = 60 } = options;
  if (events < 4 || events % 2 !== 0) throw new Error(`events must be even and at least 4, got ${events}`);
  const random = lcg(options.seed);
  const runs: number[] = [];
  let left = events;
  while (left > 0) {
    let steps = Math.min(minSteps + Math.floor(random() * (maxSteps - minSteps + 1)), (left - 2) / 2);
    // never leave less than one run of one step
    if (left - (2 + 2 * steps) < 4) steps = (left - 2) / 2;
    runs.push(steps);
    left -= 2 + 2 * steps;
  }
  return runs;
}

/** Runs the workload through `recorder`; resolves with the runs (ids and step counts) in order. */
export async function runExportWorkload(
  recorder: Recorder,
  options: WorkloadOptions,
): Promise<WorkloadRun[]> {
  const random = lcg(options.seed ^ 0x5bd1e995);
  const text = (n: number, unique: string): string => {
    let out = unique;
    while (out.length < n) out += ` ${WORDS[Math.floor(random() * WORDS.length)]}`;
    return out;
  };
  const system = text(1500, 'You are a support agent. Answer from the documents the tools return.');
  const onStep = options.onStepCaptured;
  const chat = recorder.model(
    'chat-model',
    async (request: { messages: Array<{ role: string; content: string }> }) =>
      text(500, `answer to ${request.messages.length} messages:`),
  );
  const search = recorder.tool('search', async (query: { q: string; topK: number }) => ({
    documents: text(1200, `results for ${query.q.slice(0, 40)}:`),
  }));
  const runs: WorkloadRun[] = [];
  let produced = 0;
  const plan = planRuns(options);
  for (let r = 0; r < plan.length; r++) {
    const steps = plan[r]!;
    const agent = recorder.agent('support-agent', async (question: string) => {
      const runId = currentRunId() ?? '';
      let last = '';
      for (let seq = 1; seq <= steps; seq++) {
        if (seq % 2 === 1) {
          last = await chat({
            messages: [
              { role: 'system', content: system },
              { role: 'user', content: question },
              ...(last === '' ? [] : [{ role: 'tool', content: last.slice(0, 300) }]),
            ],
          });
        } else {
          last = (await search({ q: text(200, `r${r} s${seq} ${last.slice(0, 30)}`), topK: 5 })).documents;
        }
        onStep?.(runId, seq);
      }
      return runId;
    });
    const runId = await agent(text(300, `question ${options.seed}/${r}:`));
    const run = { runId, steps };
    runs.push(run);
    produced += 2 + 2 * steps;
    if (options.pace !== undefined) await options.pace(run, produced);
    else await new Promise((resolve) => setImmediate(resolve));
  }
  return runs;
}
