// Redaction cost: one ~2 KB model request (a normalized payload of ordinary support-chat text, no
// secrets) through the default policy, per call; and the same with every PII detector on too.
// Target (issue 5): median < 20 µs for the default policy.
import { createRedactor, parsePolicy } from '@rewind/redact';
import { type Bench, median, quantile } from './lib.ts';

function payload(): unknown {
  return {
    provider: 'openai',
    model: 'gpt-4o',
    messages: [
      {
        role: 'system',
        content:
          'You are a helpful support agent for ACME. Answer briefly and cite the knowledge base. '.repeat(6),
      },
      {
        role: 'user',
        content:
          'My order 12345 has not arrived, it was supposed to come on Tuesday. Can you check the status and tell me when it will arrive? '.repeat(
            6,
          ),
      },
      {
        role: 'assistant',
        content:
          'Let me look that up for you. I found the order in our system; it shipped yesterday from the warehouse in Ohio. '.repeat(
            5,
          ),
      },
    ],
    params: { temperature: 0.2, maxTokens: 512 },
  };
}

const bench: Bench = async ({ runs, log }) => {
  const value = payload();
  const bytes = JSON.stringify(value).length;
  log(`payload of ${bytes} bytes`);
  const rows = [];
  for (const [name, policy] of [
    ['default policy (secrets)', parsePolicy({ version: 1 })],
    ['secrets and PII', parsePolicy({ version: 1, detectors: { pii: 'mask' } })],
  ] as const) {
    const redactor = createRedactor(policy, { env: {} });
    const medians: number[] = [];
    const p99s: number[] = [];
    for (let run = 0; run < runs; run++) {
      const times: number[] = [];
      for (let i = 0; i < 5000; i++) {
        const start = process.hrtime.bigint();
        redactor.redactValue(value, 'model:openai.chat.request');
        times.push(Number(process.hrtime.bigint() - start) / 1000);
      }
      medians.push(median(times.slice(500)));
      p99s.push(quantile(times.slice(500), 0.99));
    }
    rows.push({
      name: `redact ${Math.round(bytes / 100) / 10} KB request, ${name}`,
      unit: 'µs/call',
      median: median(medians),
      p99: median(p99s),
      ...(name.startsWith('default') && { target: '< 20' }),
    });
  }
  return rows;
};

export default bench;
