import type { BlobHash, BlobRef } from '@rewind/schema';
import type { RunRecord, StepRecord, Store } from './store.ts';

// Pending artifacts (SPEC §7, issue 4): blobs that a run's stored events refer to but the blob
// store does not hold (not uploaded yet, or lost). Found from the refs alone (`BlobRef.parts`
// names a payload's parts), so nothing is read or decompressed: the server's `GET /v1/runs/:id`
// and `rewind doctor` use this; `rewind show` reads the payloads and names failures the same way.

/** A payload a run refers to, and where: `run input`, `step 3 request`, … */
export interface PayloadLocation {
  where: string;
  ref: BlobRef;
}

export interface PendingArtifact {
  hash: BlobHash;
  where: string;
}

export function stepPayloadWhere(seq: number, which: 'request' | 'response'): string {
  return `step ${seq} ${which}`;
}

/** Sorts `where` labels: run input, run output, run tape, then steps by seq. */
export function compareWhere(a: string, b: string): number {
  return whereOrder(a) - whereOrder(b) || a.localeCompare(b);
}

function whereOrder(where: string): number {
  if (where === 'run input') return -3;
  if (where === 'run output') return -2;
  if (where === 'run tape') return -1;
  return Number(/^step (\d+)/.exec(where)?.[1] ?? 0);
}

/** Every payload of a run and its steps, in `compareWhere` order. */
export function payloadLocations(run: RunRecord, steps: readonly StepRecord[]): PayloadLocation[] {
  const out: PayloadLocation[] = [];
  if (run.input !== null) out.push({ where: 'run input', ref: run.input });
  if (run.output !== null) out.push({ where: 'run output', ref: run.output });
  if (run.tape !== null) out.push({ where: 'run tape', ref: run.tape });
  for (const step of steps) {
    out.push({ where: stepPayloadWhere(step.seq, 'request'), ref: step.request });
    if (step.response !== null)
      out.push({ where: stepPayloadWhere(step.seq, 'response'), ref: step.response });
  }
  return out;
}

/** How many steps one timeline read asks for. */
const PAGE = 1000;

/** Reads every step of a run, in seq order, following the timeline cursor. */
export async function readWholeTimeline(store: Store, runId: string): Promise<StepRecord[]> {
  const steps: StepRecord[] = [];
  let afterSeq = 0;
  for (;;) {
    const page = await store.readTimeline(runId, { afterSeq, limit: PAGE });
    steps.push(...page.items);
    const last = page.items.at(-1);
    if (page.nextCursor === undefined || last === undefined) return steps;
    afterSeq = last.seq;
  }
}

/**
 * The blobs (payloads and their parts) a run's events refer to that the blob store lacks, one
 * entry per (hash, where), in `compareWhere` order; undefined when there is no such run.
 */
export async function findPendingArtifacts(
  store: Store,
  runId: string,
): Promise<PendingArtifact[] | undefined> {
  const run = await store.getRun(runId);
  if (run === undefined) return undefined;
  return pendingArtifactsOf(store, payloadLocations(run, await readWholeTimeline(store, runId)));
}

export async function pendingArtifactsOf(
  store: Store,
  locations: readonly PayloadLocation[],
): Promise<PendingArtifact[]> {
  const hashes = new Set<BlobHash>();
  for (const { ref } of locations) {
    hashes.add(ref.hash);
    for (const part of ref.parts ?? []) hashes.add(part);
  }
  if (hashes.size === 0) return [];
  const missing = new Set(await store.blobs.missing([...hashes]));
  const out: PendingArtifact[] = [];
  for (const { where, ref } of locations) {
    if (missing.has(ref.hash)) out.push({ hash: ref.hash, where });
    for (const part of ref.parts ?? []) if (missing.has(part)) out.push({ hash: part, where });
  }
  return out;
}
