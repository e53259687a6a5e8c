import type { Finding, Redactor } from '@rewind/redact';
import { isPlainObject as isRecord } from '@rewind/schema';

// The policy again at ingest (docs/redaction.md, "On the server"). The SDK redacts before
// anything leaves the process; the server checks what arrives with the same detectors and fails
// closed: what cannot be checked is rejected, never stored.
//
// - Events are not content-addressed: their free-text fields (error, attributes, agent and step
//   names) are redacted in place with the policy's actions.
// - Blobs are content-addressed: rewriting one would change its hash, and the events (already
//   stored, or in another request) that point to it would point to nothing. So a blob holding
//   anything the policy redacts is REJECTED, with a reason telling the operator to configure the
//   same policy in the SDK (which then sends the redacted blob under its own hash).
//
// Field rules need to know where a value sits in a run, which a blob does not say: the server
// applies the policy's detectors (location-free), the SDK applies detectors and rules.

const DESCRIBE_LIMIT = 3;

function describe(findings: readonly Finding[]): string {
  const shown = findings
    .slice(0, DESCRIBE_LIMIT)
    .map((f) => `${f.detector}${f.path === '' ? '' : ` at ${f.path}`}`)
    .join(', ');
  return findings.length > DESCRIBE_LIMIT ? `${shown}, … (${findings.length} in all)` : shown;
}

function scanFailure(findings: readonly Finding[]): Finding | undefined {
  return findings.find((finding) => finding.detector === 'scan_failed');
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Why a blob may not be stored under the policy, or undefined when it is clean. A blob is JSON
 * (a payload or a part); anything else is checked as text. Never throws.
 */
export function blobRejection(redactor: Redactor, bytes: Uint8Array): string | undefined {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    return 'redaction_failed: the blob is not UTF-8 text, so the redaction policy cannot check it; Rewind payloads are JSON';
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = text;
  }
  let findings: Finding[];
  try {
    findings = redactor.redactValue(value).findings;
  } catch (error) {
    return `redaction_failed: the redaction policy could not check the blob (${(error as Error).message})`;
  }
  const failure = scanFailure(findings);
  if (failure !== undefined)
    return `redaction_failed: the blob could not be checked (${failure.reason ?? 'scan failed'}${failure.path === '' ? '' : ` at ${failure.path}`}), so it is not stored`;
  if (findings.length > 0)
    return `contains_redactable: the blob holds what the server's redaction policy redacts (${describe(findings)}); a blob cannot be rewritten without changing its hash, so configure the same policy in the SDK (rewind.policy.json, docs/redaction.md) so that it is redacted before it is sent`;
  return undefined;
}

/** The fields of an event that hold free text the agent chose. */
const TEXT_FIELDS = ['error', 'attributes', 'agent', 'name'] as const;

/**
 * An event with its free-text fields redacted, or the reason it cannot be stored. The event is
 * not modified (a redacted copy is returned). Shapes are checked later by the store.
 */
export function redactEvent(redactor: Redactor, event: unknown): { event: unknown } | { reason: string } {
  if (!isRecord(event)) return { event };
  let copy: Record<string, unknown> | undefined;
  for (const field of TEXT_FIELDS) {
    const value = event[field];
    if (value === undefined) continue;
    let result: ReturnType<Redactor['redactValue']>;
    try {
      result = redactor.redactValue(value);
    } catch (error) {
      return { reason: `redaction_failed: ${field} could not be checked (${(error as Error).message})` };
    }
    const failure = scanFailure(result.findings);
    if (failure !== undefined)
      return {
        reason: `redaction_failed: ${field} could not be checked (${failure.reason ?? 'scan failed'})`,
      };
    if (result.findings.length > 0) {
      copy ??= { ...event };
      copy[field] = result.value;
    }
  }
  return { event: copy ?? event };
}
