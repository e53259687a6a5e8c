import {
  createRedactor,
  type LoadedPolicy,
  loadPolicy,
  PolicyError,
  RedactionKeyError,
  type Redactor,
} from '@rewind/redact';
import { type LogLine, ServerConfigError, startServer } from '@rewind/server';
import type { StoreConfig } from './config.ts';
import { usageError } from './errors.ts';
import type { CliContext } from './main.ts';
import { openConfiguredStore } from './open-store.ts';
import { type LocalWorkers, startLocalWorkers } from './worker/command.ts';

// `rewind serve`: the HTTP API (docs/server.md) on the configured store, until SIGTERM or SIGINT:
// then it stops accepting connections, lets requests in flight finish, closes the store, exits 0.

export interface ServeOptions {
  host: string;
  port: number;
  ingestKeys: string[];
  readKeys: string[];
  /** --policy: a policy file; otherwise rewind.policy.json, "policy" in rewind.config.json, the default. */
  policy?: string | undefined;
  /** Local `rewind worker` processes for queued replay sessions (0: none). */
  workers: number;
}

/** The policy the server enforces at ingest, found like the SDK's (docs/redaction.md); a bad policy or missing key is a usage error. */
export function serverRedactor(
  file: string | undefined,
  context: Pick<CliContext, 'cwd' | 'env'>,
): { redactor: Redactor; loaded: LoadedPolicy } {
  try {
    const loaded = loadPolicy({ file, cwd: context.cwd });
    return { redactor: createRedactor(loaded.policy, { env: context.env }), loaded };
  } catch (error) {
    if (PolicyError.isInstance(error) || RedactionKeyError.isInstance(error))
      throw usageError(`${(error as Error).message} — fix the policy (docs/redaction.md) and start again`);
    throw error;
  }
}

/** Keys from the flags and from a comma-separated environment variable, together. */
export function collectKeys(flags: readonly string[] | undefined, env: string | undefined): string[] {
  const fromEnv = (env ?? '')
    .split(',')
    .map((key) => key.trim())
    .filter((key) => key !== '');
  return [...new Set([...(flags ?? []), ...fromEnv])];
}

export function parsePort(value: string | undefined): number {
  if (value === undefined) return 8787;
  const port = /^\d{1,5}$/.test(value) ? Number(value) : Number.NaN;
  if (!(port >= 0 && port <= 65_535))
    throw usageError(`--port must be a whole number from 0 to 65535 (0: any free port), got '${value}'`);
  return port;
}

export async function serve(
  options: ServeOptions,
  config: StoreConfig,
  context: CliContext,
): Promise<number> {
  const { redactor, loaded } = serverRedactor(options.policy, context);
  const store = await openConfiguredStore(config, { create: true });
  const log = (line: LogLine) =>
    context.stdout(`${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`);
  log({ level: 'info', msg: 'redaction policy', source: loaded.source, file: loaded.file ?? null });
  let server: Awaited<ReturnType<typeof startServer>>;
  const { policy: _policy, workers: _workers, ...listen } = options;
  try {
    server = await startServer({ store, ...listen, redactor, log });
  } catch (error) {
    await store.close().catch(() => {});
    if (error instanceof ServerConfigError) throw usageError(error.message);
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE')
      throw usageError(
        `port ${options.port} on ${options.host} is already in use: choose another with --port`,
      );
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND')
      throw usageError(`cannot listen on ${options.host}: no such local address — check --host`);
    throw error;
  }
  // Listen for the signals first: a SIGTERM while the workers start must stop gracefully too.
  const stop = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  const queue = store.replayQueue?.();
  let workers: LocalWorkers | undefined;
  if (options.workers > 0 && queue !== undefined)
    workers = startLocalWorkers(
      options.workers,
      config,
      queue,
      context,
      log as (line: Record<string, unknown>) => void,
    );
  const signal = await stop;
  log({ level: 'info', msg: 'stopping', signal });
  await workers?.stop();
  await server.close();
  await store.close();
  log({ level: 'info', msg: 'stopped' });
  return 0;
}
