// The wrapped call of the capture benchmark (bench/capture.ts): a tool that takes a ~2 KB
// request and returns a ~2 KB response. Content comes from a seeded PRNG (xorshift, never
// Math.random: Rewind's tape records Math.random reads inside a run, and the generator is not
// part of the wrapped call), so every peer sees the same calls and no two calls carry the same
// text: content addressing and compression are not handed identical payloads.

const WORDS = (
  'the a an of to in for on with by from at as is was are be been has have had not but or and if then ' +
  'weather forecast order invoice customer shipment refund account balance payment ticket status error ' +
  'retry timeout latency region cluster node pod deploy release version branch commit merge review test ' +
  'model prompt token context window embedding vector index query search result score rank filter page ' +
  'user agent tool call response request message system assistant function argument schema field value ' +
  'paris london tokyo berlin madrid rome oslo lisbon vienna dublin warsaw prague athens zurich helsinki ' +
  'monday tuesday wednesday thursday friday saturday sunday morning evening night week month quarter year ' +
  'increase decrease stable growth decline forecasted observed measured reported estimated expected actual ' +
  'product catalog warehouse supplier price discount stock backorder delivery carrier tracking address ' +
  'database table column row migration backup restore replica primary shard partition lock transaction'
).split(' ');
const SOURCES = ['kb', 'tickets', 'wiki', 'crm', 'docs', 'email', 'slack'];

/** xorshift32: deterministic, allocation-free. */
export class Prng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let x = this.#state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#state = x >>> 0;
    return this.#state;
  }
  below(n: number): number {
    return this.next() % n;
  }
  words(count: number): string {
    const words = new Array<string>(count);
    for (let i = 0; i < count; i++) words[i] = WORDS[this.below(WORDS.length)]!;
    return words.join(' ');
  }
  hex(length: number): string {
    const chunks = new Array<string>(Math.ceil(length / 8));
    for (let i = 0; i < chunks.length; i++) chunks[i] = this.next().toString(16).padStart(8, '0');
    return chunks.join('').slice(0, length);
  }
}

export interface LookupRequest {
  callId: string;
  query: string;
  filters: { sources: string[]; after: string; limit: number };
  documents: { id: string; title: string; text: string }[];
}

export interface LookupResponse {
  callId: string;
  query: string;
  results: { id: string; title: string; score: number; summary: string }[];
  stats: { documents: number; characters: number; checksum: number };
}

/** A ~2 KB tool request (JSON 1.9–2.3 KB, median 2.1 KB; the response 2.0–2.4 KB), different on every call. */
export function makeRequest(prng: Prng, seq: number): LookupRequest {
  const documents: LookupRequest['documents'] = [];
  for (let i = 0; i < 5; i++) {
    documents.push({
      id: `doc_${prng.hex(12)}`,
      title: prng.words(5),
      text: prng.words(40 + prng.below(12)),
    });
  }
  return {
    callId: `call_${seq}_${prng.hex(16)}`,
    query: prng.words(10 + prng.below(6)),
    filters: {
      sources: [SOURCES[prng.below(SOURCES.length)]!, SOURCES[prng.below(SOURCES.length)]!],
      after: `2025-${String(1 + prng.below(12)).padStart(2, '0')}-${String(1 + prng.below(28)).padStart(2, '0')}`,
      limit: 5,
    },
    documents,
  };
}

/**
 * The tool: a JSON round trip of the request (what crossing a process or network boundary
 * costs) and a ~2 KB response computed from it (rotated text, scores), returned as a promise.
 * Kept cheap (~10 µs) so that the tracers' costs are not lost in the noise of the workload's.
 */
export async function lookup(request: LookupRequest): Promise<LookupResponse> {
  const parsed = JSON.parse(JSON.stringify(request)) as LookupRequest;
  let characters = 0;
  let checksum = 0;
  const results = parsed.documents.map((doc) => {
    const text = doc.text;
    const cut = text.indexOf(' ', text.length >> 1);
    characters += text.length;
    checksum = (checksum * 31 + text.charCodeAt(cut - 1) * text.length) >>> 0;
    return {
      id: doc.id,
      title: doc.title.toUpperCase(),
      score: Math.round(((text.charCodeAt(1) * 7 + text.length) % 1000) * 10) / 1e4,
      summary: `${text.slice(cut + 1)} … ${text.slice(0, cut)}`,
    };
  });
  results.sort((a, b) => b.score - a.score);
  return {
    callId: parsed.callId,
    query: parsed.query,
    results,
    stats: { documents: results.length, characters, checksum },
  };
}
