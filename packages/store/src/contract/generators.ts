import { LABELS } from '@rewind/schema';
import fc from 'fast-check';
import type { RunPlan, StepPlan, StreamPlan } from './events.ts';

// fast-check arbitraries: valid event streams (as plans, see events.ts) and the ways they may
// arrive: any permutation, some events sent again, any batching, batches sent concurrently.

const stepPlanArb: fc.Arbitrary<Omit<StepPlan, 'parent'> & { parentPick: number | null }> = fc.record({
  parentPick: fc.option(fc.nat(), { freq: 2 }),
  kind: fc.constantFrom('model', 'retriever', 'tool', 'chain'),
  name: fc.constantFrom('search', 'llm', 'fetch'),
  status: fc.constantFrom('ok', 'ok', 'ok', 'error', 'running'),
  label: fc.constantFrom(...LABELS),
  usage: fc.boolean(),
  stream: fc.boolean(),
  parts: fc.boolean(),
});

export const runPlanArb: fc.Arbitrary<RunPlan> = fc
  .record({
    agent: fc.constantFrom('support-bot', 'planner', 'coder'),
    started: fc.constantFrom(true, true, true, false),
    finish: fc.constantFrom<RunPlan['finish']>('ok', 'ok', 'error', 'cancelled', null),
    startOffsetS: fc.constantFrom(0, 0, 0.005, 0.015, 0.04, 1, 30),
    variant: fc.constantFrom<RunPlan['variant']>('plain', 'plain', 'replay', 'fork'),
    steps: fc.array(stepPlanArb, { maxLength: 8 }),
  })
  .map(({ steps, ...run }) => ({
    ...run,
    steps: steps.map(({ parentPick, ...step }, i) => ({
      ...step,
      parent: parentPick === null || i === 0 ? null : parentPick % i,
    })),
  }));

/** Several runs: nested steps with parents, some erroring or unfinished, some runs unfinished or unstarted. */
export const streamPlanArb: fc.Arbitrary<StreamPlan> = fc.array(runPlanArb, { minLength: 1, maxLength: 4 });

export function countEvents(plan: StreamPlan): number {
  let n = 0;
  for (const run of plan) {
    n += (run.started ? 1 : 0) + (run.finish === null ? 0 : 1);
    for (const step of run.steps) n += step.status === 'running' ? 1 : 2;
  }
  return n;
}

export interface Delivery {
  /** Indices into the event list, in arrival order; an index may appear more than once. */
  arrival: number[];
  /** Consecutive batch sizes, used cyclically. */
  batchSizes: number[];
  /** Send every batch at once instead of one after another. */
  concurrent: boolean;
}

export function deliveryArb(n: number): fc.Arbitrary<Delivery> {
  const indices = Array.from({ length: n }, (_, i) => i);
  return fc
    .record({
      order: fc.shuffledSubarray(indices, { minLength: n, maxLength: n }),
      again: fc.array(fc.record({ event: fc.nat(), at: fc.nat() }), { maxLength: Math.min(n, 8) }),
      batchSizes: fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 6 }),
      concurrent: fc.boolean(),
    })
    .map(({ order, again, batchSizes, concurrent }) => {
      const arrival = [...order];
      if (n > 0) for (const { event, at } of again) arrival.splice(at % (arrival.length + 1), 0, event % n);
      return { arrival, batchSizes, concurrent };
    });
}

/** Cuts the arrival sequence into batches. */
export function batchesOf<T>(items: readonly T[], delivery: Delivery): T[][] {
  const batches: T[][] = [];
  let at = 0;
  let k = 0;
  while (at < delivery.arrival.length) {
    const size = delivery.batchSizes[k++ % delivery.batchSizes.length]!;
    batches.push(delivery.arrival.slice(at, at + size).map((i) => items[i]!));
    at += size;
  }
  return batches;
}

/** A stream plan and a way it may arrive. */
export const streamAndDeliveryArb: fc.Arbitrary<{ plan: StreamPlan; delivery: Delivery }> =
  streamPlanArb.chain((plan) => deliveryArb(countEvents(plan)).map((delivery) => ({ plan, delivery })));
