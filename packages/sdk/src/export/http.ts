import http from 'node:http';
import https from 'node:https';

// One keep-alive HTTP client per exporter (node:http rather than fetch: a per-request timeout
// and abort that destroy the socket at once, and no stream machinery per request). Every
// request either resolves with the whole response or rejects with a transport error: a
// `TimeoutError` (code ETIMEDOUT) when the server does not answer in time, an `AbortError` when
// the caller's signal fired, or the socket's own error (ECONNRESET, ECONNREFUSED, …).

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface HttpClientOptions {
  endpoint: string;
  apiKey?: string | undefined;
  /** Per request, connect to last byte (default 10 s). */
  timeoutMs?: number;
  /** Response bodies larger than this are cut off (default 32 MiB). */
  maxResponseBytes?: number;
}

export class RequestTimeoutError extends Error {
  override readonly name = 'TimeoutError';
  readonly code = 'ETIMEDOUT';
}

export class RequestAbortedError extends Error {
  override readonly name = 'AbortError';
  readonly code = 'ABORT_ERR';
}

export function isAbort(error: unknown): boolean {
  return error instanceof RequestAbortedError;
}

export class HttpClient {
  readonly #base: URL;
  readonly #module: typeof http | typeof https;
  readonly #agent: http.Agent;
  readonly #authorization: string | undefined;
  readonly #timeoutMs: number;
  readonly #maxResponseBytes: number;
  /** Requests sent (attempts included), for stats. */
  requests = 0;

  constructor(options: HttpClientOptions) {
    const base = new URL(options.endpoint);
    if (base.protocol !== 'http:' && base.protocol !== 'https:')
      throw new TypeError(`the endpoint must be an http:// or https:// URL, got ${options.endpoint}`);
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    this.#base = base;
    this.#module = base.protocol === 'https:' ? https : http;
    this.#agent = new this.#module.Agent({ keepAlive: true, maxSockets: 8, keepAliveMsecs: 1000 });
    this.#authorization = options.apiKey === undefined ? undefined : `Bearer ${options.apiKey}`;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#maxResponseBytes = options.maxResponseBytes ?? 32 * 1024 * 1024;
  }

  /** `path` is relative to the endpoint (e.g. `v1/events`), so an endpoint may carry a prefix. */
  request(
    method: string,
    path: string,
    body: Buffer | undefined,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
    timeoutMs: number = this.#timeoutMs,
  ): Promise<HttpResponse> {
    this.requests++;
    const url = new URL(path, this.#base);
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(new RequestAbortedError('the request was aborted before it was sent'));
        return;
      }
      const allHeaders: Record<string, string> = { ...headers };
      if (this.#authorization !== undefined) allHeaders.authorization = this.#authorization;
      if (body !== undefined) allHeaders['content-length'] = String(body.length);
      let settled = false;
      const req = this.#module.request(url, { method, headers: allHeaders, agent: this.#agent });
      const fail = (error: Error): void => {
        if (settled) return;
        settled = true;
        cleanup();
        req.destroy();
        reject(error);
      };
      const timer = setTimeout(
        () => fail(new RequestTimeoutError(`no answer from ${url.origin} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const onAbort = (): void => fail(new RequestAbortedError('the request was aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      const cleanup = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      req.on('error', fail);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size <= this.#maxResponseBytes) chunks.push(chunk);
        });
        res.on('error', fail);
        res.on('close', () => {
          if (!res.complete) fail(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
        });
        res.on('end', () => {
          if (settled) return;
          if (!res.complete) {
            fail(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
            return;
          }
          settled = true;
          cleanup();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
        });
      });
      req.end(body);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}
