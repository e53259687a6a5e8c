// The capture benchmark's collector (bench/capture.ts): a node:http server on 127.0.0.1 that
// accepts the peers' wire formats, decodes every body and counts the wrapped calls it received
// (by span/run name and id, so a retried batch is not counted twice). It runs in a child process
// of its own, so its CPU is not billed to the measured process, and answers 200 as soon as a
// body is counted.
//
//   POST /v1/traces, /api/public/otel/v1/traces  OTLP/HTTP JSON (OpenTelemetry, Langfuse)
//   GET  /info                                    LangSmith's server info (see INFO below)
//   POST /runs/multipart, /runs/batch             LangSmith runs (multipart or JSON; gzip/zstd)
//   GET  /__counts                                what was counted, as JSON
//
// Usage: node bench/capture/sink.ts <name>  — prints {"port": N} on stdout once listening.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { brotliDecompressSync, gunzipSync, inflateSync, zstdDecompressSync } from 'node:zlib';

/**
 * LangSmith's server info: the multipart endpoint, the default batch limits of the client, and
 * compression of queued runs allowed (zstd, else gzip), as LangSmith's own service advertises
 * them to its current SDK. `REWIND_BENCH_LANGSMITH_COMPRESSION=0` answers without the
 * compression flags (the client then sends uncompressed multipart bodies).
 */
const compression = process.env.REWIND_BENCH_LANGSMITH_COMPRESSION !== '0';
const INFO = {
  version: '0.12.0',
  batch_ingest_config: {
    use_multipart_endpoint: true,
    scale_up_qsize_trigger: 1000,
    scale_up_nthreads_limit: 16,
    scale_down_nempty_trigger: 4,
    size_limit: 100,
    size_limit_bytes: 20_971_520,
  },
  instance_flags: compression ? { gzip_body_enabled: true, zstd_compression_enabled: true } : {},
};

const name = process.argv[2] ?? 'sink';
/** Wrapped-call ids (span ids / run ids) by name, with and without their output. */
const seen = new Map<string, Set<string>>();
const withOutput = new Map<string, Set<string>>();
/** LangSmith: runs ended (a post with end_time, or a patch), and runs whose outputs arrived. */
const ended = new Set<string>();
const outputs = new Set<string>();
const runNames = new Map<string, string>();
const requests: Record<string, number> = {};
let bytes = 0;
let errors = 0;

function add(map: Map<string, Set<string>>, key: string, id: string): void {
  const set = map.get(key);
  if (set === undefined) map.set(key, new Set([id]));
  else set.add(id);
}

function decode(request: IncomingMessage, body: Buffer): Buffer {
  const encoding = (request.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (encoding === 'gzip') return gunzipSync(body);
  if (encoding === 'zstd') return zstdDecompressSync(body);
  if (encoding === 'deflate') return inflateSync(body);
  if (encoding === 'br') return brotliDecompressSync(body);
  return body;
}

interface OtlpAttribute {
  key: string;
}
interface OtlpSpan {
  spanId: string;
  name: string;
  attributes?: OtlpAttribute[];
}
interface OtlpBody {
  resourceSpans?: { scopeSpans?: { spans?: OtlpSpan[] }[] }[];
}

/** OpenTelemetry puts the output in `output`; Langfuse in `langfuse.observation.output`. */
const OUTPUT_KEYS = new Set(['output', 'langfuse.observation.output']);

function countOtlp(request: IncomingMessage, body: Buffer): void {
  const type = request.headers['content-type'] ?? '';
  if (!type.includes('json')) throw new Error(`OTLP body of type ${type}: only JSON is decoded here`);
  const parsed = JSON.parse(body.toString('utf8')) as OtlpBody;
  for (const resource of parsed.resourceSpans ?? []) {
    for (const scope of resource.scopeSpans ?? []) {
      for (const span of scope.spans ?? []) {
        add(seen, span.name, span.spanId);
        if (span.attributes?.some((attribute) => OUTPUT_KEYS.has(attribute.key))) {
          add(withOutput, span.name, span.spanId);
        }
      }
    }
  }
}

interface LangSmithRun {
  id: string;
  name?: string;
  end_time?: unknown;
  outputs?: unknown;
}

function langSmithRun(method: 'post' | 'patch', run: LangSmithRun): void {
  if (method === 'post' && typeof run.name === 'string') {
    runNames.set(run.id, run.name);
    add(seen, run.name, run.id);
  }
  if (method === 'patch' || run.end_time != null) ended.add(run.id);
  if (run.outputs != null) outputs.add(run.id);
}

function countLangSmithBatch(body: Buffer): void {
  const parsed = JSON.parse(body.toString('utf8')) as { post?: LangSmithRun[]; patch?: LangSmithRun[] };
  for (const run of parsed.post ?? []) langSmithRun('post', run);
  for (const run of parsed.patch ?? []) langSmithRun('patch', run);
}

function countLangSmithMultipart(request: IncomingMessage, body: Buffer): void {
  const type = request.headers['content-type'] ?? '';
  const boundary = /boundary=("?)([^";]+)\1/.exec(type)?.[2];
  if (boundary === undefined) throw new Error(`multipart body without a boundary (${type})`);
  const delimiter = Buffer.from(`--${boundary}`);
  let at = body.indexOf(delimiter);
  while (at !== -1) {
    const start = at + delimiter.length;
    if (body[start] === 0x2d && body[start + 1] === 0x2d) break; // the closing --boundary--
    const next = body.indexOf(delimiter, start);
    if (next === -1) break;
    const part = body.subarray(start + 2, next - 2); // after CRLF, before CRLF
    const headerEnd = part.indexOf('\r\n\r\n');
    const headers = part.subarray(0, headerEnd).toString('latin1');
    const partName = /name="([^"]+)"/.exec(headers)?.[1] ?? '';
    const [method, id, field] = partName.split('.');
    if ((method === 'post' || method === 'patch') && id !== undefined) {
      const data = part.subarray(headerEnd + 4);
      if (field === undefined) {
        langSmithRun(method, { ...(JSON.parse(data.toString('utf8')) as LangSmithRun), id });
      } else if (field === 'outputs') {
        outputs.add(id);
      }
    }
    at = next;
  }
}

function counts(): unknown {
  const calls: Record<string, { received: number; complete: number }> = {};
  for (const [spanName, ids] of seen) {
    let complete = withOutput.get(spanName)?.size ?? 0;
    if (runNames.size > 0) {
      complete = 0;
      for (const id of ids) if (ended.has(id) && outputs.has(id)) complete++;
    }
    calls[spanName] = { received: ids.size, complete };
  }
  return { name, calls, requests, bytes, errors };
}

function handle(request: IncomingMessage, response: ServerResponse, body: Buffer): void {
  const path = (request.url ?? '/').split('?')[0]!;
  requests[`${request.method} ${path}`] = (requests[`${request.method} ${path}`] ?? 0) + 1;
  bytes += body.length;
  let reply: unknown = {};
  try {
    if (path === '/__counts') {
      reply = counts();
    } else if (path === '/info') {
      reply = INFO;
    } else if (request.method === 'POST' && path.endsWith('/v1/traces')) {
      countOtlp(request, decode(request, body));
      reply = { partialSuccess: {} };
    } else if (request.method === 'POST' && path === '/runs/multipart') {
      countLangSmithMultipart(request, decode(request, body));
    } else if (request.method === 'POST' && path === '/runs/batch') {
      countLangSmithBatch(decode(request, body));
    }
  } catch (error) {
    errors++;
    process.stderr.write(`sink ${name}: ${request.method} ${path}: ${(error as Error).message}\n`);
  }
  const text = JSON.stringify(reply);
  response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

const server = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => handle(request, response, Buffer.concat(chunks)));
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
