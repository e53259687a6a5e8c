// Normalized payloads (SPEC §4): every provider and framework is mapped onto these shapes so the
// UI, the diff and replay matching understand them the same way. `raw` keeps the provider's own
// request or response; replay serves the raw response.
import { type Infer, s } from './shape.ts';

export const stepKindShape = s.enum(['model', 'retriever', 'tool', 'chain'] as const);
export type StepKind = Infer<typeof stepKindShape>;

export const toolCallShape = s.object({
  id: s.string(),
  name: s.string({ minLength: 1 }),
  /** Parsed JSON arguments where the provider gave valid JSON; the provider's string otherwise. */
  arguments: s.json(),
});
export type ToolCall = Infer<typeof toolCallShape>;

export const contentPartShape = s.object({ type: s.string({ minLength: 1 }) }, { open: true });
export type ContentPart = Infer<typeof contentPartShape> & Record<string, unknown>;

export const messageShape = s.object({
  role: s.enum(['system', 'developer', 'user', 'assistant', 'tool'] as const),
  content: s.union(s.nullable(s.string()), s.array(contentPartShape)),
  toolCalls: s.optional(s.array(toolCallShape)),
  toolCallId: s.optional(s.string()),
  name: s.optional(s.string()),
});
export type Message = Infer<typeof messageShape>;

export const toolDefinitionShape = s.object({
  name: s.string({ minLength: 1 }),
  description: s.optional(s.string()),
  parameters: s.optional(s.json()),
});
export type ToolDefinition = Infer<typeof toolDefinitionShape>;

export const modelParamsShape = s.object(
  {
    temperature: s.optional(s.number()),
    topP: s.optional(s.number()),
    maxTokens: s.optional(s.integer(0)),
    seed: s.optional(s.integer()),
    stop: s.optional(s.array(s.string())),
  },
  { open: true },
);
export type ModelParams = Infer<typeof modelParamsShape> & Record<string, unknown>;

export const usageShape = s.object({
  inputTokens: s.optional(s.integer(0)),
  outputTokens: s.optional(s.integer(0)),
  totalTokens: s.optional(s.integer(0)),
  /** Cost in US dollars, when known. */
  cost: s.optional(s.nonNegative()),
});
export type Usage = Infer<typeof usageShape>;

export const modelRequestShape = s.object({
  provider: s.string({ minLength: 1 }),
  model: s.string(),
  messages: s.array(messageShape),
  tools: s.optional(s.array(toolDefinitionShape)),
  params: modelParamsShape,
  stream: s.optional(s.boolean()),
  raw: s.optional(s.json()),
});
export type ModelRequest = Infer<typeof modelRequestShape>;

export const modelResponseShape = s.object({
  model: s.string(),
  message: messageShape,
  finishReason: s.string(),
  usage: usageShape,
  raw: s.optional(s.json()),
});
export type ModelResponse = Infer<typeof modelResponseShape>;

export const retrieverRequestShape = s.object({
  query: s.string(),
  topK: s.optional(s.integer(0)),
  filters: s.optional(s.json()),
  raw: s.optional(s.json()),
});
export type RetrieverRequest = Infer<typeof retrieverRequestShape>;

export const documentShape = s.object({
  id: s.string(),
  content: s.string(),
  score: s.optional(s.number()),
  metadata: s.optional(s.record(s.json())),
});
export type RetrievedDocument = Infer<typeof documentShape>;

export const retrieverResponseShape = s.object({
  documents: s.array(documentShape),
  raw: s.optional(s.json()),
});
export type RetrieverResponse = Infer<typeof retrieverResponseShape>;

export const toolRequestShape = s.object({ name: s.string({ minLength: 1 }), arguments: s.json() });
export type ToolRequest = Infer<typeof toolRequestShape>;

export const toolResponseShape = s.object({ output: s.json() });
export type ToolResponse = Infer<typeof toolResponseShape>;

/** A `chain` step (a grouping span such as a sub-agent) records its input and output. */
export const chainRequestShape = s.object({ input: s.json() });
export type ChainRequest = Infer<typeof chainRequestShape>;
export const chainResponseShape = s.object({ output: s.json() });
export type ChainResponse = Infer<typeof chainResponseShape>;

export const requestShapeByKind = {
  model: modelRequestShape,
  retriever: retrieverRequestShape,
  tool: toolRequestShape,
  chain: chainRequestShape,
} as const;

export const responseShapeByKind = {
  model: modelResponseShape,
  retriever: retrieverResponseShape,
  tool: toolResponseShape,
  chain: chainResponseShape,
} as const;

export interface RequestByKind {
  model: ModelRequest;
  retriever: RetrieverRequest;
  tool: ToolRequest;
  chain: ChainRequest;
}
export interface ResponseByKind {
  model: ModelResponse;
  retriever: RetrieverResponse;
  tool: ToolResponse;
  chain: ChainResponse;
}
