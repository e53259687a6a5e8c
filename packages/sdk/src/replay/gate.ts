import { outsideRuns } from '../context.ts';
import type { RecordedStep } from './recording.ts';

// Exact replay completes served calls in the order they completed when recorded, so that code
// racing concurrent calls (Promise.race, first-come handling, shared state) sees the same order.
// A served call waits until every call that completed before it in the recording has been served,
// and calls are released one per macrotask, so the agent's continuation of one (all its
// microtasks) runs before the next completes, as it did when each completion was its own I/O
// event. A recorded call that never comes while others wait for it (the code changed) is given
// `stallMs`, then declared missing and skipped.

export class Gate {
  readonly #order: RecordedStep[];
  readonly #inOrder: Set<RecordedStep>;
  readonly #waiters = new Map<RecordedStep, () => void>();
  readonly #skipped = new Set<RecordedStep>();
  readonly #missing = new Set<RecordedStep>();
  readonly #stallMs: number;
  readonly #onMissing: (step: RecordedStep) => void;
  #next = 0;
  #scheduled = false;
  #closed = false;
  #stall: NodeJS.Timeout | undefined;
  #stalledAt = -1;

  constructor(steps: RecordedStep[], stallMs: number, onMissing: (step: RecordedStep) => void) {
    this.#order = [...steps].sort((a, b) => a.finishOrder - b.finishOrder);
    this.#inOrder = new Set(this.#order);
    this.#stallMs = stallMs;
    this.#onMissing = onMissing;
  }

  /** Resolves when `step` is next to complete. */
  wait(step: RecordedStep): Promise<void> {
    if (this.#closed || !this.#inOrder.has(step)) return Promise.resolve();
    return new Promise((resolve) => {
      this.#waiters.set(step, resolve);
      this.#schedule();
    });
  }

  /** `step` will not be served (it diverged): later calls no longer wait for it. */
  skip(step: RecordedStep): void {
    this.#skipped.add(step);
    this.#schedule();
  }

  wasMissing(step: RecordedStep): boolean {
    return this.#missing.has(step);
  }

  #schedule(): void {
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    outsideRuns(() => setImmediate(() => this.#pump()));
  }

  #pump(): void {
    this.#scheduled = false;
    if (this.#closed) return;
    while (this.#next < this.#order.length) {
      const step = this.#order[this.#next]!;
      if (this.#skipped.has(step)) {
        this.#next++;
        continue;
      }
      const release = this.#waiters.get(step);
      if (release === undefined) break;
      this.#waiters.delete(step);
      this.#next++;
      release();
      // One completion per macrotask: the agent reacts to it before the next one arrives.
      if (this.#waiters.size > 0) this.#schedule();
      this.#disarm();
      return;
    }
    if (this.#waiters.size > 0) this.#arm();
    else this.#disarm();
  }

  #arm(): void {
    if (this.#stall !== undefined && this.#stalledAt === this.#next) return;
    this.#disarm();
    this.#stalledAt = this.#next;
    this.#stall = outsideRuns(() =>
      setTimeout(() => {
        this.#stall = undefined;
        const step = this.#order[this.#next];
        if (step === undefined || this.#next !== this.#stalledAt || this.#closed) return;
        this.#missing.add(step);
        this.#skipped.add(step);
        this.#onMissing(step);
        this.#pump();
      }, this.#stallMs),
    );
  }

  #disarm(): void {
    if (this.#stall !== undefined) clearTimeout(this.#stall);
    this.#stall = undefined;
  }

  /** The run ended: nothing waits any more. */
  close(): void {
    this.#closed = true;
    this.#disarm();
    for (const release of this.#waiters.values()) release();
    this.#waiters.clear();
  }
}
