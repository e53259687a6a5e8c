// How each tracer of the capture benchmark (bench/capture.ts) wraps the tool call, groups a
// round's calls (a run / a root span / a root observation / a root run), flushes and shuts down.
// Every library is set up at its defaults, pointed explicitly at the sink on 127.0.0.1; each is
// imported only in its own child process (bench/capture/peer.ts).

import type { LookupRequest, LookupResponse } from './workload.ts';

export type Tool = (request: LookupRequest) => Promise<LookupResponse>;

export interface Tracer {
  /** Wraps the tool once; the wrapper is called for every call. */
  wrap(name: string, tool: Tool): Tool;
  /** Runs one round (its calls) as one run / root span named `name`. */
  round(name: string, body: () => Promise<void>): Promise<void>;
  /** Delivers everything recorded so far (after the warm-up and after each round), within the deadline. */
  flush(deadlineMs: number): Promise<void>;
  /** The end of the workload: flush within the deadline and shut down. */
  shutdown(deadlineMs: number): Promise<void>;
  /** Counted in-process after shutdown (Rewind: stats and the store's own count). */
  report?(): Promise<Record<string, unknown>>;
}

export interface TracerOptions {
  sinkUrl: string;
  /** A scratch directory of this child (Rewind's store). */
  dir: string;
}

export const PEERS = ['baseline', 'rewind', 'opentelemetry', 'langfuse', 'langsmith'] as const;
export type PeerName = (typeof PEERS)[number];

export async function makeTracer(peer: PeerName, options: TracerOptions): Promise<Tracer> {
  switch (peer) {
    case 'baseline':
      return baseline();
    case 'rewind':
      return rewind(options);
    case 'opentelemetry':
      return openTelemetry(options);
    case 'langfuse':
      return langfuse(options);
    case 'langsmith':
      return langSmith(options);
  }
}

function baseline(): Tracer {
  return {
    wrap: (_name, tool) => tool,
    round: (_name, body) => body(),
    flush: async () => {},
    shutdown: async () => {},
  };
}

async function rewind({ dir }: TracerOptions): Promise<Tracer> {
  const { currentRunId, Recorder } = await import('../../packages/sdk/src/index.ts');
  const { openStore } = await import('../../packages/store/src/index.ts');
  // The default local store (SQLite + filesystem blobs) in a fresh directory; config and
  // environment isolated from the working directory's.
  const recorder = new Recorder({ store: dir, cwd: dir, env: {} });
  const runIds: string[] = [];
  return {
    wrap: (name, tool) => recorder.tool(name, tool),
    round: async (name, body) => {
      await recorder.agent(name, async () => {
        if (name !== 'warmup') runIds.push(currentRunId()!);
        await body();
      })();
    },
    flush: async (deadlineMs) => {
      await recorder.flush({ timeoutMs: deadlineMs });
    },
    shutdown: async (deadlineMs) => {
      await recorder.shutdown({ timeoutMs: deadlineMs });
    },
    report: async () => {
      // Cross-check the recorder's accounting against what the store holds: the wrapped
      // calls of the measured runs that are in the timeline as finished steps.
      let steps = 0;
      let finished = 0;
      try {
        const store = await openStore(dir);
        try {
          for (const runId of runIds) {
            let afterSeq = 0;
            for (;;) {
              const page = await store.readTimeline(runId, { afterSeq, limit: 10_000 });
              for (const step of page.items) {
                if (step.name !== 'lookup') continue;
                steps++;
                if (step.status === 'ok' && step.response !== null) finished++;
              }
              if (page.nextCursor === undefined || page.items.length === 0) break;
              afterSeq = page.items.at(-1)!.seq;
            }
          }
        } finally {
          await store.close();
        }
      } catch (error) {
        return { stats: recorder.stats(), storeError: String(error), storeSteps: steps, delivered: 0 };
      }
      return { stats: recorder.stats(), storeSteps: steps, delivered: finished };
    },
  };
}

/** OpenTelemetry's span-per-call wrapper with the payloads as span attributes. */
function spanWrapper(
  api: typeof import('@opentelemetry/api'),
  tracer: import('@opentelemetry/api').Tracer,
  name: string,
  tool: Tool,
): Tool {
  return (request) =>
    tracer.startActiveSpan(name, async (span) => {
      try {
        span.setAttribute('input', JSON.stringify(request));
        const response = await tool(request);
        span.setAttribute('output', JSON.stringify(response));
        return response;
      } catch (error) {
        span.recordException(error as Error);
        span.setStatus({ code: api.SpanStatusCode.ERROR });
        throw error;
      } finally {
        span.end();
      }
    });
}

/** The tracer provider of both OTel-based peers: spans in the active context (AsyncLocalStorage). */
async function otelProvider(
  processor: import('@opentelemetry/sdk-trace-base').SpanProcessor,
): Promise<import('@opentelemetry/sdk-trace-base').BasicTracerProvider> {
  const api = await import('@opentelemetry/api');
  const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks');
  const { BasicTracerProvider } = await import('@opentelemetry/sdk-trace-base');
  api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const provider = new BasicTracerProvider({ spanProcessors: [processor] });
  api.trace.setGlobalTracerProvider(provider);
  return provider;
}

async function openTelemetry({ sinkUrl }: TracerOptions): Promise<Tracer> {
  const api = await import('@opentelemetry/api');
  const { BatchSpanProcessor } = await import('@opentelemetry/sdk-trace-base');
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
  // BatchSpanProcessor at its defaults: a queue of 2048 spans, batches of 512, every 5 s.
  const provider = await otelProvider(
    new BatchSpanProcessor(new OTLPTraceExporter({ url: `${sinkUrl}/v1/traces` })),
  );
  const tracer = provider.getTracer('rewind-bench');
  return {
    wrap: (name, tool) => spanWrapper(api, tracer, name, tool),
    round: (name, body) =>
      tracer.startActiveSpan(name, async (span) => {
        try {
          await body();
        } finally {
          span.end();
        }
      }),
    flush: (deadlineMs) => withDeadline(provider.forceFlush(), deadlineMs),
    shutdown: (deadlineMs) => withDeadline(provider.shutdown(), deadlineMs),
  };
}

async function langfuse({ sinkUrl }: TracerOptions): Promise<Tracer> {
  const { LangfuseSpanProcessor } = await import('@langfuse/otel');
  const { observe, setLangfuseTracerProvider } = await import('@langfuse/tracing');
  // Langfuse's recommended setup (JS SDK v4+, OpenTelemetry-based): its span processor at its
  // defaults (a BatchSpanProcessor at OTel's defaults around an OTLP/HTTP exporter) on an
  // OpenTelemetry tracer provider, and `observe` as the wrapper.
  const provider = await otelProvider(
    new LangfuseSpanProcessor({ baseUrl: sinkUrl, publicKey: 'pk-lf-bench', secretKey: 'sk-lf-bench' }),
  );
  setLangfuseTracerProvider(provider);
  return {
    wrap: (name, tool) => observe(tool, { name, asType: 'tool' }),
    round: (name, body) => observe(body, { name, asType: 'agent' })(),
    flush: (deadlineMs) => withDeadline(provider.forceFlush(), deadlineMs),
    shutdown: (deadlineMs) => withDeadline(provider.shutdown(), deadlineMs),
  };
}

async function langSmith({ sinkUrl }: TracerOptions): Promise<Tracer> {
  const { Client } = await import('langsmith');
  const { traceable } = await import('langsmith/traceable');
  const client = new Client({ apiUrl: sinkUrl, apiKey: 'ls-bench' });
  return {
    wrap: (name, tool) => traceable(tool, { name, run_type: 'tool', client, tracingEnabled: true }),
    round: (name, body) => traceable(body, { name, run_type: 'chain', client, tracingEnabled: true })(),
    flush: (deadlineMs) => withDeadline(client.awaitPendingTraceBatches(), deadlineMs),
    shutdown: (deadlineMs) => withDeadline(client.awaitPendingTraceBatches(), deadlineMs),
  };
}

async function withDeadline(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      promise,
      new Promise((resolve) => {
        timer = setTimeout(resolve, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
