import assert from 'node:assert/strict';
import nodeCrypto, { randomUUID as namedRandomUUID } from 'node:crypto';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RunFinished } from '@rewind/schema';
import { als, RunState } from './context.ts';
import { Reporter } from './errors.ts';
import { Pipeline } from './pipeline.ts';
import { Recorder } from './recorder.ts';
import { installTape, Tape, type TapeData } from './tape.ts';
import { MemoryStore } from './testing.ts';

// Made before any recorder patched the globals.
const OriginalDate = Date;
const early = new Date(1_000);

function recorder(options: { tape?: boolean } = {}): { recorder: Recorder; store: MemoryStore } {
  const store = new MemoryStore();
  return { recorder: new Recorder({ store, cwd: '/', env: {}, ...options }), store };
}

async function tapeOf(store: MemoryStore, recorder: Recorder, runId?: string): Promise<TapeData | undefined> {
  await recorder.flush();
  const finished = store.events.filter(
    (event): event is RunFinished =>
      event.type === 'run.finished' && (runId === undefined || event.runId === runId),
  );
  assert.equal(finished.length, 1);
  const ref = finished[0]!.tape;
  return ref === undefined ? undefined : (store.payload(ref.hash) as TapeData);
}

test('inside a run, clock, random and uuid reads are recorded on the tape, in order', async () => {
  const { recorder: r, store } = recorder();
  const seen = await r.agent('reader', async () => {
    const values = {
      now1: Date.now(),
      // biome-ignore lint/complexity/useDateNow: new Date() is the read under test
      date: new Date().getTime(),
      text: Date(),
      perf: performance.now(),
      random: Math.random(),
      webUuid: crypto.randomUUID(),
      nodeUuid: nodeCrypto.randomUUID(),
      namedUuid: namedRandomUUID(),
      now2: 0,
    };
    await sleep(2);
    values.now2 = Date.now();
    return values;
  })();
  const tape = await tapeOf(store, r);
  assert.ok(tape !== undefined);
  assert.equal(tape.version, 1);
  assert.equal(tape.now.length, 4);
  assert.deepEqual([tape.now[0], tape.now[1], tape.now[3]], [seen.now1, seen.date, seen.now2]);
  assert.equal(new OriginalDate(tape.now[2]!).toString(), seen.text);
  assert.deepEqual(tape.perf, [seen.perf]);
  assert.deepEqual(tape.random, [seen.random]);
  assert.deepEqual(tape.uuid, [seen.webUuid, seen.nodeUuid, seen.namedUuid]);
  await r.shutdown();
});

test('outside a run the globals behave exactly as before', () => {
  const restore = installTape();
  try {
    assert.notEqual(Date, OriginalDate, 'patched');
    assert.ok(early instanceof Date, 'a date made before patching is still a Date');
    assert.ok(new Date() instanceof OriginalDate);
    assert.equal(Date.prototype, OriginalDate.prototype);
    assert.equal(new Date(0).constructor, Date);
    assert.equal(Date.name, 'Date');
    assert.equal(Date.length, 7);
    assert.equal(typeof Date(), 'string');
    assert.match(Date(), /GMT/);
    assert.equal(
      new Date(2020, 1, 2, 3, 4, 5, 6).getTime(),
      new OriginalDate(2020, 1, 2, 3, 4, 5, 6).getTime(),
    );
    assert.equal(new Date('2020-01-01T00:00:00Z').getTime(), 1577836800000);
    assert.equal(Date.UTC(2020, 0), 1577836800000);
    assert.equal(Date.parse('2020-01-01T00:00:00Z'), 1577836800000);
    class Stamp extends Date {
      label(): string {
        return `@${this.getTime()}`;
      }
    }
    const stamp = new Stamp(5);
    assert.ok(stamp instanceof Stamp && stamp instanceof Date);
    assert.equal(stamp.label(), '@5');
    const before = Date.now();
    assert.ok(Math.abs(before - new OriginalDate().getTime()) < 1000);
    const r = Math.random();
    assert.ok(r >= 0 && r < 1);
    assert.match(crypto.randomUUID(), /^[0-9a-f-]{36}$/);
    assert.match(nodeCrypto.randomUUID(), /^[0-9a-f-]{36}$/);
    assert.match(namedRandomUUID(), /^[0-9a-f-]{36}$/);
    assert.equal(typeof performance.now(), 'number');
  } finally {
    // other tests in this file still want the patches; installTape is idempotent
  }
  void restore;
});

test('serve mode hands the recorded values back in order, then live values (counted)', () => {
  const data: TapeData = {
    version: 1,
    now: [1000, 2000],
    perf: [1.5],
    random: [0.25, 0.5],
    uuid: ['00000000-0000-4000-8000-000000000001'],
  };
  const exhausted: string[] = [];
  const tape = Tape.serve(data, { onExhausted: (stream) => exhausted.push(stream) });
  assert.equal(tape.mode, 'serve');
  assert.equal(tape.size, 6);
  assert.equal(tape.now(), 1000);
  assert.equal(tape.random(), 0.25);
  assert.equal(tape.now(), 2000);
  assert.equal(tape.perf(), 1.5);
  assert.equal(tape.random(), 0.5);
  assert.equal(tape.uuid(), '00000000-0000-4000-8000-000000000001');
  assert.equal(tape.size, 0);
  const live = tape.now();
  assert.ok(Math.abs(live - Date.now()) < 1000);
  assert.deepEqual(exhausted, ['now']);
  assert.equal(tape.exhausted, 1);
  // the input is not consumed
  assert.deepEqual(data.now, [1000, 2000]);
});

test('a run with a serving tape sees the recorded values through the patched globals', async () => {
  const { recorder: r, store } = recorder();
  const recorded = await r.agent('reader', async () => {
    await sleep(1);
    return [Date.now(), new Date().toISOString(), Math.random(), crypto.randomUUID(), performance.now()];
  })();
  const data = await tapeOf(store, r);
  assert.ok(data !== undefined);
  installTape();
  const pipeline = new Pipeline({
    store: new MemoryStore(),
    reporter: new Reporter(),
    sdk: { name: 't', version: '0' },
  });
  const run = new RunState('replay-1', pipeline, Tape.serve(data));
  const replayed = await als.run({ run, step: undefined }, async () => {
    await sleep(3);
    return [Date.now(), new Date().toISOString(), Math.random(), crypto.randomUUID(), performance.now()];
  });
  assert.deepEqual(replayed, recorded);
  await r.shutdown();
});

test('concurrent runs keep separate tapes', async () => {
  const { recorder: r, store } = recorder();
  const agent = r.agent('worker', async (id: string) => {
    const values: number[] = [];
    for (let i = 0; i < 5; i++) {
      values.push(Math.random());
      await sleep(Math.floor(Math.random() * 3));
    }
    return { id, values };
  });
  const results = await Promise.all(['a', 'b', 'c'].map((id) => agent(id)));
  await r.flush();
  const starts = store.events.filter((event) => event.type === 'run.started');
  assert.equal(starts.length, 3);
  for (const start of starts) {
    const input = store.payload(start.input.hash) as string;
    const tape = await tapeOf(store, r, start.runId);
    const result = results.find((item) => item.id === input)!;
    // each of the 5 loop iterations read random once for the value and once for the delay
    assert.equal(tape!.random.length, 10);
    assert.deepEqual(
      tape!.random.filter((_, i) => i % 2 === 0),
      result.values,
    );
  }
  await r.shutdown();
});

test('the SDK never records its own reads, and reads after the run ended are live', async () => {
  const { recorder: r, store } = recorder();
  const tool = r.tool('t', (x: number) => x * 2);
  let late: Promise<number> | undefined;
  await r.agent('quiet', async () => {
    tool(1);
    tool(2);
    late = sleep(5).then(() => Math.random());
    return 'ok';
  })();
  await late;
  const tape = await tapeOf(store, r);
  assert.deepEqual(tape, { version: 1, now: [], perf: [], random: [], uuid: [] });
  await r.shutdown();
});

test('tape: false opts a recorder out (no tape reference, nothing recorded)', async () => {
  const { recorder: r, store } = recorder({ tape: false });
  await r.agent('untaped', () => [Math.random(), Date.now()])();
  assert.equal(await tapeOf(store, r), undefined);
  await r.shutdown();
});

test('the patches can be taken off again (restore puts every original back)', () => {
  const restore = installTape();
  restore();
  assert.equal(Date, OriginalDate);
  assert.equal(new Date(0).constructor, OriginalDate);
  assert.equal(nodeCrypto.randomUUID.name, 'randomUUID');
  assert.equal(namedRandomUUID, nodeCrypto.randomUUID);
  assert.equal(Object.hasOwn(performance, 'now'), false);
  assert.equal(Object.hasOwn(crypto, 'randomUUID'), false);
});
