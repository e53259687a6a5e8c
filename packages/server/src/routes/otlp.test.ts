import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { openStore } from '@rewind/store';
import { captureOtlp } from '../otlp/testing/capture-otlp.ts';
import { startServer } from '../server.ts';

// POST /v1/otlp/traces over real HTTP: bodies made by the OpenTelemetry SDK's OTLP/HTTP JSON
// exporter, posted to `rewind serve`'s handler, then read back through the run routes.

const scratch = await mkdtemp(join(tmpdir(), 'rewind-otlp-route-'));
after(() => rm(scratch, { recursive: true, force: true }));

test('OTLP spans posted to /v1/otlp/traces become a run with steps, readable over the API', async () => {
  const store = await openStore(join(scratch, 'store'));
  const server = await startServer({ store, port: 0, log: false, ingestKeys: ['in'], readKeys: ['read'] });
  try {
    const bodies = await captureOtlp({ processor: 'batch' }, async (tracer, { within }) => {
      const agent = tracer.startSpan('agent', {
        attributes: { 'openinference.span.kind': 'AGENT', 'input.value': 'Weather in Paris?' },
      });
      const tool = tracer.startSpan(
        'get_weather',
        {
          attributes: {
            'openinference.span.kind': 'TOOL',
            'tool.name': 'get_weather',
            'input.value': '{"city":"Paris"}',
            'output.value': '{"tempC":18}',
          },
        },
        within(agent),
      );
      tool.end();
      agent.setAttribute('output.value', '18 °C and clear');
      agent.end();
    });
    assert.equal(bodies.length, 1);
    const post = (key: string) =>
      fetch(`${server.url}/v1/otlp/traces`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify(bodies[0]),
      });
    assert.equal((await post('read')).status, 403, 'a read key cannot ingest');
    const protobuf = await fetch(`${server.url}/v1/otlp/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf', authorization: 'Bearer in' },
      body: new Uint8Array([10, 0]),
    });
    assert.equal(protobuf.status, 415);
    assert.match(
      ((await protobuf.json()) as { error: { message: string } }).error.message,
      /application\/json/,
    );
    const answer = await post('in');
    assert.equal(answer.status, 200);
    assert.deepEqual(await answer.json(), {});

    const traceId = (bodies[0] as { resourceSpans: { scopeSpans: { spans: { traceId: string }[] }[] }[] })
      .resourceSpans[0]?.scopeSpans[0]?.spans[0]?.traceId;
    assert.ok(traceId);
    const runs = (await (
      await fetch(`${server.url}/v1/runs`, { headers: { authorization: 'Bearer read' } })
    ).json()) as { items: { id: string; stepCount: number; status: string }[] };
    assert.equal(runs.items.length, 1);
    const [run] = runs.items;
    assert.equal(run?.status, 'ok');
    const steps = (await (
      await fetch(`${server.url}/v1/runs/${run?.id}/steps`, { headers: { authorization: 'Bearer read' } })
    ).json()) as { items: { kind: string; name: string }[] };
    assert.deepEqual(
      steps.items.map((step) => `${step.kind}:${step.name}`),
      ['chain:agent', 'tool:get_weather'],
    );

    const again = await post('in');
    assert.equal(again.status, 200, 're-sent spans are idempotent');
    const after = (await (
      await fetch(`${server.url}/v1/runs/${run?.id}/steps`, { headers: { authorization: 'Bearer read' } })
    ).json()) as { items: unknown[] };
    assert.equal(after.items.length, 2);
  } finally {
    await server.close();
    await store.close();
  }
});
