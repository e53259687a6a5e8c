// Writes the golden traces of trace format v1 into fixtures/traces/v1/<name>/:
//   events.jsonl          one event per line, in the order a store received them
//   blobs/sha256/<hex>    every payload blob, raw (uncompressed) bytes
//   expected-show.json    what `rewind show <runId> --json` must print for the run
//
//   npx node scripts/make-golden-traces.ts            write the traces that do not exist yet
//   npx node scripts/make-golden-traces.ts --force    rewrite them all (only before v1 is released!)
//
// Golden traces are frozen once committed: every later Rewind must load them unchanged
// (tests/golden-traces.test.ts). The expected output comes from the builder's own model of each
// run (TraceBuilder.expectedShow), not from a store, so the test checks the stores and the CLI
// against an independent answer. See fixtures/traces/README.md.
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildSampleRun } from '@rewind/cli/sample-run';
import { TraceBuilder } from '@rewind/cli/trace-builder';
import { type BlobHash, blobHashHex, type RewindEvent } from '@rewind/schema';

const root = new URL('../fixtures/traces/v1/', import.meta.url).pathname;

interface GoldenTrace {
  name: string;
  builder: TraceBuilder;
  /** The events in the order they are written to events.jsonl (default: as emitted). */
  arrival?: RewindEvent[];
  /** Blobs left out on purpose (a run with pending artifacts). */
  missing?: BlobHash[];
}

/** A seeded Fisher–Yates shuffle, so the "arrival order" is reproducible. */
function shuffle<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let state = seed >>> 0;
  const random = (): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const at = (iso: string): number => Date.parse(iso);

// 1. The demo's support run, events in emission order.
function supportRun(): GoldenTrace {
  return {
    name: 'support-run',
    builder: buildSampleRun({
      runId: 'golden-support-run',
      start: at('2026-11-20T09:30:00.000Z'),
      seed: 101,
    }),
  };
}

// 2. A run that fails: a tool error the agent survives, then a model rate limit it does not.
function errorRun(): GoldenTrace {
  const b = new TraceBuilder({ runId: 'golden-error-run', start: at('2026-11-20T10:05:00.000Z'), seed: 202 });
  b.startRun({
    agent: 'research-bot',
    input: { question: 'What drove ACME Corp revenue growth in Q3 2026?' },
    attributes: { gitSha: 'a41d09e', env: 'ci', tags: ['research'] },
    sdk: { name: '@rewind/sdk', version: '0.1.0' },
  });
  const search = b.startStep({
    kind: 'retriever',
    name: 'vector.search',
    at: 8,
    request: { query: 'ACME Corp Q3 2026 revenue growth drivers', topK: 2 },
  });
  b.finishStep(search, {
    at: 96,
    response: {
      documents: [
        {
          id: 'acme-q3-pr',
          content: 'ACME Corp reports Q3 revenue of $412M, up 18% year over year, led by its cloud segment.',
          score: 0.92,
          metadata: { source: 'https://investors.acme.example/q3-2026' },
        },
        {
          id: 'acme-q2-call',
          content: 'On the Q2 call, the CFO expected cloud growth to accelerate in the second half.',
          score: 0.77,
        },
      ],
    },
  });
  const fetch = b.startStep({
    kind: 'tool',
    name: 'fetch_url',
    at: 102,
    request: { name: 'fetch_url', arguments: { url: 'https://investors.acme.example/q3-2026/transcript' } },
  });
  b.failStep(fetch, {
    at: 611,
    error: {
      type: 'HttpError',
      message: 'GET https://investors.acme.example/q3-2026/transcript: 403 Forbidden',
      status: 403,
    },
  });
  const answer = b.startStep({
    kind: 'model',
    name: 'anthropic.messages',
    at: 618,
    request: {
      provider: 'anthropic',
      model: 'claude-sonnet-4-5',
      messages: [
        { role: 'system', content: 'Answer from the sources only. Cite them by id.' },
        {
          role: 'user',
          content:
            'Question: What drove ACME Corp revenue growth in Q3 2026?\n\nSources:\n[acme-q3-pr] ACME Corp reports Q3 revenue of $412M, up 18% year over year, led by its cloud segment.\n[acme-q2-call] On the Q2 call, the CFO expected cloud growth to accelerate in the second half.\n\n(The transcript could not be fetched: 403.)',
        },
      ],
      params: { temperature: 0, maxTokens: 800 },
    },
    attributes: { 'gen_ai.system': 'anthropic' },
  });
  const rateLimit = {
    type: 'RateLimitError',
    message: '429 rate_limit_error: Number of request tokens has exceeded your per-minute rate limit',
    status: 429,
  };
  b.failStep(answer, {
    at: 1290,
    error: rateLimit,
    response: {
      raw: {
        type: 'error',
        error: {
          type: 'rate_limit_error',
          message: 'Number of request tokens has exceeded your per-minute rate limit',
        },
      },
    },
  });
  b.failRun({ at: 1302, error: rateLimit });
  return { name: 'error-run', builder: b };
}

// 3. A run whose run.finished never arrived (the process died): one step still running.
function incompleteRun(): GoldenTrace {
  const b = new TraceBuilder({
    runId: 'golden-incomplete-run',
    start: at('2026-11-20T11:42:10.000Z'),
    seed: 303,
  });
  b.startRun({
    agent: 'triage-bot',
    input: { ticketId: 'T-5531', subject: 'App crashes when exporting a report to PDF' },
    sdk: { name: '@rewind/sdk', version: '0.1.0' },
  });
  const classify = b.startStep({
    kind: 'chain',
    name: 'classify',
    at: 5,
    request: { input: { ticketId: 'T-5531' } },
  });
  const similar = b.startStep({
    kind: 'tool',
    name: 'search_tickets',
    parent: classify,
    at: 9,
    request: { name: 'search_tickets', arguments: { text: 'crash export PDF', limit: 3 } },
  });
  b.finishStep(similar, {
    at: 140,
    response: {
      output: {
        tickets: [{ id: 'T-5102', title: 'PDF export crash on large reports', state: 'fixed in 4.2' }],
      },
    },
  });
  b.startStep({
    kind: 'model',
    name: 'openai.chat',
    parent: classify,
    at: 146,
    request: {
      provider: 'openai',
      model: 'gpt-4o',
      messages: [
        {
          role: 'system',
          content: 'Classify the ticket: bug, question or feature request; and its component.',
        },
        {
          role: 'user',
          content: 'App crashes when exporting a report to PDF. Similar: T-5102 (fixed in 4.2).',
        },
      ],
      params: { temperature: 0 },
    },
  });
  // No step.finished for the model call, no step.finished for the chain, no run.finished.
  return { name: 'incomplete-run', builder: b };
}

// 4. Parallel tools under a chain, finishing out of start order; events.jsonl holds them in a
//    shuffled arrival order, with some events delivered twice (ingest is idempotent by eventId).
function parallelOutOfOrder(): GoldenTrace {
  const b = new TraceBuilder({
    runId: 'golden-parallel-run',
    start: at('2026-11-21T08:00:00.000Z'),
    seed: 404,
  });
  b.startRun({
    agent: 'travel-planner',
    input: { request: 'Lisbon to Berlin and back, 4–7 December, hotel near Museum Island' },
    attributes: { env: 'staging' },
  });
  const plan = b.startStep({
    kind: 'chain',
    name: 'gather-options',
    at: 3,
    request: { input: { from: 'LIS', to: 'BER', out: '2026-12-04', back: '2026-12-07' } },
  });
  const tool = (name: string, args: Record<string, unknown>, startAt: number) =>
    b.startStep({ kind: 'tool', name, parent: plan, at: startAt, request: { name, arguments: args } });
  const outbound = tool('search_flights', { from: 'LIS', to: 'BER', date: '2026-12-04' }, 5);
  const inbound = tool('search_flights', { from: 'BER', to: 'LIS', date: '2026-12-07' }, 6);
  const hotels = tool('search_hotels', { city: 'Berlin', near: 'Museumsinsel', nights: 3 }, 6);
  const weather = tool('get_weather', { city: 'Berlin', from: '2026-12-04', to: '2026-12-07' }, 7);
  b.finishStep(weather, { at: 88, response: { output: { summary: 'cold, 1–4 °C, light rain on the 5th' } } });
  b.finishStep(inbound, {
    at: 412,
    response: { output: { flights: [{ flight: 'TP 537', departs: '2026-12-07T18:05', price: 131 }] } },
  });
  b.finishStep(hotels, {
    at: 530,
    response: { output: { hotels: [{ name: 'Hotel am Kupfergraben', pricePerNight: 164, rating: 4.6 }] } },
  });
  b.failStep(outbound, {
    at: 1570,
    error: { type: 'TimeoutError', message: 'flight search timed out after 1500 ms' },
  });
  b.finishStep(plan, {
    at: 1575,
    response: { output: { inboundFlights: 1, hotels: 1, outboundFlights: 'unavailable' } },
  });
  const summary = b.startStep({
    kind: 'model',
    name: 'openai.chat',
    at: 1580,
    request: {
      provider: 'openai',
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: 'Summarize the travel options for the user in three bullet points.' },
        {
          role: 'user',
          content:
            'Return flight TP 537 (€131), Hotel am Kupfergraben (€164/night, 4.6), weather 1–4 °C; outbound search timed out.',
        },
      ],
      params: { temperature: 0.3 },
    },
  });
  b.finishStep(summary, {
    at: 2490,
    response: {
      model: 'gpt-4o-mini-2024-07-18',
      message: {
        role: 'assistant',
        content:
          '• Back: TP 537 on 7 Dec at 18:05, €131.\n• Stay: Hotel am Kupfergraben, €164/night, by Museum Island.\n• Outbound flights could not be searched just now; I will retry.',
      },
      finishReason: 'stop',
      usage: { inputTokens: 96, outputTokens: 61 },
    },
    usage: { inputTokens: 96, outputTokens: 61 },
  });
  b.finishRun({
    at: 2501,
    output: { summary: 'partial plan: return flight and hotel found; outbound pending' },
  });
  const shuffled = shuffle(b.events, 7);
  // Three events delivered twice, the repeats later in the stream.
  const repeats = [shuffled[1]!, shuffled[4]!, shuffled[7]!];
  const arrival = [...shuffled.slice(0, 9), repeats[0]!, ...shuffled.slice(9), repeats[1]!, repeats[2]!];
  return { name: 'parallel-out-of-order', builder: b, arrival };
}

// 5. A fork of the support run: its list_charges result edited to a single charge; the steps
//    before it replayed, the edited one overridden, the rest run live.
function forkRun(): GoldenTrace {
  const b = new TraceBuilder({ runId: 'golden-fork-run', start: at('2026-11-20T14:00:00.000Z'), seed: 505 });
  const charge = {
    chargeId: 'ch_3Q1',
    amount: 42.5,
    currency: 'EUR',
    at: '2026-11-16T09:14:03Z',
    status: 'captured',
  };
  b.startRun({
    agent: 'support-bot',
    input: {
      customerId: 'cus_8812',
      customerName: 'Sam',
      channel: 'chat',
      message: 'Was I charged twice for A-1042?',
    },
    forkOf: {
      runId: 'golden-support-run',
      atSeq: 4,
      edit: { response: { output: { charges: [charge] } }, then: 'live' },
    },
    sdk: { name: '@rewind/sdk', version: '0.1.0' },
  });
  const search = b.startStep({
    kind: 'retriever',
    name: 'kb.search',
    at: 4,
    request: { query: 'charged twice', topK: 1 },
  });
  b.finishStep(search, {
    at: 6,
    label: 'replayed',
    response: {
      documents: [{ id: 'kb-112', content: 'Duplicate charges: refund them immediately.', score: 0.9 }],
    },
  });
  const system = b.part({
    role: 'system',
    content: 'You are Ada, the support assistant of Northwind Outfitters.',
  });
  const user = b.part({ role: 'user', content: 'Was I charged twice for A-1042?' });
  const plan = b.startStep({
    kind: 'model',
    name: 'openai.chat',
    at: 7,
    request: {
      provider: 'openai',
      model: 'gpt-4o-mini',
      messages: [system, user],
      params: { temperature: 0.2 },
    },
  });
  const calls = [
    { id: 'call_lkp1', name: 'lookup_order', arguments: { orderId: 'A-1042' } },
    { id: 'call_chg1', name: 'list_charges', arguments: { customerId: 'cus_8812', orderId: 'A-1042' } },
  ];
  b.finishStep(plan, {
    at: 9,
    label: 'replayed',
    response: {
      model: 'gpt-4o-mini-2024-07-18',
      message: { role: 'assistant', content: null, toolCalls: calls },
      finishReason: 'tool_calls',
      usage: { inputTokens: 88, outputTokens: 40 },
    },
  });
  const lookup = b.startStep({
    kind: 'tool',
    name: 'lookup_order',
    at: 10,
    request: { name: 'lookup_order', arguments: calls[0]!.arguments },
  });
  const charges = b.startStep({
    kind: 'tool',
    name: 'list_charges',
    at: 10,
    request: { name: 'list_charges', arguments: calls[1]!.arguments },
  });
  b.finishStep(charges, { at: 11, label: 'overridden', response: { output: { charges: [charge] } } });
  b.finishStep(lookup, {
    at: 12,
    label: 'replayed',
    response: { output: { orderId: 'A-1042', status: 'shipped', estimatedDelivery: '2026-11-27' } },
  });
  const answer = b.startStep({
    kind: 'model',
    name: 'openai.chat',
    at: 14,
    request: {
      provider: 'openai',
      model: 'gpt-4o-mini',
      messages: [
        system,
        user,
        { role: 'assistant', content: null, toolCalls: calls },
        { role: 'tool', toolCallId: 'call_chg1', content: JSON.stringify({ charges: [charge] }) },
      ],
      params: { temperature: 0.2 },
    },
  });
  const reply = 'You were charged once, €42.50 on 16 November; there is no duplicate charge on order A-1042.';
  b.finishStep(answer, {
    at: 1180,
    label: 'live',
    response: {
      model: 'gpt-4o-mini-2024-07-18',
      message: { role: 'assistant', content: reply },
      finishReason: 'stop',
      usage: { inputTokens: 131, outputTokens: 27 },
    },
  });
  b.finishRun({ at: 1190, output: { reply, actions: [] } });
  return { name: 'fork-run', builder: b };
}

// 6. A run with pending artifacts: one response blob and one payload part were never uploaded.
//    Loading must still work; show prints null for the two payloads and exits 3.
function pendingBlobs(): GoldenTrace {
  const b = new TraceBuilder({
    runId: 'golden-pending-blobs',
    start: at('2026-11-22T16:20:00.000Z'),
    seed: 606,
  });
  b.startRun({ agent: 'summarizer', input: { url: 'https://example.com/changelog' } });
  const fetch = b.startStep({
    kind: 'tool',
    name: 'fetch_url',
    at: 2,
    request: { name: 'fetch_url', arguments: { url: 'https://example.com/changelog' } },
  });
  const page = {
    output: {
      status: 200,
      text: '## 4.2.0\n- PDF export no longer crashes on large reports\n- Faster search',
    },
  };
  b.finishStep(fetch, { at: 310, response: page });
  const pageText = b.part({ role: 'user', content: `Summarize in one sentence:\n\n${page.output.text}` });
  const summary = b.startStep({
    kind: 'model',
    name: 'openai.chat',
    at: 315,
    request: {
      provider: 'openai',
      model: 'gpt-4o-mini',
      messages: [{ role: 'system', content: 'You write one-sentence summaries.' }, pageText],
      params: {},
    },
  });
  const text = 'Version 4.2.0 fixes PDF export crashes on large reports and speeds up search.';
  b.finishStep(summary, {
    at: 901,
    response: {
      model: 'gpt-4o-mini-2024-07-18',
      message: { role: 'assistant', content: text },
      finishReason: 'stop',
      usage: { inputTokens: 41, outputTokens: 17 },
    },
  });
  b.finishRun({ at: 905, output: { summary: text } });
  const fetchFinished = b.events.find((e) => e.type === 'step.finished' && e.stepId === fetch.stepId);
  const missingResponse = fetchFinished?.type === 'step.finished' ? fetchFinished.response?.hash : undefined;
  if (missingResponse === undefined) throw new Error('pending-blobs: the fetch response has no blob');
  return { name: 'pending-blobs', builder: b, missing: [missingResponse, pageText.$blob] };
}

async function writeTrace(trace: GoldenTrace, force: boolean): Promise<string> {
  const dir = join(root, trace.name);
  if (existsSync(dir)) {
    if (!force) return `${trace.name}: exists, left as it is (golden traces are frozen; --force rewrites)`;
    await rm(dir, { recursive: true });
  }
  const missing = new Set(trace.missing ?? []);
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  const events = trace.arrival ?? trace.builder.events;
  await writeFile(join(dir, 'events.jsonl'), events.map((event) => `${JSON.stringify(event)}\n`).join(''));
  let blobs = 0;
  for (const [hash, bytes] of trace.builder.blobs) {
    if (missing.has(hash)) continue;
    await writeFile(join(dir, 'blobs', 'sha256', blobHashHex(hash)!), bytes);
    blobs++;
  }
  const expected = trace.builder.expectedShow({ missing });
  await writeFile(join(dir, 'expected-show.json'), `${JSON.stringify(expected, null, 2)}\n`);
  return `${trace.name}: wrote ${events.length} events, ${blobs} blobs${missing.size > 0 ? ` (${missing.size} left out on purpose)` : ''}`;
}

const { values } = parseArgs({ options: { force: { type: 'boolean' } }, strict: true });
const traces = [supportRun(), errorRun(), incompleteRun(), parallelOutOfOrder(), forkRun(), pendingBlobs()];
for (const trace of traces) console.log(await writeTrace(trace, values.force === true));
