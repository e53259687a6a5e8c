// The Rewind server (docs/server.md, docs/api.md).
export { isLoopbackHost, type KeyKind } from './auth.ts';
export type { Handler, Reply, RouteRequest, ServerContext } from './context.ts';
export { HttpError } from './http-error.ts';
export { DEFAULT_LIMITS, type ServerLimits } from './limits.ts';
export type { Metrics } from './metrics.ts';
export { ROUTES, type Route } from './router.ts';
export { DEFAULT_REPLAY_SETTINGS, type ReplaySettings, sessionJson } from './routes/replays.ts';
export {
  type LogLine,
  type RunningServer,
  ServerConfigError,
  type StartServerOptions,
  startServer,
} from './server.ts';
