// The CLI's exit codes (documented in `rewind --help`):
//   0  ok
//   2  usage error: unknown command or flag, a missing or malformed argument, a malformed rewind.config.json
//   3  not found or data error: unknown run id, a store that cannot be opened or read, a blob missing or corrupt
// Every failure prints one line on stderr that says what to do.

export const EXIT_OK = 0;
export const EXIT_USAGE = 2;
export const EXIT_DATA = 3;

export class CliError extends Error {
  override readonly name = 'CliError';
  readonly exitCode: number;
  constructor(exitCode: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.exitCode = exitCode;
  }
}

export function usageError(message: string): CliError {
  return new CliError(EXIT_USAGE, message);
}

export function dataError(message: string, options?: { cause?: unknown }): CliError {
  return new CliError(EXIT_DATA, message, options);
}
