// Recording side of the conformance suite: a Recorder writing into a fresh local store, and a
// way to run one small agent as a run and read it back the way the UI and the diff will (the
// store's timeline plus `readPayload` for every request and response blob).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunRecord, StepRecord, Store } from '@rewind/store';
import { openStore, readPayload } from '@rewind/store';
import { Recorder } from '../../recorder.ts';

export interface RecordedStep extends StepRecord {
  requestPayload: unknown;
  responsePayload: unknown;
}

export interface RecordedRun {
  run: RunRecord;
  steps: RecordedStep[];
}

export class ConformanceRecorder {
  readonly recorder: Recorder;
  readonly store: Store;
  readonly #dir: string;
  #count = 0;

  private constructor(dir: string, store: Store, recorder: Recorder) {
    this.#dir = dir;
    this.store = store;
    this.recorder = recorder;
  }

  static async open(): Promise<ConformanceRecorder> {
    const dir = await mkdtemp(join(tmpdir(), 'rewind-conformance-'));
    const store = await openStore(dir);
    const recorder = new Recorder({
      store,
      onError: (error) => {
        throw new Error(`the recorder reported a capture problem: ${error.message}`);
      },
    });
    return new ConformanceRecorder(dir, store, recorder);
  }

  /** Runs `fn` as one agent run, flushes, and reads the run back from the store. */
  async record<T>(label: string, fn: () => Promise<T>): Promise<{ result: T; recorded: RecordedRun }> {
    const name = `conformance-${++this.#count}-${label}`.slice(0, 200);
    const result = await this.recorder.agent(name, fn)();
    const flushed = await this.recorder.flush({ timeoutMs: 10_000 });
    if (!flushed.done || flushed.dropped > 0) throw new Error(`flush incomplete: ${JSON.stringify(flushed)}`);
    return { result, recorded: await this.read(name) };
  }

  async read(agent: string): Promise<RecordedRun> {
    const page = await this.store.listRuns({ agent, limit: 10 });
    const summary = page.items[0];
    if (summary === undefined) throw new Error(`no run of agent ${agent} in the store`);
    const run = await this.store.getRun(summary.id);
    if (run === undefined) throw new Error(`run ${summary.id} vanished`);
    const timeline = await this.store.readTimeline(run.id, { limit: 10_000 });
    const steps: RecordedStep[] = [];
    for (const step of timeline.items) {
      steps.push({
        ...step,
        requestPayload: await readPayload(this.store.blobs, step.request),
        responsePayload:
          step.response === null ? undefined : await readPayload(this.store.blobs, step.response),
      });
    }
    return { run, steps };
  }

  async close(): Promise<void> {
    // The recorder's shutdown closes the store it was given.
    await this.recorder.shutdown({ timeoutMs: 10_000 });
    await this.store.close().catch(() => undefined);
    await rm(this.#dir, { recursive: true, force: true });
  }
}
