import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  type BlobHash,
  RewindError,
  type RewindEvent,
  type StepFinished,
  type StepStarted,
  UnsupportedSchemaVersionError,
} from '@rewind/schema';
import fc from 'fast-check';
import type { AppendResult, ListRunsQuery, RunSummary, Store } from '../store.ts';
import {
  buildStream,
  isoTime,
  namespaceBaseTime,
  newEventId,
  newNamespace,
  type RunPlan,
  type StreamPlan,
  simpleRunPlan,
} from './events.ts';
import { batchesOf, streamAndDeliveryArb } from './generators.ts';

// THE contract of a metadata Store (SPEC §4, §7). Every implementation runs this one suite.
// `open` must return a new, EMPTY store each time it is called; the suite closes what it opens.

export interface StoreContractOptions {
  /** fast-check runs of the order-independence property (default 100). */
  propertyRuns?: number;
}

export function runStoreContract(
  name: string,
  open: () => Promise<Store>,
  options: StoreContractOptions = {},
): void {
  const propertyRuns = options.propertyRuns ?? 100;

  describe(`Store contract: ${name}`, () => {
    let store: Store;
    before(async () => {
      store = await open();
    });
    after(async () => {
      await store?.close();
    });

    /** Builds a stream under a fresh namespace. */
    const stream = (plan: StreamPlan) => buildStream(plan, newNamespace());

    test('stores a finished run and reads it back: run, timeline, steps, events', async () => {
      const plan: RunPlan = {
        ...simpleRunPlan(0),
        steps: [
          {
            parent: null,
            kind: 'chain',
            name: 'agent',
            status: 'ok',
            label: 'recorded',
            usage: false,
            stream: false,
            parts: false,
          },
          {
            parent: 0,
            kind: 'model',
            name: 'llm',
            status: 'ok',
            label: 'recorded',
            usage: true,
            stream: true,
            parts: true,
          },
          {
            parent: 0,
            kind: 'tool',
            name: 'search',
            status: 'error',
            label: 'live',
            usage: false,
            stream: false,
            parts: false,
          },
          {
            parent: 0,
            kind: 'retriever',
            name: 'docs',
            status: 'running',
            label: 'recorded',
            usage: false,
            stream: false,
            parts: false,
          },
        ],
      };
      const { events, runIds } = stream([plan]);
      const runId = runIds[0]!;
      const result = await store.append(events);
      assert.deepEqual(result, {
        accepted: events.length,
        duplicates: 0,
        rejected: 0,
        outcomes: events.map((e) => ({ eventId: e.eventId, status: 'accepted' })),
      });

      const started = events.find((e) => e.type === 'run.started')!;
      const finished = events.find((e) => e.type === 'run.finished')!;
      assert.ok(
        started.type === 'run.started' && finished.type === 'run.finished' && finished.status === 'ok',
      );
      const run = await store.getRun(runId);
      assert.deepEqual(run, {
        id: runId,
        agent: 'support-bot',
        status: 'ok',
        startedAt: started.time,
        endedAt: finished.time,
        stepCount: 4,
        errorCount: 1,
        input: started.input,
        output: finished.output,
        error: null,
        tape: finished.tape,
        attributes: started.attributes,
        sdk: started.sdk,
        labels: { recorded: 2, live: 1 },
      });

      const timeline = await store.readTimeline(runId);
      assert.equal(timeline.nextCursor, undefined);
      assert.deepEqual(
        timeline.items.map((s) => [s.seq, s.kind, s.name, s.status, s.parentStepId === null]),
        [
          [1, 'chain', 'agent', 'ok', true],
          [2, 'model', 'llm', 'ok', false],
          [3, 'tool', 'search', 'error', false],
          [4, 'retriever', 'docs', 'running', false],
        ],
      );
      const stepStarted = events.filter((e): e is StepStarted => e.type === 'step.started');
      const stepFinished = events.filter((e): e is StepFinished => e.type === 'step.finished');
      const llmStart = stepStarted.find((e) => e.seq === 2)!;
      const llmEnd = stepFinished.find((e) => e.stepId === llmStart.stepId)!;
      assert.ok(llmEnd.status === 'ok');
      assert.deepEqual(timeline.items[1], {
        runId,
        stepId: llmStart.stepId,
        seq: 2,
        parentStepId: llmStart.parentStepId,
        kind: 'model',
        name: 'llm',
        callKey: llmStart.callKey,
        status: 'ok',
        label: 'recorded',
        request: llmStart.request,
        requestHash: llmStart.requestHash,
        response: llmEnd.response,
        responseHash: llmEnd.responseHash,
        error: null,
        usage: llmEnd.usage,
        startedAt: llmStart.time,
        endedAt: llmEnd.time,
        attributes: {},
        stream: llmEnd.stream,
      });
      const failed = timeline.items[2]!;
      assert.deepEqual(failed.error, { type: 'ToolError', message: 'step 2 failed', status: 500 });
      assert.equal(failed.response, null);
      assert.equal(failed.label, 'live');
      const running = timeline.items[3]!;
      assert.deepEqual(
        [running.status, running.label, running.endedAt, running.response],
        ['running', null, null, null],
      );
      assert.deepEqual(timeline.items[0]!.attributes, { 'gen_ai.system': 'openai', attempt: 0 });

      for (const item of timeline.items) assert.deepEqual(await store.getStep(runId, item.seq), item);
      assert.deepEqual(await store.readEvents(runId), canonicalOrder(events));
    });

    test('rejects invalid events naming the field, and stores the valid ones of the same call', async () => {
      const { events, runIds } = stream([simpleRunPlan(2)]);
      const step = events.find((e) => e.type === 'step.started')!;
      const { seq: _seq, ...noSeq } = step as StepStarted;
      const bad: unknown[] = [
        { ...noSeq, eventId: newEventId() },
        { ...step, eventId: 'not-an-id' },
        { ...step, eventId: newEventId(), sequence: 3 },
        { ...step, eventId: newEventId(), type: 'step.paused' },
        { ...step, eventId: newEventId(), time: 'yesterday' },
        null,
        'step.started',
        { ...step, eventId: newEventId(), schemaVersion: 2 },
      ];
      const result = await store.append([...bad, ...events]);
      assert.equal(result.rejected, bad.length);
      assert.equal(result.accepted, events.length);
      const rejected = result.outcomes.slice(0, bad.length);
      assert.deepEqual(
        rejected.map((o) => (o.status === 'rejected' ? o.field : o.status)),
        ['seq', 'eventId', 'sequence', 'type', 'time', '', '', 'schemaVersion'],
      );
      for (const outcome of rejected) {
        assert.equal(outcome.status, 'rejected');
        if (outcome.status !== 'rejected') continue;
        if (outcome.field) assert.match(outcome.reason, new RegExp(outcome.field));
      }
      const noSeqOutcome = rejected[0]!;
      assert.ok(noSeqOutcome.status === 'rejected');
      assert.match(noSeqOutcome.reason, /seq is required/);
      assert.equal(rejected[1]!.eventId, 'not-an-id');
      assert.equal(rejected[5]!.eventId, '');
      const versionOutcome = rejected[7]!;
      assert.ok(versionOutcome.status === 'rejected');
      assert.equal(versionOutcome.reason, new UnsupportedSchemaVersionError(2, 1).message);
      assert.equal((await store.getRun(runIds[0]!))?.stepCount, 2);
      assert.equal((await store.readEvents(runIds[0]!)).length, events.length);
    });

    test('of 1,000 events with 37 invalid, exactly those 37 are rejected', async () => {
      const { events, runIds } = stream([simpleRunPlan(499)]);
      assert.equal(events.length, 1000);
      const invalid = new Set<number>();
      let x = 12345;
      while (invalid.size < 37) {
        x = (x * 1103515245 + 12345) % 2 ** 31;
        invalid.add(x % 1000);
      }
      const corruptions: ((e: Record<string, unknown>) => Record<string, unknown>)[] = [
        (e) => ({ ...e, time: '2026-13-45' }),
        (e) => ({ ...e, runId: '' }),
        (e) => {
          const { eventId: _eventId, ...rest } = e;
          return rest;
        },
        (e) => ({ ...e, schemaVersion: 0 }),
        (e) => ({ ...e, extra: true }),
      ];
      const sent = events.map((event, i) =>
        invalid.has(i) ? corruptions[i % corruptions.length]!({ ...event }) : event,
      );
      const result = await store.append(sent);
      assert.equal(result.rejected, 37);
      assert.equal(result.accepted, 963);
      const rejectedAt = result.outcomes.flatMap((o, i) => (o.status === 'rejected' ? [i] : []));
      assert.deepEqual(
        rejectedAt,
        [...invalid].sort((a, b) => a - b),
      );
      for (const i of rejectedAt) {
        const outcome = result.outcomes[i]!;
        assert.ok(outcome.status === 'rejected' && outcome.field !== undefined && outcome.field !== '');
        assert.match(outcome.reason, new RegExp(outcome.field!));
      }
      const stored = await store.readEvents(runIds[0]!);
      assert.equal(stored.length, 963);
      const storedIds = new Set(stored.map((e) => e.eventId));
      for (const [i, e] of events.entries()) assert.equal(storedIds.has(e.eventId), !invalid.has(i));
    });

    test('is idempotent by eventId: a resent event is a duplicate, a different one with its id is rejected', async () => {
      const { events, runIds } = stream([simpleRunPlan(3)]);
      const runId = runIds[0]!;
      const first = await store.append(events);
      assert.equal(first.accepted, events.length);
      const before = await snapshot(store, runIds);

      const again = await store.append(events);
      assert.deepEqual([again.accepted, again.duplicates, again.rejected], [0, events.length, 0]);
      assert.ok(again.outcomes.every((o, i) => o.status === 'duplicate' && o.eventId === events[i]!.eventId));

      // Key order does not matter; a copy inside one call is a duplicate too.
      const reordered = Object.fromEntries(Object.entries(events[1]!).reverse());
      const fresh = stream([simpleRunPlan(1)]).events;
      const mixed = await store.append([reordered, fresh[0], fresh[0]]);
      assert.deepEqual(
        mixed.outcomes.map((o) => o.status),
        ['duplicate', 'accepted', 'duplicate'],
      );

      const step = events.find((e): e is StepStarted => e.type === 'step.started')!;
      const conflicting = [
        // The same eventId, different content.
        { ...step, name: 'other-name' },
        // The same eventId used in another run.
        { ...step, runId: `${runId}-other` },
        // A second step.started for a step that has one.
        { ...step, eventId: newEventId() },
        // A different step claiming a taken seq.
        { ...step, eventId: newEventId(), stepId: 'another-step' },
        // A second run.started.
        { ...events[0]!, eventId: newEventId() },
      ];
      const conflicts = { outcomes: [] as AppendResult['outcomes'] };
      for (const event of conflicting) conflicts.outcomes.push(...(await store.append([event])).outcomes);
      assert.deepEqual(
        conflicts.outcomes.map((o) => o.status),
        ['rejected', 'rejected', 'rejected', 'rejected', 'rejected'],
      );
      for (const outcome of conflicts.outcomes) {
        assert.ok(outcome.status === 'rejected');
        assert.match(outcome.reason, /conflicts with stored event/);
      }
      const reasons = conflicts.outcomes.map((o) => (o.status === 'rejected' ? o.reason : ''));
      assert.match(reasons[0]!, new RegExp(step.eventId));
      assert.match(reasons[2]!, new RegExp(step.eventId));
      assert.match(reasons[3]!, /seq 1/);
      assert.equal(conflicts.outcomes[3]!.status === 'rejected' && conflicts.outcomes[3]!.field, 'seq');
      assert.match(reasons[4]!, new RegExp(events[0]!.eventId));

      // A conflicting copy inside one call: the first one wins.
      const late = stream([simpleRunPlan(1)]).events[0]!;
      const inCall = await store.append([late, { ...late, agent: 'someone-else' }]);
      assert.deepEqual(
        inCall.outcomes.map((o) => o.status),
        ['accepted', 'rejected'],
      );
      assert.deepEqual(await snapshot(store, runIds), before);
      assert.equal(await store.getRun(`${runId}-other`), undefined);
    });

    test('a run whose run.finished never arrived is incomplete, listed, and its steps are kept', async () => {
      const { events, runIds, window } = stream([simpleRunPlan(3, { finish: null })]);
      await store.append(events);
      const run = await store.getRun(runIds[0]!);
      assert.equal(run?.status, 'incomplete');
      assert.equal(run?.endedAt, null);
      assert.equal(run?.output, null);
      assert.equal(run?.stepCount, 3);
      const listed = await store.listRuns({ ...window, status: 'incomplete' });
      assert.deepEqual(
        listed.items.map((r) => r.id),
        runIds,
      );
    });

    test('a run without run.started is listed with agent null and sorted by its earliest event', async () => {
      const { events, runIds, window } = stream([
        simpleRunPlan(2, { started: false, startOffsetS: 10 }),
        simpleRunPlan(1, { startOffsetS: 5 }),
        simpleRunPlan(1, { startOffsetS: 20 }),
      ]);
      await store.append(events);
      const run = await store.getRun(runIds[0]!);
      assert.equal(run?.agent, null);
      assert.equal(run?.startedAt, null);
      assert.equal(run?.input, null);
      assert.deepEqual(run?.attributes, {});
      assert.equal(run?.sdk, null);
      assert.equal(run?.status, 'ok');
      const listed = await store.listRuns(window);
      assert.deepEqual(
        listed.items.map((r) => [r.id, r.agent]),
        [
          [runIds[2], 'support-bot'],
          [runIds[0], null],
          [runIds[1], 'support-bot'],
        ],
      );
    });

    test('events out of order give the same run: step.finished before step.started, run.finished first', async () => {
      const inOrder = stream([simpleRunPlan(3, { finish: 'error' })]);
      await store.append(inOrder.events);
      const copy = copyStream(inOrder.events);
      const backwards = [...copy.events].reverse();
      // Every step.finished comes before its step.started, run.finished before run.started.
      for (const event of backwards.slice(0, 2)) await store.append([event]);
      const copyRunId = copy.ids.get(inOrder.runIds[0]!)!;
      const mid = await store.getRun(copyRunId);
      assert.equal(mid?.status, 'error');
      assert.equal(mid?.agent, null);
      assert.equal(mid?.stepCount, 0);
      assert.deepEqual((await store.readTimeline(copyRunId)).items, []);
      await store.append(backwards.slice(2));
      assert.deepEqual(
        renameIds(await snapshot(store, [copyRunId]), copy.ids),
        await snapshot(store, inOrder.runIds),
      );
    });

    test('counts steps, errors and labels over finished steps', async () => {
      const plan = simpleRunPlan(5);
      plan.steps[1] = { ...plan.steps[1]!, status: 'error', label: 'diverged' };
      plan.steps[2] = { ...plan.steps[2]!, status: 'error', label: 'replayed' };
      plan.steps[3] = { ...plan.steps[3]!, status: 'running' };
      plan.steps[4] = { ...plan.steps[4]!, label: 'replayed' };
      const { events, runIds } = stream([plan]);
      await store.append(events);
      const run = await store.getRun(runIds[0]!);
      assert.equal(run?.stepCount, 5);
      assert.equal(run?.errorCount, 2);
      assert.deepEqual(run?.labels, { recorded: 1, diverged: 1, replayed: 2 });
      const summary = (await store.listRuns({ ...windowOf(events), limit: 1 })).items[0];
      assert.deepEqual([summary?.stepCount, summary?.errorCount], [5, 2]);
    });

    test('replayOf and forkOf are kept on the run and its summary', async () => {
      const { events, runIds } = stream([
        simpleRunPlan(1, { variant: 'replay' }),
        simpleRunPlan(1, { variant: 'fork', startOffsetS: 1 }),
      ]);
      await store.append(events);
      const replay = await store.getRun(runIds[0]!);
      assert.deepEqual(replay?.replayOf, { runId: 'original-0', mode: 'exact' });
      assert.equal(replay?.forkOf, undefined);
      const fork = await store.getRun(runIds[1]!);
      assert.deepEqual(fork?.forkOf, {
        runId: 'original-1',
        atSeq: 1,
        edit: { set: [{ pointer: '/messages/0/content', value: 'edited' }], then: 'cached' },
      });
      const listed = await store.listRuns(windowOf(events));
      assert.deepEqual(
        listed.items.map((r) => [r.replayOf?.mode, r.forkOf?.atSeq]),
        [
          [undefined, 1],
          ['exact', undefined],
        ],
      );
    });

    test('unknown runs and steps are undefined or empty', async () => {
      assert.equal(await store.getRun('no-such-run'), undefined);
      assert.equal(await store.getStep('no-such-run', 1), undefined);
      assert.deepEqual(await store.readTimeline('no-such-run'), { items: [] });
      assert.deepEqual(await store.readEvents('no-such-run'), []);
      const { events, runIds } = stream([simpleRunPlan(2)]);
      await store.append(events);
      assert.equal(await store.getStep(runIds[0]!, 3), undefined);
      assert.equal(await store.getStep(runIds[0]!, 0), undefined);
      assert.equal(await store.getStep(runIds[0]!, 1.5), undefined);
      assert.equal((await store.getStep(runIds[0]!, 2))?.seq, 2);
    });

    test('seq and ids at the edges of what the schema allows are stored and found', async () => {
      const { events, runIds } = stream([simpleRunPlan(2, { finish: null })]);
      const big = 2 ** 40;
      const edited = events.map((e) => (e.type === 'step.started' && e.seq === 2 ? { ...e, seq: big } : e));
      const agent = 'agent \u0000 with ünïcode "quotes" and \\ slashes';
      const withAgent = edited.map((e) => (e.type === 'run.started' ? { ...e, agent } : e));
      const result = await store.append(withAgent);
      assert.equal(result.accepted, events.length);
      const runId = runIds[0]!;
      assert.equal((await store.getStep(runId, big))?.seq, big);
      assert.deepEqual(
        (await store.readTimeline(runId)).items.map((s) => s.seq),
        [1, big],
      );
      assert.deepEqual(
        (await store.readTimeline(runId, { afterSeq: 1, limit: 1 })).items.map((s) => s.seq),
        [big],
      );
      assert.deepEqual((await store.readTimeline(runId, { afterSeq: big })).items, []);
      assert.deepEqual(
        (await store.readEvents(runId)).map((e) => e.eventId),
        canonicalOrder(withAgent as RewindEvent[]).map((e) => e.eventId),
      );
      const stored = (await store.readEvents(runId)).find((e) => e.type === 'run.started');
      assert.equal(stored?.type === 'run.started' && stored.agent, agent);
      assert.equal(typeof (await store.getRun(runId))?.agent, 'string');
    });

    test('readTimeline pages by seq with afterSeq, limit and nextCursor', async () => {
      const { events, runIds } = stream([simpleRunPlan(25, { finish: null })]);
      await store.append(events);
      const runId = runIds[0]!;
      const seqs: number[] = [];
      let afterSeq = 0;
      let pages = 0;
      for (;;) {
        const page = await store.readTimeline(runId, { afterSeq, limit: 7 });
        pages++;
        seqs.push(...page.items.map((s) => s.seq));
        if (page.nextCursor === undefined) break;
        assert.equal(page.nextCursor, String(page.items.at(-1)!.seq));
        afterSeq = Number(page.nextCursor);
      }
      assert.equal(pages, 4);
      assert.deepEqual(
        seqs,
        Array.from({ length: 25 }, (_, i) => i + 1),
      );
      const exact = await store.readTimeline(runId, { afterSeq: 20, limit: 5 });
      assert.deepEqual([exact.items.length, exact.nextCursor], [5, undefined]);
      assert.equal((await store.readTimeline(runId, { afterSeq: 25 })).items.length, 0);
      for (const limit of [0, 10001, 1.5, Number.NaN]) {
        await assert.rejects(store.readTimeline(runId, { limit }), isInvalidQuery);
      }
      await assert.rejects(store.readTimeline(runId, { afterSeq: -1 }), isInvalidQuery);
    });

    test('listRuns: newest first, ties by id, keyset pages stable under concurrent inserts', async () => {
      const ns = newNamespace();
      const plans = Array.from({ length: 23 }, (_, i) =>
        simpleRunPlan(1, { startOffsetS: [0, 5, 5, 5, 9, 30, 61][i % 7]! + Math.floor(i / 7) * 100 }),
      );
      const { events, runIds, window } = buildStream(plans, ns);
      await store.append(events);
      const all = await store.listRuns({ ...window, limit: 1000 });
      assert.equal(all.items.length, 23);
      assert.equal(all.nextCursor, undefined);
      const expected = runIds
        .map((id, i) => ({ id, at: plans[i]!.startOffsetS }))
        .sort((a, b) => b.at - a.at || (a.id < b.id ? 1 : -1))
        .map((r) => r.id);
      assert.deepEqual(
        all.items.map((r) => r.id),
        expected,
      );
      // Page through while newer and older runs keep arriving: no run is seen twice or skipped.
      const seen: string[] = [];
      let cursor: string | undefined;
      let round = 0;
      do {
        const page: Awaited<ReturnType<Store['listRuns']>> = await store.listRuns({
          ...window,
          limit: 4,
          ...(cursor === undefined ? {} : { cursor }),
        });
        assert.ok(page.items.length <= 4);
        seen.push(...page.items.map((r) => r.id));
        cursor = page.nextCursor;
        const newer = buildStream([simpleRunPlan(0, { startOffsetS: 1000 + round })], ns);
        const renamed = newer.events.map((e) => ({ ...e, runId: `${e.runId}-late-${round}` }));
        await store.append(renamed);
        round++;
      } while (cursor !== undefined);
      const original = new Set(runIds);
      assert.deepEqual(
        seen.filter((id) => original.has(id)),
        expected,
      );
      assert.equal(new Set(seen).size, seen.length);
    });

    test('listRuns filters by agent, status, since and until', async () => {
      const ns = newNamespace();
      const base = namespaceBaseTime(ns);
      const { events, runIds, window } = buildStream(
        [
          simpleRunPlan(1, { agent: 'alpha', finish: 'ok', startOffsetS: 0 }),
          simpleRunPlan(1, { agent: 'beta', finish: 'error', startOffsetS: 10 }),
          simpleRunPlan(1, { agent: 'alpha', finish: null, startOffsetS: 20 }),
          simpleRunPlan(1, { agent: 'alpha', finish: 'cancelled', startOffsetS: 30 }),
          simpleRunPlan(1, { agent: 'beta', finish: 'ok', startOffsetS: 40 }),
        ],
        ns,
      );
      await store.append(events);
      const ids = async (query: ListRunsQuery) =>
        (await store.listRuns({ ...window, ...query })).items.map((r) => runIds.indexOf(r.id));
      assert.deepEqual(await ids({ agent: 'alpha' }), [3, 2, 0]);
      assert.deepEqual(await ids({ agent: 'nobody' }), []);
      assert.deepEqual(await ids({ status: 'ok' }), [4, 0]);
      assert.deepEqual(await ids({ status: 'incomplete' }), [2]);
      assert.deepEqual(await ids({ status: 'cancelled' }), [3]);
      assert.deepEqual(await ids({ status: 'error', agent: 'beta' }), [1]);
      // since is inclusive, until exclusive; times compare as times whatever their precision.
      assert.deepEqual(await ids({ since: isoTime(base + 10_000), until: isoTime(base + 30_000) }), [2, 1]);
      assert.deepEqual(await ids({ since: new Date(base + 10_000).toISOString() }), [4, 3, 2, 1]);
      assert.deepEqual(
        await ids({ since: `${new Date(base + 9_999).toISOString().replace('Z', '')}1Z` }),
        [4, 3, 2, 1],
      );
      assert.deepEqual(await ids({ until: new Date(base + 10_001).toISOString() }), [1, 0]);
      assert.deepEqual(await ids({ agent: 'alpha', limit: 2 }), [3, 2]);
      const first = await store.listRuns({ ...window, agent: 'alpha', limit: 2 });
      const second = await store.listRuns({ ...window, agent: 'alpha', limit: 2, cursor: first.nextCursor! });
      assert.deepEqual(
        second.items.map((r) => runIds.indexOf(r.id)),
        [0],
      );
      assert.equal(second.nextCursor, undefined);
    });

    test('listRuns rejects a bad limit, cursor, status or time with invalid_query', async () => {
      for (const limit of [0, 1001, 2.5, -1, Number.NaN])
        await assert.rejects(store.listRuns({ limit }), isInvalidQuery);
      await assert.rejects(store.listRuns({ limit: '10' as unknown as number }), isInvalidQuery);
      for (const cursor of ['garbage!', 'bm90LWpzb24', Buffer.from('{"a":1}').toString('base64url'), ''])
        await assert.rejects(store.listRuns({ cursor }), isInvalidQuery);
      await assert.rejects(store.listRuns({ status: 'running' as 'ok' }), isInvalidQuery);
      await assert.rejects(store.listRuns({ since: 'last tuesday' }), isInvalidQuery);
      await assert.rejects(store.listRuns({ until: '2026-02-30T99:00:00Z' }), isInvalidQuery);
      const page = await store.listRuns({ limit: 1 });
      assert.equal(page.items.length, 1);
      const defaultPage = await store.listRuns();
      assert.ok(defaultPage.items.length <= 50);
    });

    test('referencedBlobs yields every blob hash stored events refer to', async () => {
      const plan = simpleRunPlan(2);
      plan.steps[0] = { ...plan.steps[0]!, parts: true };
      plan.steps[1] = { ...plan.steps[1]!, status: 'error' };
      const { events } = stream([plan]);
      await store.append(events);
      const referenced = new Set<BlobHash>();
      for await (const hash of store.referencedBlobs()) referenced.add(hash);
      const expected: BlobHash[] = [];
      for (const event of events) {
        const refs =
          event.type === 'run.started'
            ? [event.input]
            : event.type === 'step.started'
              ? [event.request]
              : event.type === 'step.finished'
                ? [event.response]
                : [event.status === 'ok' ? event.output : undefined, event.tape];
        for (const ref of refs) if (ref) expected.push(ref.hash, ...((ref.parts ?? []) as BlobHash[]));
      }
      assert.ok(expected.length >= 7);
      for (const hash of expected) assert.ok(referenced.has(hash), `missing ${hash}`);
      const started = events.find((e): e is StepStarted => e.type === 'step.started')!;
      assert.equal(referenced.has(started.requestHash), false, 'requestHash is not a blob reference');
      assert.ok(started.request.parts?.every((p) => referenced.has(p as BlobHash)));
    });

    test('concurrent appends of overlapping batches accept every event exactly once', async () => {
      const { events, runIds } = stream([simpleRunPlan(40), simpleRunPlan(40, { startOffsetS: 1 })]);
      const shuffled = [...events].sort((a, b) => (a.eventId < b.eventId ? 1 : -1));
      const calls = [
        events.slice(0, 120),
        shuffled.slice(0, 100),
        events.slice(60),
        shuffled,
        events.slice(100, 140),
      ];
      const results = await Promise.all(calls.map((batch) => store.append(batch)));
      const accepted = results.reduce((n, r) => n + r.accepted, 0);
      const duplicates = results.reduce((n, r) => n + r.duplicates, 0);
      assert.equal(accepted, events.length);
      assert.equal(duplicates, calls.reduce((n, c) => n + c.length, 0) - events.length);
      assert.equal(
        results.reduce((n, r) => n + r.rejected, 0),
        0,
      );
      for (const runId of runIds) assert.equal((await store.getRun(runId))?.stepCount, 40);
    });

    test('property: any permutation, duplication and batching gives the same stored runs', async () => {
      const baseline = await open();
      const subject = await open();
      try {
        await fc.assert(
          fc.asyncProperty(streamAndDeliveryArb, async ({ plan, delivery }) => {
            const built = buildStream(plan, newNamespace());
            const inOrder = await baseline.append(built.events);
            assert.equal(inOrder.accepted, built.events.length);
            assert.deepEqual(await baseline.readEvents(built.runIds[0]!), canonicalOrder(eventsOf(built, 0)));

            const batches = batchesOf(built.events, delivery);
            const results: AppendResult[] = delivery.concurrent
              ? await Promise.all(batches.map((batch) => subject.append(batch)))
              : await sequentially(batches, (batch) => subject.append(batch));
            assert.equal(
              results.reduce((n, r) => n + r.accepted, 0),
              built.events.length,
            );
            assert.equal(
              results.reduce((n, r) => n + r.rejected, 0),
              0,
            );

            const expected = await snapshot(baseline, built.runIds, built.window);
            assert.deepEqual(await snapshot(subject, built.runIds, built.window), expected);

            // Sending everything again changes nothing.
            const again = await subject.append(built.events);
            assert.equal(again.duplicates, built.events.length);
            assert.deepEqual(await snapshot(subject, built.runIds, built.window), expected);
          }),
          { numRuns: propertyRuns },
        );
      } finally {
        await baseline.close();
        await subject.close();
      }
    });
  });
}

function isInvalidQuery(error: unknown): boolean {
  assert.ok(RewindError.isInstance(error), `expected a RewindError, got ${String(error)}`);
  assert.equal(error.code, 'invalid_query');
  assert.match(error.message, /invalid/);
  return true;
}

async function sequentially<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (const item of items) out.push(await fn(item));
  return out;
}

/** The order readEvents promises: run.started, steps by seq (started, finished), unstarted steps by id, run.finished. */
function canonicalOrder(events: readonly RewindEvent[]): RewindEvent[] {
  const seqOf = new Map<string, number>();
  for (const e of events) if (e.type === 'step.started') seqOf.set(e.stepId, e.seq);
  const key = (e: RewindEvent): [number, number, string, number] => {
    if (e.type === 'run.started') return [0, 0, '', 0];
    if (e.type === 'run.finished') return [3, 0, '', 0];
    const seq = seqOf.get(e.stepId);
    return seq === undefined ? [2, 0, e.stepId, 0] : [1, seq, '', e.type === 'step.started' ? 0 : 1];
  };
  return [...events].sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    for (let i = 0; i < 4; i++) {
      if (ka[i]! < kb[i]!) return -1;
      if (ka[i]! > kb[i]!) return 1;
    }
    return 0;
  });
}

function eventsOf(built: { events: RewindEvent[]; runIds: string[] }, run: number): RewindEvent[] {
  return built.events.filter((e) => e.runId === built.runIds[run]);
}

function windowOf(events: readonly RewindEvent[]): { since: string; until: string } {
  const times = events.map((e) => Date.parse(e.time));
  return {
    since: new Date(Math.min(...times)).toISOString(),
    until: new Date(Math.max(...times) + 1).toISOString(),
  };
}

/** Everything a reader can see of some runs: the runs, their timelines (paged), steps, events, and the listing. */
async function snapshot(store: Store, runIds: readonly string[], window?: { since: string; until: string }) {
  const runs = [];
  for (const runId of runIds) {
    const timeline = [];
    let afterSeq = 0;
    for (;;) {
      const page = await store.readTimeline(runId, { afterSeq, limit: 3 });
      timeline.push(...page.items);
      if (page.nextCursor === undefined) break;
      afterSeq = Number(page.nextCursor);
    }
    const steps = [];
    for (const step of timeline) steps.push(await store.getStep(runId, step.seq));
    runs.push({
      run: await store.getRun(runId),
      timeline,
      steps,
      events: await store.readEvents(runId),
    });
  }
  const list = async (query: ListRunsQuery) => {
    const items: RunSummary[] = [];
    let cursor: string | undefined;
    do {
      const page: Awaited<ReturnType<Store['listRuns']>> = await store.listRuns({
        ...query,
        limit: 2,
        ...(cursor === undefined ? {} : { cursor }),
      });
      items.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    return items;
  };
  if (window === undefined) return { runs };
  // The listing, and a window starting inside the runs' events, which shows their sort times.
  const inside = new Date(Date.parse(window.since) + 25).toISOString();
  return {
    runs,
    listing: await list(window),
    later: await list({ ...window, since: inside }),
    incomplete: await list({ ...window, status: 'incomplete' }),
  };
}

/** The same events under new ids (times unchanged); `ids` maps each old id to its new one. */
function copyStream(events: readonly RewindEvent[]): { events: RewindEvent[]; ids: Map<string, string> } {
  const ids = new Map<string, string>();
  const map = (id: string, fresh: () => string) => {
    if (!ids.has(id)) ids.set(id, fresh());
    return ids.get(id)!;
  };
  const copied = events.map((event) => {
    const copy = {
      ...event,
      eventId: map(event.eventId, newEventId),
      runId: map(event.runId, () => `${event.runId}-copy`),
    };
    if ('stepId' in copy) {
      const stepId = copy.stepId;
      copy.stepId = map(stepId, () => `${stepId}-copy`);
    }
    if ('parentStepId' in copy && typeof copy.parentStepId === 'string') {
      const parent = copy.parentStepId;
      copy.parentStepId = map(parent, () => `${parent}-copy`);
    }
    return copy as RewindEvent;
  });
  return { events: copied, ids };
}

/** Replaces every JSON string that is a new id of `ids` by its old id. */
function renameIds<T>(value: T, ids: Map<string, string>): T {
  const back = new Map([...ids].map(([a, b]) => [b, a]));
  return JSON.parse(JSON.stringify(value), (_key, v) =>
    typeof v === 'string' && back.has(v) ? back.get(v) : v,
  ) as T;
}
