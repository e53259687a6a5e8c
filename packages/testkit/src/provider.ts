// The scripted provider: an HTTP server on 127.0.0.1 that answers OpenAI chat completions,
// OpenAI Responses and Anthropic messages requests (JSON or SSE) from a list of rules.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { explainNoMatch, findRule, type RuleState } from './match.ts';
import { countInputTokens, normalizeRequest } from './normalize.ts';
import { ResponsesMemory } from './responses-memory.ts';
import type {
  Api,
  Conversation,
  DropReply,
  ErrorReply,
  MessageReply,
  RecordedRequest,
  Reply,
  Rule,
} from './types.ts';
import {
  type Answer,
  buildAnswer,
  IdAllocator,
  type RenderContext,
  type SseEvent,
  serializeEvent,
} from './wire/answer.ts';
import { anthropicStreamError, message, messageEvents } from './wire/anthropic.ts';
import { errorBody } from './wire/errors.ts';
import { chatCompletion, chatCompletionEvents, chatStreamError } from './wire/openai-chat.ts';
import { response, responseEvents, responsesStreamError } from './wire/openai-responses.ts';

/** 2025-01-01T00:00:00Z: the default `created` of every response, so recordings are reproducible. */
export const DEFAULT_CREATED = 1_735_689_600;

export interface ScriptedProviderOptions {
  rules?: Rule[];
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: a random free port. */
  port?: number;
  /** Delay before every response's headers, unless a reply sets `latencyMs`. Default 0. */
  defaultLatencyMs?: number;
  /** Delay between streamed events, unless a reply sets `chunkDelayMs`. Default 0. */
  chunkDelayMs?: number;
  /** Unix seconds reported as `created` / `created_at`. Default {@link DEFAULT_CREATED}. */
  created?: number;
  /** Characters per streamed piece of tool-call arguments. Default 8. */
  argumentChunkSize?: number;
}

export interface ScriptedProvider {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** `${url}/v1`: for `new OpenAI({ baseURL })`, and for `@ai-sdk/openai` / `@ai-sdk/anthropic`. */
  readonly openaiBaseURL: string;
  /** `url`: for `new Anthropic({ baseURL })` (the client appends `/v1/messages`), and LangChain's ChatAnthropic. */
  readonly anthropicBaseURL: string;
  /** Every request received since start or the last `reset()`, in arrival order. */
  readonly requests: readonly RecordedRequest[];
  /** Replaces the rules (and forgets how often the old ones were used). */
  script(rules: Rule[]): void;
  /** How many requests each current rule has answered. */
  ruleUses(): number[];
  /** Clears the request log, id counters, rule use counts and remembered Responses items; keeps the rules. */
  reset(): void;
  /** Resolves when every request received so far is fully answered, dropped or aborted. */
  settled(): Promise<void>;
  close(): Promise<void>;
}

function isErrorReply(reply: Reply): reply is ErrorReply {
  return 'error' in reply && reply.error !== undefined;
}

function isDropReply(reply: Reply): reply is DropReply {
  return 'drop' in reply && reply.drop === true;
}

function routeOf(method: string, path: string): Api | 'unknown' {
  if (method !== 'POST') return 'unknown';
  if (path === '/v1/chat/completions' || path === '/chat/completions') return 'openai.chat';
  if (path === '/v1/responses' || path === '/responses') return 'openai.responses';
  if (path === '/v1/messages' || path === '/messages') return 'anthropic.messages';
  return 'unknown';
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

function write(res: ServerResponse, chunk: string): Promise<void> {
  return new Promise((resolve) => {
    if (res.destroyed) return resolve();
    const onClose = () => resolve();
    res.once('close', onClose);
    res.write(chunk, () => {
      res.off('close', onClose);
      resolve();
    });
  });
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
    req.on('close', () => reject(new Error('the client closed the request before sending all of it')));
  });
}

function headerRecord(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

export async function startScriptedProvider(
  options: ScriptedProviderOptions = {},
): Promise<ScriptedProvider> {
  const host = options.host ?? '127.0.0.1';
  const created = options.created ?? DEFAULT_CREATED;
  const argumentChunkSize = options.argumentChunkSize ?? 8;
  const ids = new IdAllocator();
  const memory = new ResponsesMemory();
  let states: RuleState[] = (options.rules ?? []).map((rule) => ({ rule, used: 0 }));
  let requests: RecordedRequest[] = [];
  let seq = 0;
  const inflight = new Set<Promise<void>>();
  const controllers = new Set<AbortController>();

  const requestIdHeader = (api: Api | 'unknown', requestId: string): Record<string, string> =>
    api === 'anthropic.messages' ? { 'request-id': requestId } : { 'x-request-id': requestId };

  function sendJson(
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string>,
    entry: RecordedRequest,
  ): void {
    if (res.destroyed) return;
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      ...headers,
    });
    res.end(text);
    entry.status = status;
  }

  function sendError(
    res: ServerResponse,
    entry: RecordedRequest,
    requestId: string,
    spec: { status: number; message: string; type?: string | undefined; code?: string | undefined },
    headers: Record<string, string>,
  ): void {
    entry.error = spec.message;
    const body = errorBody(entry.api, { ...spec, requestId });
    sendJson(res, spec.status, body, { ...requestIdHeader(entry.api, requestId), ...headers }, entry);
  }

  function rememberResponse(responseObject: unknown, input: Record<string, unknown>[]): void {
    const r = responseObject as { id?: unknown; output?: unknown } | undefined;
    if (typeof r?.id === 'string') memory.remember(r.id, input, r.output);
  }

  async function answer(
    res: ServerResponse,
    entry: RecordedRequest,
    conversation: Conversation,
    reply: MessageReply,
    requestId: string,
    signal: AbortSignal,
    responsesInput: Record<string, unknown>[] | undefined,
  ): Promise<void> {
    const api = conversation.api as Api;
    const ctx: RenderContext = { ids, created, argumentChunkSize, body: conversation.body };
    const built: Answer = buildAnswer(reply, conversation.model, countInputTokens(conversation));
    if (!conversation.stream) {
      const body =
        api === 'openai.chat'
          ? chatCompletion(built, ctx)
          : api === 'openai.responses'
            ? response(built, ctx)
            : message(built, ctx);
      if (responsesInput !== undefined) rememberResponse(body, responsesInput);
      sendJson(res, 200, body, requestIdHeader(api, requestId), entry);
      entry.outcome = 'ok';
      return;
    }
    const events: SseEvent[] =
      api === 'openai.chat'
        ? chatCompletionEvents(built, ctx)
        : api === 'openai.responses'
          ? responseEvents(built, ctx)
          : messageEvents(built, ctx);
    if (responsesInput !== undefined)
      rememberResponse((events.at(-1)?.data as { response?: unknown } | undefined)?.response, responsesInput);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      ...requestIdHeader(api, requestId),
    });
    res.flushHeaders();
    entry.status = 200;
    const delay = reply.chunkDelayMs ?? options.chunkDelayMs ?? 0;
    const interrupt = reply.interrupt;
    for (const [i, event] of events.entries()) {
      if (interrupt !== undefined && i >= interrupt.afterEvents) {
        entry.outcome = 'interrupted';
        if (interrupt.with === 'drop') {
          res.socket?.destroy();
          return;
        }
        const msg = interrupt.message ?? 'scripted provider: injected mid-stream error';
        const errorEvent =
          api === 'openai.chat'
            ? chatStreamError(msg)
            : api === 'openai.responses'
              ? responsesStreamError(msg, i)
              : anthropicStreamError(msg);
        entry.error = msg;
        await write(res, serializeEvent(errorEvent));
        entry.eventsSent++;
        res.end();
        return;
      }
      if (i > 0) await sleep(delay, signal);
      if (signal.aborted || res.destroyed) return;
      await write(res, serializeEvent(event));
      entry.eventsSent++;
    }
    if (signal.aborted || res.destroyed) return;
    res.end();
    entry.outcome = 'ok';
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const controller = new AbortController();
    controllers.add(controller);
    const signal = controller.signal;
    const path = (req.url ?? '/').split('?')[0]!;
    const method = req.method ?? 'GET';
    const api = routeOf(method, path);
    const entry: RecordedRequest = {
      seq: ++seq,
      api,
      method,
      path,
      headers: headerRecord(req),
      body: undefined,
      conversation: undefined,
      stream: false,
      at: Date.now(),
      rule: undefined,
      ruleName: undefined,
      status: undefined,
      outcome: 'pending',
      error: undefined,
      aborted: false,
      eventsSent: 0,
    };
    requests.push(entry);
    const requestId = ids.next('req_');
    let deliberateDrop = false;
    res.on('close', () => {
      if (!res.writableFinished && !deliberateDrop && entry.outcome !== 'interrupted') {
        entry.aborted = true;
        entry.outcome = 'aborted';
      }
      controller.abort();
    });
    res.on('error', () => {});
    req.on('error', () => {});

    try {
      const raw = await readBody(req);
      if (api === 'unknown') {
        entry.outcome = 'bad-request';
        sendError(
          res,
          entry,
          requestId,
          { status: 404, message: `scripted provider: no route for ${method} ${path}` },
          {},
        );
        return;
      }
      let body: unknown;
      try {
        body = raw === '' ? {} : JSON.parse(raw);
      } catch {
        body = undefined;
      }
      entry.body = body ?? raw;
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        entry.outcome = 'bad-request';
        sendError(
          res,
          entry,
          requestId,
          { status: 400, message: 'scripted provider: the request body is not a JSON object' },
          {},
        );
        return;
      }
      let responsesInput: Record<string, unknown>[] | undefined;
      if (api === 'openai.responses') {
        try {
          responsesInput = memory.expandInput(body as Record<string, unknown>);
        } catch (err) {
          entry.outcome = 'bad-request';
          sendError(res, entry, requestId, { status: 400, message: (err as Error).message }, {});
          return;
        }
      }
      const conversation = normalizeRequest(
        api,
        body as Record<string, unknown>,
        responsesInput === undefined ? {} : { responsesInput },
      );
      entry.conversation = conversation;
      entry.stream = conversation.stream;

      const found = findRule(states, conversation);
      if (found === undefined) {
        entry.outcome = 'unmatched';
        sendError(
          res,
          entry,
          requestId,
          { status: 400, message: explainNoMatch(entry.seq, states, conversation) },
          { 'x-should-retry': 'false' },
        );
        return;
      }
      found.state.used++;
      entry.rule = found.index;
      entry.ruleName = found.state.rule.name;

      let reply: Reply;
      try {
        const r = found.state.rule.reply;
        reply = typeof r === 'function' ? r(conversation) : r;
      } catch (err) {
        entry.outcome = 'error';
        const why = err instanceof Error ? err.message : String(err);
        sendError(
          res,
          entry,
          requestId,
          {
            status: 500,
            message: `scripted provider: the reply function of rule ${found.index} threw: ${why}`,
          },
          { 'x-should-retry': 'false' },
        );
        return;
      }

      await sleep(reply.latencyMs ?? options.defaultLatencyMs ?? 0, signal);
      if (signal.aborted || res.destroyed) return;

      if (isDropReply(reply)) {
        deliberateDrop = true;
        entry.outcome = 'dropped';
        req.socket.destroy();
        return;
      }
      if (isErrorReply(reply)) {
        const e = reply.error;
        const headers: Record<string, string> = { ...e.headers };
        if (e.retryAfter !== undefined) headers['retry-after'] = String(e.retryAfter);
        if (e.retryAfterMs !== undefined) headers['retry-after-ms'] = String(e.retryAfterMs);
        if (e.shouldRetry !== undefined) headers['x-should-retry'] = String(e.shouldRetry);
        entry.outcome = 'error';
        sendError(res, entry, requestId, e, headers);
        return;
      }
      await answer(res, entry, conversation, reply, requestId, signal, responsesInput);
    } catch (err) {
      if (entry.aborted) return;
      entry.outcome = 'error';
      entry.error = err instanceof Error ? err.message : String(err);
      if (!res.headersSent && !res.destroyed)
        sendError(
          res,
          entry,
          requestId,
          { status: 500, message: `scripted provider: internal error: ${entry.error}` },
          { 'x-should-retry': 'false' },
        );
      else res.destroy();
    } finally {
      controllers.delete(controller);
    }
  }

  const server: Server = createServer((req, res) => {
    const p = handle(req, res);
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${host}:${port}`;

  return {
    url,
    port,
    openaiBaseURL: `${url}/v1`,
    anthropicBaseURL: url,
    get requests() {
      return requests;
    },
    script(rules) {
      states = rules.map((rule) => ({ rule, used: 0 }));
    },
    ruleUses() {
      return states.map((s) => s.used);
    },
    reset() {
      requests = [];
      seq = 0;
      ids.reset();
      memory.clear();
      for (const s of states) s.used = 0;
    },
    async settled() {
      while (inflight.size > 0) await Promise.allSettled([...inflight]);
    },
    async close() {
      for (const c of controllers) c.abort();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.allSettled([...inflight]);
    },
  };
}
