import { type Match, scanText } from './detectors.ts';
import type { Finding, SpanApplier } from './redactor.ts';

// Streams (docs/redaction.md, "Streams"): a secret may arrive split across any number of chunks,
// so `push` emits only text that no future chunk can turn into part of a finding, and holds the
// rest back. The held tail is
//   - at least TAIL characters (formats with spaces in them, such as a spaced card number or
//     "Authorization: Bearer", are shorter than that), moved back to the start of the
//     unbroken run of non-space characters it cuts (tokens have no spaces), and
//   - moved back to the start of any finding that reaches into it;
// but never more than about `maxHoldback` characters (1.5× at most, between two scans): a run of
// non-space text longer than that is emitted redacted as far as it can be checked. The last CONTEXT characters already emitted are
// kept (in memory only) so detectors that look behind a value (key words) still see them.

const TAIL = 64;
const CONTEXT = 64;

export interface StreamRedactor {
  /** Takes the next chunk; returns the redacted text that is safe to emit now (maybe ''). */
  push(chunk: string): string;
  /** The stream ended: returns the rest, redacted. */
  end(): string;
  /** Everything found so far; offsets count from the start of the stream's raw text. */
  readonly findings: Finding[];
  /** Characters scanned so far (diagnostics: stays within a small multiple of the stream's length). */
  readonly scannedChars: number;
}

export function createStreamRedactor(
  spans: SpanApplier,
  options: { path: string; maxHoldback: number; maxStringLength: number },
): StreamRedactor {
  const findings: Finding[] = [];
  let context = ''; // raw text already emitted, for look-behind only
  let pending = ''; // raw text not yet emitted
  let emitted = 0; // raw characters emitted so far
  let failed = false;
  let scannedChars = 0;
  // Held text is scanned again only once it has grown by half (or TAIL), so a long run without
  // spaces pushed in tiny chunks costs amortized linear work, not one full rescan per chunk.
  let heldAtLastScan = 0;

  function release(cutAt: (text: string, base: number, matches: Match[]) => number): string {
    if (failed) {
      emitted += pending.length;
      pending = '';
      return '';
    }
    const text = context + pending;
    const base = context.length;
    scannedChars += text.length;
    let matches: Match[];
    try {
      matches = spans.detectors.length === 0 ? [] : scanText(text, spans.detectors);
    } catch {
      // Fail closed: nothing more of this stream is emitted.
      failed = true;
      findings.push({
        detector: 'scan_failed',
        action: 'mask',
        path: options.path,
        reason: 'detector_error',
      });
      emitted += pending.length;
      pending = '';
      return '[REDACTED:scan_failed:detector_error]';
    }
    matches = matches.filter((match) => match.end > base);
    const cut = cutAt(text, base, matches);
    const ready = matches
      .filter((match) => match.start < cut)
      .map((match) => ({ ...match, start: Math.max(match.start, base) - base }));
    const raw = text.slice(base, cut);
    for (const match of ready) {
      findings.push({
        detector: match.detector.name,
        action: spans.actionOf(match.detector),
        path: options.path,
        start: emitted + match.start,
        end: emitted + match.end - base,
      });
    }
    const out = spans.apply(
      raw,
      ready.map((match) => ({ ...match, end: match.end - base })),
      false,
    ).text as string;
    emitted += raw.length;
    context = (context + raw).slice(-CONTEXT);
    pending = text.slice(cut);
    heldAtLastScan = pending.length;
    return out;
  }

  return {
    findings,
    get scannedChars() {
      return scannedChars;
    },
    push(chunk) {
      pending += chunk;
      if (pending.length > options.maxStringLength) {
        failed = true;
        findings.push({ detector: 'scan_failed', action: 'mask', path: options.path, reason: 'too_large' });
        emitted += pending.length;
        pending = '';
        return '[REDACTED:scan_failed:too_large]';
      }
      if (pending.length <= TAIL || pending.length - heldAtLastScan < Math.max(TAIL, heldAtLastScan >> 1))
        return '';
      return release((text, base, matches) => {
        const floor = Math.max(base, text.length - options.maxHoldback);
        let cut = text.length - TAIL;
        // Back to the start of the non-space run the cut falls in.
        while (cut > floor && !/\s/.test(text[cut - 1]!) && !/\s/.test(text[cut]!)) cut--;
        // Back to the start of a finding the cut falls in, or that reaches the end (it may grow).
        for (let i = matches.length - 1; i >= 0; i--) {
          const match = matches[i]!;
          if (match.start < cut && match.end > cut) cut = Math.max(floor, match.start);
        }
        return Math.max(base, cut);
      });
    },
    end() {
      return release((text) => text.length);
    },
  };
}
