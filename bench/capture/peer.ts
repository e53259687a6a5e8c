// One measured process of the capture benchmark (bench/capture.ts): runs the workload wrapped
// by one tracer (or by none: the baseline) and prints one line `RESULT {json}` on stdout.
//
// Usage: node --expose-gc bench/capture/peer.ts <peer> <rounds> <calls> <sinkUrl> <dir>

// The real clock, taken before any tracer is loaded: Rewind's tape patches performance.now
// inside runs, and the measurement must neither go through it nor be recorded by it.
const now = performance.now.bind(performance);

const { makeTracer, PEERS } = await import('./peers.ts');
const { lookup, makeRequest, Prng } = await import('./workload.ts');
type PeerName = import('./peers.ts').PeerName;

const [peerArg, roundsArg, callsArg, sinkUrl = '', dir = ''] = process.argv.slice(2);
if (!PEERS.includes(peerArg as PeerName)) throw new Error(`unknown peer ${peerArg}`);
const peer = peerArg as PeerName;
const rounds = Number(roundsArg);
const calls = Number(callsArg);
const WARMUP_UNTRACED = 3000;
const WARMUP_TRACED = 1000;
const DEADLINE_MS = 30_000;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

// Warm up the workload itself (JIT), then the tracer on calls of another name in a run of its
// own, delivered before the measured window starts (and not counted).
const prng = new Prng(0x5eed + rounds);
for (let i = 0; i < WARMUP_UNTRACED; i++) await lookup(makeRequest(prng, -i));
const tracer = await makeTracer(peer, { sinkUrl, dir });
const warm = tracer.wrap('warmup', lookup);
await tracer.round('warmup', async () => {
  for (let i = 0; i < WARMUP_TRACED; i++) await warm(makeRequest(prng, -i));
});
await tracer.flush(DEADLINE_MS);
await new Promise((resolve) => setTimeout(resolve, 200));

const tool = tracer.wrap('lookup', lookup);
const wall = new Float64Array(rounds * calls);
const flushMs: number[] = [];
let seq = 0;
gc();
const cpuStart = process.cpuUsage();
const start = now();
let inCalls = 0;
for (let round = 0; round < rounds; round++) {
  const roundStart = now();
  await tracer.round('bench', async () => {
    for (let i = 0; i < calls; i++) {
      const request = makeRequest(prng, seq);
      const t0 = now();
      await tool(request);
      wall[seq++] = now() - t0;
    }
  });
  inCalls += now() - roundStart;
  // The end of a run: wait until the tracer has delivered it (a job or a serverless
  // invocation does this; for a server it is the longest idle time between runs it could get).
  const flushStart = now();
  if (round < rounds - 1) await tracer.flush(DEADLINE_MS);
  else await tracer.shutdown(DEADLINE_MS);
  flushMs.push(now() - flushStart);
}
const end = now();
const cpu = process.cpuUsage(cpuStart);
const report = (await tracer.report?.()) ?? {};

wall.sort();
const at = (q: number): number => {
  const position = (wall.length - 1) * q;
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  return wall[lower]! + (wall[upper]! - wall[lower]!) * (position - lower);
};
const result = {
  peer,
  calls: seq,
  /** Per-call wall time of the wrapped call, µs. */
  wallMedianUs: at(0.5) * 1000,
  wallP99Us: at(0.99) * 1000,
  /** Process CPU (user + system, all threads) from the first call to the end of shutdown, µs. */
  cpuUs: cpu.user + cpu.system,
  /** Wall time of the rounds' calls, and of the flush after each round (the last one a shutdown). */
  loopMs: inCalls,
  flushMs,
  totalMs: end - start,
  report,
};
process.stdout.write(`RESULT ${JSON.stringify(result)}\n`, () => process.exit(0));
