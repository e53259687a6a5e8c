import { hash } from 'node:crypto';
import {
  createRedactor,
  type LoadedPolicy,
  loadPolicy,
  type Policy,
  parsePolicy,
  type Redactor,
  SCAN_FAILED,
  type ScanFailure,
} from '@rewind/redact';
import type { Attributes, BlobHash, ErrorInfo, StepKind } from '@rewind/schema';
import { isPlainObject as isRecord } from '@rewind/schema';
import { canonical, inlineText, type Payload } from './json.ts';
import {
  serializeModelRequest,
  serializeModelResponse,
  serializePlain,
  serializePlainRequest,
} from './split.ts';

// Redaction in the SDK (docs/redaction.md, "Where it runs"; docs/sdk.md, "Redaction"). The hot
// path only serializes; the background drain (pipeline.ts) runs every payload, error and
// attribute set through the policy before an event or blob is built, so nothing unredacted is
// hashed, queued for the exporter, spooled or stored. Request hashes are taken of the redacted
// request: a replay computing a live request hash must go through `requestHashFor` (same
// redactor, same serializer), or the hashes of a call whose request held a secret never match.

/** The redactor a recorder uses: `policy` (a file path or a policy object) or the policy found in `cwd`; the key from `key` or $REWIND_PROJECT_KEY. Throws PolicyError / RedactionKeyError. */
export function resolveRedactor(options: {
  policy?: unknown;
  key?: string | Uint8Array | undefined;
  cwd: string;
  env: Record<string, string | undefined>;
}): { redactor: Redactor; loaded: LoadedPolicy } {
  let loaded: LoadedPolicy;
  if (options.policy === undefined) loaded = loadPolicy({ cwd: options.cwd });
  else if (typeof options.policy === 'string')
    loaded = loadPolicy({ file: options.policy, cwd: options.cwd });
  else loaded = { policy: parsePolicy(options.policy, 'the policy option'), source: 'flag', file: undefined };
  return { redactor: createRedactor(loaded.policy, { key: options.key, env: options.env }), loaded };
}

export type { Policy, Redactor };

/** Where a step's part sits, for rules: `tool:crm.lookup.request`. */
export function stepAt(
  kind: StepKind,
  name: string,
  part: 'request' | 'response' | 'error' | 'attributes',
): string {
  return `${kind}:${name}.${part}`;
}

function failed(reason: ScanFailure): string {
  return JSON.stringify(SCAN_FAILED(reason));
}

/** A payload after redaction; `redacted` when the policy changed something (or could not check it). */
export interface RedactedPayload {
  payload: Payload;
  redacted: boolean;
}

/**
 * Runs a serialized payload through the policy at `at`. Unchanged payloads are returned as they
 * were (same parts, same hashes); changed ones are serialized again with `serialize`, so a
 * redacted request still has its hash body and parts. Never throws: what cannot be checked
 * becomes a `[REDACTED:scan_failed:<reason>]` marker in place of the whole payload.
 */
export function redactPayload(
  redactor: Redactor,
  payload: Payload,
  at: string,
  serialize: (value: unknown) => Payload,
  options: { streamed?: boolean } = {},
): RedactedPayload {
  let value: unknown;
  try {
    value = JSON.parse(typeof payload === 'string' ? payload : inlineText(payload.body));
  } catch {
    return { payload: failed('unreadable'), redacted: true };
  }
  let out: unknown;
  let changed: boolean;
  try {
    const result = redactor.redactValue(value, at);
    out = result.value;
    changed = result.findings.length > 0;
  } catch {
    // a malformed location (a step name the path syntax cannot hold): rules cannot be checked
    return { payload: failed('rule_error'), redacted: true };
  }
  if (options.streamed === true) {
    try {
      if (redactChunks(redactor, out, `${at}.raw.chunks`)) changed = true;
    } catch {
      return { payload: failed('detector_error'), redacted: true };
    }
  }
  if (!changed) return { payload, redacted: false };
  try {
    return { payload: serialize(out), redacted: true };
  } catch {
    return { payload: failed('unreadable'), redacted: true };
  }
}

const MAX_CHUNK_DEPTH = 32;

interface Leaf {
  holder: Record<string, unknown> | unknown[];
  key: string | number;
}

function collectLeaves(value: unknown, path: string, groups: Map<string, Leaf[]>, depth: number): void {
  if (depth > MAX_CHUNK_DEPTH) return;
  const visit = (holder: Leaf['holder'], key: string | number, child: unknown, childPath: string) => {
    if (typeof child === 'string') {
      let leaves = groups.get(childPath);
      if (leaves === undefined) {
        leaves = [];
        groups.set(childPath, leaves);
      }
      leaves.push({ holder, key });
    } else if (typeof child === 'object' && child !== null) {
      collectLeaves(child, childPath, groups, depth + 1);
    }
  };
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) visit(value, index, value[index], `${path}[${index}]`);
  } else if (isRecord(value))
    for (const [key, child] of Object.entries(value))
      visit(value, key, child, `${path}.${JSON.stringify(key)}`);
}

/**
 * A streamed model response records its chunks in `raw.chunks`; a secret split across chunks is
 * in no single string. The strings at the same place of every chunk (`choices[0].delta.content`,
 * `delta.text`, `delta`) are one stream of text: they go through the stream redactor in order.
 * When it finds something, each string becomes what the redactor emitted for it (text held back
 * moves to a later chunk; the concatenation is the redacted stream). Mutates `response`, a value
 * the caller owns. Returns whether anything changed.
 */
export function redactChunks(redactor: Redactor, response: unknown, at: string): boolean {
  if (!isRecord(response) || !isRecord(response.raw) || !Array.isArray(response.raw.chunks)) return false;
  const groups = new Map<string, Leaf[]>();
  response.raw.chunks.forEach((chunk) => {
    collectLeaves(chunk, '', groups, 0);
  });
  let changed = false;
  for (const leaves of groups.values()) {
    if (leaves.length < 2) continue;
    const stream = redactor.createStream(at);
    const out = leaves.map((leaf) =>
      stream.push((leaf.holder as Record<string | number, string>)[leaf.key]!),
    );
    const rest = stream.end();
    if (stream.findings.length === 0) continue;
    out[out.length - 1] += rest;
    leaves.forEach((leaf, index) => {
      (leaf.holder as Record<string | number, unknown>)[leaf.key] = out[index];
    });
    changed = true;
  }
  return changed;
}

/** An error's type, message and stack through the policy at `at` (`run.error`, `tool:x.error`). Never throws. */
export function redactError(redactor: Redactor, info: ErrorInfo, at: string): ErrorInfo {
  let out: unknown;
  try {
    const fields: Record<string, unknown> = { type: info.type, message: info.message };
    if (info.stack !== undefined) fields.stack = info.stack;
    out = redactor.redactValue(fields, at).value;
  } catch {
    out = SCAN_FAILED('rule_error');
  }
  const redacted: ErrorInfo = isRecord(out)
    ? {
        type: typeof out.type === 'string' ? out.type : 'Error',
        message: typeof out.message === 'string' ? out.message : '[DROPPED:message]',
      }
    : { type: 'Error', message: typeof out === 'string' ? out : SCAN_FAILED('rule_error') };
  if (isRecord(out) && typeof out.stack === 'string') redacted.stack = out.stack;
  if (info.status !== undefined) redacted.status = info.status;
  return redacted;
}

/** Attributes through the policy at `at` (`run.attributes`, `model:x.attributes`). Never throws. */
export function redactAttributes(redactor: Redactor, attributes: Attributes, at: string): Attributes {
  try {
    const out = redactor.redactValue(attributes, at).value;
    if (isRecord(out)) return out as Attributes;
    return { 'rewind.redaction': typeof out === 'string' ? out : SCAN_FAILED('rule_error') };
  } catch {
    return { 'rewind.redaction': SCAN_FAILED('rule_error') };
  }
}

/** The serializer a step's request was recorded with. */
export function requestSerializer(kind: StepKind): (value: unknown) => Payload {
  return kind === 'model' ? serializeModelRequest : serializePlainRequest;
}

/** The serializer a step's response was recorded with. */
export function responseSerializer(kind: StepKind): (value: unknown) => Payload {
  return kind === 'model' ? serializeModelResponse : serializePlain;
}

/** sha256 of what a payload's content hash covers: its hash body (a request without `raw`), parts inlined. */
export function payloadContentHash(payload: Payload): BlobHash {
  const text = typeof payload === 'string' ? payload : inlineText(payload.hashBody ?? payload.body);
  return `sha256:${hash('sha256', text, 'hex')}`;
}

/**
 * The request hash a step records for `request`, with the recorder's redactor (or none): what a
 * replay must compare a live call against. Equal to `step.started.requestHash` of a recording
 * made with the same policy and key (tested in redaction.test.ts).
 */
export function requestHashFor(
  kind: StepKind,
  name: string,
  request: unknown,
  redactor: Redactor | undefined,
): BlobHash {
  const serialize = requestSerializer(kind);
  let payload = serialize(request);
  if (redactor !== undefined)
    payload = redactPayload(redactor, payload, stepAt(kind, name, 'request'), serialize).payload;
  return payloadContentHash(payload);
}

const REDACTION_MARK =
  /\[(?:REDACTED|DROPPED):[a-z0-9_.:-]{1,60}\]|«[a-z0-9_.-]{1,40}:[0-9a-f]{12}»|«sealed:v1:/;

/**
 * A recorded value holds a masked, dropped, pseudonymized or (still) sealed field, or a
 * scan-failure marker: what a replay serves from it is not what the agent saw, so the step is
 * labelled `redacted`.
 */
export function holdsRedaction(value: unknown): boolean {
  return REDACTION_MARK.test(typeof value === 'string' ? value : canonical(value));
}
