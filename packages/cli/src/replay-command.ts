import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { RewindError } from '@rewind/schema';
import { type ForkOptions, ReplayError, type ReplayResult, replay } from '@rewind/sdk';
import type { Store } from '@rewind/store';
import { loadAgent } from './agents.ts';
import type { StoreConfig } from './config.ts';
import { CliError, dataError, usageError } from './errors.ts';
import { oneLine } from './format.ts';
import { openConfiguredStore, storeError } from './open-store.ts';

// `rewind replay <runId> --mode exact|cached` and `rewind fork <runId> --at <seq> …`
// (docs/replay.md): load the agent's code from the config, replay, print the verdict.
// Exit codes: 0 reproduced, 1 diverged, 2 usage, 3 failed to run.

export const EXIT_DIVERGED = 1;

export interface ReplayContext {
  cwd: string;
  env: Record<string, string | undefined>;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export const REPLAY_EXIT_HELP = `Exit codes:
  0  reproduced: no divergence and the same result
  1  diverged (the first divergence is printed)
  2  usage error: unknown flag, a bad --at/--set/--response, an agent missing from rewind.config.json
  3  failed to run: unknown run, store unreachable, blobs missing, agent module or export not found`;

export const AGENTS_HELP = `Agent code: the run's agent is called again from your code, found through
rewind.config.json in the working directory (or rewind.config.ts exporting the same):
  {"agents": {"<agent name>": "./path/module.ts#exportName"}}
The export is the agent entrypoint (a recorder.agent(…) wrapper or a plain function); it is
called with the recorded input.`;

/** The runId argument, refusing bundle files (a later version reads them). */
export function runIdArgument(command: string, positionals: string[], cwd: string): string {
  const [target, ...extra] = positionals;
  if (target === undefined) throw usageError(`missing <runId> — see \`rewind ${command} --help\``);
  if (extra.length > 0)
    throw usageError(`unexpected argument '${extra[0]}' — see \`rewind ${command} --help\``);
  const asFile = resolve(cwd, target);
  if (/\.(tgz|tar\.gz|rewind)$/.test(target) || (existsSync(asFile) && statSync(asFile).isFile()))
    throw usageError(
      `${target} is a file: replaying a bundle file is not supported yet (bundles come in a later version of Rewind) — replay a run id from the store instead`,
    );
  return target;
}

function labelsLine(labels: ReplayResult['labels']): string {
  const parts = Object.entries(labels)
    .filter(([, count]) => count > 0)
    .map(([label, count]) => `${count} ${label}`);
  return parts.length === 0 ? 'no steps' : parts.join(', ');
}

function short(value: unknown): string {
  const text = value === undefined ? '(absent)' : JSON.stringify(value);
  return oneLine(text.length > 100 ? `${text.slice(0, 97)}…` : text);
}

export function renderResult(result: ReplayResult): string[] {
  const what = result.forkOf === undefined ? `${result.mode} replay` : `fork at seq ${result.forkOf.atSeq}`;
  const lines = [`${what} of run ${result.replayOf} → new run ${result.runId}: ${result.verdict}`];
  lines.push(`steps: ${labelsLine(result.labels)}`);
  const d = result.divergence;
  if (d !== null) {
    lines.push(`first divergence: ${d.message}`);
    for (const field of d.diff.slice(0, 10))
      lines.push(
        `  ${field.path || '/'}: recorded ${short(field.recorded)}, replayed ${short(field.replayed)}`,
      );
    if (d.diff.length > 10) lines.push(`  … ${d.diff.length - 10} more field(s)`);
  }
  if (result.status === 'ok') lines.push(`output: ${short(result.output)}`);
  else lines.push(`${result.status}: ${result.error?.type}: ${oneLine(result.error?.message ?? '')}`);
  lines.push(`see it with \`rewind show ${result.runId}\``);
  return lines;
}

export function resultJson(result: ReplayResult): Record<string, unknown> {
  const out: Record<string, unknown> = { runId: result.runId, replayOf: result.replayOf };
  if (result.forkOf !== undefined) out.forkOf = result.forkOf;
  Object.assign(out, {
    mode: result.mode,
    verdict: result.verdict,
    divergence: result.divergence,
    labels: result.labels,
    output: result.output,
  });
  return out;
}

async function runReplay(
  runId: string,
  config: StoreConfig,
  context: ReplayContext,
  asJson: boolean,
  options: { mode: 'exact' | 'cached'; fork?: ForkOptions },
): Promise<number> {
  const store: Store = await openConfiguredStore(config, { create: false });
  try {
    let run: Awaited<ReturnType<Store['getRun']>>;
    try {
      run = await store.getRun(runId);
    } catch (error) {
      throw storeError(config, error);
    }
    if (run === undefined)
      throw dataError(`no run ${runId} in ${config.display} — list runs with \`rewind runs\``);
    if (run.agent === null) throw dataError(`run ${runId} has no run.started event: its agent is unknown`);
    const agent = await loadAgent(run.agent, context.cwd);
    let result: ReplayResult;
    try {
      result = await replay(agent, runId, {
        store,
        mode: options.mode,
        fork: options.fork,
        cwd: context.cwd,
        env: context.env,
      });
    } catch (error) {
      if (ReplayError.isInstance(error)) {
        if (error.code === 'invalid_fork' || error.code === 'invalid_options')
          throw usageError(error.message);
        if (error.code === 'blobs_missing') {
          for (const hash of error.missing) context.stderr(`missing blob ${hash}\n`);
        }
        throw dataError(error.message);
      }
      if (error instanceof CliError) throw error;
      if (RewindError.isInstance(error)) throw storeError(config, error);
      throw dataError(`the replay failed to run: ${error instanceof Error ? error.message : String(error)}`);
    }
    context.stdout(
      asJson ? `${JSON.stringify(resultJson(result), null, 2)}\n` : `${renderResult(result).join('\n')}\n`,
    );
    return result.verdict === 'reproduced' ? 0 : EXIT_DIVERGED;
  } finally {
    await store.close();
  }
}

export function parseMode(value: string | undefined): 'exact' | 'cached' {
  if (value === undefined || value === 'exact' || value === 'cached') return value ?? 'exact';
  throw usageError(`--mode must be exact or cached, not '${value}' — see \`rewind replay --help\``);
}

export async function replayRun(
  positionals: string[],
  values: { mode?: string | undefined; json?: boolean | undefined },
  config: () => StoreConfig,
  context: ReplayContext,
): Promise<number> {
  const runId = runIdArgument('replay', positionals, context.cwd);
  return runReplay(runId, config(), context, values.json === true, { mode: parseMode(values.mode) });
}

function parseJson(flag: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw usageError(
      `${flag} needs JSON, got ${JSON.stringify(text)} (${(error as Error).message}) — quote strings: '"text"'`,
    );
  }
}

export async function forkRun(
  positionals: string[],
  values: {
    at?: string | undefined;
    set?: string[] | undefined;
    response?: string | undefined;
    error?: string | undefined;
    then?: string | undefined;
    json?: boolean | undefined;
  },
  config: () => StoreConfig,
  context: ReplayContext,
): Promise<number> {
  const runId = runIdArgument('fork', positionals, context.cwd);
  if (values.at === undefined)
    throw usageError('missing --at <seq>: the step to edit — see `rewind fork --help`');
  if (!/^[1-9]\d*$/.test(values.at))
    throw usageError(`--at must be a step's seq (1, 2, …), not '${values.at}'`);
  const fork: ForkOptions = { atSeq: Number(values.at) };
  if (values.set !== undefined && values.set.length > 0)
    fork.set = values.set.map((item) => {
      const at = item.indexOf('=');
      if (at <= 0)
        throw usageError(
          `--set needs <json-pointer>=<json>, e.g. --set '/arguments/city="Oslo"', not '${item}'`,
        );
      return { pointer: item.slice(0, at), value: parseJson('--set', item.slice(at + 1)) };
    });
  if (values.response !== undefined) {
    let text = values.response;
    if (text.startsWith('@')) {
      const file = resolve(context.cwd, text.slice(1));
      try {
        text = readFileSync(file, 'utf8');
      } catch (error) {
        throw usageError(`--response ${values.response}: cannot read ${file} (${(error as Error).message})`);
      }
    }
    fork.response = parseJson('--response', text);
  }
  if (values.error !== undefined) fork.error = values.error;
  if (values.then !== undefined) {
    if (values.then !== 'cached' && values.then !== 'live')
      throw usageError(`--then must be cached or live, not '${values.then}'`);
    fork.then = values.then;
  }
  return runReplay(runId, config(), context, values.json === true, { mode: 'exact', fork });
}

export const replayOptions = {
  mode: { type: 'string' },
  json: { type: 'boolean' },
} as const;

export const forkOptions = {
  at: { type: 'string' },
  set: { type: 'string', multiple: true },
  response: { type: 'string' },
  error: { type: 'string' },
  then: { type: 'string' },
  json: { type: 'boolean' },
} as const;
