// The replay orchestrator end to end, on SQLite and on the real PostgreSQL (a fresh schema):
// the HTTP routes of a real server, two real `rewind worker` processes (each running every
// session in a replay process of its own), the agents found through rewind.config.json, the
// fixture agents' golden runs. 50 sessions queued at once finish with the right verdicts and are
// each claimed exactly once; a replay process killed with SIGKILL fails only its session; a
// worker killed with SIGKILL fails its session when its lease expires; cancel, timeout, fork,
// the event stream, bad requests and auth.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Recorder } from '@rewind/sdk';
import { type RunningServer, startServer } from '@rewind/server';
import { openStore, type Store } from '@rewind/store';
import { loadGoldenRun } from '../fixtures/traces/replay/load.ts';
import { BACKENDS } from '../packages/server/src/testing/backends.ts';
import { makeSlowAgent } from './replay-agents/orch-agents.ts';
import { REWIND_BIN, runRewind } from './rewind-cli.ts';

const AGENTS = fileURLToPath(new URL('./replay-agents/orch-agents.ts', import.meta.url));
const GOLDEN: Record<string, { exportName: string; verdict: 'reproduced' | 'diverged' }> = {
  'single-model-call': { exportName: 'singleModelCall', verdict: 'reproduced' },
  'parallel-tools': { exportName: 'parallelTools', verdict: 'reproduced' },
  'clock-and-random': { exportName: 'clockAndRandom', verdict: 'reproduced' },
  // The workers run tool-loop with a changed prompt word: it diverges at seq 1.
  'tool-loop': { exportName: 'toolLoop', verdict: 'diverged' },
};
const LEASE_MS = 1500;

interface Worker {
  id: string;
  child: ChildProcess;
  lines: Record<string, unknown>[];
  stderr: string;
}

type Session = Record<string, unknown> & {
  id: string;
  status: string;
  verdict: string | null;
  error: { code: string; message: string; diagnostics?: Record<string, unknown> } | null;
  progress: { stepsServed: number; stepsTotal: number | null };
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const backend of BACKENDS) {
  describe(`replay orchestrator on ${backend.name}`, { concurrency: false }, () => {
    let opened: Awaited<ReturnType<(typeof backend)['open']>>;
    let store: Store;
    let server: RunningServer;
    let dir: string;
    const runs: Record<string, string> = {};
    const workers: Worker[] = [];

    const api = async (
      method: string,
      path: string,
      body?: unknown,
      headers: Record<string, string> = {},
    ) => {
      const response = await fetch(`${server.url}${path}`, {
        method,
        headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
        ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      });
      const text = await response.text();
      return { status: response.status, json: text === '' ? undefined : JSON.parse(text) };
    };
    const create = async (body: unknown) => {
      const response = await api('POST', '/v1/replays', body);
      assert.equal(response.status, 202, JSON.stringify(response.json));
      return response.json as Session;
    };
    const get = async (id: string) => (await api('GET', `/v1/replays/${id}`)).json as Session;
    const until = async (id: string, done: (s: Session) => boolean, what: string, ms = 60_000) => {
      const deadline = Date.now() + ms;
      for (;;) {
        const session = await get(id);
        if (done(session)) return session;
        if (Date.now() > deadline) throw new Error(`session ${id} never ${what}: ${JSON.stringify(session)}`);
        await sleep(50);
      }
    };
    const ended = (id: string, ms?: number) =>
      until(id, (s) => ['finished', 'failed', 'cancelled'].includes(s.status), 'ended', ms);

    function startWorker(id: string): Worker {
      const child = spawn(
        process.execPath,
        [
          REWIND_BIN,
          'worker',
          '--store',
          opened.location,
          '--blobs',
          opened.blobs,
          '--concurrency',
          '2',
          '--lease-ms',
          String(LEASE_MS),
          '--worker-id',
          id,
        ],
        {
          cwd: dir,
          env: { ...process.env, ORCH_HANG: '1', ORCH_DIVERGE_TOOL_LOOP: '1' },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      const worker: Worker = { id, child, lines: [], stderr: '' };
      let buffer = '';
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        buffer += chunk;
        const lines = buffer.split('\n');
        buffer = lines.pop()!;
        for (const line of lines) if (line.trim() !== '') worker.lines.push(JSON.parse(line));
      });
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (worker.stderr += chunk));
      workers.push(worker);
      return worker;
    }

    const logLine = async (match: (line: Record<string, unknown>) => boolean, what: string) => {
      const deadline = Date.now() + 30_000;
      for (;;) {
        for (const worker of workers) {
          const line = worker.lines.find(match);
          if (line !== undefined) return { worker, line };
        }
        if (Date.now() > deadline) throw new Error(`no worker logged ${what}`);
        await sleep(20);
      }
    };

    before(async () => {
      opened = await backend.open();
      store = opened.store;
      dir = join(opened.blobs, '..');
      for (const fixture of Object.keys(GOLDEN)) runs[fixture] = (await loadGoldenRun(store, fixture)).runId;
      const recorder = new Recorder({ store });
      await makeSlowAgent(recorder)('go');
      await recorder.flush();
      runs['orch-slow'] = (await store.listRuns({ agent: 'orch-slow' })).items[0]!.id;
      const agents: Record<string, string> = { 'orch-slow': `./${relative(dir, AGENTS)}#slowAgent` };
      for (const [fixture, { exportName }] of Object.entries(GOLDEN))
        agents[fixture] = `./${relative(dir, AGENTS)}#${exportName}`;
      writeFileSync(join(dir, 'rewind.config.json'), JSON.stringify({ agents }));
      server = await startServer({ store, port: 0, log: false, replays: { pollMs: 20 } });
      startWorker('worker-a');
      startWorker('worker-b');
    });

    after(async () => {
      for (const worker of workers) {
        if (worker.child.exitCode === null && worker.child.signalCode === null) {
          const exited = new Promise((resolve) => worker.child.once('exit', resolve));
          worker.child.kill('SIGTERM');
          await exited;
        }
      }
      await server?.close();
      await opened?.cleanup();
    });

    it('50 sessions queued at once finish with the right verdicts, each claimed exactly once', async () => {
      const fixtures = Object.keys(GOLDEN);
      const created = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          create({ runId: runs[fixtures[i % fixtures.length]!], mode: 'exact' }),
        ),
      );
      for (const session of created) assert.equal(session.status, 'queued');
      const byRun = new Map(Object.entries(runs).map(([fixture, runId]) => [runId, fixture]));
      for (const created1 of created) {
        const session = await ended(created1.id, 180_000);
        const fixture = byRun.get(session.runId as string)!;
        assert.equal(session.status, 'finished', JSON.stringify(session.error));
        assert.equal(session.verdict, GOLDEN[fixture]!.verdict, fixture);
        assert.equal(session.attempts, 1);
        assert.ok(['worker-a', 'worker-b'].includes(session.workerId as string));
        if (fixture === 'tool-loop') {
          assert.equal((session.divergence as { seq: number }).seq, 1);
          assert.ok(((session.labels as Record<string, number>).diverged ?? 0) >= 1);
        } else {
          assert.equal(session.divergence, null);
          assert.equal(session.progress.stepsServed, session.progress.stepsTotal);
        }
        const newRun = await store.getRun(session.newRunId as string);
        assert.deepEqual(newRun?.replayOf, { runId: session.runId, mode: 'exact' });
      }
      const claims = workers.flatMap((w) =>
        w.lines.filter((l) => l.msg === 'claimed').map((l) => ({ w: w.id, id: l.sessionId })),
      );
      for (const session of created)
        assert.equal(
          claims.filter((c) => c.id === session.id).length,
          1,
          `session ${session.id} claimed once`,
        );
      assert.ok(
        claims.some((c) => c.w === 'worker-a') && claims.some((c) => c.w === 'worker-b'),
        'both workers ran sessions',
      );
    });

    it('the event stream replays past events to a late subscriber, in order, ending with the verdict', async () => {
      const session = await create({ runId: runs['parallel-tools'], mode: 'exact' });
      const live = await readEvents(server.url, session.id);
      assert.deepEqual(
        live.map((e) => e.id),
        live.map((_, i) => i + 1),
      );
      assert.equal(live[0]!.event, 'queued');
      assert.equal(live[1]!.event, 'started');
      assert.deepEqual(
        live.slice(-2).map((e) => e.event),
        ['verdict', 'done'],
      );
      const verdict = live.at(-2)!.data as {
        verdict: string;
        newRunId: string;
        labels: Record<string, number>;
      };
      assert.equal(verdict.verdict, 'reproduced');
      const labels = live.filter((e) => e.event === 'label');
      const steps = (await store.getRun(runs['parallel-tools']!))!.stepCount;
      assert.equal(labels.length, steps);
      assert.ok(labels.every((e) => (e.data as { label: string }).label === 'replayed'));
      const progress = live
        .filter((e) => e.event === 'progress')
        .map((e) => (e.data as { stepsServed: number }).stepsServed);
      assert.deepEqual(
        progress,
        Array.from({ length: steps }, (_, i) => i + 1),
      );
      const late = await readEvents(server.url, session.id);
      assert.deepEqual(late, live, 'a late subscriber gets the same events');
      const resumed = await readEvents(server.url, session.id, { 'Last-Event-ID': '3' });
      assert.deepEqual(resumed, live.slice(3));
    });

    it('a fork through the API: the step overridden, the new run records forkOf', async () => {
      const session = await create({
        runId: runs['single-model-call'],
        mode: 'exact',
        fork: {
          atSeq: 1,
          response: {
            choices: [{ index: 0, message: { role: 'assistant', content: 'Lyon' }, finish_reason: 'stop' }],
          },
          then: 'cached',
        },
      });
      const done = await ended(session.id);
      assert.equal(done.status, 'finished', JSON.stringify(done.error));
      assert.equal((done.labels as Record<string, number>).overridden, 1);
      const newRun = await store.getRun(done.newRunId as string);
      assert.equal(newRun?.forkOf?.runId, runs['single-model-call']);
      assert.equal(newRun?.forkOf?.atSeq, 1);
    });

    it('a replay process killed with SIGKILL fails only its session, with a message; the others finish', async () => {
      const slow = await create({ runId: runs['orch-slow'], mode: 'exact' });
      const others = await Promise.all(
        Array.from({ length: 3 }, () => create({ runId: runs['single-model-call'], mode: 'exact' })),
      );
      const { line } = await logLine(
        (l) => l.msg === 'replay process started' && l.sessionId === slow.id,
        'the slow replay',
      );
      await until(slow.id, (s) => s.progress.stepsServed >= 1, 'served its first step');
      process.kill(line.pid as number, 'SIGKILL');
      const failed = await ended(slow.id);
      assert.equal(failed.status, 'failed');
      assert.equal(failed.error?.code, 'worker_died');
      assert.match(failed.error!.message, /was killed by SIGKILL after 1 step\(s\)/);
      assert.equal(failed.error?.diagnostics?.signal, 'SIGKILL');
      assert.match(
        String(failed.error?.diagnostics?.stderrTail),
        /orch-slow: waiting before the second call/,
      );
      assert.equal(failed.attempts, 1);
      for (const other of others) {
        const session = await ended(other.id);
        assert.equal(session.status, 'finished');
        assert.equal(session.verdict, 'reproduced');
      }
      await sleep(LEASE_MS);
      assert.equal((await get(slow.id)).status, 'failed', 'not retried');
      assert.equal((await get(slow.id)).attempts, 1);
    });

    it('cancel: a running session stops and ends cancelled; cancelling it again is a no-op', async () => {
      const slow = await create({ runId: runs['orch-slow'], mode: 'exact' });
      await until(slow.id, (s) => s.progress.stepsServed >= 1, 'served its first step');
      const asked = await api('POST', `/v1/replays/${slow.id}/cancel`);
      assert.equal(asked.status, 202);
      assert.equal(asked.json.cancelRequested, true);
      const cancelled = await ended(slow.id);
      assert.equal(cancelled.status, 'cancelled');
      assert.equal(cancelled.error?.code, 'cancelled');
      assert.equal((await api('POST', `/v1/replays/${slow.id}/cancel`)).status, 200);
      const events = await readEvents(server.url, slow.id);
      assert.deepEqual(
        events.slice(-2).map((e) => e.event),
        ['cancelled', 'done'],
      );
    });

    it('timeout: a session that runs past its timeoutMs is stopped and failed', async () => {
      const slow = await create({ runId: runs['orch-slow'], mode: 'exact', timeoutMs: 1500 });
      assert.equal(slow.timeoutMs, 1500);
      const failed = await ended(slow.id);
      assert.equal(failed.status, 'failed');
      assert.equal(failed.error?.code, 'timeout');
      assert.match(failed.error!.message, /did not finish within its timeout of 1500 ms/);
    });

    it('bad requests get clear 4xx; ended sessions cannot be cancelled', async () => {
      const post = (body: unknown) => api('POST', '/v1/replays', body);
      const unknown = await post({ runId: 'no-such-run', mode: 'exact' });
      assert.equal(unknown.status, 404);
      assert.match(unknown.json.error.message, /run 'no-such-run' not found/);
      const mode = await post({ runId: runs['tool-loop'], mode: 'fast' });
      assert.equal(mode.status, 400);
      assert.equal(mode.json.error.code, 'invalid_mode');
      const cases: [unknown, RegExp][] = [
        [{ atSeq: 0, response: 1 }, /atSeq must be/],
        [{ atSeq: 1 }, /needs one edit/],
        [{ atSeq: 1, response: 1, error: 'x' }, /only one of/],
        [{ atSeq: 1, response: 1, then: 'later' }, /then must be/],
        [{ atSeq: 1, set: [{ pointer: 'model', value: 'x' }] }, /JSON pointer/],
        [{ atSeq: 1, response: 1, extra: true }, /unknown field "extra"/],
        [{ atSeq: 99, response: 1 }, /has no step 99/],
        ['fork', /must be an object/],
      ];
      for (const [fork, message] of cases) {
        const bad = await post({ runId: runs['tool-loop'], mode: 'exact', fork });
        assert.equal(bad.status, 400, JSON.stringify(fork));
        assert.equal(bad.json.error.code, 'invalid_fork');
        assert.match(bad.json.error.message, message);
      }
      const cachedFork = await post({
        runId: runs['tool-loop'],
        mode: 'cached',
        fork: { atSeq: 1, response: 1 },
      });
      assert.equal(cachedFork.json.error.code, 'invalid_fork');
      assert.equal((await post({ mode: 'exact' })).status, 400);
      assert.equal((await post({ runId: runs['tool-loop'], timeoutMs: -1 })).status, 400);
      assert.equal((await post({ runId: runs['tool-loop'], colour: 'red' })).status, 400);
      assert.equal((await api('POST', '/v1/replays', '{not json')).json.error.code, 'invalid_json');
      assert.equal((await api('GET', '/v1/replays/rs_nope')).status, 404);
      assert.equal((await api('GET', '/v1/replays/rs_nope/events')).status, 404);
      assert.equal((await api('POST', '/v1/replays/rs_nope/cancel')).status, 404);
      const done = await ended((await create({ runId: runs['single-model-call'] })).id);
      assert.equal(done.mode, 'exact', 'mode defaults to exact');
      const late = await api('POST', `/v1/replays/${done.id}/cancel`);
      assert.equal(late.status, 409);
      assert.equal(late.json.error.code, 'session_ended');
    });

    it('auth: creating and cancelling need an ingest key, reading a read key', async () => {
      const keyed = await startServer({
        store,
        port: 0,
        log: false,
        ingestKeys: ['in-key'],
        readKeys: ['read-key'],
      });
      try {
        const call = (method: string, path: string, key: string, body?: unknown) =>
          fetch(`${keyed.url}${path}`, {
            method,
            headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
            ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          });
        const body = { runId: runs['single-model-call'], mode: 'exact' };
        assert.equal((await call('POST', '/v1/replays', 'read-key', body)).status, 403);
        const created = await call('POST', '/v1/replays', 'in-key', body);
        assert.equal(created.status, 202);
        const { id } = (await created.json()) as { id: string };
        assert.equal((await call('GET', `/v1/replays/${id}`, 'read-key')).status, 200);
        assert.equal((await call('POST', `/v1/replays/${id}/cancel`, 'read-key')).status, 403);
        await ended(id);
      } finally {
        await keyed.close();
      }
    });

    it('a worker killed with SIGKILL fails its session once the lease expires; the other worker goes on', async () => {
      const slow = await create({ runId: runs['orch-slow'], mode: 'exact' });
      await until(slow.id, (s) => s.progress.stepsServed >= 1, 'served its first step');
      const holderId = (await get(slow.id)).workerId;
      const holder = workers.find((w) => w.id === holderId)!;
      holder.child.kill('SIGKILL');
      const failed = await ended(slow.id, 30_000);
      assert.equal(failed.status, 'failed');
      assert.equal(failed.error?.code, 'lease_expired');
      assert.match(failed.error!.message, new RegExp(`worker ${holder.id} stopped renewing its lease`));
      const next = await ended((await create({ runId: runs['clock-and-random'], mode: 'exact' })).id);
      assert.equal(next.verdict, 'reproduced');
      assert.notEqual(next.workerId, holder.id);
    });
  });
}

interface SseEvent {
  id: number;
  event: string;
  data: unknown;
}

/** Reads the session's event stream to its end. */
async function readEvents(
  url: string,
  id: string,
  headers: Record<string, string> = {},
): Promise<SseEvent[]> {
  const response = await fetch(`${url}/v1/replays/${id}/events`, { headers });
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
  const text = await response.text();
  return text
    .split('\n\n')
    .filter((frame) => frame.trim() !== '' && !frame.startsWith(':'))
    .map((frame) => {
      const fields = Object.fromEntries(
        frame
          .split('\n')
          .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]),
      );
      const data = JSON.parse(fields.data!) as Record<string, unknown>;
      delete data.at;
      return { id: Number(fields.id), event: fields.event!, data };
    });
}

describe('rewind serve --workers', () => {
  it('runs queued sessions with its local workers, and fails a dead worker’s session at once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rewind-serve-workers-'));
    const serve = spawn(process.execPath, [REWIND_BIN, 'serve', '--port', '0', '--workers', '1'], {
      cwd: dir,
      env: { ...process.env, ORCH_HANG: '1', REWIND_STORE: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: Record<string, unknown>[] = [];
    let buffer = '';
    let stderr = '';
    serve.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      const parts = buffer.split('\n');
      buffer = parts.pop()!;
      for (const line of parts) if (line.startsWith('{')) lines.push(JSON.parse(line));
    });
    serve.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const waitFor = async (match: (line: Record<string, unknown>) => boolean, what: string) => {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const found = lines.filter(match).at(-1);
        if (found !== undefined) return found;
        if (Date.now() > deadline) throw new Error(`serve never logged ${what}; stderr: ${stderr}`);
        await sleep(20);
      }
    };
    try {
      const store = await openStore(join(dir, '.rewind'));
      const golden = await loadGoldenRun(store, 'single-model-call');
      const recorder = new Recorder({ store });
      await makeSlowAgent(recorder)('go');
      await recorder.flush();
      const slowRun = (await store.listRuns({ agent: 'orch-slow' })).items[0]!.id;
      await store.close();
      const module = `./${relative(dir, AGENTS)}`;
      writeFileSync(
        join(dir, 'rewind.config.json'),
        JSON.stringify({
          agents: { 'single-model-call': `${module}#singleModelCall`, 'orch-slow': `${module}#slowAgent` },
        }),
      );
      const url = (await waitFor((l) => l.msg === 'listening', 'listening')).url as string;
      const post = async (body: unknown) =>
        (await (
          await fetch(`${url}/v1/replays`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(body),
          })
        ).json()) as Session;
      const get = async (id: string) => (await (await fetch(`${url}/v1/replays/${id}`)).json()) as Session;
      const until = async (id: string, done: (s: Session) => boolean) => {
        const deadline = Date.now() + 60_000;
        for (;;) {
          const session = await get(id);
          if (done(session)) return session;
          if (Date.now() > deadline) throw new Error(`session ${id}: ${JSON.stringify(session)}`);
          await sleep(50);
        }
      };
      const isEnded = (s: Session) => ['finished', 'failed', 'cancelled'].includes(s.status);
      const first = await until((await post({ runId: golden.runId, mode: 'exact' })).id, isEnded);
      assert.equal(first.verdict, 'reproduced', JSON.stringify(first.error));

      const slow = await post({ runId: slowRun, mode: 'exact' });
      await until(slow.id, (s) => s.progress.stepsServed >= 1);
      const worker = await waitFor((l) => l.msg === 'worker process started', 'a worker');
      process.kill(worker.pid as number, 'SIGKILL');
      const failed = await until(slow.id, isEnded);
      assert.equal(failed.status, 'failed');
      assert.equal(failed.error?.code, 'worker_died');
      assert.match(failed.error!.message, /was killed by SIGKILL/);
      assert.equal(failed.error?.diagnostics?.signal, 'SIGKILL');
      // The worker is started again and runs the next session.
      const again = await until((await post({ runId: golden.runId, mode: 'exact' })).id, isEnded);
      assert.equal(again.verdict, 'reproduced');
      assert.notEqual(again.workerId, failed.workerId);
      const exited = new Promise<number | null>((resolve) => serve.once('exit', resolve));
      serve.kill('SIGTERM');
      assert.equal(await exited, 0, stderr);
    } finally {
      if (serve.exitCode === null && serve.signalCode === null) serve.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('rewind serve --workers: a serve process that dies', () => {
  it('takes its workers with it (they watch its IPC channel)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rewind-serve-dies-'));
    const serve = spawn(process.execPath, [REWIND_BIN, 'serve', '--port', '0', '--workers', '1'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    serve.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    try {
      const deadline = Date.now() + 30_000;
      let pid: number | undefined;
      while (pid === undefined) {
        const match = /"msg":"worker started","workerId":"[^"]+"/.test(out)
          ? /"msg":"worker process started".*?"pid":(\d+)/.exec(out)
          : null;
        if (match !== null) pid = Number(match[1]);
        else if (Date.now() > deadline) throw new Error(`no worker started: ${out}`);
        else await sleep(50);
      }
      serve.kill('SIGKILL');
      const alive = () => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      const until = Date.now() + 15_000;
      while (alive() && Date.now() < until) await sleep(50);
      assert.equal(alive(), false, 'the worker exited after serve was killed');
    } finally {
      if (serve.exitCode === null && serve.signalCode === null) serve.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('rewind worker: flags', () => {
  it('--help explains it; bad --concurrency, --lease-ms or serve --workers are usage errors', async () => {
    const help = await runRewind(['worker', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: rewind worker/);
    assert.match(help.stdout, /rewind\.config\.json/);
    assert.match((await runRewind(['--help'])).stdout, /worker/);
    const concurrency = await runRewind(['worker', '--concurrency', '0']);
    assert.equal(concurrency.code, 2);
    assert.match(concurrency.stderr, /--concurrency must be a whole number ≥ 1, got '0'/);
    const lease = await runRewind(['worker', '--lease-ms', 'soon']);
    assert.equal(lease.code, 2);
    assert.match(lease.stderr, /--lease-ms must be a whole number ≥ 100/);
    const workers = await runRewind(['serve', '--workers', 'many']);
    assert.equal(workers.code, 2);
    assert.match(workers.stderr, /--workers must be a whole number ≥ 0, got 'many'/);
  });
});
