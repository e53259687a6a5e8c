import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ReplayQueue, ReplaySessionRecord } from '../replay-queue.ts';
import type { Store } from '../store.ts';

// THE contract of the replay queue (docs/orchestrator.md). Both stores run this one suite.
// `open` must return a new, EMPTY store each time it is called; the suite closes what it opens.

export function runReplayQueueContract(name: string, open: () => Promise<Store>): void {
  describe(`ReplayQueue contract: ${name}`, () => {
    let store: Store;
    let queue: ReplayQueue;
    before(async () => {
      store = await open();
      assert.ok(store.replayQueue, 'the store has a replay queue');
      queue = store.replayQueue();
    });
    after(async () => {
      await store?.close();
    });

    /** Claims everything still queued so each test starts from an empty queue. */
    async function drain(): Promise<void> {
      while ((await queue.claim('drain', 60_000)) !== undefined) {}
    }

    const enqueue = (runId = 'run-1', timeoutMs = 60_000) =>
      queue.enqueue({ runId, mode: 'exact', timeoutMs });

    test('enqueue: a queued session with its first event', async () => {
      const fork = { atSeq: 2, response: { output: 'x' }, then: 'live' as const };
      const session = await queue.enqueue({ runId: 'run-a', mode: 'cached', fork, timeoutMs: 5000 });
      assert.match(session.id, /^rs_[0-9a-f]{32}$/);
      assert.equal(session.status, 'queued');
      assert.equal(session.runId, 'run-a');
      assert.equal(session.mode, 'cached');
      assert.deepEqual(session.fork, fork);
      assert.equal(session.verdict, null);
      assert.equal(session.attempts, 0);
      assert.equal(session.workerId, null);
      assert.equal(session.timeoutMs, 5000);
      assert.deepEqual(session.progress, { stepsServed: 0, stepsTotal: null });
      assert.deepEqual(await queue.get(session.id), session);
      const events = await queue.events(session.id);
      assert.deepEqual(
        events.map((e) => [e.seq, e.type]),
        [[1, 'queued']],
      );
      assert.equal(await queue.get('rs_missing'), undefined);
      await drain();
    });

    test('enqueue rejects a bad mode or timeout', async () => {
      await assert.rejects(
        queue.enqueue({ runId: 'r', mode: 'fast' as never, timeoutMs: 1 }),
        /mode must be/,
      );
      await assert.rejects(queue.enqueue({ runId: 'r', mode: 'exact', timeoutMs: 0 }), /timeoutMs/);
    });

    test('claim: oldest first, running under the worker with a lease, counted once', async () => {
      const first = await enqueue('run-1');
      const second = await enqueue('run-2');
      const now = Date.now();
      const claimed = await queue.claim('worker-a', 10_000, now);
      assert.equal(claimed?.id, first.id);
      assert.equal(claimed.status, 'running');
      assert.equal(claimed.workerId, 'worker-a');
      assert.equal(claimed.attempts, 1);
      assert.equal(claimed.leaseExpiresAt, now + 10_000);
      assert.notEqual(claimed.startedAt, null);
      assert.equal((await queue.claim('worker-b', 10_000))?.id, second.id);
      assert.equal(await queue.claim('worker-b', 10_000), undefined);
      assert.deepEqual(
        (await queue.events(first.id)).map((e) => [e.type, e.data]),
        [
          ['queued', { runId: 'run-1', mode: 'exact', fork: null }],
          ['started', { workerId: 'worker-a' }],
        ],
      );
    });

    test('concurrent claims never hand one session to two workers', async () => {
      const ids = new Set<string>();
      for (let i = 0; i < 20; i++) ids.add((await enqueue(`run-${i}`)).id);
      const claims = await Promise.all(
        Array.from({ length: 30 }, (_, i) => queue.claim(`worker-${i % 5}`, 10_000)),
      );
      const got = claims.filter((c): c is ReplaySessionRecord => c !== undefined).map((c) => c.id);
      assert.equal(got.length, 20);
      assert.deepEqual(new Set(got), ids);
      for (const id of ids) assert.equal((await queue.get(id))?.attempts, 1);
    });

    test('heartbeat renews the lease of the holder only', async () => {
      const session = await enqueue();
      await queue.claim('worker-a', 1000, 1_000_000);
      assert.deepEqual(await queue.heartbeat(session.id, 'worker-a', 1000, 2_000_000), {
        held: true,
        cancelRequested: false,
      });
      assert.equal((await queue.get(session.id))?.leaseExpiresAt, 2_001_000);
      assert.deepEqual(await queue.heartbeat(session.id, 'worker-b', 1000), {
        held: false,
        cancelRequested: false,
      });
      await queue.finish(session.id, 'worker-a', { status: 'failed', error: { code: 'x', message: 'y' } });
      assert.equal((await queue.heartbeat(session.id, 'worker-a', 1000)).held, false);
    });

    test('progress and finish: events in order, verdict, and nothing after the end', async () => {
      const session = await enqueue();
      await queue.claim('worker-a', 10_000);
      assert.equal(
        await queue.progress(session.id, 'worker-a', {
          stepsServed: 1,
          stepsTotal: 3,
          labels: { replayed: 1 },
          newRunId: 'new-run',
          events: [
            { type: 'label', data: { seq: 1, label: 'replayed' } },
            { type: 'progress', data: { stepsServed: 1, stepsTotal: 3 } },
          ],
        }),
        true,
      );
      assert.equal(
        await queue.progress(session.id, 'worker-b', { stepsServed: 9, labels: {}, events: [] }),
        false,
        'only the holder reports progress',
      );
      let record = await queue.get(session.id);
      assert.deepEqual(record?.progress, { stepsServed: 1, stepsTotal: 3 });
      assert.deepEqual(record?.labels, { replayed: 1 });
      assert.equal(record?.newRunId, 'new-run');
      const outcome = {
        status: 'finished' as const,
        verdict: 'diverged' as const,
        newRunId: 'new-run',
        labels: { replayed: 2, diverged: 1 },
        stepsServed: 3,
        result: { runStatus: 'ok' as const, divergence: { seq: 3 }, output: 'out' },
      };
      assert.equal(await queue.finish(session.id, 'worker-a', outcome), true);
      assert.equal(await queue.finish(session.id, 'worker-a', outcome), false, 'a session ends once');
      record = await queue.get(session.id);
      assert.equal(record?.status, 'finished');
      assert.equal(record?.verdict, 'diverged');
      assert.deepEqual(record?.result, outcome.result);
      assert.notEqual(record?.endedAt, null);
      assert.equal(record?.leaseExpiresAt, null);
      const events = await queue.events(session.id);
      assert.deepEqual(
        events.map((e) => e.seq),
        [1, 2, 3, 4, 5, 6],
      );
      assert.deepEqual(
        events.map((e) => e.type),
        ['queued', 'started', 'label', 'progress', 'verdict', 'done'],
      );
      assert.deepEqual(
        (await queue.events(session.id, 4)).map((e) => e.type),
        ['verdict', 'done'],
      );
      assert.deepEqual(
        (await queue.events(session.id, 0, 2)).map((e) => e.seq),
        [1, 2],
      );
    });

    test('cancel: a queued session at once; a running one is asked, and ends cancelled', async () => {
      const queued = await enqueue();
      const cancelled = await queue.cancel(queued.id);
      assert.equal(cancelled?.status, 'cancelled');
      assert.equal(cancelled?.error?.code, 'cancelled');
      assert.equal(await queue.claim('worker-a', 1000), undefined, 'a cancelled session is never claimed');
      assert.deepEqual(
        (await queue.events(queued.id)).map((e) => e.type),
        ['queued', 'cancelled', 'done'],
      );

      const running = await enqueue();
      await queue.claim('worker-a', 10_000);
      const asked = await queue.cancel(running.id);
      assert.equal(asked?.status, 'running');
      assert.equal(asked?.cancelRequested, true);
      assert.deepEqual(await queue.heartbeat(running.id, 'worker-a', 10_000), {
        held: true,
        cancelRequested: true,
      });
      assert.equal(await queue.finish(running.id, 'worker-a', { status: 'cancelled' }), true);
      assert.equal((await queue.get(running.id))?.status, 'cancelled');
      assert.equal(await queue.cancel('rs_missing'), undefined);
      const ended = await queue.cancel(running.id);
      assert.equal(ended?.status, 'cancelled', 'cancelling an ended session changes nothing');
    });

    test('failWorker and failExpired fail running sessions with diagnostics, not requeue them', async () => {
      const a = await enqueue();
      const b = await enqueue();
      const c = await enqueue();
      await queue.claim('dead-worker', 10_000, 1_000);
      await queue.claim('live-worker', 10_000, 1_000);
      await queue.claim('stale-worker', 10_000, 1_000);
      await queue.heartbeat(b.id, 'live-worker', 10_000, 100_000);
      const error = { code: 'worker_died', message: 'killed', diagnostics: { signal: 'SIGKILL' } };
      assert.deepEqual(await queue.failWorker('dead-worker', error), [a.id]);
      assert.deepEqual((await queue.get(a.id))?.error, error);
      assert.deepEqual(await queue.failExpired(50_000), [c.id]);
      const expired = await queue.get(c.id);
      assert.equal(expired?.status, 'failed');
      assert.equal(expired?.error?.code, 'lease_expired');
      assert.match(expired?.error?.message ?? '', /stale-worker stopped renewing its lease/);
      assert.equal((await queue.get(b.id))?.status, 'running');
      assert.equal(await queue.claim('other', 1000), undefined, 'failed sessions are not retried');
      assert.equal(
        await queue.finish(c.id, 'stale-worker', { status: 'failed', error }),
        false,
        'a worker back from the dead cannot overwrite the outcome',
      );
      assert.deepEqual(
        (await queue.events(c.id)).map((e) => e.type),
        ['queued', 'started', 'failed', 'done'],
      );
      await queue.finish(b.id, 'live-worker', { status: 'failed', error });
    });
  });
}
