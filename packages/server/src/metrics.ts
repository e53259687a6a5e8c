// Prometheus metrics in the text exposition format (docs/server.md "Metrics"). A handful of
// counters, one gauge and one histogram: no client library needed.

const BATCH_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export class Metrics {
  readonly events = { accepted: 0, duplicate: 0, rejected: 0 };
  /** Bytes of blobs received and stored (decoded), by PUT and POST /v1/blobs. */
  blobBytes = 0;
  storeErrors = 0;
  /** Distinct blob hashes found missing at ingest and not uploaded since (see PendingTracker). */
  pendingArtifacts = 0;
  pendingChecksSkipped = 0;
  readonly #requests = new Map<string, number>();
  readonly #batchBuckets = new Array<number>(BATCH_BUCKETS.length).fill(0);
  #batchCount = 0;
  #batchSum = 0;

  request(route: string, status: number): void {
    const key = `${route}\u0000${status}`;
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
  }

  batch(seconds: number): void {
    this.#batchCount++;
    this.#batchSum += seconds;
    for (let i = 0; i < BATCH_BUCKETS.length; i++) if (seconds <= BATCH_BUCKETS[i]!) this.#batchBuckets[i]!++;
  }

  render(): string {
    const lines: string[] = [];
    const family = (name: string, type: string, help: string) =>
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    family('rewind_events_total', 'counter', 'Events received by POST /v1/events, by outcome.');
    for (const [outcome, n] of Object.entries(this.events))
      lines.push(`rewind_events_total{outcome="${outcome}"} ${n}`);
    family(
      'rewind_ingest_batch_seconds',
      'histogram',
      'Time to answer POST /v1/events (read, parse, store), in seconds.',
    );
    for (let i = 0; i < BATCH_BUCKETS.length; i++)
      lines.push(`rewind_ingest_batch_seconds_bucket{le="${BATCH_BUCKETS[i]}"} ${this.#batchBuckets[i]}`);
    lines.push(
      `rewind_ingest_batch_seconds_bucket{le="+Inf"} ${this.#batchCount}`,
      `rewind_ingest_batch_seconds_sum ${this.#batchSum}`,
      `rewind_ingest_batch_seconds_count ${this.#batchCount}`,
    );
    family('rewind_blob_bytes_total', 'counter', 'Bytes of blobs received (decoded) and stored.');
    lines.push(`rewind_blob_bytes_total ${this.blobBytes}`);
    family(
      'rewind_pending_artifacts',
      'gauge',
      'Distinct blobs referenced by events this process accepted, missing when checked and not uploaded to it since (approximate; rewind doctor is exact).',
    );
    lines.push(`rewind_pending_artifacts ${this.pendingArtifacts}`);
    family(
      'rewind_pending_artifact_checks_skipped_total',
      'counter',
      'Blob references not checked for the pending-artifacts gauge (over the check budget).',
    );
    lines.push(`rewind_pending_artifact_checks_skipped_total ${this.pendingChecksSkipped}`);
    family('rewind_store_errors_total', 'counter', 'Store operations that failed (the request got a 503).');
    lines.push(`rewind_store_errors_total ${this.storeErrors}`);
    family('rewind_http_requests_total', 'counter', 'HTTP requests answered, by route and status.');
    for (const [key, n] of [...this.#requests].sort()) {
      const [route, status] = key.split('\u0000');
      lines.push(`rewind_http_requests_total{route="${escapeLabel(route!)}",status="${status}"} ${n}`);
    }
    return `${lines.join('\n')}\n`;
  }
}
