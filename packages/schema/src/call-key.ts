import type { StepKind } from './payloads.ts';

// A call key is a step's stable replay identity (SPEC §2): the parent's call key, `/`, then
// `kind:name#ordinal`, where ordinal counts earlier siblings with the same kind and name.
// Top-level steps have no parent part. Names are escaped so `/` and `#` stay unambiguous.

function escapeName(name: string): string {
  return name.replace(/[%/#]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export function callKeySegment(kind: StepKind, name: string, ordinal: number): string {
  return `${kind}:${escapeName(name)}#${ordinal}`;
}

export function formatCallKey(
  parentCallKey: string | null,
  kind: StepKind,
  name: string,
  ordinal: number,
): string {
  const segment = callKeySegment(kind, name, ordinal);
  return parentCallKey === null || parentCallKey === '' ? segment : `${parentCallKey}/${segment}`;
}

export interface CallKeySegment {
  kind: string;
  name: string;
  ordinal: number;
}

/** Splits a call key into its segments, or returns undefined when it is malformed. */
export function parseCallKey(callKey: string): CallKeySegment[] | undefined {
  const segments: CallKeySegment[] = [];
  for (const part of callKey.split('/')) {
    const match = /^([a-z]+):([^#]*)#(\d+)$/.exec(part);
    if (match === null) return undefined;
    let name: string;
    try {
      name = decodeURIComponent(match[2]!);
    } catch {
      return undefined;
    }
    segments.push({ kind: match[1]!, name, ordinal: Number(match[3]) });
  }
  return segments;
}
