// Runs the real `rewind` binary as `npx rewind` would: Node 24 (`process.execPath`) with
// packages/cli/src/bin.ts. The environment is the test's minus every REWIND_* and NO_COLOR
// (so the machine's settings never leak into a test), plus `env`; `input` is written to its stdin.
import { spawn } from 'node:child_process';
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
