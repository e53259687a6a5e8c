import { readFileSync } from 'node:fs';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import type { ListRunsQuery, StoredRunStatus } from '@rewind/store';
import { ConfigError, resolveStoreConfig, type StoreConfig } from './config.ts';
import { diagnose } from './doctor.ts';
import { CliError, dataError, EXIT_DATA, EXIT_OK, EXIT_USAGE, usageError } from './errors.ts';
import { createStyle, plural, shouldColor } from './format.ts';
import { guard, openConfiguredStore, storeError } from './open-store.ts';
import { redactCheck, renderRedactCheck } from './redact-check.ts';
import { renderRunsTable, toRunListJson } from './render-runs.ts';
import { renderShow } from './render-show.ts';
import {
  AGENTS_HELP,
  forkOptions,
  forkRun,
  REPLAY_EXIT_HELP,
  replayOptions,
  replayRun,
} from './replay-command.ts';
import { loadRunView, type RunView, toShowJson, unsealView } from './run-view.ts';
import { buildSampleRun } from './sample-run.ts';
import { collectKeys, parsePort, serve } from './serve.ts';
import { uuidv7 } from './trace-builder.ts';
import { parseCount, WORKER_HELP, worker } from './worker/command.ts';

/** Everything the CLI touches of its process, so tests can run it in-process. */
export interface CliContext {
  argv: readonly string[];
  env: Record<string, string | undefined>;
  cwd: string;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Whether stdout is a terminal (colour and width only then). */
  isTTY: boolean;
  /** The terminal's width, when stdout is one. */
  columns?: number | undefined;
  /** Reads all of standard input (`rewind redact-check -`); default: the process's stdin. */
  readStdin?: () => Promise<string>;
}

export function version(): string {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return manifest.version;
}

const STORE_HELP = `Store (where runs are read and written), the first of:
  --store <dir|postgres://…>  >  $REWIND_STORE  >  "store" in ./rewind.config.json  >  .rewind
  A directory is SQLite (<dir>/rewind.db) with blobs in <dir>/blobs; a postgres:// URL keeps the
  metadata in PostgreSQL (schema \`rewind\`, or the URL's ?schema=<name>) and blobs in .rewind/blobs.
  Blobs: --blobs <dir|s3://bucket/prefix>  >  $REWIND_BLOBS  >  "blobs" in ./rewind.config.json  >  those
  defaults. An s3:// location uses AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL), AWS_REGION and the AWS credentials.
  Relative paths are relative to the working directory.`;

const EXIT_HELP = `Exit codes:
  0  ok
  2  usage error: unknown command or flag, missing or malformed argument, malformed rewind.config.json
  3  not found or data error: unknown run, store missing or unreachable, payload blob missing or corrupt
  1  an internal error (a bug: please report it with the message)`;

const STORE_OPTIONS = `  --store <dir|url>    the store to use (see "Store" below)
  --blobs <dir|s3://…> the blob directory or s3://bucket/prefix, when not the store's own
  -h, --help           this help`;

interface Command {
  summary: string;
  help: string;
  run(args: string[], context: CliContext): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  demo: {
    summary: 'record a built-in sample agent run into the store and show it',
    help: `Usage: rewind demo [--json] [--store <dir|url>]

Records a realistic sample run of a support agent (retriever → model with tool calls → two
tools in parallel → a sub-agent chain whose tool fails once and is retried → a streamed
answer) into the store, through the same Store API the SDK uses, then prints it like
\`rewind show\` and suggests what to try next. Each call records a new run.

Options:
  --json               print the run as \`rewind show --json\` does
${STORE_OPTIONS}

${STORE_HELP}

${EXIT_HELP}`,
    run: demoCommand,
  },
  runs: {
    summary: 'list recorded runs, newest first',
    help: `Usage: rewind runs [options]

Lists runs, newest first: id, agent, status, start time (UTC), duration and step count.

Options:
  --agent <name>       only runs of this agent
  --status <status>    only runs with this status: ok, error, cancelled or incomplete
  --since <time>       only runs started at or after this ISO time (e.g. 2026-11-25 or 2026-11-25T10:00:00Z)
  --until <time>       only runs started before this ISO time
  --limit <n>          at most n runs (1–1000, default 50)
  --cursor <cursor>    the next page, as printed after a full page
  --json               print a JSON array of {id, agent, status, startedAt, endedAt, stepCount,
                       replayOf?, forkOf?}; the next page's cursor, if any, goes to stderr
${STORE_OPTIONS}

${STORE_HELP}

${EXIT_HELP}`,
    run: runsCommand,
  },
  show: {
    summary: "a run's timeline as a tree (or JSON with every payload)",
    help: `Usage: rewind show <runId> [--json] [--store <dir|url>]

Prints a run: a header (agent, status, start, duration, steps, errors, labels, input, output)
and its steps as a tree, children under their parent step, one line each: seq, kind and
name, status, label, duration and a one-line preview of the payloads.

Options:
  --json               print {run: {id, agent, status, input, output, error?, replayOf?, forkOf?},
                       steps: [{seq, stepId, parentStepId, kind, name, callKey, status, label,
                       request, response, error?, startedAt, endedAt}]} with payloads resolved
${STORE_OPTIONS}

Missing or corrupt payloads: a payload whose blob (or one of its parts) is missing or corrupt
is printed as null, the rest of the run is printed as usual, every such payload is listed on
stderr (where, hash, why), and the exit code is 3.

${STORE_HELP}

${EXIT_HELP}`,
    run: showCommand,
  },
  'redact-check': {
    summary: 'what the redaction policy would redact in a file, and why',
    help: `Usage: rewind redact-check <file|-> [--policy <file>] [--at <place>] [--json] [--show]

Prints what the redaction policy in force would redact in a file (or standard input, \`-\`)
before anything is recorded, and why: where (line:column in text; the field's path in JSON),
the action (mask, hash, drop, seal) and the detector or rule that matched. For tuning a policy:
it writes nothing anywhere and exits 0 whatever it finds.

Input that parses as a JSON object or array is checked field by field, as a payload would be;
anything else as text.

Options:
  --policy <file>      the policy to use; default: ./rewind.policy.json, else "policy" in
                       ./rewind.config.json, else the built-in default (every secret detector
                       masks, PII detectors are off)
  --at <place>         where the input sits in a run, for rules that name fields: e.g. run.input,
                       model:openai.chat.request, tool:crm.lookup.response (default: nowhere, so
                       only detectors apply)
  --as <text|json>     how to read the input (default: json when it parses as an object or array)
  --show               also print the input as it would be stored
  --json               print {policy: {source, file}, input: {name, kind}, findings: [{detector,
                       action, path?, line?, column?, start?, end?, rule?, reason?, inKey?}],
                       output, throwawayKey}
  -h, --help           this help

Hash and seal need the project key ($REWIND_PROJECT_KEY, 32 bytes in base64); without it a
throwaway key is used and a note says so. The policy format: docs/redaction.md.

Exit codes:
  0  ok, whatever was found
  2  usage error, or a malformed policy (the message names the rule or field)
  3  the input file cannot be read
  1  an internal error (a bug: please report it with the message)`,
    run: redactCheckCommand,
  },
  doctor: {
    summary: 'list pending artifacts: blobs that recorded runs refer to but the store lacks',
    help: `Usage: rewind doctor [--json] [--store <dir|url>]

Checks every run in the store: each blob its events refer to (run input, output and tape, each
step's request and response, and their parts) must be in the blob store. Prints, per run with
missing blobs, where each one is needed and its hash. Blobs still missing after the SDK or a
server has been given time to upload them usually mean an exporter that lost its spool or a
blob directory that was moved: point --blobs at the right directory, or re-send the run.

Options:
  --json               print {checkedRuns, pendingArtifacts, runs: [{runId, agent, status,
                       pendingArtifacts: [{hash, where}]}]} (only runs with pending artifacts)
${STORE_OPTIONS}

Exit codes: 0 no pending artifacts, 3 some (or the store cannot be read), 2 usage error.

${STORE_HELP}`,
    run: doctorCommand,
  },
  serve: {
    summary: 'run the HTTP API (ingest and queries) on the store',
    help: `Usage: rewind serve [--host 127.0.0.1] [--port 8787] [--store <dir|url>] [--blobs <dir>]
                    [--ingest-key <key>]… [--read-key <key>]… [--policy <file>] [--workers 2]

Serves the Rewind HTTP API (docs/api.md) on the store: event and blob ingest for the SDK's
exporter, and the run, timeline and step reads. Logs one JSON line per request on stdout,
starting with {"msg":"listening","url":"http://<host>:<port>",…}. SIGTERM or SIGINT: stops
accepting connections, finishes the requests in flight, closes the store and exits 0.

Options:
  --host <host>        the address to listen on (default 127.0.0.1)
  --port <port>        the port (default 8787; 0 picks a free one, printed in the "listening" line)
  --ingest-key <key>   a key allowed to send events and blobs (repeatable; also $REWIND_INGEST_KEYS,
                       comma separated)
  --read-key <key>     a key allowed to read runs and /metrics (repeatable; also $REWIND_READ_KEYS)
  --policy <file>      the redaction policy enforced at ingest (default: ./rewind.policy.json, then
                       "policy" in ./rewind.config.json, then the built-in default: secrets masked);
                       hash and seal need $REWIND_PROJECT_KEY. Blobs holding what it redacts are
                       rejected (docs/redaction.md)
  --workers <n>        local \`rewind worker\` processes running queued replay sessions (default 2;
                       0: none, e.g. when workers run elsewhere); see \`rewind worker --help\`
${STORE_OPTIONS}

Auth: on 127.0.0.1, ::1 or localhost with no key, every route is open. Any other address needs at
least one key; clients send Authorization: Bearer <key>. /healthz and /readyz need no key.

${STORE_HELP}

${EXIT_HELP}`,
    run: serveCommand,
  },
  worker: {
    summary: 'run queued replay sessions (POST /v1/replays) from the store',
    help: `${WORKER_HELP}
${STORE_OPTIONS}

${AGENTS_HELP}

${STORE_HELP}`,
    run: workerCommand,
  },
  replay: {
    summary: "re-run a recorded run's agent with the recording served back",
    help: `Usage: rewind replay <runId> --mode exact|cached [--json] [--store <dir|url>]

Calls the run's agent again (your code, see "Agent code") with the recorded input, serves the
recording back, and records the result as a new run (the original is never changed). Prints
the verdict: reproduced (no divergence, the same result) or diverged, with the first
divergence (seq, call key, reason and a field-level diff of the two requests).

Modes:
  exact    every call is matched to the recorded call with the same call key; the same request
           gets the recorded response (or error), labelled replayed; a changed request, an extra
           call or a recorded call never made is a divergence (thrown into the agent). Clock,
           random and uuid reads are served from the run's tape; concurrent calls complete in
           their recorded order. Nothing reaches a provider or a tool. (default)
  cached   a call is served when kind, name and request match a recorded call (repeats in
           order), labelled cached; anything else runs for real, labelled live.

Options:
  --mode <exact|cached>  the replay mode (default exact)
  --json               print {runId, replayOf, mode, verdict, divergence, labels: {replayed,
                       cached, live, overridden, diverged, redacted}, output}
${STORE_OPTIONS}

Bundle files (rewind replay file.rewind.tgz) are not supported yet.

${AGENTS_HELP}

${STORE_HELP}

${REPLAY_EXIT_HELP}`,
    run: replayCommand,
  },
  fork: {
    summary: 'replay a run up to a step, change that step, and run on from there',
    help: `Usage: rewind fork <runId> --at <seq> (--set <json-pointer>=<json>… | --response <json|@file> | --error <message>) [--then cached|live] [--json]

Replays the run exactly up to step <seq>, applies the edit there, then goes on in cached mode
(unchanged calls served from the recording) or live mode, and records the result as a new run
with forkOf {runId, atSeq, edit}.

Edits (one kind per fork):
  --set <pointer>=<json>   set a field of the step's request (JSON pointer into its normalized
                           request, e.g. /arguments/city='"Oslo"', /messages/0/content='"Hi"',
                           /model='"gpt-4o"', /params/temperature=0); repeatable; the call then
                           runs (cached when a recorded call had that request, else live)
  --response <json|@file>  the step's response instead of running it ("what if the tool had
                           returned X"); for a tool, its output; labelled overridden
  --error <message>        the step throws an Error with this message; labelled overridden

Options:
  --at <seq>           the step to edit (its seq, as \`rewind show <runId>\` prints it)
  --then <cached|live> how to go on after the step (default cached)
  --json               print {runId, replayOf, forkOf, mode, verdict, divergence, labels, output}
${STORE_OPTIONS}

${AGENTS_HELP}

${STORE_HELP}

${REPLAY_EXIT_HELP}`,
    run: forkCommand,
  },
};

function globalHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length)) + 10;
  const commands = Object.entries(COMMANDS)
    .map(
      ([name, command]) =>
        `  ${(name === 'show' ? 'show <runId>' : name === 'redact-check' ? 'redact-check <file>' : name).padEnd(width)}${command.summary}`,
    )
    .join('\n');
  return `rewind ${version()} — a flight recorder and time-travel debugger for LLM agents

Usage: rewind <command> [options]

Commands:
${commands}
  ${'help [command]'.padEnd(width)}help for a command

Options:
  -h, --help              this help
  -V, --version           print the version

Start with \`npx rewind demo\`, then \`npx rewind runs\` and \`npx rewind show <runId>\`.
\`rewind <command> --help\` describes a command's options.

${STORE_HELP}

${EXIT_HELP}
`;
}

const COMMON_OPTIONS = {
  store: { type: 'string' },
  blobs: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

/** `parseArgs` in strict mode, its errors turned into usage errors that point at the help. */
function parse<O extends NonNullable<ParseArgsConfig['options']>>(
  command: string,
  args: string[],
  options: O,
) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS')) throw error;
    const message = (error as Error).message;
    const option = /'(-[^' ]*)/.exec(message)?.[1];
    let problem: string;
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') problem = `unknown option '${option ?? message}'`;
    else if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE')
      problem = /argument missing/.test(message)
        ? `option '${option}' needs a value`
        : `option '${option}' does not take a value`;
    else problem = message.split('. ')[0]!.replace(/^./, (c) => c.toLowerCase());
    throw usageError(`${problem} — see \`rewind ${command} --help\``);
  }
}

function storeConfig(
  values: { store?: string | undefined; blobs?: string | undefined },
  context: CliContext,
): StoreConfig {
  try {
    return resolveStoreConfig({
      store: values.store,
      blobs: values.blobs,
      env: context.env,
      cwd: context.cwd,
    });
  } catch (error) {
    if (error instanceof ConfigError)
      throw usageError(`${error.message} — fix the file (or pass --store) and try again`);
    throw error;
  }
}

function write(context: CliContext, lines: string[]): void {
  context.stdout(`${lines.join('\n')}\n`);
}

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

const STATUSES: readonly StoredRunStatus[] = ['ok', 'error', 'cancelled', 'incomplete'];

function isoOption(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const ms = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : Number.NaN;
  if (!Number.isFinite(ms)) {
    throw usageError(
      `--${name} must be an ISO time such as 2026-11-25 or 2026-11-25T10:00:00Z, got '${value}' — see \`rewind runs --help\``,
    );
  }
  return new Date(ms).toISOString();
}

async function runsCommand(args: string[], context: CliContext): Promise<number> {
  const { values, positionals } = parse('runs', args, {
    ...COMMON_OPTIONS,
    agent: { type: 'string' },
    status: { type: 'string' },
    since: { type: 'string' },
    until: { type: 'string' },
    limit: { type: 'string' },
    cursor: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (values.help) {
    context.stdout(`${COMMANDS.runs!.help}\n`);
    return EXIT_OK;
  }
  if (positionals.length > 0) {
    throw usageError(
      `unexpected argument '${positionals[0]}' — \`rewind runs\` takes only options; to see one run use \`rewind show <runId>\``,
    );
  }
  const query: ListRunsQuery = {};
  if (values.agent !== undefined) query.agent = values.agent;
  if (values.status !== undefined) {
    if (!STATUSES.includes(values.status as StoredRunStatus)) {
      throw usageError(
        `--status must be one of ${STATUSES.join(', ')}, got '${values.status}' — see \`rewind runs --help\``,
      );
    }
    query.status = values.status as StoredRunStatus;
  }
  const since = isoOption('since', values.since);
  const until = isoOption('until', values.until);
  if (since !== undefined) query.since = since;
  if (until !== undefined) query.until = until;
  if (values.limit !== undefined) {
    const limit = /^\d+$/.test(values.limit) ? Number(values.limit) : Number.NaN;
    if (!(limit >= 1 && limit <= 1000)) {
      throw usageError(
        `--limit must be a whole number from 1 to 1000, got '${values.limit}' — see \`rewind runs --help\``,
      );
    }
    query.limit = limit;
  }
  if (values.cursor !== undefined) {
    if (values.cursor === '') throw usageError('--cursor needs the cursor printed after the previous page');
    query.cursor = values.cursor;
  }

  const config = storeConfig(values, context);
  const store = await openConfiguredStore(config, { create: false });
  try {
    let page: Awaited<ReturnType<typeof store.listRuns>>;
    try {
      page = await store.listRuns(query);
    } catch (error) {
      // The store checks the query too; the one thing it can reject that we pass through unchecked is the cursor.
      if ((error as { code?: unknown }).code === 'invalid_query') {
        throw usageError(`${(error as Error).message} — see \`rewind runs --help\``);
      }
      throw storeError(config, error);
    }
    const next =
      page.nextCursor === undefined
        ? undefined
        : `rewind ${['runs', ...withoutCursor(args), '--cursor', page.nextCursor].map(shellQuote).join(' ')}`;
    if (values.json) {
      context.stdout(json(page.items.map(toRunListJson)));
      if (next !== undefined) context.stderr(`rewind: more runs: ${next}\n`);
      return EXIT_OK;
    }
    const style = createStyle(shouldColor(context.isTTY, context.env));
    if (page.items.length === 0) {
      const filtered = Object.keys(query).some((key) => key !== 'limit' && key !== 'cursor');
      write(context, [
        filtered
          ? `no runs in ${config.display} match these filters — try \`rewind runs\` without them`
          : `no runs in ${config.display} yet — record one with the SDK, or try \`npx rewind demo\``,
      ]);
      return EXIT_OK;
    }
    const lines = renderRunsTable(page.items, style);
    if (next !== undefined) lines.push('', style.dim(`more runs: ${next}`));
    write(context, lines);
    return EXIT_OK;
  } finally {
    await store.close().catch(() => {});
  }
}

function withoutCursor(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--cursor') i++;
    else if (!arg.startsWith('--cursor=')) out.push(arg);
  }
  return out;
}

function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

function reportMissing(view: RunView, config: StoreConfig, context: CliContext): number {
  if (view.missing.length === 0) return EXIT_OK;
  const count = view.missing.length;
  context.stderr(
    `rewind: ${plural(count, 'payload')} of run '${view.run.id}' could not be read and ${count === 1 ? 'is' : 'are'} shown as null (blob missing or corrupt in ${config.blobs}) — restore the blobs (re-send them from the SDK, or import the run's bundle) and run \`rewind show\` again:\n`,
  );
  for (const entry of view.missing) context.stderr(`  ${entry.where}: ${entry.hash} (${entry.reason})\n`);
  return EXIT_DATA;
}

async function showCommand(args: string[], context: CliContext): Promise<number> {
  const { values, positionals } = parse('show', args, { ...COMMON_OPTIONS, json: { type: 'boolean' } });
  if (values.help) {
    context.stdout(`${COMMANDS.show!.help}\n`);
    return EXIT_OK;
  }
  if (positionals.length === 0) {
    throw usageError(
      'missing <runId>: usage `rewind show <runId> [--json]` — list run ids with `rewind runs`',
    );
  }
  if (positionals.length > 1) {
    throw usageError(`\`rewind show\` takes one run id, got ${positionals.length}: ${positionals.join(' ')}`);
  }
  const runId = positionals[0]!;
  const config = storeConfig(values, context);
  const store = await openConfiguredStore(config, { create: false });
  try {
    let view = await guard(config, () => loadRunView(store, runId));
    if (view === undefined) {
      throw dataError(`run '${runId}' not found in ${config.display} — list runs with \`rewind runs\``);
    }
    // sealed values are shown sealed, unless the project key is here to open them
    const key = context.env.REWIND_PROJECT_KEY;
    if (key !== undefined && key !== '') {
      try {
        view = unsealView(view, key);
      } catch (error) {
        context.stderr(`rewind: sealed values stay sealed: ${(error as Error).message}\n`);
      }
    }
    printView(view, values.json === true, context);
    return reportMissing(view, config, context);
  } finally {
    await store.close().catch(() => {});
  }
}

async function replayCommand(args: string[], context: CliContext): Promise<number> {
  const { values, positionals } = parse('replay', args, { ...COMMON_OPTIONS, ...replayOptions });
  if (values.help) {
    context.stdout(`${COMMANDS.replay!.help}\n`);
    return EXIT_OK;
  }
  return replayRun(positionals, values, () => storeConfig(values, context), context);
}

async function forkCommand(args: string[], context: CliContext): Promise<number> {
  const { values, positionals } = parse('fork', args, { ...COMMON_OPTIONS, ...forkOptions });
  if (values.help) {
    context.stdout(`${COMMANDS.fork!.help}\n`);
    return EXIT_OK;
  }
  return forkRun(positionals, values, () => storeConfig(values, context), context);
}

function printView(view: RunView, asJson: boolean, context: CliContext): void {
  if (asJson) {
    context.stdout(json(toShowJson(view)));
    return;
  }
  const style = createStyle(shouldColor(context.isTTY, context.env));
  write(context, renderShow(view, { style, columns: context.isTTY ? context.columns : undefined }));
}

async function demoCommand(args: string[], context: CliContext): Promise<number> {
  const { values, positionals } = parse('demo', args, { ...COMMON_OPTIONS, json: { type: 'boolean' } });
  if (values.help) {
    context.stdout(`${COMMANDS.demo!.help}\n`);
    return EXIT_OK;
  }
  if (positionals.length > 0)
    throw usageError(`unexpected argument '${positionals[0]}' — see \`rewind demo --help\``);
  const config = storeConfig(values, context);
  const store = await openConfiguredStore(config, { create: true });
  try {
    const now = Date.now();
    const trace = buildSampleRun({ runId: uuidv7(now), end: now });
    await guard(config, async () => {
      for (const [hash, bytes] of trace.blobs) await store.blobs.putVerified(hash, bytes);
      const result = await store.append(trace.events);
      const rejected = result.outcomes.find((outcome) => outcome.status === 'rejected');
      if (rejected !== undefined && rejected.status === 'rejected') {
        throw new Error(`the store rejected a demo event (${rejected.reason})`);
      }
    });
    const view = await guard(config, () => loadRunView(store, trace.runId));
    if (view === undefined)
      throw dataError(`the demo run was written but cannot be read back from ${config.display}`);
    printView(view, values.json === true, context);
    const storeArg = config.source === 'flag' ? ` --store ${shellQuote(values.store!)}` : '';
    const next: Array<[string, string]> = [
      [`npx rewind runs${storeArg}`, 'list recorded runs, newest first'],
      [`npx rewind show ${trace.runId}${storeArg}`, 'this timeline again'],
      [`npx rewind show ${trace.runId}${storeArg} --json`, 'the run and every payload, as JSON'],
      ['npx rewind --help', 'every command and option'],
    ];
    const width = Math.max(...next.map(([command]) => command.length)) + 3;
    const hint = [
      '',
      `Recorded a sample run of ${view.run.agent} into ${config.display}. Next:`,
      ...next.map(([command, what]) => `  ${command.padEnd(width)}${what}`),
    ].join('\n');
    if (values.json) context.stderr(`${hint}\n`);
    else context.stdout(`${hint}\n`);
    return reportMissing(view, config, context);
  } finally {
    await store.close().catch(() => {});
  }
}

async function redactCheckCommand(args: string[], context: CliContext): Promise<number> {
  const { values, positionals } = parse('redact-check', args, {
    help: { type: 'boolean', short: 'h' },
    policy: { type: 'string' },
    at: { type: 'string' },
    as: { type: 'string' },
    show: { type: 'boolean' },
    json: { type: 'boolean' },
  });
  if (values.help) {
    context.stdout(`${COMMANDS['redact-check']!.help}\n`);
    return EXIT_OK;
  }
  if (positionals.length !== 1) {
    throw usageError(
      positionals.length === 0
        ? 'missing <file>: usage `rewind redact-check <file|->` (- reads standard input)'
        : `\`rewind redact-check\` takes one file, got ${positionals.length}: ${positionals.join(' ')}`,
    );
  }
  const report = await redactCheck({
    input: positionals[0]!,
    policy: values.policy,
    as: values.as,
    at: values.at,
    show: values.show === true,
    env: context.env,
    cwd: context.cwd,
    readStdin: context.readStdin ?? readProcessStdin,
  });
  if (values.json) context.stdout(json(report));
  else write(context, renderRedactCheck(report, values.show === true));
  return EXIT_OK;
}

async function readProcessStdin(): Promise<string> {
  let text = '';
  process.stdin.setEncoding('utf8');
  for await (const chunk of process.stdin) text += chunk;
  return text;
}

async function serveCommand(args: string[], context: CliContext): Promise<number> {
  const { values, positionals } = parse('serve', args, {
    ...COMMON_OPTIONS,
    host: { type: 'string' },
    port: { type: 'string' },
    'ingest-key': { type: 'string', multiple: true },
    'read-key': { type: 'string', multiple: true },
    policy: { type: 'string' },
    workers: { type: 'string' },
  });
  if (values.help) {
    context.stdout(`${COMMANDS.serve!.help}\n`);
    return EXIT_OK;
  }
  if (positionals.length > 0)
    throw usageError(`unexpected argument '${positionals[0]}' — see \`rewind serve --help\``);
  const host = values.host ?? '127.0.0.1';
  if (host.trim() === '') throw usageError('--host needs an address, e.g. 127.0.0.1 or 0.0.0.0');
  const options = {
    host,
    port: parsePort(values.port),
    ingestKeys: collectKeys(values['ingest-key'], context.env.REWIND_INGEST_KEYS),
    readKeys: collectKeys(values['read-key'], context.env.REWIND_READ_KEYS),
    policy: values.policy,
    workers: parseCount('--workers', values.workers, 2, 0),
  };
  return serve(options, storeConfig(values, context), context);
}

async function workerCommand(args: string[], context: CliContext): Promise<number> {
  const { values, positionals } = parse('worker', args, {
    ...COMMON_OPTIONS,
    concurrency: { type: 'string' },
    'lease-ms': { type: 'string' },
    'worker-id': { type: 'string' },
  });
  if (values.help) {
    context.stdout(`${COMMANDS.worker!.help}\n`);
    return EXIT_OK;
  }
  if (positionals.length > 0)
    throw usageError(`unexpected argument '${positionals[0]}' — see \`rewind worker --help\``);
  const workerId = values['worker-id'];
  if (workerId !== undefined && (workerId === '' || workerId.length > 200))
    throw usageError('--worker-id must be a non-empty id of at most 200 characters');
  return worker(
    {
      concurrency: parseCount('--concurrency', values.concurrency, 1, 1),
      leaseMs: parseCount('--lease-ms', values['lease-ms'], 15_000, 100),
      workerId,
    },
    storeConfig(values, context),
    context,
  );
}

async function doctorCommand(args: string[], context: CliContext): Promise<number> {
  const { values, positionals } = parse('doctor', args, { ...COMMON_OPTIONS, json: { type: 'boolean' } });
  if (values.help) {
    context.stdout(`${COMMANDS.doctor!.help}\n`);
    return EXIT_OK;
  }
  if (positionals.length > 0)
    throw usageError(
      `unexpected argument '${positionals[0]}' — \`rewind doctor\` checks every run; see \`rewind doctor --help\``,
    );
  const config = storeConfig(values, context);
  const store = await openConfiguredStore(config, { create: false });
  try {
    const report = await guard(config, () => diagnose(store));
    if (values.json) {
      context.stdout(json(report));
    } else if (report.pendingArtifacts === 0) {
      write(context, [
        `no pending artifacts: every blob the ${plural(report.checkedRuns, 'run')} in ${config.display} refer to is stored`,
      ]);
    } else {
      const lines: string[] = [];
      for (const run of report.runs) {
        lines.push(
          `run ${run.runId} (${run.agent ?? 'agent unknown'}, ${run.status}): ${plural(run.pendingArtifacts.length, 'pending artifact')}`,
        );
        for (const artifact of run.pendingArtifacts) lines.push(`  ${artifact.where}: ${artifact.hash}`);
      }
      lines.push(
        '',
        `${plural(report.pendingArtifacts, 'pending artifact')} in ${plural(report.runs.length, 'run')} of ${report.checkedRuns} — blobs in ${config.blobs} that these runs need are missing: let the SDK finish uploading (flush), re-send the runs, or point --blobs at the right directory`,
      );
      write(context, lines);
    }
    return report.pendingArtifacts === 0 ? EXIT_OK : EXIT_DATA;
  } finally {
    await store.close().catch(() => {});
  }
}

/** Runs the CLI; resolves to the exit code. Never throws for a user error: it prints it instead. */
export async function main(context: CliContext): Promise<number> {
  const [first, ...rest] = context.argv;
  try {
    if (first === undefined) {
      context.stderr(globalHelp());
      return EXIT_USAGE;
    }
    if (first === '--help' || first === '-h') {
      context.stdout(globalHelp());
      return EXIT_OK;
    }
    if (first === '--version' || first === '-V') {
      context.stdout(`${version()}\n`);
      return EXIT_OK;
    }
    if (first === 'help') {
      const topic = rest[0];
      if (topic === undefined) {
        context.stdout(globalHelp());
        return EXIT_OK;
      }
      const command = COMMANDS[topic];
      if (command === undefined) throw usageError(`no command '${topic}' — see \`rewind --help\``);
      context.stdout(`${command.help}\n`);
      return EXIT_OK;
    }
    if (first.startsWith('-')) {
      throw usageError(
        `unknown option '${first}' — put options after the command, e.g. \`rewind runs --json\`; see \`rewind --help\``,
      );
    }
    const command = Object.hasOwn(COMMANDS, first) ? COMMANDS[first] : undefined;
    if (command === undefined) throw usageError(`unknown command '${first}' — see \`rewind --help\``);
    return await command.run(rest, context);
  } catch (error) {
    if (error instanceof CliError) {
      context.stderr(`rewind: ${error.message}\n`);
      return error.exitCode;
    }
    context.stderr(
      `rewind: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    return 1;
  }
}
