import { hash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { type BlobHash, type RewindEvent, validateEvent } from '@rewind/schema';
import { decodeBlobFrames } from '../frames.ts';

// A scripted Rewind ingest server for tests: the write routes of the wire contract (docs/api.md),
// minimally and in memory, on 127.0.0.1, with faults injected per request by a script. The
// exporter's tests run against it; the same tests can be pointed at the real server (`url`)
// by the end-to-end suite, with faults injected by killing it or cutting connections instead.

export type Fault =
  /** Answer with this status (and headers/body) instead of handling the request. */
  | { status: number; headers?: Record<string, string>; body?: string }
  /** Destroy the connection before handling the request. */
  | { drop: 'before' }
  /** Handle the request (store what it carries), then destroy the connection without answering. */
  | { drop: 'after' }
  /** Never answer (until the server closes). */
  | { hang: true };

export interface ScriptedRequest {
  method: string;
  /** Without the query string, e.g. `/v1/events`. */
  path: string;
  /** 1 for the first request to this method and path, 2 for the second, … */
  attempt: number;
  headers: http.IncomingHttpHeaders;
}

export interface IngestServerOptions {
  /** Decides a fault per request (undefined: handle it normally). */
  fault?: (request: ScriptedRequest) => Fault | undefined;
  /** Rejects an event that is otherwise valid, with this reason (scripted per-event rejections). */
  reject?: (event: RewindEvent) => string | undefined;
  /** When set, every /v1 route needs `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
}

export interface RequestLog {
  method: string;
  path: string;
  attempt: number;
  /** The answer: a status, or what the script did instead. */
  outcome: number | 'dropped' | 'hung';
  /** Events in a POST /v1/events body, hashes in a missing query, frames in a blob upload. */
  items: number;
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function error(res: http.ServerResponse, status: number, code: string, message: string): void {
  send(res, status, { error: { code, message } });
}

export class IngestServer {
  readonly options: IngestServerOptions;
  /** Stored events by id (idempotent by eventId). */
  readonly events = new Map<string, RewindEvent>();
  /** How many times each eventId arrived (duplicates included). */
  readonly received = new Map<string, number>();
  readonly blobs = new Map<BlobHash, Buffer>();
  /** Every blob uploaded, in order (a hash twice means it was sent twice). */
  readonly uploads: BlobHash[] = [];
  /** Every hash asked about in POST /v1/blobs/missing. */
  readonly asked: BlobHash[] = [];
  readonly log: RequestLog[] = [];
  /** The order of writes, to check blobs come before the events that reference them. */
  readonly writes: Array<{ blob: BlobHash } | { event: string }> = [];
  readonly #attempts = new Map<string, number>();
  readonly #sockets = new Set<Socket>();
  readonly #server: http.Server;
  #url = '';

  constructor(options: IngestServerOptions = {}) {
    this.options = options;
    this.#server = http.createServer((req, res) => {
      this.#handle(req, res).catch((cause: unknown) => {
        if (!res.headersSent) error(res, 500, 'internal', String(cause));
      });
    });
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  get url(): string {
    return this.#url;
  }

  async start(port = 0): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(port, '127.0.0.1', resolve));
    this.#url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this.#url;
  }

  /** Stops listening and cuts every connection (hanging ones included). */
  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Requests to a route (method and path), with their outcomes. */
  requestsTo(method: string, path: string): RequestLog[] {
    return this.log.filter((entry) => entry.method === method && entry.path === path);
  }

  async #body(req: http.IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    return req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?')[0]!;
    const key = `${method} ${path}`;
    const attempt = (this.#attempts.get(key) ?? 0) + 1;
    this.#attempts.set(key, attempt);
    const entry: RequestLog = { method, path, attempt, outcome: 0, items: 0 };
    this.log.push(entry);
    const fault = this.options.fault?.({ method, path, attempt, headers: req.headers });
    if (fault !== undefined && 'hang' in fault) {
      entry.outcome = 'hung';
      req.resume();
      return;
    }
    if (fault !== undefined && 'drop' in fault && fault.drop === 'before') {
      entry.outcome = 'dropped';
      req.socket.destroy();
      return;
    }
    const body = await this.#body(req);
    if (fault !== undefined && 'status' in fault) {
      entry.outcome = fault.status;
      res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers });
      res.end(
        fault.body ?? JSON.stringify({ error: { code: 'scripted', message: `scripted ${fault.status}` } }),
      );
      return;
    }
    const answer = (status: number, value: unknown): void => {
      if (fault !== undefined && 'drop' in fault) {
        entry.outcome = 'dropped';
        req.socket.destroy();
        return;
      }
      entry.outcome = status;
      send(res, status, value);
    };
    if (this.options.apiKey !== undefined && req.headers.authorization !== `Bearer ${this.options.apiKey}`) {
      entry.outcome = 401;
      error(res, 401, 'unauthorized', 'a valid API key is required: Authorization: Bearer <key>');
      return;
    }
    if (method === 'POST' && path === '/v1/events') {
      let parsed: { events?: unknown };
      try {
        parsed = JSON.parse(body.toString('utf8')) as { events?: unknown };
      } catch {
        entry.outcome = 400;
        error(res, 400, 'invalid_json', 'the body is not JSON');
        return;
      }
      if (!Array.isArray(parsed.events)) {
        entry.outcome = 400;
        error(res, 400, 'invalid_body', 'expected {"events": [...]}');
        return;
      }
      entry.items = parsed.events.length;
      const results: unknown[] = [];
      let accepted = 0;
      let duplicates = 0;
      let rejected = 0;
      for (const event of parsed.events) {
        const eventId = typeof event?.eventId === 'string' ? (event.eventId as string) : null;
        if (eventId !== null) this.received.set(eventId, (this.received.get(eventId) ?? 0) + 1);
        const checked = validateEvent(event);
        const reason = checked.ok ? this.options.reject?.(checked.value) : checked.issues[0]?.message;
        if (!checked.ok || reason !== undefined) {
          rejected++;
          results.push({ eventId, status: 'rejected', reason: reason ?? 'invalid' });
          continue;
        }
        if (this.events.has(checked.value.eventId)) {
          duplicates++;
          results.push({ eventId, status: 'duplicate' });
          continue;
        }
        this.events.set(checked.value.eventId, checked.value);
        this.writes.push({ event: checked.value.eventId });
        accepted++;
        results.push({ eventId, status: 'accepted' });
      }
      answer(200, { accepted, duplicates, rejected, results });
      return;
    }
    if (method === 'POST' && path === '/v1/blobs/missing') {
      const { hashes } = JSON.parse(body.toString('utf8')) as { hashes: BlobHash[] };
      entry.items = hashes.length;
      this.asked.push(...hashes);
      answer(200, { missing: hashes.filter((h) => !this.blobs.has(h)) });
      return;
    }
    if (method === 'POST' && path === '/v1/blobs') {
      const decoded = decodeBlobFrames(body);
      entry.items = decoded.blobs.length;
      const results: unknown[] = [];
      for (const [claimed, bytes] of decoded.blobs) {
        const actual = `sha256:${hash('sha256', bytes, 'hex')}` as BlobHash;
        if (actual !== claimed) {
          results.push({ hash: claimed, status: 'rejected', reason: 'hash_mismatch' });
          continue;
        }
        this.uploads.push(claimed);
        if (!this.blobs.has(claimed)) {
          this.blobs.set(claimed, Buffer.from(bytes));
          this.writes.push({ blob: claimed });
        }
        results.push({ hash: claimed, status: 'stored' });
      }
      if (decoded.error !== undefined) {
        entry.outcome = 400;
        error(res, 400, 'invalid_body', decoded.error);
        return;
      }
      answer(200, { results });
      return;
    }
    entry.outcome = 404;
    error(res, 404, 'not_found', `no route ${method} ${path}`);
  }
}

/** Starts a scripted ingest server on 127.0.0.1 (a free port). */
export async function startIngestServer(options: IngestServerOptions = {}): Promise<IngestServer> {
  const server = new IngestServer(options);
  await server.start();
  return server;
}
