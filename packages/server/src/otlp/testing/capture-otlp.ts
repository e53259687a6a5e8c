import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Context, context, type Tracer, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

// Real OTLP/HTTP JSON request bodies for tests: spans made with @opentelemetry/sdk-trace-base,
// exported by @opentelemetry/exporter-trace-otlp-http to a node:http server on loopback that
// keeps every request body, exactly as the exporter sent it.
//
// `batch` (BatchSpanProcessor) sends the whole trace in one request at flush; `simple`
// (SimpleSpanProcessor) sends one request per span as it ends: children before their parents.

export interface CaptureOptions {
  processor: 'batch' | 'simple';
  serviceName?: string;
}

export async function captureOtlp(
  options: CaptureOptions,
  record: (
    tracer: Tracer,
    helpers: { within: (parent: ReturnType<Tracer['startSpan']>) => Context },
  ) => void | Promise<void>,
): Promise<unknown[]> {
  const bodies: unknown[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const exporter = new OTLPTraceExporter({ url: `http://127.0.0.1:${port}/v1/traces` });
  const processor =
    options.processor === 'batch' ? new BatchSpanProcessor(exporter) : new SimpleSpanProcessor(exporter);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName ?? 'otlp-test' }),
    spanProcessors: [processor],
  });
  try {
    const tracer = provider.getTracer('rewind-otlp-test', '1.0.0');
    await record(tracer, { within: (parent) => trace.setSpan(context.active(), parent) });
    await provider.forceFlush();
  } finally {
    await provider.shutdown();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  return bodies;
}
