import { dateNow, OriginalDate, performanceNow } from './originals.ts';

// Step and event times come from the monotonic clock (performance.now), anchored once to the
// wall clock: every time is then ordered exactly as the calls happened (a child never starts
// before its parent, a step never finishes before it starts), with microsecond precision.

const wallBase = dateNow();
const monoBase = performanceNow();

/** The real monotonic clock in ms (untaped): what the hot path records. */
export const monotonicNow: () => number = performanceNow;

/** Epoch milliseconds (fractional) of a monotonic reading. */
export function epochMsOf(mono: number): number {
  return wallBase + (mono - monoBase);
}

/** ISO 8601 UTC time with microseconds, e.g. `2026-11-25T10:00:00.123456Z`. */
let cachedMs = Number.NaN;
let cachedPrefix = '';

export function isoTimeOf(mono: number): string {
  const ms = epochMsOf(mono);
  const whole = Math.floor(ms);
  const micros = Math.min(999, Math.floor((ms - whole) * 1000));
  if (whole !== cachedMs) {
    cachedMs = whole;
    cachedPrefix = new OriginalDate(whole).toISOString().slice(0, -1);
  }
  return `${cachedPrefix}${micros < 10 ? '00' : micros < 100 ? '0' : ''}${micros}Z`;
}
