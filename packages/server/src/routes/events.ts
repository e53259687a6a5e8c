import { performance } from 'node:perf_hooks';
import type { Handler } from '../context.ts';
import { withStore } from '../context.ts';
import { badRequest, HttpError } from '../http-error.ts';
import { isPlainObject, readJson } from '../json-body.ts';
import { redactEvent } from '../redaction.ts';

// POST /v1/events: a batch of events, stored idempotently by eventId, answered per event in input
// order. The valid events of a batch are stored even when others are rejected.

export const postEvents: Handler = async (context, { req }) => {
  const started = performance.now();
  const { limits, metrics, store } = context;
  const body = await readJson(req, {
    maxBytes: limits.maxEventBytes,
    maxDepth: limits.maxDepth,
    what: 'the events batch',
  });
  if (!isPlainObject(body) || !Array.isArray(body.events)) {
    throw badRequest('invalid_body', 'the body must be a JSON object {"events": [ <event>, ... ]}');
  }
  const events: unknown[] = body.events;
  if (events.length > limits.maxEvents) {
    throw new HttpError(
      413,
      'too_large',
      `the batch holds ${events.length} events, more than the limit of ${limits.maxEvents}: send smaller batches`,
      { details: { limit: limits.maxEvents, unit: 'events', count: events.length } },
    );
  }
  // The policy first (fail closed): an event it cannot check is answered rejected, never stored.
  const checked = events.map((event) => redactEvent(context.redactor, event));
  const toStore: unknown[] = [];
  for (const item of checked) if ('event' in item) toStore.push(item.event);
  const result = await withStore(context, () => store.append(toStore));
  const refused = events.length - toStore.length;
  metrics.events.accepted += result.accepted;
  metrics.events.duplicate += result.duplicates;
  metrics.events.rejected += result.rejected + refused;
  if (result.accepted > 0) context.pending.accepted(toStore, result.outcomes);
  let next = 0;
  const outcomes = checked.map((item, index) => {
    if ('event' in item) return result.outcomes[next++]!;
    const event = events[index];
    const eventId = isPlainObject(event) && typeof event.eventId === 'string' ? event.eventId : '';
    return { status: 'rejected' as const, eventId, reason: item.reason, field: undefined };
  });
  const results = outcomes.map((outcome) =>
    outcome.status === 'rejected'
      ? {
          eventId: outcome.eventId === '' ? null : outcome.eventId,
          status: outcome.status,
          reason: outcome.reason,
          ...(outcome.field === undefined ? {} : { field: outcome.field }),
        }
      : { eventId: outcome.eventId, status: outcome.status },
  );
  metrics.batch((performance.now() - started) / 1000);
  return {
    status: 200,
    json: {
      accepted: result.accepted,
      duplicates: result.duplicates,
      rejected: result.rejected + refused,
      results,
    },
  };
};
