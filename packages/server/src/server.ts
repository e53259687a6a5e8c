import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createRedactor, defaultPolicy, type Redactor } from '@rewind/redact';
import type { Store } from '@rewind/store';
import { isLoopbackHost, Keys } from './auth.ts';
import { ClientGoneError } from './body.ts';
import type { Reply, ServerContext } from './context.ts';
import { badRequest, HttpError } from './http-error.ts';
import { resolveLimits, type ServerLimits } from './limits.ts';
import { Metrics } from './metrics.ts';
import { PendingTracker } from './pending-tracker.ts';
import { ROUTES, type Route, Router } from './router.ts';
import { DEFAULT_REPLAY_SETTINGS, type ReplaySettings } from './routes/replays.ts';

// The Rewind server on node:http (docs/server.md): routing, auth, errors → HTTP in one place,
// one JSON log line per request with its request id, graceful close.

export type LogLine = Record<string, unknown> & { level: 'info' | 'warn' | 'error'; msg: string };

export interface StartServerOptions {
  store: Store;
  /** Default 127.0.0.1. Any non-loopback host needs at least one key. */
  host?: string;
  /** Default 8787; 0 picks a free port (read it from `url`). */
  port?: number;
  ingestKeys?: readonly string[];
  readKeys?: readonly string[];
  limits?: Partial<ServerLimits>;
  /** Receives one object per log line; default: JSON lines on stdout. `false`: no logs. */
  log?: ((line: LogLine) => void) | false;
  /**
   * The redaction policy enforced at ingest (docs/redaction.md, "On the server"); default: the
   * built-in default policy (every secret detector masks). `rewind serve` resolves it like the SDK.
   */
  redactor?: Redactor;
  /** The replay orchestrator's settings (session timeout, event stream polling): docs/orchestrator.md. */
  replays?: Partial<ReplaySettings>;
  /** Extra routes (e.g. POST /v1/otlp/traces), matched after the built-in ones. */
  routes?: readonly Route[];
}

export interface RunningServer {
  /** `http://<host>:<port>` */
  url: string;
  /** Stops accepting connections, lets requests in flight finish, then resolves. Does not close the store. */
  close(): Promise<void>;
  readonly metrics: Metrics;
}

export class ServerConfigError extends Error {
  override readonly name = 'ServerConfigError';
  readonly code = 'invalid_server_config';
}

const REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;

function defaultLog(line: LogLine): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`);
}

export async function startServer(options: StartServerOptions): Promise<RunningServer> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 8787;
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new ServerConfigError(`port must be a whole number from 0 to 65535, got ${port}`);
  let keys: Keys;
  try {
    keys = new Keys(options.ingestKeys ?? [], options.readKeys ?? []);
  } catch (error) {
    throw new ServerConfigError((error as Error).message);
  }
  if (!keys.enabled && !isLoopbackHost(host)) {
    throw new ServerConfigError(
      `refusing to listen on ${host} without API keys: anyone who can reach it could read and write runs. Configure at least one key (--ingest-key / --read-key, or REWIND_INGEST_KEYS / REWIND_READ_KEYS), or bind to 127.0.0.1`,
    );
  }
  let limits: ServerLimits;
  try {
    limits = resolveLimits(options.limits);
  } catch (error) {
    throw new ServerConfigError((error as Error).message);
  }
  const log = options.log === false ? () => {} : (options.log ?? defaultLog);
  const metrics = new Metrics();
  const closingStreams = new AbortController();
  const context: ServerContext = {
    store: options.store,
    limits,
    metrics,
    pending: new PendingTracker(options.store.blobs, metrics),
    redactor: options.redactor ?? createRedactor(defaultPolicy()),
    replays: { ...DEFAULT_REPLAY_SETTINGS, ...options.replays },
    closing: closingStreams.signal,
  };
  const router = new Router([...ROUTES, ...(options.routes ?? [])]);

  let stopping = false;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = performance.now();
    const incomingId = req.headers['x-request-id'];
    const requestId =
      typeof incomingId === 'string' && REQUEST_ID.test(incomingId) ? incomingId : randomUUID();
    res.setHeader('X-Request-Id', requestId);
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    const path = queryAt === -1 ? url : url.slice(0, queryAt);
    let routeName = 'unmatched';
    let reply: Reply;
    let failure: unknown;
    try {
      const match = path.startsWith('/') ? router.match(method, path) : ({ kind: 'not_found' } as const);
      if (match.kind === 'not_found') {
        throw new HttpError(
          404,
          'not_found',
          `no route ${method} ${path.slice(0, 200)}: see docs/api.md for the routes`,
        );
      }
      if (match.kind === 'method_not_allowed') {
        routeName = match.pattern;
        throw new HttpError(
          405,
          'method_not_allowed',
          `${path.slice(0, 200)} does not take ${method.slice(0, 20)}: use ${match.allowed.join(' or ')}`,
          {
            headers: { Allow: match.allowed.join(', ') },
          },
        );
      }
      const { route, rawParams } = match;
      routeName = `${route.method} ${route.pattern}`;
      if (route.auth !== 'none') keys.check(req, route.auth);
      const params = rawParams.map((raw) => {
        try {
          return decodeURIComponent(raw);
        } catch {
          throw badRequest(
            'invalid_path',
            `path segment '${raw.slice(0, 80)}' is not valid percent-encoding`,
          );
        }
      });
      const query = new URLSearchParams(queryAt === -1 ? '' : url.slice(queryAt + 1));
      reply = await route.handler(context, { req, params, rawParams, query });
    } catch (error) {
      failure = error;
      if (error instanceof ClientGoneError) {
        reply = { status: 499 };
      } else if (error instanceof HttpError) {
        reply = {
          status: error.status,
          json: error.toJSON(),
          ...(error.headers === undefined ? {} : { headers: error.headers }),
        };
      } else {
        reply = {
          status: 500,
          json: {
            error: {
              code: 'internal_error',
              message: `internal error (request ${requestId}): please report it with the server log`,
            },
          },
        };
      }
    }
    if (failure instanceof ClientGoneError || res.destroyed) {
      if (!res.destroyed) res.destroy();
    } else if (reply.stream !== undefined) {
      res.writeHead(reply.status, reply.headers);
      res.flushHeaders();
      const socket = req.socket;
      await reply.stream(res);
      // A stream ended by close must not leave its connection kept alive (close would wait for it).
      if (stopping) {
        if (res.writableFinished) socket.end();
        else res.once('finish', () => socket.end());
      }
    } else {
      // After a 413 the rest of the body may be unread; while stopping, keep-alive would hold the close.
      send(res, method, reply, stopping || (failure instanceof HttpError && failure.status === 413));
    }
    metrics.request(routeName, reply.status);
    const line: LogLine = {
      level: reply.status >= 500 ? 'error' : 'info',
      msg: 'request',
      requestId,
      method: method.slice(0, 20),
      path: path.slice(0, 300),
      route: routeName,
      status: reply.status,
      durationMs: Math.round((performance.now() - started) * 100) / 100,
    };
    if (failure instanceof HttpError) line.error = failure.code;
    else if (failure instanceof ClientGoneError) line.error = 'client_gone';
    else if (failure !== undefined)
      line.error = failure instanceof Error ? (failure.stack ?? failure.message) : String(failure);
    log(line);
  };

  const server = createServer({ requireHostHeader: false }, (req, res) => {
    handle(req, res).catch((error) => {
      // Unreachable unless sending itself throws: never let it take the process down.
      log({
        level: 'error',
        msg: 'request failed',
        error: error instanceof Error ? (error.stack ?? error.message) : String(error),
      });
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  });
  server.on('clientError', (error, socket) => {
    // As node's default: answer 400 only when nothing was written yet (no response in progress).
    if (socket.writable && (socket as Socket).bytesWritten === 0)
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
    log({ level: 'warn', msg: 'malformed request', error: error.message });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${shownHost}:${address.port}`;
  log({ level: 'info', msg: 'listening', url, store: options.store.location, auth: keys.enabled });

  let closing: Promise<void> | undefined;
  return {
    url,
    metrics,
    close() {
      stopping = true;
      closingStreams.abort();
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }).then(() => context.pending.settled());
      return closing;
    },
  };
}

function send(res: ServerResponse, method: string, reply: Reply, closeConnection: boolean): void {
  const headers: Record<string, string | number> = { ...reply.headers };
  let body: Uint8Array | string | undefined;
  if (reply.json !== undefined) {
    body = JSON.stringify(reply.json);
    headers['Content-Type'] = 'application/json; charset=utf-8';
  } else if (reply.body !== undefined) {
    body = reply.body;
    headers['Content-Type'] = reply.contentType ?? 'application/octet-stream';
  }
  if (body !== undefined) headers['Content-Length'] = Buffer.byteLength(body);
  if (closeConnection) headers.Connection = 'close';
  res.writeHead(reply.status, headers);
  if (method === 'HEAD' || body === undefined) res.end();
  else res.end(body);
}
