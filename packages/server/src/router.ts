import type { KeyKind } from './auth.ts';
import type { Handler } from './context.ts';
import { getBlob, headBlob, postBlobs, postMissing, putBlob } from './routes/blobs.ts';
import { postEvents } from './routes/events.ts';
import { healthz, metrics, readyz } from './routes/ops.ts';
import { postOtlpTraces } from './routes/otlp.ts';
import { cancelReplay, getReplay, postReplay, replayEvents } from './routes/replays.ts';
import { getRun, getStep, listEvents, listRuns, listSteps } from './routes/runs.ts';

// The route table (docs/api.md). A pattern is a path with `:name` segments; `auth` is the key kind
// a route needs (none: open even when keys are configured).

export interface Route {
  method: string;
  pattern: string;
  auth: KeyKind | 'none';
  handler: Handler;
}

export const ROUTES: Route[] = [
  { method: 'POST', pattern: '/v1/events', auth: 'ingest', handler: postEvents },
  { method: 'PUT', pattern: '/v1/blobs/sha256/:hex', auth: 'ingest', handler: putBlob },
  // HEAD is a write-side check (the exporter asks before uploading), so it takes an ingest key.
  { method: 'HEAD', pattern: '/v1/blobs/sha256/:hex', auth: 'ingest', handler: headBlob },
  { method: 'GET', pattern: '/v1/blobs/sha256/:hex', auth: 'read', handler: getBlob },
  { method: 'POST', pattern: '/v1/blobs', auth: 'ingest', handler: postBlobs },
  { method: 'POST', pattern: '/v1/blobs/missing', auth: 'ingest', handler: postMissing },
  { method: 'POST', pattern: '/v1/otlp/traces', auth: 'ingest', handler: postOtlpTraces },
  { method: 'GET', pattern: '/v1/runs', auth: 'read', handler: listRuns },
  { method: 'GET', pattern: '/v1/runs/:id', auth: 'read', handler: getRun },
  { method: 'GET', pattern: '/v1/runs/:id/steps', auth: 'read', handler: listSteps },
  { method: 'GET', pattern: '/v1/runs/:id/steps/:seq', auth: 'read', handler: getStep },
  { method: 'GET', pattern: '/v1/runs/:id/events', auth: 'read', handler: listEvents },
  // Creating and cancelling a replay session write to the store: they take an ingest key.
  { method: 'POST', pattern: '/v1/replays', auth: 'ingest', handler: postReplay },
  { method: 'GET', pattern: '/v1/replays/:id', auth: 'read', handler: getReplay },
  { method: 'GET', pattern: '/v1/replays/:id/events', auth: 'read', handler: replayEvents },
  { method: 'POST', pattern: '/v1/replays/:id/cancel', auth: 'ingest', handler: cancelReplay },
  { method: 'GET', pattern: '/healthz', auth: 'none', handler: healthz },
  { method: 'GET', pattern: '/readyz', auth: 'none', handler: readyz },
  { method: 'GET', pattern: '/metrics', auth: 'read', handler: metrics },
];

export type RouteMatch =
  | { kind: 'found'; route: Route; rawParams: string[] }
  | { kind: 'method_not_allowed'; pattern: string; allowed: string[] }
  | { kind: 'not_found' };

interface CompiledPattern {
  pattern: string;
  segments: string[];
  routes: Route[];
}

export class Router {
  readonly #patterns: CompiledPattern[] = [];

  constructor(routes: readonly Route[]) {
    for (const route of routes) {
      let compiled = this.#patterns.find((p) => p.pattern === route.pattern);
      if (compiled === undefined) {
        compiled = { pattern: route.pattern, segments: route.pattern.split('/').slice(1), routes: [] };
        this.#patterns.push(compiled);
      }
      compiled.routes.push(route);
    }
  }

  /** Matches a raw (undecoded) path; literal segments win over parameters by table order. */
  match(method: string, path: string): RouteMatch {
    const segments = path.split('/').slice(1);
    for (const compiled of this.#patterns) {
      if (compiled.segments.length !== segments.length) continue;
      const rawParams: string[] = [];
      let ok = true;
      for (let i = 0; i < segments.length; i++) {
        const expected = compiled.segments[i]!;
        const actual = segments[i]!;
        if (expected.startsWith(':')) {
          if (actual === '') ok = false;
          else rawParams.push(actual);
        } else if (expected !== actual) ok = false;
        if (!ok) break;
      }
      if (!ok) continue;
      const route = compiled.routes.find((r) => r.method === method);
      if (route === undefined)
        return {
          kind: 'method_not_allowed',
          pattern: compiled.pattern,
          allowed: compiled.routes.map((r) => r.method),
        };
      return { kind: 'found', route, rawParams };
    }
    return { kind: 'not_found' };
  }
}
