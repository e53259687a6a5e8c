// Runs the real `rewind` binary as `npx rewind` would: Node 24 (`process.execPath`) with
// packages/cli/src/bin.ts. The environment is the test's minus every REWIND_* and NO_COLOR
// (so the machine's settings never leak into a test), plus `env`; `input` is written to its stdin.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const REWIND_BIN = fileURLToPath(new URL('../packages/cli/src/bin.ts', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runRewind(
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; input?: string } = {},
): Promise<CliResult> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('REWIND_') && key !== 'NO_COLOR') env[key] = value;
  }
  Object.assign(env, options.env);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [REWIND_BIN, ...args], {
      ...(options.cwd !== undefined && { cwd: options.cwd }),
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stdin.end(options.input ?? '');
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A `rewind serve` child process. */
export interface ServeProcess {
  child: ChildProcess;
  url: string;
  /** Every stdout line so far, parsed. */
  lines: Array<Record<string, unknown>>;
  /** Everything it wrote, stdout and stderr, as it came. */
  log: string[];
  exited: Promise<number | null>;
}

/** The test's environment minus every REWIND_* variable, plus `extra`. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env))
    if (value !== undefined && !key.startsWith('REWIND_')) env[key] = value;
  return { ...env, ...extra };
}

/**
 * Starts `rewind serve --port <port> …args` (a free port by default) and resolves once it has
 * printed its `listening` line, with the URL from that line.
 */
export function startServe(
  args: string[],
  options: { env?: Record<string, string>; port?: number; cwd?: string } = {},
): Promise<ServeProcess> {
  const child = spawn(process.execPath, [REWIND_BIN, 'serve', '--port', String(options.port ?? 0), ...args], {
    env: cleanEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
  });
  const lines: Array<Record<string, unknown>> = [];
  const log: string[] = [];
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    log.push(chunk);
  });
  return new Promise((resolve, reject) => {
    let buffered = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      log.push(chunk);
      buffered += chunk;
      let newline = buffered.indexOf('\n');
      while (newline !== -1) {
        const line = JSON.parse(buffered.slice(0, newline)) as Record<string, unknown>;
        buffered = buffered.slice(newline + 1);
        lines.push(line);
        if (line.msg === 'listening') resolve({ child, url: line.url as string, lines, log, exited });
        newline = buffered.indexOf('\n');
      }
    });
    exited.then((code) => reject(new Error(`rewind serve exited (${code}) before listening: ${stderr}`)));
  });
}
