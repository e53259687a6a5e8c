// Every error the server answers with, as `{"error": {"code", "message", "details"?}}` (docs/api.md).
// Handlers throw HttpError; server.ts turns it into the response in one place.

export class HttpError extends Error {
  override readonly name = 'HttpError';
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown> | undefined;
  readonly headers: Record<string, string> | undefined;
  constructor(
    status: number,
    code: string,
    message: string,
    options: { details?: Record<string, unknown>; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.status = status;
    this.code = code;
    this.details = options.details;
    this.headers = options.headers;
  }

  toJSON(): { error: { code: string; message: string; details?: Record<string, unknown> } } {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.details === undefined ? {} : { details: this.details }),
      },
    };
  }
}

export function badRequest(code: string, message: string, details?: Record<string, unknown>): HttpError {
  return new HttpError(400, code, message, details === undefined ? {} : { details });
}

export function notFound(message: string): HttpError {
  return new HttpError(404, 'not_found', message);
}
