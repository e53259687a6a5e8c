import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ReplayQueue } from '@rewind/store';
import { BACKENDS, startTestServer, type TestServer } from '../testing/backends.ts';

// The replay session routes against a queue driven by the test itself (standing in for a worker
// through the same ReplayQueue calls a worker makes): the event stream follows live, in order,
// and ends with the verdict; it also ends when the server closes. Workers proper are tested end
// to end in tests/replay-orchestrator.test.ts.

/** Reads SSE frames from a fetch body as they arrive. */
async function* frames(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<{ id: number; event: string; data: Record<string, unknown> }> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let end = buffer.indexOf('\n\n');
    while (end !== -1) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf('\n\n');
      if (frame.startsWith(':')) continue;
      const fields = Object.fromEntries(
        frame
          .split('\n')
          .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]),
      );
      yield { id: Number(fields.id), event: fields.event!, data: JSON.parse(fields.data!) };
    }
  }
}

for (const backend of BACKENDS) {
  describe(`replay routes on ${backend.name}`, () => {
    let test: TestServer;
    let queue: ReplayQueue;
    before(async () => {
      test = await startTestServer(backend, { replays: { pollMs: 10 } });
      queue = test.store.replayQueue!();
    });
    after(async () => {
      await test?.close();
    });

    it('the event stream follows a session live, in order, and ends after done', async () => {
      const session = await queue.enqueue({ runId: 'some-run', mode: 'exact', timeoutMs: 60_000 });
      const response = await fetch(`${test.url}/v1/replays/${session.id}/events`);
      assert.equal(response.status, 200);
      const stream = frames(response.body!);
      const next = async () => (await stream.next()).value!;
      assert.equal((await next()).event, 'queued');
      await queue.claim('w', 60_000);
      assert.deepEqual(await next(), {
        id: 2,
        event: 'started',
        data: { workerId: 'w', at: (await queue.events(session.id, 1))[0]!.at },
      });
      await queue.progress(session.id, 'w', {
        stepsServed: 1,
        stepsTotal: 1,
        labels: { replayed: 1 },
        events: [
          { type: 'label', data: { seq: 1, label: 'replayed' } },
          { type: 'progress', data: { stepsServed: 1, stepsTotal: 1 } },
        ],
      });
      assert.equal((await next()).event, 'label');
      assert.equal((await next()).event, 'progress');
      const get = (await (await fetch(`${test.url}/v1/replays/${session.id}`)).json()) as Record<
        string,
        unknown
      >;
      assert.equal(get.status, 'running');
      assert.deepEqual(get.progress, { stepsServed: 1, stepsTotal: 1 });
      assert.deepEqual(get.labels, { replayed: 1 });
      await queue.finish(session.id, 'w', {
        status: 'finished',
        verdict: 'reproduced',
        newRunId: 'new-run',
        labels: { replayed: 1 },
        stepsServed: 1,
        result: { runStatus: 'ok', divergence: null, output: 'x' },
      });
      const verdict = await next();
      assert.equal(verdict.event, 'verdict');
      assert.equal(verdict.data.verdict, 'reproduced');
      assert.equal(verdict.data.newRunId, 'new-run');
      assert.deepEqual(await next().then((f) => [f.id, f.event]), [6, 'done']);
      assert.equal((await stream.next()).done, true, 'the stream ends after done');
    });

    it('a session whose lease expired is failed when it is read', async () => {
      const session = await queue.enqueue({ runId: 'some-run', mode: 'exact', timeoutMs: 60_000 });
      await queue.claim('gone-worker', 1, Date.now() - 1000);
      const read = (await (await fetch(`${test.url}/v1/replays/${session.id}`)).json()) as {
        status: string;
        error: { code: string };
      };
      assert.equal(read.status, 'failed');
      assert.equal(read.error.code, 'lease_expired');
    });

    it('an open event stream ends when the server closes', async () => {
      const other = await startTestServer(backend, { replays: { pollMs: 10 } });
      const session = await other.store.replayQueue!().enqueue({
        runId: 'r',
        mode: 'cached',
        timeoutMs: 1000,
      });
      const response = await fetch(`${other.url}/v1/replays/${session.id}/events`);
      const stream = frames(response.body!);
      assert.equal((await stream.next()).value?.event, 'queued');
      await other.close();
      assert.equal((await stream.next()).done, true);
    });
  });
}
