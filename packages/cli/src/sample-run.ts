import type { BlobPointer, Message, ModelRequest, ToolDefinition } from '@rewind/schema';
import { TraceBuilder } from './trace-builder.ts';

// The built-in sample run that `rewind demo` records (until the capture SDK can record a real
// agent) and that fixtures/traces/v1/support-run freezes: a customer-support agent that
//   1. searches the help center (retriever),
//   2. asks the model, which calls two tools,
//   3. runs both tools in parallel (the second finishes first),
//   4. hands the refund to a sub-agent (a chain with its own model call and tool),
//      whose payment tool fails once with a gateway timeout that the agent catches and retries,
//   5. streams the final answer.
// Times are fixed offsets from the run's start, so the same options give the same events.

export const SAMPLE_AGENT = 'support-bot';
/** How long the sample run takes, in milliseconds from run.started to run.finished. */
export const SAMPLE_RUN_DURATION_MS = 6942;

export interface SampleRunOptions {
  runId: string;
  /** The run's start (epoch ms); default: `end - SAMPLE_RUN_DURATION_MS`, or now. */
  start?: number;
  /** The run's end (epoch ms), as an alternative to `start`. */
  end?: number;
  /** Makes event and step ids reproducible. */
  seed?: number;
}

const MODEL = 'gpt-4o-mini';
const MODEL_VERSION = 'gpt-4o-mini-2024-07-18';
const modelAttributes = { 'gen_ai.system': 'openai', 'gen_ai.request.model': MODEL };

const CUSTOMER_MESSAGE =
  "Hi! My order A-1042 still hasn't arrived, and looking at my bank statement I think I was charged twice for it?";

const FINAL_ANSWER = `I'm sorry about the trouble, Sam! Your order A-1042 shipped on 18 November with DHL (tracking JD014600003828) and is due on 27 November.

You were indeed charged twice for it. I've refunded the duplicate charge of €42.50 (refund re_3QxT9LmA); it should appear on your card within 5–10 business days.

Is there anything else I can help with?`;

const DOCUMENTS = [
  {
    id: 'kb-112',
    content:
      'Duplicate charges: when a payment is retried after a timeout, the card may be charged twice. Support agents may refund the duplicate charge immediately; no approval is needed under €200.',
    score: 0.89,
    metadata: { title: 'Duplicate charges and refunds', updatedAt: '2026-09-02' },
  },
  {
    id: 'kb-087',
    content:
      'Shipping times: standard delivery within the EU takes 5–8 business days after dispatch. Tracking numbers are sent by email when the parcel leaves the warehouse.',
    score: 0.81,
    metadata: { title: 'Shipping times', updatedAt: '2026-06-14' },
  },
  {
    id: 'kb-203',
    content:
      'Lost parcels: if a parcel has not arrived 10 business days after dispatch, open a carrier investigation and offer a replacement.',
    score: 0.64,
    metadata: { title: 'Lost parcels', updatedAt: '2026-03-30' },
  },
];

const TOOLS: ToolDefinition[] = [
  {
    name: 'lookup_order',
    description: 'Order status, carrier and tracking number of an order.',
    parameters: { type: 'object', properties: { orderId: { type: 'string' } }, required: ['orderId'] },
  },
  {
    name: 'list_charges',
    description: "A customer's card charges for an order.",
    parameters: {
      type: 'object',
      properties: { customerId: { type: 'string' }, orderId: { type: 'string' } },
      required: ['customerId', 'orderId'],
    },
  },
];

const REFUND_TOOLS: ToolDefinition[] = [
  {
    name: 'issue_refund',
    description: 'Refunds a card charge, fully or partly.',
    parameters: {
      type: 'object',
      properties: {
        chargeId: { type: 'string' },
        amount: { type: 'number' },
        reason: { type: 'string', enum: ['duplicate', 'fraudulent', 'requested_by_customer'] },
      },
      required: ['chargeId', 'amount', 'reason'],
    },
  },
];

function modelRequest(messages: Array<Message | BlobPointer>, tools: unknown, stream = false): unknown {
  const request: Omit<ModelRequest, 'messages' | 'tools'> & { messages: unknown[]; tools: unknown } = {
    provider: 'openai',
    model: MODEL,
    messages,
    tools,
    params: { temperature: 0.2, maxTokens: 600, seed: 7 },
  };
  return stream ? { ...request, stream: true } : request;
}

/** Builds the sample run's events and blobs. */
export function buildSampleRun(options: SampleRunOptions): TraceBuilder {
  const start =
    options.start ?? (options.end === undefined ? Date.now() : options.end - SAMPLE_RUN_DURATION_MS);
  const b = new TraceBuilder({
    runId: options.runId,
    start,
    ...(options.seed === undefined ? {} : { seed: options.seed }),
  });
  const input = { customerId: 'cus_8812', customerName: 'Sam', channel: 'chat', message: CUSTOMER_MESSAGE };
  b.startRun({
    agent: SAMPLE_AGENT,
    input,
    at: 0,
    attributes: { gitSha: '3f9c2ab', codeVersion: '1.4.2', env: 'demo', tags: ['support', 'sample'] },
    sdk: { name: 'rewind-demo', version: '0.1.0' },
  });

  // 1. The retriever.
  const search = b.startStep({
    kind: 'retriever',
    name: 'kb.search',
    at: 12,
    request: { query: 'order not arrived, charged twice', topK: 3, filters: { locale: 'en' } },
  });
  b.finishStep(search, { at: 188, response: { documents: DOCUMENTS } });

  // 2. The model asks for two tools. The conversation's messages are stored as parts, once.
  const system = b.part({
    role: 'system',
    content:
      'You are Ada, the support assistant of Northwind Outfitters. Be concise and friendly. Look orders and charges up with the tools before answering. Never promise a refund you have not issued.',
  });
  const context = b.part({
    role: 'system',
    content: `Relevant help-center articles:\n${DOCUMENTS.map((d) => `[${d.id}] ${d.content}`).join('\n')}`,
  });
  const user = b.part({ role: 'user', content: CUSTOMER_MESSAGE });
  const tools = b.part(TOOLS);
  const plan = b.startStep({
    kind: 'model',
    name: 'openai.chat',
    at: 195,
    request: modelRequest([system, context, user], tools),
    attributes: modelAttributes,
  });
  const toolCalls = [
    { id: 'call_lkp1', name: 'lookup_order', arguments: { orderId: 'A-1042' } },
    { id: 'call_chg1', name: 'list_charges', arguments: { customerId: 'cus_8812', orderId: 'A-1042' } },
  ];
  const planMessage = { role: 'assistant', content: null, toolCalls };
  b.finishStep(plan, {
    at: 1430,
    response: {
      model: MODEL_VERSION,
      message: planMessage,
      finishReason: 'tool_calls',
      usage: { inputTokens: 412, outputTokens: 58, totalTokens: 470 },
    },
    usage: { inputTokens: 412, outputTokens: 58, totalTokens: 470, cost: 0.0000966 },
  });

  // 3. Both tools in parallel; list_charges finishes first.
  const order = {
    orderId: 'A-1042',
    status: 'shipped',
    shippedAt: '2026-11-18',
    carrier: 'DHL',
    tracking: 'JD014600003828',
    estimatedDelivery: '2026-11-27',
    total: { amount: 42.5, currency: 'EUR' },
  };
  const charges = {
    charges: [
      { chargeId: 'ch_3Q1', amount: 42.5, currency: 'EUR', at: '2026-11-16T09:14:03Z', status: 'captured' },
      { chargeId: 'ch_3Q2', amount: 42.5, currency: 'EUR', at: '2026-11-16T09:14:09Z', status: 'captured' },
    ],
  };
  const lookup = b.startStep({
    kind: 'tool',
    name: 'lookup_order',
    at: 1436,
    request: { name: 'lookup_order', arguments: toolCalls[0]!.arguments },
  });
  const listCharges = b.startStep({
    kind: 'tool',
    name: 'list_charges',
    at: 1437,
    request: { name: 'list_charges', arguments: toolCalls[1]!.arguments },
  });
  b.finishStep(listCharges, { at: 1592, response: { output: charges } });
  b.finishStep(lookup, { at: 1718, response: { output: order } });

  // 4. The refund sub-agent: its own model call, then the payment tool, which times out once.
  const refundTask = { customerId: 'cus_8812', orderId: 'A-1042', duplicateChargeId: 'ch_3Q2', amount: 42.5 };
  const refund = b.startStep({
    kind: 'chain',
    name: 'refund-agent',
    at: 1725,
    request: { input: refundTask },
  });
  const refundCall = {
    id: 'call_rfd1',
    name: 'issue_refund',
    arguments: { chargeId: 'ch_3Q2', amount: 42.5, reason: 'duplicate' },
  };
  const refundModel = b.startStep({
    kind: 'model',
    name: 'openai.chat',
    parent: refund,
    at: 1731,
    request: modelRequest(
      [
        {
          role: 'system',
          content:
            'You are the refund agent. Issue exactly the refund you are asked for, with the right reason.',
        },
        {
          role: 'user',
          content: 'Refund the duplicate charge ch_3Q2 (42.50 EUR) on order A-1042 of customer cus_8812.',
        },
      ],
      REFUND_TOOLS,
    ),
    attributes: modelAttributes,
  });
  b.finishStep(refundModel, {
    at: 2604,
    response: {
      model: MODEL_VERSION,
      message: { role: 'assistant', content: null, toolCalls: [refundCall] },
      finishReason: 'tool_calls',
      usage: { inputTokens: 151, outputTokens: 31, totalTokens: 182 },
    },
    usage: { inputTokens: 151, outputTokens: 31, totalTokens: 182, cost: 0.0000413 },
  });
  const refundRequest = { name: 'issue_refund', arguments: refundCall.arguments };
  const firstTry = b.startStep({
    kind: 'tool',
    name: 'issue_refund',
    parent: refund,
    at: 2610,
    request: refundRequest,
  });
  b.failStep(firstTry, {
    at: 3612,
    error: {
      type: 'PaymentGatewayError',
      message:
        'gateway timed out after 1000 ms (POST /v1/refunds); safe to retry with the same idempotency key',
      status: 504,
    },
  });
  const secondTry = b.startStep({
    kind: 'tool',
    name: 'issue_refund',
    parent: refund,
    at: 3850,
    request: refundRequest,
  });
  const refunded = {
    refundId: 're_3QxT9LmA',
    chargeId: 'ch_3Q2',
    amount: 42.5,
    currency: 'EUR',
    status: 'pending',
  };
  b.finishStep(secondTry, { at: 4371, response: { output: refunded } });
  b.finishStep(refund, {
    at: 4390,
    response: { output: { refunded: true, refundId: refunded.refundId, attempts: 2 } },
  });

  // 5. The final answer, streamed.
  const answer = b.startStep({
    kind: 'model',
    name: 'openai.chat',
    at: 4398,
    request: modelRequest(
      [
        system,
        context,
        user,
        b.part(planMessage),
        b.part({ role: 'tool', toolCallId: 'call_lkp1', content: JSON.stringify(order) }),
        b.part({ role: 'tool', toolCallId: 'call_chg1', content: JSON.stringify(charges) }),
        {
          role: 'system',
          content: `The refund agent refunded the duplicate charge ch_3Q2: ${JSON.stringify(refunded)}. Tell the customer.`,
        },
      ],
      tools,
      true,
    ),
    attributes: modelAttributes,
  });
  const chunks = 24;
  const offsetsMs = Array.from({ length: chunks }, (_, i) => 612 + i * 83 + (i % 3) * 7);
  b.finishStep(answer, {
    at: 4398 + 2532,
    response: {
      model: MODEL_VERSION,
      message: { role: 'assistant', content: FINAL_ANSWER },
      finishReason: 'stop',
      usage: { inputTokens: 904, outputTokens: 96, totalTokens: 1000 },
    },
    usage: { inputTokens: 904, outputTokens: 96, totalTokens: 1000, cost: 0.0001932 },
    stream: { chunks, offsetsMs },
  });

  b.finishRun({
    at: SAMPLE_RUN_DURATION_MS,
    output: {
      reply: FINAL_ANSWER,
      actions: [{ type: 'refund', refundId: refunded.refundId, amount: 42.5, currency: 'EUR' }],
    },
  });
  return b;
}
