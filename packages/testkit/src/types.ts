// Public types of the scripted provider: the normalized conversation that matchers see,
// rules, matchers, replies, and the log of received requests.

/** Which wire API a request used. */
export type Api = 'openai.chat' | 'openai.responses' | 'anthropic.messages';

export const APIS: readonly Api[] = ['openai.chat', 'openai.responses', 'anthropic.messages'];

/** A tool call made by the assistant earlier in the conversation. */
export interface ConversationToolCall {
  id: string;
  name: string;
  /** Parsed JSON arguments when they parse, else the raw string. */
  arguments: unknown;
}

/** A tool's result sent back to the model. */
export interface ConversationToolResult {
  toolCallId: string;
  /** Name of the tool, resolved from the assistant call with the same id when the wire format omits it. */
  name: string | undefined;
  /** The result as text (content parts joined with newlines). */
  content: string;
  isError: boolean;
}

export interface ConversationMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  /** Text content, parts joined with newlines; '' when there is none. */
  text: string;
  toolCalls: ConversationToolCall[];
  toolResults: ConversationToolResult[];
}

/**
 * One request seen the same way whichever API it came through: OpenAI chat messages,
 * Responses input items and Anthropic content blocks are all mapped onto
 * `system | user | assistant | tool` messages. Tool results always become `tool`
 * messages (one per result), even when Anthropic sends them inside a user message.
 */
export interface Conversation {
  api: Api;
  model: string;
  stream: boolean;
  /** System / developer / instructions text, joined with newlines. */
  system: string;
  /** The messages in order, system messages included. */
  messages: ConversationMessage[];
  /** Names of the tools the request offers. */
  tools: string[];
  /** Text of the last user message that has text, if any. */
  lastUserText: string | undefined;
  /** Number of assistant messages so far (0 on the first call of an agent loop). */
  turn: number;
  /** Tool results at the very end of the conversation (the model is being asked to react to them). */
  trailingToolResults: ConversationToolResult[];
  /** The raw request body. */
  body: Record<string, unknown>;
}

/** A pattern: a string matches when the value includes it; a RegExp when it tests true. */
export type TextPattern = string | RegExp;

/** Conditions a request must meet for a rule to apply; every given field must hold. */
export interface Matcher {
  api?: Api | readonly Api[];
  /** Exact model name (string) or a RegExp. */
  model?: string | RegExp;
  lastUserText?: TextPattern;
  systemText?: TextPattern;
  /**
   * `true`: the conversation ends with tool results; `false`: it does not;
   * a string: it ends with a result of the tool of that name.
   */
  hasToolResult?: boolean | string;
  /** Number of assistant messages so far. */
  turn?: number;
  /** Whether the request asked for streaming. */
  stream?: boolean;
  predicate?: (conversation: Conversation) => boolean;
}

export interface ToolCallReply {
  name: string;
  /** An object (serialized as JSON) or an already serialized JSON string. Default `{}`. */
  arguments?: unknown;
  /** Overrides the generated call id (`call_N` / `toolu_N`). */
  id?: string;
}

export interface UsageOverride {
  inputTokens?: number;
  outputTokens?: number;
}

interface ReplyTiming {
  /** Delay before the response headers (overrides the provider's `defaultLatencyMs`). */
  latencyMs?: number;
  /** Delay between streamed events (overrides the provider's `chunkDelayMs`). */
  chunkDelayMs?: number;
}

/** A normal assistant answer: text, tool calls, or both. */
export interface MessageReply extends ReplyTiming {
  text?: string;
  toolCalls?: ToolCallReply[];
  usage?: UsageOverride;
  /** `'length'` ends as cut off by the token limit (`length` / `incomplete` / `max_tokens`). */
  finish?: 'stop' | 'length';
  /** The model name reported in the response (default: the requested model). */
  model?: string;
  /**
   * Streaming only: after `afterEvents` events, either destroy the connection (`'drop'`)
   * or send the API's in-stream error event (`'error'`) and end the stream.
   */
  interrupt?: { afterEvents: number; with: 'drop' | 'error'; message?: string };
}

export interface ErrorReplySpec {
  /** HTTP status, e.g. 400, 401, 429, 500, 503, 529. */
  status: number;
  message: string;
  /** Overrides the provider error `type` (default derived from the status). */
  type?: string;
  /** OpenAI `code` (default derived from the status). */
  code?: string;
  /** Seconds; sent as `Retry-After`. */
  retryAfter?: number;
  /** Milliseconds; sent as `retry-after-ms` (both official clients honour it). */
  retryAfterMs?: number;
  /** Sent as `x-should-retry`, which both official clients obey over their status rules. */
  shouldRetry?: boolean;
  headers?: Record<string, string>;
}

export interface ErrorReply extends ReplyTiming {
  error: ErrorReplySpec;
}

/** Destroy the socket without answering. */
export interface DropReply extends ReplyTiming {
  drop: true;
}

export type Reply = MessageReply | ErrorReply | DropReply;

export interface Rule {
  /** Shown in no-match explanations and recorded with each request it answered. */
  name?: string;
  when?: Matcher;
  reply: Reply | ((conversation: Conversation) => Reply);
  /** How many requests this rule may answer; unlimited when absent. */
  times?: number;
}

export type RequestOutcome =
  | 'pending'
  | 'ok'
  | 'error'
  | 'unmatched'
  | 'dropped'
  | 'interrupted'
  | 'aborted'
  | 'bad-request';

/** One request the provider received. */
export interface RecordedRequest {
  /** 1-based arrival order within this provider (reset by `reset()`). */
  seq: number;
  api: Api | 'unknown';
  method: string;
  path: string;
  headers: Record<string, string>;
  body: unknown;
  /** `undefined` for requests whose body could not be read as that API's request. */
  conversation: Conversation | undefined;
  stream: boolean;
  /** Date.now() when the request arrived. */
  at: number;
  /** Index in the current rule list of the rule that answered, and its name. */
  rule: number | undefined;
  ruleName: string | undefined;
  /** HTTP status sent, if any was sent. */
  status: number | undefined;
  outcome: RequestOutcome;
  /** The error message sent (error replies, no-match explanations, injected stream errors). */
  error: string | undefined;
  /** The client went away before the provider finished answering. */
  aborted: boolean;
  /** SSE events written (streaming only). */
  eventsSent: number;
}
